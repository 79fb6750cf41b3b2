/**
 * Every catalog query pgwarden runs lives here. They are schema-qualified and run with an empty
 * search_path, so deparsed expressions come back fully qualified and compare equal whatever the
 * caller's search_path was.
 */

/** Schemas that hold no user tables. */
const SYSTEM_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden')
   AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'`;

export const SERVER_INFO_SQL = `
SELECT pg_catalog.current_database() AS database,
       pg_catalog.current_setting('server_version_num')::int AS server_version,
       pg_catalog.to_regclass('pgwarden.managed_index') IS NOT NULL AS has_registry`;

/**
 * All user tables. $1/$2: schema and table names the policies name; those get exact sizes, the rest
 * a relpages estimate (a stat() per relation adds up on large catalogs).
 */
export const TABLES_SQL = `
WITH named AS (SELECT s, t FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS p(s, t))
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS relkind,
       CASE WHEN c.relispartition THEN
         (SELECT i.inhparent::int8 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) END AS parent_oid,
       CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partition_key,
       c.reltuples::float8 AS row_estimate,
       CASE WHEN EXISTS (SELECT 1 FROM named WHERE named.s = n.nspname AND named.t = c.relname)
            THEN pg_catalog.pg_relation_size(c.oid)
            ELSE c.relpages::int8 * pg_catalog.current_setting('block_size')::int8 END AS bytes,
       COALESCE(c.reloptions, '{}') AS reloptions
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND ${SYSTEM_SCHEMAS}`;

/**
 * The columns of an index's signature, from raw pg_index columns. Only expression keys and
 * predicates are deparsed — that is where nearly all of pg_get_indexdef's cost goes.
 * Used for live indexes and for the desired indexes canonicalised on scratch tables alike.
 */
export const INDEX_SIGNATURE_COLUMNS = `
       am.amname AS method, x.indisunique AS is_unique, x.indnullsnotdistinct AS nulls_not_distinct,
       x.indnkeyatts::int AS key_count,
       ARRAY(SELECT CASE WHEN k.attnum = 0 THEN NULL ELSE a.attname::text END
               FROM pg_catalog.unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
              ORDER BY k.ord) AS columns,
       CASE WHEN x.indexprs IS NOT NULL THEN
         ARRAY(SELECT CASE WHEN k.attnum = 0 THEN pg_catalog.pg_get_indexdef(x.indexrelid, k.ord::int, false) END
                 FROM pg_catalog.unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                ORDER BY k.ord) END AS expressions,
       x.indclass::oid[]::int8[] AS opclasses,
       x.indcollation::oid[]::int8[] AS collations,
       x.indoption::int2[]::int[] AS options,
       pg_catalog.pg_get_expr(x.indpred, x.indrelid, false) AS predicate`;

/** Indexes of every user table. $1/$2 as in TABLES_SQL: those get their definition and exact size. */
export const INDEXES_SQL = `
WITH named AS (SELECT s, t FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS p(s, t))
SELECT x.indexrelid::int8 AS oid, n.nspname AS schema, ic.relname AS name, x.indrelid::int8 AS table_oid,
       x.indisvalid AS is_valid, x.indisprimary AS is_primary,
       (SELECT con.contype FROM pg_catalog.pg_constraint con
         WHERE con.conindid = x.indexrelid AND con.contype IN ('p', 'u', 'x') LIMIT 1) AS constraint_type,
       CASE WHEN ic.relispartition THEN
         (SELECT i.inhparent::int8 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = ic.oid) END AS parent_index_oid,
       CASE WHEN d.named THEN pg_catalog.pg_get_indexdef(x.indexrelid) END AS definition,
       CASE WHEN d.named THEN pg_catalog.pg_relation_size(x.indexrelid)
            ELSE ic.relpages::int8 * pg_catalog.current_setting('block_size')::int8 END AS bytes,
       pg_catalog.pg_stat_get_numscans(x.indexrelid) AS scans,
       ${INDEX_SIGNATURE_COLUMNS}
  FROM pg_catalog.pg_index x
  JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
  JOIN pg_catalog.pg_class tc ON tc.oid = x.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
  CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM named WHERE named.s = n.nspname AND named.t = tc.relname) AS named) d
 WHERE tc.relkind IN ('r', 'p') AND tc.relpersistence <> 't' AND ${SYSTEM_SCHEMAS}`;

/** Relation names of the schemas the policies touch, to catch a new index name that is already taken. */
export const RELATION_NAMES_SQL = `
SELECT n.nspname AS schema, pg_catalog.array_agg(c.relname::text) AS names
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY($1::text[])
 GROUP BY n.nspname`;

export const MANAGED_INDEXES_SQL = `
SELECT schema_name AS schema, index_name AS name, table_name AS "table", policy_file, spec_hash, signature
  FROM pgwarden.managed_index`;
