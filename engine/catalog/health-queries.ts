/**
 * The health collector's SQL: a small, fixed set of statistics queries, one round trip each, whatever
 * the number of tables. Every statement starts with HEALTH_MARKER so the collector can recognise (and
 * leave out) its own entries in pg_stat_statements, and measure its own database time there.
 *
 * Counters are returned as float8: the bigint columns would arrive as strings, and a float8 holds every
 * integer below 2^53 exactly. Rates are never computed here: the collector takes deltas between polls,
 * because totals since the last stats reset hide a current problem.
 *
 * Statistics functions (pg_stat_get_*) are called directly over pg_class instead of through the
 * pg_stat_user_* / pg_statio_user_* views: 2.5x faster on a 6,000-table catalog (DESIGN.md).
 */

export const HEALTH_MARKER = '/* pgwarden:health */';

/** Schemas that hold no user tables (pgwarden's own bookkeeping is not the user's workload either). */
const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden')
   AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'`;

/**
 * Settings the collector reads once per connection (they need a reload or restart to change).
 * `autovacuum_freeze_max_age` frames the transaction-ID age: above it autovacuum forces anti-wraparound
 * vacuums; 2^31 is where PostgreSQL stops accepting writes.
 */
/**
 * The collector's and serve's sessions: read-only, statements bounded, no search_path. One statement
 * (set_config is SET) rather than several SETs in one string: pg_stat_statements records each statement
 * of a multi-statement string without the comment before it, so only one statement can carry the marker.
 * $1: statement_timeout in ms.
 */
export const HEALTH_SESSION_SQL = `${HEALTH_MARKER}
SELECT pg_catalog.set_config('statement_timeout', $1::text, false),
       pg_catalog.set_config('lock_timeout', '1000', false),
       pg_catalog.set_config('idle_in_transaction_session_timeout', '60000', false),
       pg_catalog.set_config('default_transaction_read_only', 'on', false),
       pg_catalog.set_config('search_path', '', false)`;

export const HEALTH_SETTINGS_SQL = `${HEALTH_MARKER}
SELECT pg_catalog.current_database() AS database,
       pg_catalog.current_setting('server_version_num')::int AS server_version,
       pg_catalog.current_setting('max_connections')::int AS max_connections,
       pg_catalog.current_setting('superuser_reserved_connections')::int AS reserved_connections,
       pg_catalog.current_setting('autovacuum_freeze_max_age')::float8 AS freeze_max_age,
       pg_catalog.current_setting('autovacuum_vacuum_threshold')::float8 AS vacuum_threshold,
       pg_catalog.current_setting('autovacuum_vacuum_scale_factor')::float8 AS vacuum_scale_factor,
       pg_catalog.current_setting('track_counts')::bool AS track_counts,
       (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_stat_statements') AS statements_schema,
       -- shared_preload_libraries needs pg_read_all_settings (in pg_monitor): unknown to other roles, taken as loaded.
       COALESCE((SELECT s.setting FROM pg_catalog.pg_settings s WHERE s.name = 'shared_preload_libraries') ~ 'pg_stat_statements', true) AS statements_loaded,
       -- pg_stat_statements_info (1.9, PostgreSQL 14+): when the statistics were last reset, so a reset reads as one.
       (SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(n.nspname) || '.pg_stat_statements_info') IS NOT NULL
          FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_stat_statements') AS statements_info`;

/**
 * The instance and this database: transaction and block counters, connections by state (client
 * backends of the whole instance, since max_connections is instance-wide), the oldest open transaction,
 * sessions waiting on a lock, and the WAL position (primary only) for a WAL rate.
 */
export const HEALTH_DATABASE_SQL = `${HEALTH_MARKER}
WITH a AS (
  SELECT a.state, a.xact_start, a.state_change, a.wait_event_type, a.datname = pg_catalog.current_database() AS here
    FROM pg_catalog.pg_stat_activity a
   WHERE a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid()
)
SELECT pg_catalog.now() AS server_time,
       pg_catalog.pg_is_in_recovery() AS in_recovery,
       d.xact_commit::float8 AS xact_commit, d.xact_rollback::float8 AS xact_rollback,
       d.blks_read::float8 AS blks_read, d.blks_hit::float8 AS blks_hit,
       d.tup_returned::float8 AS tup_returned, d.tup_fetched::float8 AS tup_fetched,
       d.tup_inserted::float8 AS tup_inserted, d.tup_updated::float8 AS tup_updated, d.tup_deleted::float8 AS tup_deleted,
       d.deadlocks::float8 AS deadlocks, d.conflicts::float8 AS conflicts, d.temp_bytes::float8 AS temp_bytes,
       d.stats_reset AS stats_reset,
       pg_catalog.age(db.datfrozenxid)::float8 AS xid_age,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity) :: int AS backends,
       (SELECT pg_catalog.count(*) FROM a)::int AS client_connections,
       (SELECT pg_catalog.count(*) FROM a WHERE a.state = 'active')::int AS active,
       (SELECT pg_catalog.count(*) FROM a WHERE a.state = 'idle')::int AS idle,
       (SELECT pg_catalog.count(*) FROM a WHERE a.state IN ('idle in transaction', 'idle in transaction (aborted)'))::int AS idle_in_transaction,
       -- Between two statements of a busy transaction a session is idle in it for a moment: only
       -- those idle for over 5 s are worth a status colour.
       -- The sessions that hold this database's locks and vacuum back: the ones in this database.
       (SELECT pg_catalog.count(*) FROM a WHERE a.here AND a.state IN ('idle in transaction', 'idle in transaction (aborted)')
           AND a.state_change < pg_catalog.now() - interval '5 seconds')::int AS idle_in_transaction_stuck,
       (SELECT pg_catalog.count(*) FROM a WHERE a.here AND a.wait_event_type = 'Lock')::int AS waiting_on_lock,
       -- Ages are measured on the clock, not now(): now() is this statement's own transaction start, and
       -- a transaction that began after it would have a negative age. None open is 0, not unknown.
       (SELECT GREATEST(0, EXTRACT(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.min(a.xact_start)) * 1000)::float8
          FROM a WHERE a.xact_start IS NOT NULL) AS longest_transaction_ms,
       (SELECT GREATEST(0, EXTRACT(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.min(a.state_change)) * 1000)::float8
          FROM a WHERE a.state IN ('idle in transaction', 'idle in transaction (aborted)')) AS longest_idle_in_transaction_ms,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity s ON s.pid = l.pid
         WHERE NOT l.granted AND s.datname = pg_catalog.current_database())::int AS locks_waiting,
       CASE WHEN pg_catalog.pg_is_in_recovery() THEN NULL
            ELSE pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), '0/0')::float8 END AS wal_bytes,
       /*checkpoints*/NULL::float8 AS checkpoints_timed, NULL::float8 AS checkpoints_requested
  FROM pg_catalog.pg_stat_database d
  JOIN pg_catalog.pg_database db ON db.oid = d.datid
 WHERE d.datname = pg_catalog.current_database()`;

/**
 * The database query for a server version: checkpoints timed and requested come from
 * pg_stat_checkpointer from PostgreSQL 17 on, from pg_stat_bgwriter before.
 */
export function healthDatabaseSql(serverVersion: number): string {
  const checkpoints =
    serverVersion >= 170000
      ? '(SELECT c.num_timed::float8 FROM pg_catalog.pg_stat_checkpointer c) AS checkpoints_timed, (SELECT c.num_requested::float8 FROM pg_catalog.pg_stat_checkpointer c) AS checkpoints_requested'
      : '(SELECT b.checkpoints_timed::float8 FROM pg_catalog.pg_stat_bgwriter b) AS checkpoints_timed, (SELECT b.checkpoints_req::float8 FROM pg_catalog.pg_stat_bgwriter b) AS checkpoints_requested';
  return HEALTH_DATABASE_SQL.replace('/*checkpoints*/NULL::float8 AS checkpoints_timed, NULL::float8 AS checkpoints_requested', checkpoints);
}

/**
 * Sessions worth naming: the five oldest transactions (each holds back vacuum and may hold locks), and
 * in this database the sessions waiting on a lock (up to 20) with the sessions blocking them
 * (`pg_blocking_pids`, called for the waiters only), for the page's "who blocks whom" tree. How long a
 * session has waited is its ungranted lock's `waitstart` (PostgreSQL 14+). Query text cut short.
 */
export const HEALTH_LONG_TRANSACTIONS_SQL = `${HEALTH_MARKER}
WITH s AS (
  SELECT a.pid, a.usename::text AS usename, a.application_name, a.state, a.xact_start, a.state_change,
         a.wait_event_type, a.query, a.datname
    FROM pg_catalog.pg_stat_activity a
   WHERE a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid()
), w AS (
  SELECT s.pid, pg_catalog.pg_blocking_pids(s.pid) AS blocked_by
    FROM s WHERE s.wait_event_type = 'Lock' AND s.datname = pg_catalog.current_database()
   LIMIT 20
), pick AS (
  (SELECT s.pid FROM s WHERE s.xact_start IS NOT NULL ORDER BY s.xact_start LIMIT 5)
  UNION SELECT w.pid FROM w
  UNION SELECT pg_catalog.unnest(w.blocked_by) FROM w
)
SELECT s.pid, s.usename, s.application_name, s.state,
       GREATEST(0, EXTRACT(epoch FROM pg_catalog.clock_timestamp() - s.xact_start) * 1000)::float8 AS transaction_ms,
       GREATEST(0, EXTRACT(epoch FROM pg_catalog.clock_timestamp() - s.state_change) * 1000)::float8 AS state_ms,
       s.wait_event_type, pg_catalog.left(s.query, 200) AS query,
       COALESCE(w.blocked_by, '{}'::int[]) AS blocked_by,
       -- NULL when it waits for no lock (GREATEST would turn that into 0).
       (SELECT CASE WHEN pg_catalog.min(l.waitstart) IS NULL THEN NULL
                    ELSE GREATEST(0, EXTRACT(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.min(l.waitstart)) * 1000)::float8 END
          FROM pg_catalog.pg_locks l WHERE l.pid = s.pid AND NOT l.granted) AS waiting_ms
  FROM pick JOIN s ON s.pid = pick.pid LEFT JOIN w ON w.pid = s.pid
 ORDER BY s.xact_start NULLS LAST`;

/**
 * User tables and their indexes in one pass: totals for the index hit and scan rates, and the few worst
 * tables (dead-row share, transaction-ID age) with what it takes for autovacuum to act on them. Only
 * the counters every table needs are read for every table; the worst rows' details (vacuum times,
 * changes since ANALYZE, per-table reloptions overriding the server's scale factor and threshold) are
 * read for those rows alone — on 5,000 tables that halves the query.
 * $1: how many worst tables to return; $2: the fewest rows (live + dead) a table needs to rank by dead
 * share (a 3-row lookup table with 2 dead rows is not a problem worth a gauge).
 */
export const HEALTH_RELATIONS_SQL = `${HEALTH_MARKER}
WITH t AS (
  SELECT c.oid, pg_catalog.pg_stat_get_numscans(c.oid) AS seq_scan,
         pg_catalog.pg_stat_get_live_tuples(c.oid) AS live,
         pg_catalog.pg_stat_get_dead_tuples(c.oid) AS dead,
         pg_catalog.age(c.relfrozenxid) AS xid_age
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND ${USER_SCHEMAS}
), i AS (
  SELECT pg_catalog.sum(pg_catalog.pg_stat_get_numscans(x.indexrelid))::float8 AS idx_scan,
         pg_catalog.sum(pg_catalog.pg_stat_get_blocks_hit(x.indexrelid))::float8 AS idx_hit,
         pg_catalog.sum(pg_catalog.pg_stat_get_blocks_fetched(x.indexrelid))::float8 AS idx_fetched
    FROM pg_catalog.pg_index x JOIN t ON t.oid = x.indrelid
), worst AS (
  (SELECT t.*, 'dead' AS why FROM t WHERE t.dead > 0 AND t.live + t.dead >= $2
    ORDER BY t.dead::float8 / GREATEST(t.live + t.dead, 1) DESC, t.dead DESC LIMIT $1)
  UNION
  (SELECT t.*, 'xid' AS why FROM t ORDER BY t.xid_age DESC LIMIT $1)
)
SELECT (SELECT pg_catalog.count(*) FROM t)::int AS tables,
       (SELECT pg_catalog.sum(t.seq_scan) FROM t)::float8 AS seq_scan,
       i.idx_scan, i.idx_hit, i.idx_fetched - i.idx_hit AS idx_read,
       (SELECT pg_catalog.sum(t.live) FROM t)::float8 AS live,
       (SELECT pg_catalog.sum(t.dead) FROM t)::float8 AS dead,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
          'schema', n.nspname, 'name', c.relname, 'why', w.why,
          'live', w.live, 'dead', w.dead, 'modSinceAnalyze', pg_catalog.pg_stat_get_mod_since_analyze(c.oid),
          'rowEstimate', GREATEST(c.reltuples, 0), 'xidAge', w.xid_age,
          'lastVacuum', GREATEST(pg_catalog.pg_stat_get_last_vacuum_time(c.oid), pg_catalog.pg_stat_get_last_autovacuum_time(c.oid)),
          'lastAnalyze', GREATEST(pg_catalog.pg_stat_get_last_analyze_time(c.oid), pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)),
          'vacuumThreshold', (SELECT o.option_value::float8 FROM pg_catalog.pg_options_to_table(c.reloptions) o
                               WHERE o.option_name = 'autovacuum_vacuum_threshold'),
          'vacuumScaleFactor', (SELECT o.option_value::float8 FROM pg_catalog.pg_options_to_table(c.reloptions) o
                                 WHERE o.option_name = 'autovacuum_vacuum_scale_factor'),
          'autovacuumEnabled', (SELECT o.option_value::bool FROM pg_catalog.pg_options_to_table(c.reloptions) o
                                 WHERE o.option_name = 'autovacuum_enabled'))), '[]'::json)
          FROM worst w
          JOIN pg_catalog.pg_class c ON c.oid = w.oid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace) AS worst
  FROM i`;

/**
 * Cumulative statement counters of this database, without the query texts: pg_stat_statements(false)
 * skips reading the external query-text file, which is what makes a 5-second poll of it cheap. The sum of
 * squares is recovered from mean and stddev so the collector can get each statement's variance over the
 * window. `toplevel` (14+) keeps nested statements of functions from being counted twice.
 */
export function statementsSql(schema: string, withInfo = false): string {
  return `${HEALTH_MARKER}
SELECT ${withInfo ? `(SELECT i.stats_reset FROM ${schema}.pg_stat_statements_info i) AS stats_reset,` : 'NULL::timestamptz AS stats_reset,'}
       s.userid::int8::text || ':' || s.queryid::text AS key,
       s.calls::float8 AS calls, s.total_exec_time::float8 AS total_ms,
       (s.calls * (s.stddev_exec_time * s.stddev_exec_time + s.mean_exec_time * s.mean_exec_time))::float8 AS sum_sq_ms,
       s.rows::float8 AS rows, s.shared_blks_hit::float8 AS blks_hit, s.shared_blks_read::float8 AS blks_read
  FROM ${schema}.pg_stat_statements(false) s
 WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
   AND s.toplevel`;
}

/** Texts of a few statements the collector has not seen yet (reads the query-text file: called rarely). $1: keys. */
export function statementTextsSql(schema: string): string {
  return `${HEALTH_MARKER}
SELECT s.userid::int8::text || ':' || s.queryid::text AS key, pg_catalog.left(s.query, 2000) AS query
  FROM ${schema}.pg_stat_statements(true) s
 WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
   AND s.toplevel AND (s.userid::int8::text || ':' || s.queryid::text) = ANY ($1::text[])`;
}

/**
 * Whether pgwarden's table exists and this role may read it. to_regclass() on a schema the role has no USAGE
 * on raises "permission denied for schema" instead of answering: a read-only role the schema was not
 * granted to would lose the whole live page, so USAGE is asked first (CASE: evaluated in order).
 */
function readablePgwardenTable(table: 'router_metrics' | 'managed_index'): string {
  return `CASE WHEN COALESCE((SELECT pg_catalog.has_schema_privilege(n.oid, 'USAGE') FROM pg_catalog.pg_namespace n WHERE n.nspname = 'pgwarden'), false)
            THEN COALESCE(pg_catalog.has_table_privilege(pg_catalog.to_regclass('pgwarden.${table}'), 'SELECT'), false)
            ELSE false END`;
}

/**
 * Replication as the primary sees it: each walsender's positions and lag columns, and every slot with
 * the WAL it holds back (an inactive slot retains WAL until the disk fills); and whether routers can
 * publish their metrics here (pgwarden.router_metrics exists).
 */
const REPLICATION_COLUMNS = `${HEALTH_MARKER}
SELECT ${readablePgwardenTable('router_metrics')} AS router_metrics_table,
       -- Amazon Aurora's readers have no walsender; their lag is read from aurora_replica_status() (aurora-queries.ts).
       (SELECT n.nspname FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
         WHERE p.proname = 'aurora_replica_status' AND p.pronargs = 0 ORDER BY n.nspname = 'pg_catalog' DESC LIMIT 1) AS aurora_schema,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
          'name', r.application_name, 'state', r.state, 'syncState', r.sync_state,
          'slot', (SELECT s.slot_name FROM pg_catalog.pg_replication_slots s WHERE s.active_pid = r.pid),
          'sentBytes', pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.sent_lsn)::float8,
          'replayBytes', pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.replay_lsn)::float8,
          'writeLagMs', (EXTRACT(epoch FROM r.write_lag) * 1000)::float8,
          'flushLagMs', (EXTRACT(epoch FROM r.flush_lag) * 1000)::float8,
          'replayLagMs', (EXTRACT(epoch FROM r.replay_lag) * 1000)::float8,
          'replyAgeMs', (EXTRACT(epoch FROM pg_catalog.now() - r.reply_time) * 1000)::float8)
          ORDER BY r.application_name), '[]'::json)
          FROM pg_catalog.pg_stat_replication r) AS standbys,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
          'name', s.slot_name, 'type', s.slot_type, 'active', s.active,
          'retainedBytes', pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::float8)
          ORDER BY s.slot_name), '[]'::json)
          FROM pg_catalog.pg_replication_slots s) AS slots`;

export const HEALTH_REPLICATION_SQL = `${REPLICATION_COLUMNS},
       NULL::json AS routers, 0 AS stale_routers`;

/**
 * The same with the routers' published metrics folded in (no extra round trip): the rows updated within
 * $1 ms, newest 100, and how many older ones are left (routers that stopped without ending cleanly).
 * A query naming a missing table fails to parse, hence two variants: the collector runs this one while
 * `router_metrics_table` says the table is there.
 */
export const HEALTH_REPLICATION_WITH_ROUTERS_SQL = `${REPLICATION_COLUMNS},
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
          'instance', m.instance, 'application', m.application, 'host', m.host, 'pid', m.pid,
          'startedAtMs', (EXTRACT(epoch FROM m.started_at) * 1000)::float8,
          'updatedAtMs', (EXTRACT(epoch FROM m.updated_at) * 1000)::float8,
          'ageMs', (EXTRACT(epoch FROM pg_catalog.now() - m.updated_at) * 1000)::float8,
          'counters', m.counters) ORDER BY m.instance), '[]'::json)
          FROM (SELECT r.* FROM pgwarden.router_metrics r
                 WHERE r.updated_at > pg_catalog.now() - $1::float8 * interval '1 millisecond'
                 ORDER BY r.updated_at DESC LIMIT 100) m) AS routers,
       (SELECT pg_catalog.count(*) FROM pgwarden.router_metrics r
         WHERE r.updated_at <= pg_catalog.now() - $1::float8 * interval '1 millisecond')::int AS stale_routers`;

/**
 * A standby's own view: what it received and replayed, whether its WAL receiver streams, and its
 * read traffic. pg_is_wal_replay_paused() raises outside recovery, hence the CASE (it is volatile, so
 * the planner does not fold it).
 */
export const HEALTH_STANDBY_SQL = `${HEALTH_MARKER}
SELECT pg_catalog.now() AS server_time,
       pg_catalog.pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_is_wal_replay_paused() END AS replay_paused,
       (SELECT w.status FROM pg_catalog.pg_stat_wal_receiver w) AS receiver_status,
       -- How the primary names this standby's walsender: its slot, or the application_name it connects
       -- with (from primary_conninfo, else cluster_name, else PostgreSQL's default 'walreceiver').
       (SELECT w.slot_name FROM pg_catalog.pg_stat_wal_receiver w) AS receiver_slot,
       (SELECT w.conninfo FROM pg_catalog.pg_stat_wal_receiver w) AS receiver_conninfo,
       pg_catalog.current_setting('cluster_name') AS cluster_name,
       pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn())::float8 AS unreplayed_bytes,
       (EXTRACT(epoch FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp()) * 1000)::float8 AS last_replay_age_ms,
       d.xact_commit::float8 AS xact_commit, d.xact_rollback::float8 AS xact_rollback,
       d.blks_read::float8 AS blks_read, d.blks_hit::float8 AS blks_hit, d.conflicts::float8 AS conflicts,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a WHERE a.backend_type = 'client backend')::int AS client_connections,
       pg_catalog.current_setting('max_connections')::int AS max_connections
  FROM pg_catalog.pg_stat_database d
 WHERE d.datname = pg_catalog.current_database()`;

/**
 * The slow cadence (once a minute by default, under a statement timeout): sizes, which stat() every
 * relation file, and the index ledger's flags. $1: how many rows of each list.
 */
export const HEALTH_HAS_REGISTRY_SQL = `${HEALTH_MARKER}
SELECT ${readablePgwardenTable('managed_index')} AS has_registry`;

/**
 * `hasRegistry`: pgwarden.managed_index exists, and each index carries the policy file that declares it
 * (null when none does): a declared index is never proposed for dropping, the next apply would build it again.
 */
export function healthSlowSql(hasRegistry: boolean): string {
  const registry = hasRegistry
    ? '(SELECT m.policy_file FROM pgwarden.managed_index m WHERE m.schema_name = n.nspname AND m.index_name = ic.relname LIMIT 1)'
    : 'NULL::text';
  return HEALTH_SLOW_SQL.replace('/*policy_file*/NULL::text', registry);
}

export const HEALTH_SLOW_SQL = `${HEALTH_MARKER}
WITH ix AS (
  SELECT x.indexrelid, x.indrelid, n.nspname AS schema, ic.relname AS name, tc.relname AS table_name,
         x.indisvalid AS valid, x.indisunique AS is_unique, x.indisprimary AS is_primary,
         EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid) AS backs_constraint,
         CASE WHEN ic.relkind = 'I'
              THEN (SELECT pg_catalog.sum(pg_catalog.pg_stat_get_numscans(p.relid)) FROM pg_catalog.pg_partition_tree(x.indexrelid) p WHERE p.isleaf)
              ELSE pg_catalog.pg_stat_get_numscans(x.indexrelid) END::float8 AS scans,
         CASE WHEN ic.relkind = 'I'
              THEN (SELECT pg_catalog.sum(pc.relpages) FROM pg_catalog.pg_partition_tree(x.indexrelid) p JOIN pg_catalog.pg_class pc ON pc.oid = p.relid)
              ELSE ic.relpages END::float8 * pg_catalog.current_setting('block_size')::float8 AS bytes,
         x.indrelid::text || ' ' || x.indkey::text || ' ' || x.indclass::text || ' ' || x.indoption::text || ' ' || x.indcollation::text || ' ' ||
           COALESCE(x.indexprs::text, '') || ' ' || COALESCE(x.indpred::text, '') AS shape,
         /*policy_file*/NULL::text AS policy_file
    FROM pg_catalog.pg_index x
    JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
    JOIN pg_catalog.pg_class tc ON tc.oid = x.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = tc.relnamespace
   -- A partition's index cannot be dropped on its own (its partitioned index needs it): the partitioned
   -- index stands for all of them, with their scans and sizes summed.
   WHERE tc.relkind IN ('r', 'm', 'p') AND NOT ic.relispartition AND ${USER_SCHEMAS}
)
SELECT pg_catalog.pg_database_size(pg_catalog.current_database())::float8 AS database_bytes,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
          'schema', u.schema, 'name', u.name, 'table', u.table_name, 'bytes', u.bytes, 'scans', u.scans, 'policyFile', u.policy_file)
          ORDER BY u.bytes DESC), '[]'::json)
          FROM (SELECT * FROM ix WHERE ix.scans = 0 AND ix.valid AND NOT ix.is_unique AND NOT ix.backs_constraint
                 ORDER BY ix.bytes DESC LIMIT $1) u) AS unused_indexes,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
          'schema', v.schema, 'name', v.name, 'table', v.table_name, 'bytes', v.bytes)), '[]'::json)
          FROM (SELECT * FROM ix WHERE NOT ix.valid LIMIT $1) v) AS invalid_indexes,
       (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
          'schema', d.schema, 'name', d.name, 'table', d.table_name, 'bytes', d.bytes, 'duplicateOf', d.keeper, 'policyFile', d.policy_file)), '[]'::json)
          FROM (SELECT ix.schema, ix.name, ix.table_name, ix.bytes, ix.policy_file,
                       pg_catalog.first_value(ix.name) OVER (PARTITION BY ix.shape ORDER BY ix.is_primary DESC, ix.backs_constraint DESC, ix.is_unique DESC, ix.name) AS keeper,
                       pg_catalog.row_number() OVER (PARTITION BY ix.shape ORDER BY ix.is_primary DESC, ix.backs_constraint DESC, ix.is_unique DESC, ix.name) AS rn
                  FROM ix WHERE ix.valid) d
         WHERE d.rn > 1 LIMIT $1) AS duplicate_indexes`;

/** The history records the report site and `/api/history` show, newest first. $1: limit. Plans are fetched one at a time. */
export const HISTORY_LIST_SQL = `
SELECT h.id::float8 AS id, h.kind, h.started_at, h.finished_at, h.duration_ms::float8 AS duration_ms, h.outcome,
       h.actor, h.git_commit, h.git_branch, h.fingerprint, h.summary, h.error,
       -- an apply's plan holds its changes; a maintain run's holds one entry per table
       CASE pg_catalog.jsonb_typeof(h.plan) WHEN 'array' THEN pg_catalog.jsonb_array_length(h.plan)
            ELSE pg_catalog.jsonb_array_length(COALESCE(h.plan -> 'changes', '[]'::jsonb)) END AS change_count
  FROM pgwarden.history h
 ORDER BY h.id DESC
 LIMIT $1`;

/** One history record with its plan. $1: id. */
export const HISTORY_PLAN_SQL = `
SELECT h.id::float8 AS id, h.kind, h.started_at, h.finished_at, h.duration_ms::float8 AS duration_ms, h.outcome,
       h.actor, h.git_commit, h.git_branch, h.fingerprint, h.summary, h.error, h.plan
  FROM pgwarden.history h
 WHERE h.id = $1`;

/** The database, and whether pgwarden has written its history and registry to it yet. */
export const SITE_SOURCE_SQL = `
SELECT pg_catalog.current_database() AS database,
       pg_catalog.current_setting('server_version_num')::int AS server_version,
       pg_catalog.to_regclass('pgwarden.history') IS NOT NULL AS has_history,
       pg_catalog.to_regclass('pgwarden.managed_index') IS NOT NULL AS has_registry`;

/**
 * The report site's index ledger: every user index (pgwarden's own marked), with size, scans since the
 * statistics were last reset (or since the index was created, whichever is later), validity and
 * duplicates (same table, keys, operator classes, options, expressions and predicate). $1: limit.
 * `pg_stat_get_lastscan` exists from PostgreSQL 16; `hasRegistry`: pgwarden.managed_index exists.
 */
export function siteIndexesSql(serverVersion: number, hasRegistry: boolean): string {
  const lastScan =
    serverVersion >= 160000
      ? `CASE WHEN ic.relkind = 'I'
              THEN (SELECT pg_catalog.max(pg_catalog.pg_stat_get_lastscan(p.relid)) FROM pg_catalog.pg_partition_tree(x.indexrelid) p WHERE p.isleaf)
              ELSE pg_catalog.pg_stat_get_lastscan(x.indexrelid) END`
      : 'NULL::timestamptz';
  const registry = hasRegistry
    ? 'LEFT JOIN pgwarden.managed_index m ON m.schema_name = n.nspname AND m.index_name = ic.relname'
    : 'LEFT JOIN (SELECT NULL::timestamptz AS recorded_at, NULL::text AS policy_file) m ON false';
  return `${HEALTH_MARKER}
WITH ix AS (
  SELECT n.nspname AS schema, ic.relname AS name, tc.relname AS table_name, am.amname AS method,
         x.indisvalid AS valid, x.indisunique AS is_unique, x.indisprimary AS is_primary,
         EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid) AS backs_constraint,
         CASE WHEN ic.relkind = 'I'
              THEN (SELECT pg_catalog.sum(pg_catalog.pg_stat_get_numscans(p.relid)) FROM pg_catalog.pg_partition_tree(x.indexrelid) p WHERE p.isleaf)
              ELSE pg_catalog.pg_stat_get_numscans(x.indexrelid) END::float8 AS scans,
         ${lastScan} AS last_scan,
         CASE WHEN ic.relkind = 'I'
              THEN (SELECT pg_catalog.sum(pg_catalog.pg_relation_size(p.relid)) FROM pg_catalog.pg_partition_tree(x.indexrelid) p WHERE p.isleaf)
              ELSE pg_catalog.pg_relation_size(x.indexrelid) END::float8 AS bytes,
         pg_catalog.pg_get_indexdef(x.indexrelid) AS definition,
         m.recorded_at AS managed_since, m.policy_file,
         x.indrelid::text || ' ' || x.indkey::text || ' ' || x.indclass::text || ' ' || x.indoption::text || ' ' ||
           x.indcollation::text || ' ' || COALESCE(x.indexprs::text, '') || ' ' || COALESCE(x.indpred::text, '') AS shape
    FROM pg_catalog.pg_index x
    JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    JOIN pg_catalog.pg_class tc ON tc.oid = x.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = tc.relnamespace
    ${registry}
   WHERE tc.relkind IN ('r', 'm', 'p') AND NOT ic.relispartition AND ${USER_SCHEMAS}
)
SELECT * FROM ix ORDER BY (ix.managed_since IS NULL), ix.schema, ix.table_name, ix.name LIMIT $1`;
}

/**
 * The report site's vacuum page: each user table's dead rows against its autovacuum trigger (per-table
 * settings honoured), transaction-ID age, and its vacuum and analyze runs. $1: limit (worst first).
 */
export const SITE_TABLES_SQL = `${HEALTH_MARKER}
WITH t AS (
  SELECT n.nspname AS schema, c.relname AS name, c.reltuples::float8 AS row_estimate,
         pg_catalog.pg_total_relation_size(c.oid)::float8 AS bytes,
         pg_catalog.pg_stat_get_live_tuples(c.oid)::float8 AS live,
         pg_catalog.pg_stat_get_dead_tuples(c.oid)::float8 AS dead,
         pg_catalog.pg_stat_get_mod_since_analyze(c.oid)::float8 AS mod_since_analyze,
         pg_catalog.age(c.relfrozenxid)::float8 AS xid_age,
         pg_catalog.pg_stat_get_last_vacuum_time(c.oid) AS last_vacuum,
         pg_catalog.pg_stat_get_last_autovacuum_time(c.oid) AS last_autovacuum,
         pg_catalog.pg_stat_get_last_analyze_time(c.oid) AS last_analyze,
         pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid) AS last_autoanalyze,
         (pg_catalog.pg_stat_get_vacuum_count(c.oid) + pg_catalog.pg_stat_get_autovacuum_count(c.oid))::float8 AS vacuum_runs,
         (pg_catalog.pg_stat_get_analyze_count(c.oid) + pg_catalog.pg_stat_get_autoanalyze_count(c.oid))::float8 AS analyze_runs,
         COALESCE((SELECT o.option_value::float8 FROM pg_catalog.pg_options_to_table(c.reloptions) o WHERE o.option_name = 'autovacuum_vacuum_threshold'),
                  pg_catalog.current_setting('autovacuum_vacuum_threshold')::float8) AS vacuum_threshold,
         COALESCE((SELECT o.option_value::float8 FROM pg_catalog.pg_options_to_table(c.reloptions) o WHERE o.option_name = 'autovacuum_vacuum_scale_factor'),
                  pg_catalog.current_setting('autovacuum_vacuum_scale_factor')::float8) AS vacuum_scale_factor,
         COALESCE((SELECT o.option_value::bool FROM pg_catalog.pg_options_to_table(c.reloptions) o WHERE o.option_name = 'autovacuum_enabled'), true) AS autovacuum_enabled,
         COALESCE(c.reloptions, '{}') AS reloptions
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND ${USER_SCHEMAS}
)
SELECT t.*, t.vacuum_threshold + t.vacuum_scale_factor * GREATEST(t.row_estimate, 0) AS autovacuum_trigger,
       pg_catalog.current_setting('autovacuum_freeze_max_age')::float8 AS freeze_max_age
  FROM t
 ORDER BY t.dead / GREATEST(t.live + t.dead, 1) DESC, t.dead DESC, t.schema, t.name
 LIMIT $1`;

/** A cheap fingerprint of the history: `serve` rebuilds its static pages when it changes. */
export const HISTORY_SIGNATURE_SQL = `
SELECT pg_catalog.count(*)::text || ':' || COALESCE(pg_catalog.max(h.id), 0)::text || ':' ||
       COALESCE(pg_catalog.max(h.finished_at)::text, '') || ':' || pg_catalog.count(*) FILTER (WHERE h.outcome = 'running')::text AS signature
  FROM pgwarden.history h`;

/** Where pg_stat_statements lives in this database, if it is installed and loaded. */
export const STATEMENTS_SCHEMA_SQL = `
SELECT (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_stat_statements') AS schema,
       COALESCE((SELECT s.setting FROM pg_catalog.pg_settings s WHERE s.name = 'shared_preload_libraries') ~ 'pg_stat_statements', true) AS loaded`;

/**
 * At apply time: the statements of this database that name one of the tables a plan changes (the ones
 * its indexes and partitions are meant to speed up), with their counters. $1: table names. `schema`: the
 * extension's schema, quoted.
 */
export function applyStatementsSql(schema: string): string {
  return `${HEALTH_MARKER}
SELECT s.userid::int8::text || ':' || s.queryid::text AS id, pg_catalog.left(pg_catalog.regexp_replace(s.query, '\\s+', ' ', 'g'), 500) AS query,
       s.calls::float8 AS calls, s.total_exec_time::float8 AS total_ms, s.stddev_exec_time::float8 AS stddev_ms
  FROM ${schema}.pg_stat_statements(true) s
 WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
   AND s.toplevel AND s.calls > 0
   AND s.query ~* '^\\s*(select|with|insert|update|delete)'
   AND pg_catalog.strpos(s.query, 'pgwarden') = 0
   AND EXISTS (SELECT 1 FROM pg_catalog.unnest($1::text[]) t(name) WHERE pg_catalog.strpos(pg_catalog.lower(s.query), pg_catalog.lower(t.name)) > 0)
 ORDER BY s.total_exec_time DESC
 LIMIT 20`;
}

/** The same statements' counters now (no texts). $1: ids (`userid:queryid`). */
export function statementsNowSql(schema: string): string {
  return `${HEALTH_MARKER}
SELECT s.userid::int8::text || ':' || s.queryid::text AS id, s.calls::float8 AS calls, s.total_exec_time::float8 AS total_ms
  FROM ${schema}.pg_stat_statements(false) s
 WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
   AND s.toplevel AND (s.userid::int8::text || ':' || s.queryid::text) = ANY ($1::text[])`;
}
