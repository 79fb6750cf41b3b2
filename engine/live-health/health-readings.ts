import { auroraReplicasSql, type AuroraReplicaRow } from '../catalog/aurora-queries.ts';
import type pg from 'pg';
import {
  HEALTH_DATABASE_SQL,
  healthDatabaseSql,
  HEALTH_LONG_TRANSACTIONS_SQL,
  HEALTH_RELATIONS_SQL,
  HEALTH_REPLICATION_SQL,
  HEALTH_REPLICATION_WITH_ROUTERS_SQL,
  HEALTH_SETTINGS_SQL,
  HEALTH_HAS_REGISTRY_SQL,
  healthSlowSql,
  HEALTH_STANDBY_SQL,
  statementsSql,
  statementTextsSql,
} from '../catalog/health-queries.ts';
import { conninfoApplicationName } from '../replica-lag/replica-lag.ts';
import { ident } from '../sql/ident.ts';
import type { SessionInfo } from './health-snapshot.ts';
import { redactQueryText } from './redact-query.ts';

/**
 * The raw rows of one poll, typed, and the functions that read them. Everything cumulative stays
 * cumulative here; health-compute.ts turns two readings into rates.
 */

/** Query round trips of a poll, by name: what the page shows as the poll's cost. */
export type Timings = Record<string, number>;

async function timed<R extends pg.QueryResultRow>(client: pg.ClientBase, timings: Timings, name: string, sql: string, values?: unknown[]): Promise<R[]> {
  const t0 = performance.now();
  const r = await client.query<R>(sql, values);
  timings[name] = (timings[name] ?? 0) + (performance.now() - t0);
  return r.rows;
}

export interface HealthSettings {
  readonly database: string;
  readonly serverVersion: number;
  readonly maxConnections: number;
  readonly freezeMaxAge: number;
  readonly vacuumThreshold: number;
  readonly vacuumScaleFactor: number;
  readonly trackCounts: boolean;
  /** Quoted schema of pg_stat_statements, or null with the reason it cannot be used. */
  readonly statementsSchema: string | null;
  readonly statementsReason: string | null;
  /** pg_stat_statements_info exists (the time of the last reset can be read). */
  readonly statementsInfo?: boolean;
}

export async function readSettings(client: pg.ClientBase, timings: Timings): Promise<HealthSettings> {
  const [row] = await timed<{
    database: string;
    server_version: number;
    max_connections: number;
    freeze_max_age: number;
    vacuum_threshold: number;
    vacuum_scale_factor: number;
    track_counts: boolean;
    statements_schema: string | null;
    statements_loaded: boolean;
    statements_info: boolean | null;
  }>(client, timings, 'settings', HEALTH_SETTINGS_SQL);
  if (!row) throw new Error('the settings query returned no row');
  let statementsReason: string | null = null;
  if (row.statements_schema === null) statementsReason = 'pg_stat_statements is not installed in this database: CREATE EXTENSION pg_stat_statements;';
  else if (!row.statements_loaded) statementsReason = "pg_stat_statements is installed but not loaded: add it to shared_preload_libraries and restart";
  return {
    database: row.database,
    serverVersion: row.server_version,
    maxConnections: row.max_connections,
    freezeMaxAge: row.freeze_max_age,
    vacuumThreshold: row.vacuum_threshold,
    vacuumScaleFactor: row.vacuum_scale_factor,
    trackCounts: row.track_counts,
    statementsSchema: row.statements_schema !== null && row.statements_loaded ? ident(row.statements_schema) : null,
    statementsReason,
    statementsInfo: row.statements_info === true,
  };
}

export interface DatabaseReading {
  readonly serverTimeMs: number;
  readonly inRecovery: boolean;
  readonly xactCommit: number;
  readonly xactRollback: number;
  readonly blksRead: number;
  readonly blksHit: number;
  readonly tupReturned: number;
  readonly tupFetched: number;
  readonly tupInserted: number;
  readonly tupUpdated: number;
  readonly tupDeleted: number;
  readonly deadlocks: number;
  readonly conflicts: number;
  readonly tempBytes: number;
  readonly statsReset: string | null;
  readonly xidAge: number;
  readonly backends: number;
  readonly clientConnections: number;
  readonly active: number;
  readonly idle: number;
  readonly idleInTransaction: number;
  readonly idleInTransactionStuck: number;
  readonly waitingOnLock: number;
  readonly longestTransactionMs: number | null;
  readonly longestIdleInTransactionMs: number | null;
  readonly locksWaiting: number;
  readonly walBytes: number | null;
  /** Instance-wide checkpoints since the statistics reset: on schedule, and asked for (WAL filled max_wal_size, or CHECKPOINT). */
  readonly checkpointsTimed?: number | null;
  readonly checkpointsRequested?: number | null;
}

/** `serverVersion` picks where checkpoints are counted; without it they are not read. */
export async function readDatabase(client: pg.ClientBase, timings: Timings, serverVersion?: number): Promise<DatabaseReading> {
  const [r] = await timed<Record<string, unknown>>(client, timings, 'database', serverVersion === undefined ? HEALTH_DATABASE_SQL : healthDatabaseSql(serverVersion));
  if (!r) throw new Error('pg_stat_database has no row for this database');
  const num = (k: string): number => Number(r[k] ?? 0);
  const opt = (k: string): number | null => (r[k] === null || r[k] === undefined ? null : Number(r[k]));
  return {
    serverTimeMs: (r['server_time'] as Date).getTime(),
    inRecovery: r['in_recovery'] === true,
    xactCommit: num('xact_commit'),
    xactRollback: num('xact_rollback'),
    blksRead: num('blks_read'),
    blksHit: num('blks_hit'),
    tupReturned: num('tup_returned'),
    tupFetched: num('tup_fetched'),
    tupInserted: num('tup_inserted'),
    tupUpdated: num('tup_updated'),
    tupDeleted: num('tup_deleted'),
    deadlocks: num('deadlocks'),
    conflicts: num('conflicts'),
    tempBytes: num('temp_bytes'),
    statsReset: r['stats_reset'] instanceof Date ? r['stats_reset'].toISOString() : null,
    xidAge: num('xid_age'),
    backends: num('backends'),
    clientConnections: num('client_connections'),
    active: num('active'),
    idle: num('idle'),
    idleInTransaction: num('idle_in_transaction'),
    idleInTransactionStuck: num('idle_in_transaction_stuck'),
    waitingOnLock: num('waiting_on_lock'),
    longestTransactionMs: opt('longest_transaction_ms'),
    longestIdleInTransactionMs: opt('longest_idle_in_transaction_ms'),
    locksWaiting: num('locks_waiting'),
    walBytes: opt('wal_bytes'),
    checkpointsTimed: opt('checkpoints_timed'),
    checkpointsRequested: opt('checkpoints_requested'),
  };
}

export async function readSessions(client: pg.ClientBase, timings: Timings): Promise<SessionInfo[]> {
  const rows = await timed<{
    pid: number;
    usename: string | null;
    application_name: string | null;
    state: string | null;
    transaction_ms: number;
    state_ms: number;
    wait_event_type: string | null;
    query: string | null;
    blocked_by: number[] | null;
    waiting_ms: number | null;
  }>(client, timings, 'sessions', HEALTH_LONG_TRANSACTIONS_SQL);
  return rows.map((r) => ({
    pid: r.pid,
    user: r.usename ?? '',
    application: r.application_name ?? '',
    state: r.state ?? '',
    transactionMs: Number(r.transaction_ms),
    stateMs: Number(r.state_ms),
    waitEventType: r.wait_event_type,
    query: redactQueryText(r.query ?? ''),
    blockedBy: (r.blocked_by ?? []).map(Number),
    waitingMs: r.waiting_ms === null ? null : Number(r.waiting_ms),
  }));
}

export interface WorstTableReading {
  readonly schema: string;
  readonly name: string;
  readonly why: 'dead' | 'xid';
  readonly live: number;
  readonly dead: number;
  readonly modSinceAnalyze: number;
  readonly rowEstimate: number;
  readonly xidAge: number;
  readonly lastVacuum: string | null;
  readonly lastAnalyze: string | null;
  readonly vacuumThreshold: number | null;
  readonly vacuumScaleFactor: number | null;
  readonly autovacuumEnabled: boolean | null;
}

export interface RelationsReading {
  readonly tables: number;
  readonly seqScan: number;
  readonly idxScan: number;
  readonly idxHit: number;
  readonly idxRead: number;
  readonly heapHit: number;
  readonly heapRead: number;
  readonly live: number;
  readonly dead: number;
  readonly worst: readonly WorstTableReading[];
}

export const WORST_TABLES = 10;
export const MIN_ROWS_FOR_DEAD_SHARE = 1000;

export async function readRelations(client: pg.ClientBase, timings: Timings): Promise<RelationsReading> {
  const [r] = await timed<Record<string, unknown>>(client, timings, 'relations', HEALTH_RELATIONS_SQL, [WORST_TABLES, MIN_ROWS_FOR_DEAD_SHARE]);
  if (!r) throw new Error('the relations query returned no row');
  const num = (k: string): number => Number(r[k] ?? 0);
  const worst = (r['worst'] as WorstTableReading[] | null) ?? [];
  return {
    tables: num('tables'),
    seqScan: num('seq_scan'),
    idxScan: num('idx_scan'),
    idxHit: num('idx_hit'),
    idxRead: num('idx_read'),
    heapHit: num('heap_hit'),
    heapRead: num('heap_read'),
    live: num('live'),
    dead: num('dead'),
    worst: worst.map((w) => ({ ...w, live: Number(w.live), dead: Number(w.dead), modSinceAnalyze: Number(w.modSinceAnalyze), rowEstimate: Number(w.rowEstimate), xidAge: Number(w.xidAge) })),
  };
}

export interface StatementCounters {
  readonly key: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly sumSqMs: number;
  readonly rows: number;
  readonly blksHit: number;
  readonly blksRead: number;
}

/** The counters, and when pg_stat_statements was last reset (null: unknown, before 1.9 or with no entries). */
export async function readStatements(client: pg.ClientBase, timings: Timings, schema: string, withInfo = false): Promise<{ counters: StatementCounters[]; resetAt: string | null }> {
  const rows = await timed<{ stats_reset: Date | null; key: string; calls: number; total_ms: number; sum_sq_ms: number; rows: number; blks_hit: number; blks_read: number }>(
    client,
    timings,
    'statements',
    statementsSql(schema, withInfo),
  );
  const reset = rows[0]?.stats_reset ?? null;
  return {
    counters: rows.map((r) => ({ key: r.key, calls: r.calls, totalMs: r.total_ms, sumSqMs: r.sum_sq_ms, rows: r.rows, blksHit: r.blks_hit, blksRead: r.blks_read })),
    resetAt: reset === null ? null : reset.toISOString(),
  };
}

export async function readStatementTexts(client: pg.ClientBase, timings: Timings, schema: string, keys: readonly string[]): Promise<Map<string, string>> {
  const rows = await timed<{ key: string; query: string | null }>(client, timings, 'statement-texts', statementTextsSql(schema), [keys]);
  return new Map(rows.map((r) => [r.key, r.query ?? '']));
}

export interface ReplicationReading {
  readonly standbys: readonly {
    readonly name: string;
    /** The replication slot the walsender streams from, if any. */
    readonly slot?: string | null;
    readonly state: string;
    readonly syncState: string;
    readonly sentBytes: number | null;
    readonly replayBytes: number | null;
    readonly writeLagMs: number | null;
    readonly flushLagMs: number | null;
    readonly replayLagMs: number | null;
    readonly replyAgeMs: number | null;
    /** Where replayLagMs comes from when it is not pg_stat_replication (an Aurora reader). */
    readonly lagSource?: 'aurora_replica_status';
  }[];
  readonly slots: readonly { readonly name: string; readonly type: string; readonly active: boolean; readonly retainedBytes: number | null }[];
  /** What routers published to pgwarden.router_metrics; absent when the primary was not asked. */
  readonly routing?: RoutingReading;
}

/** One router's row in pgwarden.router_metrics; `counters` as written (parsed by the routing section). */
export interface RouterRow {
  readonly instance: string;
  readonly application: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAtMs: number;
  /** The primary's clock. */
  readonly updatedAtMs: number;
  readonly ageMs: number;
  readonly counters: unknown;
}

export interface RoutingReading {
  /** pgwarden.router_metrics exists (the routing policy was applied). */
  readonly table: boolean;
  /** Rows updated within the freshness limit. */
  readonly routers: readonly RouterRow[];
  /** Rows older than that: routers that stopped without removing their row. */
  readonly staleRouters: number;
  /** Why the rows could not be read (no SELECT privilege on the table); the collector stops asking. */
  readonly error: string | null;
}

interface ReplicationRow {
  router_metrics_table: boolean;
  aurora_schema: string | null;
  standbys: ReplicationReading['standbys'];
  slots: ReplicationReading['slots'];
  routers: RouterRow[] | null;
  stale_routers: number;
}

/**
 * The primary's replication, with the routers' rows when `withRouters` (the table was there at the last
 * poll). A table dropped since costs one more round trip, once: the plain variant says it is gone.
 */
export async function readReplication(client: pg.ClientBase, timings: Timings, routers: { readonly withRouters: boolean; readonly freshMs: number }): Promise<ReplicationReading> {
  let r: ReplicationRow | undefined;
  let error: string | null = null;
  try {
    [r] = routers.withRouters
      ? await timed<ReplicationRow>(client, timings, 'replication', HEALTH_REPLICATION_WITH_ROUTERS_SQL, [routers.freshMs])
      : await timed<ReplicationRow>(client, timings, 'replication', HEALTH_REPLICATION_SQL);
  } catch (failure) {
    const code = (failure as { code?: unknown }).code;
    if (!routers.withRouters || (code !== '42P01' && code !== '42501')) throw failure;
    if (code === '42501') error = 'permission denied for pgwarden.router_metrics: GRANT SELECT on it to the role pgwarden serve connects as';
    [r] = await timed<ReplicationRow>(client, timings, 'replication', HEALTH_REPLICATION_SQL);
  }
  const aurora = r?.aurora_schema ? await readAuroraReplicas(client, timings, r.aurora_schema) : [];
  return {
    standbys: [...(r?.standbys ?? []), ...aurora],
    slots: r?.slots ?? [],
    routing: { table: r?.router_metrics_table ?? false, routers: r?.routers ?? [], staleRouters: Number(r?.stale_routers ?? 0), error },
  };
}

/** Aurora readers, which have no walsender: their lag from aurora_replica_status() (engine/catalog/aurora-queries.ts). */
async function readAuroraReplicas(client: pg.ClientBase, timings: Timings, schema: string): Promise<ReplicationReading['standbys']> {
  const rows = await timed<AuroraReplicaRow>(client, timings, 'aurora-replicas', auroraReplicasSql(schema));
  return rows.map((row) => ({
    name: row.name,
    slot: null,
    state: 'streaming',
    syncState: 'async',
    sentBytes: null,
    replayBytes: null,
    writeLagMs: null,
    flushLagMs: null,
    replayLagMs: row.lag_ms,
    replyAgeMs: null,
    lagSource: 'aurora_replica_status' as const,
  }));
}

export interface StandbyReading {
  readonly serverTimeMs: number;
  readonly inRecovery: boolean;
  readonly replayPaused: boolean;
  readonly receiverStatus: string | null;
  /** The slot its WAL receiver streams from. */
  readonly receiverSlot: string | null;
  /** The application_name its walsender has on the primary (null while the receiver is not running). */
  readonly senderName: string | null;
  readonly unreplayedBytes: number | null;
  readonly lastReplayAgeMs: number | null;
  readonly xactCommit: number;
  readonly xactRollback: number;
  readonly blksRead: number;
  readonly blksHit: number;
  readonly conflicts: number;
  readonly clientConnections: number;
  readonly maxConnections: number;
}

export async function readStandby(client: pg.ClientBase, timings: Timings, name: string): Promise<StandbyReading> {
  const [r] = await timed<Record<string, unknown>>(client, timings, `${name}.standby`, HEALTH_STANDBY_SQL);
  if (!r) throw new Error('pg_stat_database has no row for this database on the standby');
  const opt = (k: string): number | null => (r[k] === null || r[k] === undefined ? null : Number(r[k]));
  return {
    serverTimeMs: (r['server_time'] as Date).getTime(),
    inRecovery: r['in_recovery'] === true,
    replayPaused: r['replay_paused'] === true,
    receiverStatus: (r['receiver_status'] as string | null) ?? null,
    receiverSlot: (r['receiver_slot'] as string | null) ?? null,
    senderName: senderName(r['receiver_conninfo'] as string | null, r['cluster_name'] as string | null),
    unreplayedBytes: opt('unreplayed_bytes'),
    lastReplayAgeMs: opt('last_replay_age_ms'),
    xactCommit: Number(r['xact_commit'] ?? 0),
    xactRollback: Number(r['xact_rollback'] ?? 0),
    blksRead: Number(r['blks_read'] ?? 0),
    blksHit: Number(r['blks_hit'] ?? 0),
    conflicts: Number(r['conflicts'] ?? 0),
    clientConnections: Number(r['client_connections'] ?? 0),
    maxConnections: Number(r['max_connections'] ?? 0),
  };
}

/** The application_name a standby's walsender shows on the primary: primary_conninfo's, else cluster_name, else 'walreceiver'. */
function senderName(conninfo: string | null, clusterName: string | null): string | null {
  if (conninfo === null) return null;
  return conninfoApplicationName(conninfo) ?? (clusterName ? clusterName : 'walreceiver');
}

export interface SlowReading {
  readonly databaseBytes: number | null;
  /** `policyFile`: the policy that declares the index (pgwarden's registry), null when none does. */
  readonly unusedIndexes: { schema: string; name: string; table: string; bytes: number; policyFile?: string | null }[];
  readonly invalidIndexes: { schema: string; name: string; table: string; bytes: number }[];
  readonly duplicateIndexes: { schema: string; name: string; table: string; bytes: number; duplicateOf: string; policyFile?: string | null }[];
}

async function hasRegistry(client: pg.ClientBase, timings: Timings): Promise<boolean> {
  const [r] = await timed<{ has_registry: boolean }>(client, timings, 'slow', HEALTH_HAS_REGISTRY_SQL);
  return r?.has_registry === true;
}

export async function readSlow(client: pg.ClientBase, timings: Timings, limit = 20): Promise<SlowReading> {
  const [r] = await timed<{
    database_bytes: number | null;
    unused_indexes: SlowReading['unusedIndexes'];
    invalid_indexes: SlowReading['invalidIndexes'];
    duplicate_indexes: SlowReading['duplicateIndexes'];
  }>(client, timings, 'slow', healthSlowSql(await hasRegistry(client, timings)), [limit]);
  return {
    databaseBytes: r?.database_bytes ?? null,
    unusedIndexes: r?.unused_indexes ?? [],
    invalidIndexes: r?.invalid_indexes ?? [],
    duplicateIndexes: r?.duplicate_indexes ?? [],
  };
}
