import type { OnReplicaDown, ReadTarget } from '../policy/desired-routing.ts';
import type { HeartbeatStatus } from './heartbeat.ts';
import type { LagStats } from './lag-sampler.ts';
import type { ReplicaLag } from './replica-lag.ts';
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
