import type { ReplicaLag } from '../replica-lag/replica-lag.ts';

/**
 * Whether a replica takes reads, with hysteresis so that a replica hovering around `max_lag_ms` does
 * not flap: it stops taking reads the moment a sample is bad, and takes them again only after its
 * samples have stayed well inside the limit (below `recoverBelowMs`) for `recoverAfterMs`.
 * Pure: the clock is passed in.
 */
export type UnhealthyReason =
  /** No sample yet. */
  | 'starting'
  | 'unreachable'
  /** Promoted, or the URL names a primary: it no longer follows this primary. */
  | 'not-in-recovery'
  | 'lag'
  | 'lag-unknown'
  | 'recovery-conflict';

export interface ReplicaHealth {
  readonly healthy: boolean;
  readonly reason: UnhealthyReason | null;
  /** When this state (healthy, or unhealthy for this reason) began. */
  readonly since: number;
  /** While unhealthy: since when every sample has been good enough to come back. */
  readonly goodSince: number | null;
  readonly lastConflictAt: number | null;
}

export interface HealthPolicy {
  readonly maxLagMs: number;
  /** A lagging replica comes back only below this (default: half of max_lag_ms). */
  readonly recoverBelowMs: number;
  /** ... for this long without a bad sample, an error or a recovery conflict. */
  readonly recoverAfterMs: number;
}

export function initialHealth(now: number): ReplicaHealth {
  return { healthy: false, reason: 'starting', since: now, goodSince: null, lastConflictAt: null };
}

function unhealthy(previous: ReplicaHealth, reason: UnhealthyReason, now: number): ReplicaHealth {
  const same = !previous.healthy && previous.reason === reason;
  return { ...previous, healthy: false, reason, since: same ? previous.since : now, goodSince: null };
}

export function observeLag(previous: ReplicaHealth, lag: ReplicaLag, policy: HealthPolicy, now: number): ReplicaHealth {
  const bad = badReason(lag, policy);
  if (bad !== null) return unhealthy(previous, bad, now);
  if (previous.healthy) return previous;
  const lagMs = lag.lagMs ?? Infinity;
  // First sample: nothing to flap from.
  if (previous.reason === 'starting') return { ...previous, healthy: true, reason: null, since: now, goodSince: null };
  const conflictQuiet = previous.lastConflictAt === null || now - previous.lastConflictAt >= policy.recoverAfterMs;
  if (lagMs > policy.recoverBelowMs || !conflictQuiet) return { ...previous, goodSince: null };
  const goodSince = previous.goodSince ?? now;
  if (now - goodSince < policy.recoverAfterMs) return { ...previous, goodSince };
  return { ...previous, healthy: true, reason: null, since: now, goodSince: null };
}

/** A failure seen on the query path (a refused connection, a recovery conflict): acted on at once. */
export function observeFailure(previous: ReplicaHealth, reason: 'unreachable' | 'recovery-conflict', now: number): ReplicaHealth {
  const next = unhealthy(previous, reason, now);
  return reason === 'recovery-conflict' ? { ...next, lastConflictAt: now } : next;
}

function badReason(lag: ReplicaLag, policy: HealthPolicy): UnhealthyReason | null {
  if (!lag.reachable) return 'unreachable';
  if (lag.inRecovery === false) return 'not-in-recovery';
  if (lag.lagMs === null) return 'lag-unknown';
  if (lag.lagMs > policy.maxLagMs) return 'lag';
  return null;
}
