import { HEALTH_MARKER } from './health-queries.ts';

/**
 * The report's sizes page, in one query: every user table (plain, partitioned, partition, materialized
 * view) with its heap, index and TOAST bytes, rows and scan counters, and the root of the partition tree
 * it belongs to, so partitions roll up into their table in code. Intermediate partitioned tables (a
 * partition that is itself partitioned) have no storage and are left out: their leaves roll up to the root.
 */
export const SITE_TABLE_SIZES_SQL = `${HEALTH_MARKER}
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
       CASE WHEN c.relispartition THEN rn.nspname END AS root_schema,
       CASE WHEN c.relispartition THEN r.relname END AS root_name,
       pg_catalog.pg_total_relation_size(c.oid)::float8 AS total_bytes,
       pg_catalog.pg_relation_size(c.oid)::float8 AS heap_bytes,
       pg_catalog.pg_indexes_size(c.oid)::float8 AS index_bytes,
       COALESCE(pg_catalog.pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0)::float8 AS toast_bytes,
       GREATEST(c.reltuples, 0)::float8 AS row_estimate,
       COALESCE(s.n_live_tup, 0)::float8 AS live,
       COALESCE(s.seq_scan, 0)::float8 AS seq_scans,
       COALESCE(s.seq_tup_read, 0)::float8 AS seq_rows,
       COALESCE(s.idx_scan, 0)::float8 AS index_scans,
       pg_catalog.current_setting('block_size')::int AS block_size
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
  LEFT JOIN pg_catalog.pg_class r ON c.relispartition AND r.oid = pg_catalog.pg_partition_root(c.oid)
  LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace
 WHERE c.relkind IN ('r', 'm', 'p') AND c.relpersistence <> 't'
   AND NOT (c.relkind = 'p' AND c.relispartition)
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden')
   AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'
 ORDER BY pg_catalog.pg_total_relation_size(c.oid) DESC, n.nspname, c.relname
 LIMIT $1`;
