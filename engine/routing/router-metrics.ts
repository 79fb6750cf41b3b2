import type { OnReplicaDown, ReadTarget } from '../policy/desired-routing.ts';
import type { HeartbeatStatus } from '../replica-lag/heartbeat.ts';
import type { LagStats } from '../replica-lag/lag-sampler.ts';
import type { MetricsPublisherStatus } from './metrics-publisher.ts';
import type { ReplicaLag } from '../replica-lag/replica-lag.ts';
import type { UnhealthyReason } from './replica-health.ts';
import type { ClassifierStats } from './statement-classifier.ts';
import type { PrimaryReason } from './statement-route.ts';

/** Why a statement went to the primary without being a read at all. */
export type PrimaryStatementReason = PrimaryReason | 'override' | 'transaction';

/** Why a read that a replica could have served went to the primary. */
export type FallbackReason = 'read-your-writes' | 'reads-primary' | UnhealthyReason;

/** Why a read that failed on a replica was run again on the primary. */
export type RetryReason = 'recovery-conflict' | 'replica-unavailable' | 'standby-refused' | 'not-replayed-yet';

export interface HealthTransition {
  readonly at: number;
  readonly replica: string;
  readonly healthy: boolean;
  readonly reason: UnhealthyReason | null;
  readonly lagMs: number | null;
}

export interface ReplicaMetrics {
  readonly name: string;
  readonly healthy: boolean;
  readonly reason: UnhealthyReason | null;
  /** Since when (epoch ms) the replica has been in this state. */
  readonly since: number;
  readonly reads: number;
  /** The latest lag sample (both measures, byte lag, receiver state). */
  readonly lag: ReplicaLag | null;
  /** p50 / p99 / max lag over the sampler's window. */
  readonly window: LagStats;
  readonly pool: { readonly total: number; readonly idle: number; readonly waiting: number };
}

/**
 * A snapshot of what the router did and sees: a plain serialisable value for the live page.
 * Counters count since the router started.
 */
export interface RouterMetrics {
  readonly at: number;
  readonly startedAt: number;
  readonly policy: {
    readonly reads: ReadTarget;
    readonly maxLagMs: number;
    readonly readYourWritesMs: number;
    readonly onReplicaDown: OnReplicaDown;
  };
  readonly statements: number;
  /** Where statements ran: the primary, or each replica by name (after retries). */
  readonly targets: { readonly primary: number; readonly replicas: Readonly<Record<string, number>> };
  readonly primaryStatements: Readonly<Record<PrimaryStatementReason, number>>;
  readonly fallbacks: Readonly<Record<FallbackReason, number>>;
  readonly retries: Readonly<Record<RetryReason, number>>;
  /** Reads that failed: `on_replica_down: error` with no replica, or a retry on the primary that failed too. */
  readonly failedReads: number;
  readonly classifier: ClassifierStats & {
    readonly knowledgeLoaded: boolean;
    readonly knowledgeAt: number | null;
    readonly knowledgeError: string | null;
  };
  readonly replicas: readonly ReplicaMetrics[];
  readonly heartbeat: HeartbeatStatus | null;
  /** Publishing these metrics to the primary for `pgwarden serve` (null when `metricsIntervalMs: 0`). */
  readonly publisher: MetricsPublisherStatus | null;
  readonly primaryError: string | null;
  /** The latest health changes, newest last (at most 100). */
  readonly transitions: readonly HealthTransition[];
}

export function zeroCounts<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

export const PRIMARY_STATEMENT_REASONS: readonly PrimaryStatementReason[] = [
  'write',
  'function',
  'relation',
  'unparseable',
  'learned',
  'override',
  'transaction',
];

export const FALLBACK_REASONS: readonly FallbackReason[] = [
  'read-your-writes',
  'reads-primary',
  'starting',
  'unreachable',
  'not-in-recovery',
  'lag',
  'lag-unknown',
  'recovery-conflict',
];

export const RETRY_REASONS: readonly RetryReason[] = ['recovery-conflict', 'replica-unavailable', 'standby-refused', 'not-replayed-yet'];

/**
 * What a router publishes to `pgwarden.router_metrics` on the primary for `pgwarden serve` and the live
 * page: its counters since it started (the collector takes deltas between publications, so a window's
 * rates survive any number of routers and a router's restart), and each replica's current state. No
 * URL, host of a database, user or password: replicas are named, never addressed.
 */
export interface PublishedRouterMetrics {
  readonly version: 1;
  readonly policy: { readonly reads: ReadTarget; readonly maxLagMs: number };
  readonly statements: number;
  /** Reads by where they ran: on the primary (fallbacks and retries), and on each replica by name. */
  readonly reads: { readonly primary: number; readonly replicas: Readonly<Record<string, number>> };
  /** Statements that were not reads a replica could take (writes, locks, transactions...), by reason. */
  readonly primaryStatements: Readonly<Record<string, number>>;
  readonly fallbacks: Readonly<Record<string, number>>;
  readonly retries: Readonly<Record<string, number>>;
  readonly failedReads: number;
  readonly replicas: readonly PublishedReplica[];
}

export interface PublishedReplica {
  readonly name: string;
  readonly healthy: boolean;
  readonly reason: string | null;
  readonly lagMs: number | null;
  readonly lagSource: string | null;
  readonly bytesBehind: number | null;
  /** p99 of the lag samples over the sampler's window (60 s). */
  readonly p99LagMs: number | null;
}

const sum = (counts: Readonly<Record<string, number>>): number => Object.values(counts).reduce((a, b) => a + b, 0);

export function publishedMetrics(m: RouterMetrics): PublishedRouterMetrics {
  return {
    version: 1,
    policy: { reads: m.policy.reads, maxLagMs: m.policy.maxLagMs },
    statements: m.statements,
    // A read runs on the primary when it falls back, or when a replica failed it and it is retried there.
    reads: { primary: sum(m.fallbacks) + sum(m.retries), replicas: { ...m.targets.replicas } },
    primaryStatements: { ...m.primaryStatements },
    fallbacks: { ...m.fallbacks },
    retries: { ...m.retries },
    failedReads: m.failedReads,
    replicas: m.replicas.map((r) => ({
      name: r.name,
      healthy: r.healthy,
      reason: r.reason,
      lagMs: r.lag?.lagMs ?? null,
      lagSource: r.lag?.lagSource ?? null,
      bytesBehind: r.lag?.bytesBehind ?? null,
      p99LagMs: r.window.p99Ms,
    })),
  };
}

const finite = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
const nullableNumber = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const record = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const counts = (v: unknown): Record<string, number> => Object.fromEntries(Object.entries(record(v)).map(([k, n]) => [k, finite(n)]));

/**
 * A published row's counters as the collector reads them back: another process (maybe another version)
 * wrote them, so every field is checked; null for a format this version does not know.
 */
export function parsePublishedMetrics(value: unknown): PublishedRouterMetrics | null {
  const v = record(value);
  if (v['version'] !== 1) return null;
  const policy = record(v['policy']);
  const reads = record(v['reads']);
  const replicas = Array.isArray(v['replicas']) ? v['replicas'].map(record) : [];
  return {
    version: 1,
    policy: { reads: policy['reads'] === 'primary' ? 'primary' : 'replica', maxLagMs: finite(policy['maxLagMs']) },
    statements: finite(v['statements']),
    reads: { primary: finite(reads['primary']), replicas: counts(reads['replicas']) },
    primaryStatements: counts(v['primaryStatements']),
    fallbacks: counts(v['fallbacks']),
    retries: counts(v['retries']),
    failedReads: finite(v['failedReads']),
    replicas: replicas.flatMap((r) =>
      typeof r['name'] !== 'string'
        ? []
        : [
            {
              name: r['name'],
              healthy: r['healthy'] === true,
              reason: typeof r['reason'] === 'string' ? r['reason'] : null,
              lagMs: nullableNumber(r['lagMs']),
              lagSource: typeof r['lagSource'] === 'string' ? r['lagSource'] : null,
              bytesBehind: nullableNumber(r['bytesBehind']),
              p99LagMs: nullableNumber(r['p99LagMs']),
            },
          ],
    ),
  };
}
