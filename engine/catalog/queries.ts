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
       pg_catalog.to_regclass('pgwarden.managed_index') IS NOT NULL AS has_registry,
       pg_catalog.to_regclass('pgwarden.managed_setting') IS NOT NULL AS has_setting_registry`;

/**
 * All user tables. $1/$2: schema and table names the policies name; those get exact sizes, the rest
 * a relpages estimate (a stat() per relation adds up on large catalogs). Ordered by depth in the
 * partition tree, so a sub-partitioned table's partitions come after it and one pass over the rows sees
 * every level of a tree (pg_partition_ancestors, PostgreSQL 12+, only for partitions); then by OID
 * (creation order), so partitions, and the plan's steps for them, come in the same order every time.
 */
export const TABLES_SQL = `
WITH named AS (SELECT DISTINCT s, t FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS p(s, t))
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS relkind,
       CASE WHEN c.relispartition THEN
         (SELECT i.inhparent::int8 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) END AS parent_oid,
       CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partition_key,
       c.reltuples::float8 AS row_estimate,
       CASE WHEN named.t IS NOT NULL THEN pg_catalog.pg_relation_size(c.oid)
            ELSE c.relpages::int8 * pg_catalog.current_setting('block_size')::int8 END AS bytes,
       COALESCE(c.reloptions, '{}') AS reloptions,
       CASE WHEN c.reltoastrelid <> 0 THEN
         COALESCE((SELECT t.reloptions FROM pg_catalog.pg_class t WHERE t.oid = c.reltoastrelid), '{}') END AS toast_reloptions,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       -- CREATE INDEX, ALTER TABLE and ATTACH PARTITION need the owner's rights: membership in the owning role (superusers have all).
       pg_catalog.pg_has_role(c.relowner, 'USAGE') AS acts_as_owner,
       -- A new index or partition goes into the table's schema, which takes CREATE there too (PostgreSQL 15+ no longer grants it on public).
       pg_catalog.has_schema_privilege(c.relnamespace, 'CREATE') AS creates_in_schema
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN named ON named.s = n.nspname AND named.t = c.relname
 WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND ${SYSTEM_SCHEMAS}
 ORDER BY CASE WHEN c.relispartition THEN (SELECT pg_catalog.count(*) FROM pg_catalog.pg_partition_ancestors(c.oid)) ELSE 1 END, c.oid`;

/** pg_index.indnullsnotdistinct exists from PostgreSQL 15 on; before it, NULLs were always distinct. */
function nullsNotDistinct(serverVersion: number): string {
  return serverVersion >= 150000 ? 'x.indnullsnotdistinct' : 'false';
}

/**
 * The columns of an index's signature, from raw pg_index columns. Only expression keys and
 * predicates are deparsed — that is where nearly all of pg_get_indexdef's cost goes.
 * Used for live indexes and for the desired indexes canonicalised on scratch tables alike.
 */
export const indexSignatureColumns = (columns: string, serverVersion: number): string => `
       am.amname AS method, x.indisunique AS is_unique, ${nullsNotDistinct(serverVersion)} AS nulls_not_distinct,
       x.indnkeyatts::int AS key_count,
       ${columns} AS columns,
       CASE WHEN x.indexprs IS NOT NULL THEN
         ARRAY(SELECT CASE WHEN k.attnum = 0 THEN pg_catalog.pg_get_indexdef(x.indexrelid, k.ord::int, false) END
                 FROM pg_catalog.unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                ORDER BY k.ord) END AS expressions,
       x.indclass::oid[]::int8[] AS opclasses,
       x.indcollation::oid[]::int8[] AS collations,
       x.indoption::int2[]::int[] AS options,
       pg_catalog.pg_get_expr(x.indpred, x.indrelid, false) AS predicate`;

/** Key and INCLUDE column names of index `x`, looked up per index: right for a handful of indexes. */
export const INDEX_COLUMNS_PER_INDEX = `ARRAY(SELECT CASE WHEN k.attnum = 0 THEN NULL ELSE a.attname::text END
               FROM pg_catalog.unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
              ORDER BY k.ord)`;

/** The same for every index at once: one hashed join and aggregate, 3x cheaper than 20,000 lookups. */
const INDEX_COLUMNS_ALL = `
  LEFT JOIN (SELECT k.indexrelid,
                    pg_catalog.array_agg(CASE WHEN k.attnum = 0 THEN NULL ELSE a.attname::text END ORDER BY k.ord) AS names
               FROM (SELECT i.indexrelid, i.indrelid, u.attnum, u.ord
                       FROM pg_catalog.pg_index i, pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS u(attnum, ord)) k
               LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = k.indrelid AND a.attnum = k.attnum
              GROUP BY k.indexrelid) cols ON cols.indexrelid = x.indexrelid`;

/**
 * Indexes of every user table. No pg_get_indexdef here: deparsing is most of the cost on a large catalog, and the plan shows definitions only for the
 * few indexes it changes (INDEX_DEFINITIONS_SQL).
 */
export const indexesSql = (serverVersion: number): string => `
SELECT x.indexrelid::int8 AS oid, n.nspname AS schema, ic.relname AS name, x.indrelid::int8 AS table_oid,
       x.indisvalid AS is_valid, x.indisprimary AS is_primary,
       con.contype AS constraint_type,
       CASE WHEN ic.relispartition THEN
         (SELECT i.inhparent::int8 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = ic.oid) END AS parent_index_oid,
       COALESCE(ic.reloptions, '{}') AS reloptions,
       -- relpages, kept current by VACUUM, ANALYZE and CREATE INDEX: a stat() per index adds up to
       -- seconds on a catalog of 20,000 indexes, for a figure that is display-only.
       ic.relpages::int8 * pg_catalog.current_setting('block_size')::int8 AS bytes,
       pg_catalog.pg_stat_get_numscans(x.indexrelid) AS scans,
       ${indexSignatureColumns('cols.names', serverVersion)}
  FROM pg_catalog.pg_index x
  JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
  JOIN pg_catalog.pg_class tc ON tc.oid = x.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
  JOIN pg_catalog.pg_am am ON am.oid = ic.relam
  ${INDEX_COLUMNS_ALL}
  -- pg_constraint has no index on conindid: join it once (hashed) rather than look it up per index.
  LEFT JOIN (SELECT c.conindid, pg_catalog.min(c.contype::text) AS contype
               FROM pg_catalog.pg_constraint c
              WHERE c.contype IN ('p', 'u', 'x') GROUP BY c.conindid) con ON con.conindid = x.indexrelid
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

/** Display definitions of the indexes a plan acts on. $1/$2: schema and index names. */
export const INDEX_DEFINITIONS_SQL = `
SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_get_indexdef(c.oid) AS definition
  FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS p(s, i)
  JOIN pg_catalog.pg_namespace n ON n.nspname = p.s
  JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.i AND c.relkind IN ('i', 'I')`;

/**
 * What deriving a plain-column index's signature takes (engine/catalog/signature-facts.ts), for every
 * named table at once. $1/$2: schema and table names; $3: access method names.
 *   columns: [schema, table, column, type, collation] of each live column.
 *   collatable_types, nondeterministic_collations: among those columns' types and collations.
 *   default_opclasses: [type, method, opclass], the default operator class whose input type is exactly
 *     that type, only where there is exactly one: what GetDefaultOpClass returns for an exact match. The
 *     types it resolves otherwise (domains, varchar, arrays, enums, ranges: binary-coercible or
 *     polymorphic matches) have none here and are left to a scratch build.
 *   methods: what each access method supports, from its handler (pg_indexam_has_property, PostgreSQL 9.6+).
 * One row of json, so five result sets take one round trip. Types and collations are looked up once
 * each, not per column, and json (not jsonb) arrays rather than objects: for 35,000 columns that is
 * 110 ms instead of 400.
 */
export const SIGNATURE_FACTS_SQL = `
WITH named AS (SELECT DISTINCT s, t FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS p(s, t)),
columns AS MATERIALIZED (
  SELECT named.s AS schema, named.t AS tab, a.attname::text AS name, a.atttypid, a.attcollation
    FROM named
    JOIN pg_catalog.pg_namespace n ON n.nspname = named.s
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = named.t AND c.relkind IN ('r', 'p')
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
types AS (SELECT ty.oid, ty.typcollation FROM pg_catalog.pg_type ty WHERE ty.oid IN (SELECT atttypid FROM columns)),
methods AS (SELECT am.oid, am.amname FROM pg_catalog.pg_am am WHERE am.amtype = 'i' AND am.amname = ANY($3::text[])),
defaults AS (
  SELECT oc.opcintype, m.amname, pg_catalog.min(oc.oid) AS opclass
    FROM pg_catalog.pg_opclass oc
    JOIN methods m ON m.oid = oc.opcmethod
   WHERE oc.opcdefault AND oc.opcintype IN (SELECT oid FROM types)
   GROUP BY oc.opcintype, m.amname
  HAVING pg_catalog.count(*) = 1)
SELECT
  (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(schema, tab, name, atttypid::int8, attcollation::int8)) FROM columns) AS columns,
  (SELECT pg_catalog.json_agg(ty.oid::int8) FROM types ty WHERE ty.typcollation <> 0) AS collatable_types,
  (SELECT pg_catalog.json_agg(co.oid::int8) FROM pg_catalog.pg_collation co
    WHERE NOT co.collisdeterministic AND co.oid IN (SELECT attcollation FROM columns)) AS nondeterministic_collations,
  (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(opcintype::int8, amname, opclass::int8)) FROM defaults) AS default_opclasses,
  (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
            'name', amname,
            'can_order', pg_catalog.pg_indexam_has_property(oid, 'can_order'),
            'can_unique', pg_catalog.pg_indexam_has_property(oid, 'can_unique'),
            'can_multi_col', pg_catalog.pg_indexam_has_property(oid, 'can_multi_col'),
            'can_include', pg_catalog.pg_indexam_has_property(oid, 'can_include')))
     FROM methods) AS methods`;
