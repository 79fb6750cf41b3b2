/**
 * The catalog SQL of vacuum policies, table health, bloat and `maintain`. Like queries.ts: schema
 * qualified, values as bind parameters, and a fixed number of round trips whatever the number of tables.
 *
 * Statistics are read through the pg_stat_get_*() functions over pg_class rather than the
 * pg_stat_user_tables view: 2.5x faster on 6,000 tables (DESIGN.md).
 */

import { HEALTH_MARKER } from './health-queries.ts';

/** Schemas that hold no user tables (pgwarden's own bookkeeping is not the user's either). */
const USER_TABLES = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden')
   AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'`;

/**
 * A relation's size in bytes without opening it when nothing changed since the last VACUUM or ANALYZE
 * (which set relpages): pg_relation_size() opens the relation, building its relcache entry and taking
 * a lock, which on a fresh connection costs more than the rest of the query on thousands of tables and
 * can exhaust the lock table in one statement. A table with writes since (whose relpages may be stale)
 * is measured. `changedOid`: the table whose activity decides (an index's table).
 */
function sizeOf(oid: string, relpages: string, changedOid: string): string {
  return `CASE WHEN pg_catalog.pg_stat_get_mod_since_analyze(${changedOid}) > 0 OR pg_catalog.pg_stat_get_dead_tuples(${changedOid}) > 0
            THEN pg_catalog.pg_relation_size(${oid})
            ELSE ${relpages}::int8 * pg_catalog.current_setting('block_size')::int8 END::float8`;
}

/** Which storage parameters pgwarden set on which table (engine/store/setting-registry.ts). */
export const MANAGED_SETTINGS_SQL = `
SELECT schema_name AS schema, table_name AS "table", parameter FROM pgwarden.managed_setting`;

/** The server settings that frame table health: when autovacuum acts, and where wraparound is. */
export const VACUUM_SETTINGS_SQL = `${HEALTH_MARKER}
SELECT pg_catalog.current_database() AS database,
       pg_catalog.current_setting('server_version_num')::int AS server_version,
       pg_catalog.current_setting('server_version') AS server_version_text,
       pg_catalog.pg_is_in_recovery() AS in_recovery,
       pg_catalog.current_setting('autovacuum')::bool AS autovacuum,
       pg_catalog.current_setting('track_counts')::bool AS track_counts,
       pg_catalog.current_setting('autovacuum_vacuum_threshold')::float8 AS vacuum_threshold,
       pg_catalog.current_setting('autovacuum_vacuum_scale_factor')::float8 AS vacuum_scale_factor,
       pg_catalog.current_setting('autovacuum_analyze_threshold')::float8 AS analyze_threshold,
       pg_catalog.current_setting('autovacuum_analyze_scale_factor')::float8 AS analyze_scale_factor,
       pg_catalog.current_setting('autovacuum_freeze_max_age')::float8 AS freeze_max_age,
       pg_catalog.current_setting('autovacuum_multixact_freeze_max_age')::float8 AS multixact_freeze_max_age,
       pg_catalog.current_setting('vacuum_freeze_table_age')::float8 AS freeze_table_age,
       pg_catalog.current_setting('vacuum_multixact_freeze_table_age')::float8 AS multixact_freeze_table_age,
       pg_catalog.current_setting('block_size')::int AS block_size,
       (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pgstattuple') AS pgstattuple_schema`;

/**
 * Every user table (and partitioned table, for `maintain`'s ANALYZE of parents) with its activity
 * counters, freeze ages and sizes, in one round trip. $1: oids to restrict to, or NULL for all.
 * The TOAST table's freeze ages count too: autovacuum must freeze it just the same.
 * Counters come as float8: a float8 holds every integer below 2^53 exactly, a bigint would arrive as text.
 */
export const TABLE_STATS_SQL = `${HEALTH_MARKER}
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       CASE WHEN c.relispartition THEN
         (SELECT i.inhparent::int8 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) END AS parent_oid,
       pg_catalog.pg_stat_get_live_tuples(c.oid)::float8 AS live,
       pg_catalog.pg_stat_get_dead_tuples(c.oid)::float8 AS dead,
       pg_catalog.pg_stat_get_mod_since_analyze(c.oid)::float8 AS changed,
       pg_catalog.pg_stat_get_ins_since_vacuum(c.oid)::float8 AS inserted,
       GREATEST(pg_catalog.pg_stat_get_last_vacuum_time(c.oid), pg_catalog.pg_stat_get_last_autovacuum_time(c.oid)) AS last_vacuum,
       GREATEST(pg_catalog.pg_stat_get_last_analyze_time(c.oid), pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid)) AS last_analyze,
       (pg_catalog.pg_stat_get_vacuum_count(c.oid) + pg_catalog.pg_stat_get_autovacuum_count(c.oid))::float8 AS vacuums,
       (pg_catalog.pg_stat_get_analyze_count(c.oid) + pg_catalog.pg_stat_get_autoanalyze_count(c.oid))::float8 AS analyzes,
       CASE WHEN c.relkind = 'r' THEN
         GREATEST(pg_catalog.age(c.relfrozenxid), COALESCE(pg_catalog.age(t.relfrozenxid), 0)) END::float8 AS xid_age,
       CASE WHEN c.relkind = 'r' THEN
         GREATEST(pg_catalog.mxid_age(c.relminmxid), COALESCE(pg_catalog.mxid_age(t.relminmxid), 0)) END::float8 AS mxid_age,
       c.reltuples::float8 AS reltuples,
       ${sizeOf('c.oid', 'c.relpages', 'c.oid')} AS heap_bytes,
       (COALESCE(t.relpages, 0)::int8 * pg_catalog.current_setting('block_size')::int8)::float8 AS toast_bytes,
       -- Index sizes as of their last VACUUM/ANALYZE: display only, and a stat() per index adds up.
       (SELECT COALESCE(pg_catalog.sum(ic.relpages), 0) FROM pg_catalog.pg_index x
          JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid WHERE x.indrelid = c.oid)::float8
         * pg_catalog.current_setting('block_size')::float8 AS index_bytes,
       COALESCE(c.reloptions, '{}') AS reloptions,
       COALESCE(t.reloptions, '{}') AS toast_reloptions
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
 WHERE c.relkind IN ('r', 'p') AND c.relpersistence IN ('p', 'u') AND ${USER_TABLES}
   AND ($1::int8[] IS NULL OR c.oid = ANY ($1::int8[]))`;

/**
 * pg_stats rows, read once into a hash table: joined to the catalog on computed names, the view would
 * otherwise be scanned again for every key (a nested loop: 40 s instead of a fraction of one on 5,000
 * tables). The view, not pg_statistic, because it is what an unprivileged role may read.
 */
const STATS_CTE = `stats AS MATERIALIZED (
  SELECT s.schemaname, s.tablename, s.attname, s.null_frac::float8 AS null_frac, s.avg_width::float8 AS avg_width
    FROM pg_catalog.pg_stats s WHERE NOT s.inherited
)`;

/**
 * What the statistics-based table bloat estimate needs, per table: the average width of a row from
 * pg_stats (null_frac, avg_width of every column; an unanalyzed column has none), its fillfactor and
 * its live row count. The arithmetic (tuple header, alignment, page header) is done in bloat.ts.
 * $1: table oids to restrict to, or NULL for every user table.
 */
export const TABLE_BLOAT_INPUTS_SQL = `${HEALTH_MARKER}
WITH t AS MATERIALIZED (
  SELECT c.oid, n.nspname, c.relname, c.reltuples, c.relpages, c.reloptions
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r' AND c.relpersistence IN ('p', 'u') AND ${USER_TABLES}
     AND ($1::int8[] IS NULL OR c.oid = ANY ($1::int8[]))
), ${STATS_CTE}, cols AS (
  SELECT t.oid, pg_catalog.count(*)::int AS columns, pg_catalog.count(s.attname)::int AS analyzed,
         COALESCE(pg_catalog.bool_or(s.null_frac > 0), false) AS has_nulls,
         COALESCE(pg_catalog.sum((1 - s.null_frac) * s.avg_width), 0)::float8 AS data_width
    FROM t
    JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN stats s ON s.schemaname = t.nspname AND s.tablename = t.relname AND s.attname = a.attname
   GROUP BY t.oid
)
SELECT t.oid::int8 AS oid, t.nspname AS schema, t.relname AS name,
       ${sizeOf('t.oid', 't.relpages', 't.oid')} AS bytes,
       -- The live-row counter is current; reltuples is as of the last VACUUM or ANALYZE.
       (CASE WHEN pg_catalog.pg_stat_get_live_tuples(t.oid) > 0 OR t.reltuples < 0
             THEN pg_catalog.pg_stat_get_live_tuples(t.oid) ELSE t.reltuples END)::float8 AS live,
       COALESCE(cols.columns, 0) AS columns, COALESCE(cols.analyzed, 0) AS analyzed,
       COALESCE(cols.has_nulls, false) AS has_nulls, COALESCE(cols.data_width, 0) AS data_width,
       COALESCE((SELECT pg_catalog.substring(o, '^fillfactor=(\\d+)$')::int
                   FROM pg_catalog.unnest(t.reloptions) AS o WHERE o LIKE 'fillfactor=%'), 100) AS fillfactor
  FROM t LEFT JOIN cols ON cols.oid = t.oid`;

/**
 * What the btree bloat estimate needs, per index: key widths from pg_stats (a column key's from its
 * table's statistics, an expression key's from the index's own, which ANALYZE collects), the index's
 * tuple count and fillfactor. $1 as above (table oids).
 */
export const INDEX_BLOAT_INPUTS_SQL = `${HEALTH_MARKER}
WITH x AS MATERIALIZED (
  SELECT i.indexrelid, i.indrelid, n.nspname, ic.relname AS index_name, tc.relname AS table_name,
         am.amname, ic.reltuples, ic.relpages, ic.reloptions, i.indkey, i.indisvalid
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_class tc ON tc.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
   WHERE tc.relkind = 'r' AND ic.relkind = 'i' AND tc.relpersistence IN ('p', 'u') AND ${USER_TABLES}
     AND ($1::int8[] IS NULL OR tc.oid = ANY ($1::int8[]))
), keys AS MATERIALIZED (
  SELECT x.indexrelid, x.nspname,
         (CASE WHEN k.attnum <> 0 THEN x.table_name ELSE x.index_name END)::name AS stats_relation,
         (CASE WHEN k.attnum <> 0 THEN ta.attname ELSE ia.attname END)::name AS stats_column
    FROM x
    CROSS JOIN LATERAL pg_catalog.unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
    LEFT JOIN pg_catalog.pg_attribute ta ON k.attnum <> 0 AND ta.attrelid = x.indrelid AND ta.attnum = k.attnum
    LEFT JOIN pg_catalog.pg_attribute ia ON k.attnum = 0 AND ia.attrelid = x.indexrelid AND ia.attnum = k.ord
   WHERE x.amname = 'btree'
), ${STATS_CTE}, widths AS (
  SELECT keys.indexrelid, pg_catalog.count(*)::int AS columns, pg_catalog.count(s.attname)::int AS analyzed,
         COALESCE(pg_catalog.bool_or(s.null_frac > 0), false) AS has_nulls,
         COALESCE(pg_catalog.sum((1 - s.null_frac) * s.avg_width), 0)::float8 AS data_width
    FROM keys
    LEFT JOIN stats s ON s.schemaname = keys.nspname AND s.tablename = keys.stats_relation AND s.attname = keys.stats_column
   GROUP BY keys.indexrelid
)
SELECT x.indexrelid::int8 AS oid, x.indrelid::int8 AS table_oid, x.nspname AS schema, x.index_name AS name,
       x.table_name, x.amname AS method, x.indisvalid AS valid,
       ${sizeOf('x.indexrelid', 'x.relpages', 'x.indrelid')} AS bytes, x.reltuples::float8 AS tuples,
       COALESCE(w.columns, 0) AS columns, COALESCE(w.analyzed, 0) AS analyzed,
       COALESCE(w.has_nulls, false) AS has_nulls, COALESCE(w.data_width, 0) AS data_width,
       COALESCE((SELECT pg_catalog.substring(o, '^fillfactor=(\\d+)$')::int
                   FROM pg_catalog.unnest(x.reloptions) AS o WHERE o LIKE 'fillfactor=%'), 90) AS fillfactor
  FROM x LEFT JOIN widths w ON w.indexrelid = x.indexrelid`;

/** pgstattuple, or pgstattuple_approx, over a batch of tables. %s: the extension's schema, quoted. */
export function exactTableBloatSql(schema: string, approx: boolean): string {
  const fn = approx ? 'pgstattuple_approx' : 'pgstattuple';
  const free = approx ? 's.approx_free_space' : 's.free_space';
  const live = approx ? 's.approx_tuple_len' : 's.tuple_len';
  return `
SELECT o.oid::int8 AS oid, s.table_len::float8 AS bytes, (${live})::float8 AS live_bytes,
       s.dead_tuple_len::float8 AS dead_bytes, (${free})::float8 AS free_bytes
  FROM pg_catalog.unnest($1::int8[]) AS o(oid)
  CROSS JOIN LATERAL ${schema}.${fn}(o.oid::oid::regclass) AS s`;
}

/** pgstatindex over a batch of btree indexes. */
export function exactIndexBloatSql(schema: string): string {
  return `
SELECT o.oid::int8 AS oid, s.index_size::float8 AS bytes, s.leaf_pages::float8 AS leaf_pages,
       s.empty_pages::float8 AS empty_pages, s.deleted_pages::float8 AS deleted_pages,
       s.avg_leaf_density::float8 AS density
  FROM pg_catalog.unnest($1::int8[]) AS o(oid)
  CROSS JOIN LATERAL ${schema}.pgstatindex(o.oid::oid::regclass) AS s`;
}

/**
 * What each of `maintain`'s sessions ($1: their pids) is doing: VACUUM from pg_stat_progress_vacuum,
 * ANALYZE from pg_stat_progress_analyze, and the sessions any of them waits for (a lock it queues on).
 */
export const MAINTAIN_PROGRESS_SQL = `
WITH p AS (
  SELECT v.pid, 'vacuum' AS command, v.phase,
         CASE WHEN v.phase = 'scanning heap' AND v.heap_blks_total > 0 THEN 100.0 * v.heap_blks_scanned / v.heap_blks_total
              WHEN v.phase = 'vacuuming heap' AND v.heap_blks_total > 0 THEN 100.0 * v.heap_blks_vacuumed / v.heap_blks_total
         END::float8 AS percent,
         v.index_vacuum_count::int AS index_passes
    FROM pg_catalog.pg_stat_progress_vacuum v WHERE v.pid = ANY ($1::int[])
  UNION ALL
  SELECT a.pid, 'analyze', a.phase,
         CASE WHEN a.sample_blks_total > 0 THEN 100.0 * a.sample_blks_scanned / a.sample_blks_total END::float8, 0
    FROM pg_catalog.pg_stat_progress_analyze a WHERE a.pid = ANY ($1::int[])
)
SELECT w.pid, p.command, p.phase, p.percent, p.index_passes,
       COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                   'pid', b.pid, 'state', b.state, 'applicationName', b.application_name,
                   'transactionAgeS', EXTRACT(epoch FROM pg_catalog.now() - b.xact_start)::float8,
                   'query', pg_catalog.left(b.query, 120)))
                   FROM pg_catalog.pg_stat_activity b
                  WHERE b.pid = ANY (pg_catalog.pg_blocking_pids(w.pid))), '[]') AS waiting_for
  FROM pg_catalog.unnest($1::int[]) AS w(pid)
  LEFT JOIN p ON p.pid = w.pid`;

/** Sessions holding a lock on a relation ($1: its qualified name), for "skipped: locked by ...". */
export const LOCK_HOLDERS_SQL = `
SELECT DISTINCT a.pid, a.state, a.application_name, l.mode,
       EXTRACT(epoch FROM pg_catalog.now() - a.xact_start)::float8 AS transaction_age_s,
       pg_catalog.left(a.query, 120) AS query
  FROM pg_catalog.pg_locks l
  JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'relation' AND l.granted AND l.relation = pg_catalog.to_regclass($1)
   AND a.pid <> ALL ($2::int[])
 ORDER BY transaction_age_s DESC NULLS LAST
 LIMIT 3`;

/**
 * Why VACUUM could not remove dead tuples: the oldest xmin horizon of this database — a session's
 * snapshot, a prepared transaction, or a replication slot (hot_standby_feedback, a lagging logical slot).
 */
export const XMIN_HORIZON_SQL = `
SELECT * FROM (
  SELECT 'session' AS kind, a.pid::text AS holder, pg_catalog.age(a.backend_xmin)::float8 AS age,
         EXTRACT(epoch FROM pg_catalog.now() - a.xact_start)::float8 AS seconds,
         pg_catalog.concat_ws(', ', a.state, a.application_name, pg_catalog.left(a.query, 80)) AS detail
    FROM pg_catalog.pg_stat_activity a
   WHERE a.backend_xmin IS NOT NULL AND a.datname = pg_catalog.current_database()
     AND a.pid <> ALL ($1::int[]) AND a.pid <> pg_catalog.pg_backend_pid() AND a.backend_type = 'client backend'
  UNION ALL
  SELECT 'prepared transaction', p.gid, pg_catalog.age(p.transaction)::float8,
         EXTRACT(epoch FROM pg_catalog.now() - p.prepared)::float8, p.owner::text
    FROM pg_catalog.pg_prepared_xacts p WHERE p.database = pg_catalog.current_database()
  UNION ALL
  SELECT 'replication slot', s.slot_name::text, pg_catalog.age(s.xmin)::float8, NULL, s.slot_type
    FROM pg_catalog.pg_replication_slots s WHERE s.xmin IS NOT NULL
) h
 ORDER BY age DESC LIMIT 1`;

/**
 * Before PostgreSQL 15 (the statistics collector): how many of the tables a run just vacuumed ($1) or
 * analyzed ($2) this session's statistics do not yet show as vacuumed or analyzed since $3.
 */
export const COLLECTOR_PENDING_SQL = `
SELECT pg_catalog.count(*)::int AS pending
  FROM pg_catalog.pg_stat_all_tables s
 WHERE (s.relid = ANY ($1::oid[]) AND (s.last_vacuum IS NULL OR s.last_vacuum < $3::timestamptz))
    OR (s.relid = ANY ($2::oid[]) AND (s.last_analyze IS NULL OR s.last_analyze < $3::timestamptz))`;
