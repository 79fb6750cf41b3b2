import type { ApplyRegression } from './apply-regression.ts';
import type { Finding } from './finding.ts';
import type { StatusBoard } from './health-status.ts';

/**
 * One poll of the health collector, as the API, the SSE stream and the site see it. Rates and ratios are
 * over the window since the previous poll (deltas of cumulative counters), never totals since the last
 * stats reset; a figure is null when the window had no activity to divide by, or when a counter went
 * backwards (a stats reset) inside the window.
 *
 * Nothing here carries a connection string, a host or a user's password: nodes are named ("primary",
 * "standby1"), never addressed.
 */
export interface HealthSnapshot {
  readonly version: 1;
  /** Increases by one per successful poll of the primary since the collector started. */
  readonly seq: number;
  /** When the poll started (collector clock, ISO 8601). */
  readonly at: string;
  /** The window the rates cover (server clock); null on the first poll, which has nothing to subtract. */
  readonly windowMs: number | null;
  readonly database: string;
  readonly serverVersion: number;
  readonly figures: Figures;
  readonly status: StatusBoard;
  readonly primary: PrimaryHealth;
  readonly standbys: readonly StandbyHealth[];
  /** What the read-replica routers publish: null when the primary was not asked (it is in recovery). */
  readonly routing: RoutingHealth | null;
  readonly statements: StatementHealth;
  readonly tables: TablesHealth;
  readonly sessions: readonly SessionInfo[];
  /** The slow cadence's latest result (sizes, index flags, table health and bloat), with its own time. */
  readonly slow: SlowHealth | null;
  readonly findings: readonly Finding[];
  readonly poll: PollCost;
}

/** The headline numbers: one per gauge, status-strip item and time series. */
export interface Figures {
  readonly latencyMeanMs: number | null;
  readonly latencyP50Ms: number | null;
  readonly latencyP95Ms: number | null;
  readonly latencyP99Ms: number | null;
  /** The workload's statements per second (pg_stat_statements), pgwarden's own left out. */
  readonly callsPerSecond: number | null;
  /** Transactions per second, all of them (pg_stat_database): pgwarden's own included. */
  readonly tps: number | null;
  /**
   * pgwarden's own statements per second on the primary (the routers' heartbeat writes, the polls, the
   * routers' metric rows): each is a transaction of its own, so they are shown apart from the workload's.
   * Null without pg_stat_statements.
   */
  readonly ownStatementsPerSecond: number | null;
  /**
   * Checkpoints in the window (instance-wide): requested ones (WAL reached max_wal_size, or a CHECKPOINT)
   * more often than timed ones mean max_wal_size is too small for the write load.
   */
  readonly checkpointsTimed: number | null;
  readonly checkpointsRequested: number | null;
  /** Rolled-back share of transactions ended in the window, 0..1. */
  readonly rollbackShare: number | null;
  readonly deadlocks: number | null;
  /** Shared-buffer hit share of this database's block reads in the window, 0..1. */
  readonly cacheHitRatio: number | null;
  /** The same for user indexes only. */
  readonly indexHitRatio: number | null;
  /** Index scans / (index scans + sequential scans) on user tables in the window, 0..1. */
  readonly indexScanShare: number | null;
  /** The most-lagged standby's replay lag; null with no standby, or when no source can say. */
  readonly replicaLagMs: number | null;
  readonly replicaLagBytes: number | null;
  /**
   * Standbys the collector polls that are down (unreachable) or not receiving WAL: they have no lag to
   * show, and are worse than any lag, so the replica-lag status turns red while this is above 0.
   */
  readonly standbysDown: number;
  /** The worst table's health, 0..1 (issue 5's score when available, else its live-tuple share). */
  readonly tableHealth: number | null;
  readonly connections: number;
  readonly maxConnections: number;
  /** Client connections as a share of max_connections, 0..1. */
  readonly connectionsShare: number;
  readonly idleInTransaction: number;
  readonly longestTransactionMs: number | null;
  readonly locksWaiting: number;
  /** This database's oldest unfrozen transaction ID as a share of the 2^31 wraparound horizon, 0..1. */
  readonly xidAgeShare: number;
  readonly walBytesPerSecond: number | null;
  /** Wall time of this poll (all queries, all nodes). */
  readonly pollMs: number;
}

export type FigureName = keyof Figures;

export interface PrimaryHealth {
  readonly serverTime: string;
  readonly maxConnections: number;
  readonly connections: { readonly total: number; readonly active: number; readonly idle: number; readonly idleInTransaction: number; readonly waitingOnLock: number };
  readonly backends: number;
  readonly xidAge: number;
  readonly freezeMaxAge: number;
  readonly statsReset: string | null;
  /** A counter went backwards in this window (pg_stat_reset or a restart): its rates are null. */
  readonly statsResetInWindow: boolean;
  readonly tupleRates: { readonly returned: number; readonly fetched: number; readonly inserted: number; readonly updated: number; readonly deleted: number } | null;
  readonly tempBytesPerSecond: number | null;
}

/**
 * Where a replica-lag figure came from: the routing module's sampler when it runs (its own sources:
 * `heartbeat`, `caught-up`, `wal-position`, `replay-timestamp`, `not-receiving`), else
 * `pg_stat_replication` (the primary's view) or `standby` (the standby's replay position and time).
 */
export type LagSource = string;

export interface StandbyHealth {
  readonly name: string;
  /** `down`: the collector could not reach it (the primary's view is still reported). */
  readonly state: 'streaming' | 'not-streaming' | 'replay-paused' | 'down' | 'unknown';
  readonly lagMs: number | null;
  readonly lagSource: LagSource | null;
  readonly lagBytes: number | null;
  /** From the primary's pg_stat_replication (null when the walsender is not connected). */
  readonly primaryView: {
    readonly state: string;
    readonly syncState: string;
    readonly writeLagMs: number | null;
    readonly flushLagMs: number | null;
    readonly replayLagMs: number | null;
    readonly replayBytes: number | null;
  } | null;
  /** From the standby itself, when it was polled. */
  readonly ownView: {
    readonly receiverStatus: string | null;
    readonly replayPaused: boolean;
    readonly unreplayedBytes: number | null;
    readonly lastReplayAgeMs: number | null;
    readonly tps: number | null;
    readonly cacheHitRatio: number | null;
    readonly connections: number;
    readonly maxConnections: number;
    readonly conflicts: number | null;
  } | null;
  readonly error: string | null;
}

/**
 * The routers' reads, fallbacks and lag, from the rows they publish to pgwarden.router_metrics: rates
 * and counts over the window from counter deltas per router (a router's restart starts its counters
 * afresh and is counted from zero, never as a negative rate). Only rows updated in the last minute count.
 */
export interface RoutingHealth {
  /**
   * `no-table`: the routing policy was not applied (no pgwarden.router_metrics); `unreadable`: no SELECT
   * on it (`note` says so); `silent`: no router published lately; `reporting`: at least one did.
   */
  readonly state: 'no-table' | 'unreadable' | 'silent' | 'reporting';
  readonly note: string | null;
  /** The longest span the counts (fallbacks, retries, failed reads) cover, up to a minute; null without two points. */
  readonly windowMs: number | null;
  /** The span the rates and the replica share cover: the last few publications (about 10 s). */
  readonly ratesWindowMs: number | null;
  /** All reads, on every target, per second, over `ratesWindowMs`. */
  readonly readsPerSecond: number | null;
  /** Share of the recent reads a replica served, 0..1. */
  readonly replicaReadShare: number | null;
  /** Statements only the primary could run (writes, locks, transactions...) per second. */
  readonly primaryStatementsPerSecond: number | null;
  /** The primary first, then each replica. */
  readonly targets: readonly RoutingTarget[];
  /** Reads a replica could have served that went to the primary in the window, by reason, most first. */
  readonly fallbacks: readonly ReasonCount[];
  /** Reads that failed on a replica and were run again on the primary, by cause. */
  readonly retries: readonly ReasonCount[];
  readonly failedReads: number | null;
  readonly routers: readonly RouterHealth[];
  /** Rows older than a minute: routers that stopped without removing theirs (not counted above). */
  readonly staleRouters: number;
}

export interface RoutingTarget {
  readonly name: string;
  readonly kind: 'primary' | 'replica';
  readonly readsPerSecond: number | null;
  /** Reads in the window. */
  readonly reads: number | null;
  /** Replicas: how many reporting routers see it, and how many of them send it reads. */
  readonly seenBy: number;
  readonly healthyIn: number;
  /** The highest current lag the routers report, and the highest p99 over their last minute. */
  readonly lagMs: number | null;
  readonly p99LagMs: number | null;
  /** Why routers keep reads off it now (`lag`, `unreachable`...). */
  readonly reasons: readonly string[];
}

export interface ReasonCount {
  readonly reason: string;
  readonly count: number;
}

export interface RouterHealth {
  readonly instance: string;
  readonly application: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly updatedAt: string;
  /** Age of its last publication on the primary's clock. */
  readonly ageMs: number;
  readonly reads: 'replica' | 'primary';
  readonly maxLagMs: number;
  readonly readsPerSecond: number | null;
  /** Its counters since it started, as it published them: what /metrics exposes as counters. */
  readonly counters?: {
    readonly reads: Readonly<Record<string, number>>;
    readonly fallbacks: Readonly<Record<string, number>>;
    readonly retries: Readonly<Record<string, number>>;
    readonly failedReads: number;
  };
}

export interface StatementHealth {
  /** `unavailable`: the extension is missing or not preloaded; `reason` says which and how to fix it. */
  readonly available: boolean;
  /** pg_stat_statements was reset inside this window, at this time: the window's figures count from the reset. */
  readonly resetAt?: string;
  readonly reason: string | null;
  readonly callsInWindow: number;
  readonly timeInWindowMs: number;
  /** Share of calls per latency bucket in the window (upper bounds in ms; the last is unbounded). */
  readonly buckets: readonly { readonly leMs: number | null; readonly share: number }[];
  /** Statements with the most execution time in the window. */
  readonly top: readonly TopStatement[];
}

export interface TopStatement {
  /** `userid:queryid`, stable while pg_stat_statements keeps the entry. */
  readonly id: string;
  readonly query: string | null;
  readonly calls: number;
  readonly callsPerSecond: number;
  readonly meanMs: number;
  readonly p95Ms: number | null;
  readonly rowsPerCall: number;
  /** Share of all statement time in the window, 0..1. */
  readonly timeShare: number;
  readonly cacheHitRatio: number | null;
}

export interface TablesHealth {
  readonly count: number;
  readonly deadRows: number;
  readonly liveRows: number;
  /** Worst first: by health when issue 5's scores are known, else by dead-row share. */
  readonly worst: readonly TableHealthRow[];
}

export interface TableHealthRow {
  readonly schema: string;
  readonly name: string;
  readonly liveRows: number;
  readonly deadRows: number;
  readonly deadShare: number;
  /** Dead rows at which autovacuum acts: threshold + scale_factor * reltuples (per-table settings honoured). */
  readonly autovacuumTrigger: number;
  readonly autovacuumEnabled: boolean;
  readonly modifiedSinceAnalyze: number;
  readonly rowEstimate: number;
  readonly xidAge: number;
  readonly lastVacuum: string | null;
  readonly lastAnalyze: string | null;
  /** Issue 5's table health score, 0..1, when it has been computed (slow cadence). */
  readonly health: number | null;
  /** What limits that score: dead tuples, statistics or transaction ID age. */
  readonly limitedBy: string | null;
}

export interface SessionInfo {
  readonly pid: number;
  readonly user: string;
  readonly application: string;
  readonly state: string;
  readonly transactionMs: number;
  readonly stateMs: number;
  readonly waitEventType: string | null;
  readonly query: string;
  /** The sessions holding the lock it waits for (`pg_blocking_pids`); empty when it waits for none. */
  readonly blockedBy?: readonly number[];
  /** How long it has waited for that lock (PostgreSQL 14+), null when it is not waiting. */
  readonly waitingMs?: number | null;
}

export interface SlowHealth {
  readonly at: string;
  readonly ms: number;
  readonly databaseBytes: number | null;
  /** `policyFile`: the policy that declares the index (never proposed for dropping then); null when none does. */
  readonly unusedIndexes: readonly { readonly schema: string; readonly name: string; readonly table: string; readonly bytes: number; readonly policyFile?: string | null }[];
  readonly invalidIndexes: readonly { readonly schema: string; readonly name: string; readonly table: string; readonly bytes: number }[];
  readonly duplicateIndexes: readonly { readonly schema: string; readonly name: string; readonly table: string; readonly bytes: number; readonly duplicateOf: string; readonly policyFile?: string | null }[];
  /** Issue 5's per-table health and bloat for the worst tables, when it answered in time. */
  readonly tableHealth: readonly ExternalTableHealth[] | null;
  /** How many tables issue 5's health covered (the list above is the worst of them). */
  readonly tableHealthCount: number | null;
  /** The latest apply's statements slower since it beyond their noise band, when the collector was given the check. */
  readonly applyRegressions?: { readonly runId: string; readonly regressions: readonly ApplyRegression[] } | null;
  readonly errors: readonly string[];
}

/** Issue 5's table health (engine/vacuum-health/table-health.ts) and bloat estimate, reduced to what the page shows. */
export interface ExternalTableHealth {
  readonly schema: string;
  readonly name: string;
  readonly health: number;
  /** The component that limits the score: dead tuples, statistics or transaction ID age. */
  readonly limitedBy: string | null;
  readonly liveRows: number;
  readonly deadRows: number;
  readonly autovacuumTrigger: number;
  readonly autovacuumEnabled: boolean;
  readonly modifiedSinceAnalyze: number;
  readonly rowEstimate: number;
  readonly xidAge: number;
  readonly lastVacuum: string | null;
  readonly lastAnalyze: string | null;
  readonly bloatBytes: number | null;
  readonly bloatRatio: number | null;
  readonly bloatMethod: string | null;
  /** What returns the bloat (a rewrite), when it is worth one. */
  readonly bloatRemedy: string | null;
}

/** What the poll cost: measured on every poll and shown on the page. */
export interface PollCost {
  readonly wallMs: number;
  readonly queries: number;
  /** Round-trip time of each query, by name (`primary.database`, `standby1.standby`, ...). */
  readonly queryMs: Readonly<Record<string, number>>;
  /**
   * The execution time pg_stat_statements counted over the window for all of pgwarden's statements (those
   * carrying its marker: this poll, the lag sampler, the slow cadence, the heartbeat), null without it. It
   * is not a part of `wallMs`: over a window that includes the minute's checks it is the larger figure.
   */
  readonly databaseMs: number | null;
}

/** A point of the time series: when, and the figures. */
export interface SeriesPoint {
  readonly t: number;
  readonly f: Figures;
}

export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

/** The collector's state as the API and stream report it. */
export interface CollectorState {
  readonly state: ConnectionState;
  readonly since: string;
  /** One line, no URL, no password. */
  readonly error: string | null;
  readonly intervalMs: number;
  readonly lastPollAt: string | null;
}
