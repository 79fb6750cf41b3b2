import { qualified } from '../sql/ident.ts';

/**
 * The catalog and statistics queries of `pgwarden analyze` and `pgwarden advise`. Schema-qualified
 * throughout; the extensions' objects (pg_stat_statements, hypopg) are reached through the schema
 * their extension was installed in, quoted by `qualified()`.
 */

/** Server, session and extension facts, in one round trip. */
export const ANALYSIS_SERVER_SQL = `
SELECT pg_catalog.current_database() AS database,
       pg_catalog.current_setting('server_version_num')::int AS server_version,
       pg_catalog.pg_is_in_recovery() AS in_recovery,
       pg_catalog.current_setting('transaction_read_only') = 'on' AS read_only,
       (pg_catalog.pg_size_bytes(pg_catalog.current_setting('work_mem')) / 1024)::int8 AS work_mem_kb,
       -- shared_preload_libraries is readable with pg_read_all_settings (in pg_monitor) or as superuser only;
       -- pg_settings leaves it out for other roles, and then the preload is unknown (NULL), not an error.
       (SELECT s.setting FROM pg_catalog.pg_settings s WHERE s.name = 'shared_preload_libraries') AS preload,
       (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_stat_statements') AS pgss_schema,
       (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'hypopg') AS hypopg_schema,
       (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = 'hypopg') AS hypopg_version,
       pg_catalog.pg_stat_get_db_stat_reset_time(
         (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())) AS stats_reset,
       pg_catalog.array_to_string(pg_catalog.current_schemas(false), ',') AS search_path`;

/**
 * Every statement pg_stat_statements holds for the current database. The counters are cumulative
 * since the entry was created or the statistics last reset; `analyze --since` subtracts two reads.
 * Rows of one queryid that differ only in `toplevel` (track = all) are summed by the reader.
 * (pg_stat_statements 1.8+, PostgreSQL 13+: *_exec_time columns. stats_since, 1.11+ and PostgreSQL 17+,
 * is read through to_jsonb so that one text serves every version: null where the column is missing.)
 */
export function statementsSql(pgssSchema: string): string {
  return `
SELECT s.queryid::text AS queryid, s.userid::int8 AS userid, pg_catalog.pg_get_userbyid(s.userid) AS username,
       s.query, s.calls::int8 AS calls, s.total_exec_time::float8 AS total_ms, s.min_exec_time::float8 AS min_ms,
       s.max_exec_time::float8 AS max_ms, s.stddev_exec_time::float8 AS stddev_ms, s.total_plan_time::float8 AS plan_ms,
       s.rows::int8 AS rows, s.shared_blks_hit::int8 AS shared_hit, s.shared_blks_read::int8 AS shared_read,
       s.temp_blks_written::int8 AS temp_written,
       pg_catalog.to_jsonb(s) ->> 'stats_since' AS stats_since
  FROM ${qualified(pgssSchema, 'pg_stat_statements')} s
 WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
   AND s.queryid IS NOT NULL`;
}

/** When pg_stat_statements was last reset and how many entries it evicted (1.9+, PostgreSQL 14+). */
export function statementsInfoSql(pgssSchema: string): string {
  return `SELECT stats_reset, dealloc::int8 AS dealloc FROM ${qualified(pgssSchema, 'pg_stat_statements_info')}`;
}

export function statementsInfoExistsSql(): string {
  return `SELECT pg_catalog.to_regclass($1) IS NOT NULL AS present`;
}

/**
 * Facts about the relations a plan reads, for its findings. $1/$2: schemas and names. A partition
 * comes with its parent, the parent's leaf partitions and partition key.
 */
export const PLAN_RELATIONS_SQL = `
WITH wanted AS (SELECT s, t FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS w(s, t))
SELECT n.nspname AS schema, c.relname AS name,
       GREATEST(c.reltuples, 0)::float8 AS row_estimate, c.relpages::int8 AS pages, c.relallvisible::int8 AS all_visible,
       pn.nspname AS parent_schema, pc.relname AS parent_name,
       CASE WHEN pc.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(pc.oid) END AS parent_key,
       -- Leaf partitions of the parent (pg_partition_tree, PostgreSQL 12+): what pruning is counted against.
       CASE WHEN pc.relkind = 'p' THEN ARRAY(
         SELECT ln.nspname::text FROM pg_catalog.pg_partition_tree(pc.oid) t
           JOIN pg_catalog.pg_class lc ON lc.oid = t.relid JOIN pg_catalog.pg_namespace ln ON ln.oid = lc.relnamespace
          WHERE t.isleaf ORDER BY lc.relname) END AS leaf_schemas,
       CASE WHEN pc.relkind = 'p' THEN ARRAY(
         SELECT lc.relname::text FROM pg_catalog.pg_partition_tree(pc.oid) t
           JOIN pg_catalog.pg_class lc ON lc.oid = t.relid
          WHERE t.isleaf ORDER BY lc.relname) END AS leaf_names
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN wanted w ON w.s = n.nspname AND w.t = c.relname
  LEFT JOIN pg_catalog.pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
  LEFT JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
  LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace`;

/**
 * The tables (and views, foreign tables) a workload names, with their write statistics and every column's planner statistics.
 * $1/$2: schemas and names. pg_stats shows the `inherited` row for a partitioned table (its only one).
 * The counters n_tup_* are read through the pg_stat_get_* functions (faster than the views, DESIGN.md).
 */
export const WORKLOAD_TABLES_SQL = `
WITH wanted AS (SELECT s, t FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS w(s, t))
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS relkind,
       GREATEST(c.reltuples, 0)::float8 AS row_estimate, c.relpages::int8 AS pages, c.relallvisible::int8 AS all_visible,
       pg_catalog.pg_relation_size(c.oid)::int8 AS bytes,
       COALESCE(pg_catalog.pg_stat_get_tuples_inserted(c.oid), 0)::int8 AS inserted,
       COALESCE(pg_catalog.pg_stat_get_tuples_updated(c.oid), 0)::int8 AS updated,
       COALESCE(pg_catalog.pg_stat_get_tuples_hot_updated(c.oid), 0)::int8 AS hot_updated,
       COALESCE(pg_catalog.pg_stat_get_tuples_deleted(c.oid), 0)::int8 AS deleted,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_index x WHERE x.indrelid = c.oid)::int AS index_count,
       COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
           'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'length', t.typlen,
           'null_frac', st.null_frac, 'n_distinct', st.n_distinct, 'avg_width', st.avg_width,
           'correlation', st.correlation,
           'mcv', st.most_common_vals::text, 'mcf', st.most_common_freqs,
           'histogram', st.histogram_bounds::text) ORDER BY a.attnum)
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
          LEFT JOIN pg_catalog.pg_stats st
            ON st.schemaname = n.nspname AND st.tablename = c.relname AND st.attname = a.attname
           AND st.inherited = (c.relkind = 'p')
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN wanted w ON w.s = n.nspname AND w.t = c.relname
 WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f')`;

/**
 * Rows written to every user table (and materialized view) since the statistics were reset, for the
 * advisor's write cost: COPY, writes inside functions and triggers, and statements pg_stat_statements
 * evicted all show here and nowhere in its INSERT/UPDATE entries. A partitioned table's own counters
 * stay at zero (its partitions hold the rows): it gets the sum over its leaf partitions.
 */
export const TABLE_WRITE_COUNTERS_SQL = `
SELECT n.nspname AS schema, c.relname AS name,
       w.inserted, w.updated, w.hot_updated, w.deleted
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL (
    SELECT COALESCE(pg_catalog.sum(pg_catalog.pg_stat_get_tuples_inserted(l.relid)), 0)::int8 AS inserted,
           COALESCE(pg_catalog.sum(pg_catalog.pg_stat_get_tuples_updated(l.relid)), 0)::int8 AS updated,
           COALESCE(pg_catalog.sum(pg_catalog.pg_stat_get_tuples_hot_updated(l.relid)), 0)::int8 AS hot_updated,
           COALESCE(pg_catalog.sum(pg_catalog.pg_stat_get_tuples_deleted(l.relid)), 0)::int8 AS deleted
      FROM (SELECT c.oid AS relid WHERE c.relkind <> 'p'
            UNION ALL
            -- pg_partition_tree is strict: NULL for a plain table gives no rows.
            SELECT t.relid FROM pg_catalog.pg_partition_tree(CASE WHEN c.relkind = 'p' THEN c.oid END) t WHERE t.isleaf) l) w
 WHERE c.relkind IN ('r', 'p', 'm') AND c.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'`;

/** Tables by name in the schemas of the search path, to resolve unqualified names as the server would. */
export const SEARCH_PATH_TABLES_SQL = `
SELECT n.nspname AS schema, c.relname AS name
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'm', 'v', 'f')
   AND n.nspname = ANY(pg_catalog.current_schemas(false))`;

/** The planner's cost constants, for the statistics-based estimate when hypopg is absent. */
export const PLANNER_SETTINGS_SQL = `
SELECT s.name, s.setting FROM pg_catalog.pg_settings s
 WHERE s.name IN ('seq_page_cost', 'random_page_cost', 'cpu_tuple_cost', 'cpu_index_tuple_cost',
                  'cpu_operator_cost', 'effective_cache_size', 'block_size', 'work_mem')`;

/** Scan counters of every index, on whichever server answers (the standby keeps its own). */
export const INDEX_SCANS_SQL = `
SELECT n.nspname AS schema, c.relname AS name, COALESCE(pg_catalog.pg_stat_get_numscans(c.oid), 0)::int8 AS scans,
       pg_catalog.pg_stat_get_db_stat_reset_time(
         (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())) AS stats_reset
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('i', 'I') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'`;

/** hypopg: a hypothetical index from a CREATE INDEX statement ($1); returns its made-up oid. */
export function hypopgCreateSql(hypopgSchema: string): string {
  return `SELECT h.indexrelid::int8 AS oid FROM ${qualified(hypopgSchema, 'hypopg_create_index')}($1) h`;
}

export function hypopgResetSql(hypopgSchema: string): string {
  return `SELECT ${qualified(hypopgSchema, 'hypopg_reset')}()`;
}

/** hypopg's estimate of a hypothetical index's size in bytes. */
export function hypopgSizeSql(hypopgSchema: string): string {
  return `SELECT ${qualified(hypopgSchema, 'hypopg_relation_size')}($1::oid)::int8 AS bytes`;
}

/** Resets pg_stat_statements for one database only (tests and the benchmark must not wipe other databases' statistics). */
export function resetStatementsSql(pgssSchema: string): string {
  return `SELECT ${qualified(pgssSchema, 'pg_stat_statements_reset')}(0, (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()), 0)`;
}

/**
 * The referencing columns of every foreign key: an index leading with them serves the lookups a
 * DELETE or key UPDATE on the referenced table makes, however rarely that happens — not "unused".
 */
export const FOREIGN_KEYS_SQL = `
SELECT n.nspname AS schema, c.relname AS table, con.conname AS name,
       ARRAY(SELECT a.attname::text
               FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
              ORDER BY k.ord) AS columns,
       rn.nspname || '.' || rc.relname AS referenced
  FROM pg_catalog.pg_constraint con
  JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid
  JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
 WHERE con.contype = 'f'`;

/**
 * For each key of the given indexes ($1, oids): does it order its column as an index declared with
 * the column alone would — the type's default operator class and the column's own collation? A
 * `text_pattern_ops` key, or one `COLLATE "C"` on a column of another collation, serves equality and
 * LIKE 'x%' but not the ranges and ORDER BY of the column's ordinary comparison. Expression keys: false.
 */
export const INDEX_PLAIN_KEYS_SQL = `
SELECT x.indexrelid::int8 AS oid,
       ARRAY(SELECT COALESCE(oc.opcdefault AND k.collid = a.attcollation, false)
               FROM ROWS FROM (pg_catalog.unnest(x.indkey::int2[]), pg_catalog.unnest(x.indclass::oid[]),
                               pg_catalog.unnest(x.indcollation::oid[])) WITH ORDINALITY AS k(attnum, opclass, collid, ord)
               LEFT JOIN pg_catalog.pg_opclass oc ON oc.oid = k.opclass
               LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum AND k.attnum > 0
              WHERE k.ord <= x.indnkeyatts
              ORDER BY k.ord) AS plain
  FROM pg_catalog.pg_index x
 WHERE x.indexrelid = ANY ($1::int8[]::pg_catalog.oid[])`;

/** Views' definitions as the server prints them (names qualified where the search path would not find them). */
export const VIEW_DEFINITIONS_SQL = `
SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_get_viewdef(c.oid) AS definition
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = ANY($1::oid[]) AND c.relkind = 'v'`;
