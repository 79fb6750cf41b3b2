/** Read-replica routing: the router library, the lag sampler and what the live page reads. */
export {
  createRouter,
  isRecoveryConflict,
  NoReplicaError,
  type RoutedQueryConfig,
  type RouteExplanation,
  type Route,
  type RouterOptions,
  type RouterReplica,
  type RouterSession,
  type RoutingPool,
} from './routing-pool.ts';
export {
  loadRouter,
  replicaTargetsFromPolicy,
  resolveReplicas,
  routerOptionsFromPolicy,
  RoutingConfigError,
  type Environment,
  type ResolvedReplica,
} from './router-options.ts';
export { lagStats, sampleLagOnce, startLagSampler, type LagPoint, type LagSampler, type LagSamplerOptions, type LagStats, type ReplicaTarget } from '../replica-lag/lag-sampler.ts';
export { startHeartbeat, type HeartbeatStatus, type HeartbeatWriter } from '../replica-lag/heartbeat.ts';
export type { MetricsPublisherStatus, RouterIdentity } from './metrics-publisher.ts';
export type { LagSource, PrimaryView, ReplicaLag } from '../replica-lag/replica-lag.ts';
export type { UnhealthyReason } from './replica-health.ts';
export type {
  FallbackReason,
  HealthTransition,
  PrimaryStatementReason,
  PublishedReplica,
  PublishedRouterMetrics,
  ReplicaMetrics,
  RetryReason,
  RouterMetrics,
} from './router-metrics.ts';
export { statementFacts, type SqlName, type StatementFacts } from './statement-facts.ts';
