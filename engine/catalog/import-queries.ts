import { query, type CatalogSession } from './introspect.ts';

/**
 * What `pgwarden import` needs on top of plan's introspection to write an index back as a policy:
 * names where introspection has OIDs, and what decides whether the policy must spell an operator
 * class or collation out. One round trip (one row of json), whatever the catalog's size.
 *   opclasses: [oid, schema, name, is the default for its input type and method, input type] of every
 *     operator class a user index uses.
 *   collations: [oid, schema, name] of every collation a user index uses.
 *   index_keys: for every key column of every user index: its index, its position, its type (the table
 *     column's for a column key, the index attribute's for an expression), the table column's collation
 *     (0 for an expression), and whether it has operator class parameters (`siglen`).
 *   extension_owned: OIDs of the tables and indexes an extension created (left out of policies).
 *   replicas: application_name of each streaming standby (pg_stat_replication; empty without the
 *     privilege to see them).
 */
export const IMPORT_FACTS_SQL = `
WITH user_index AS MATERIALIZED (
  SELECT x.indexrelid, x.indrelid, x.indkey, x.indclass, x.indcollation, x.indnkeyatts
    FROM pg_catalog.pg_index x
    JOIN pg_catalog.pg_class tc ON tc.oid = x.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = tc.relnamespace
   WHERE tc.relkind IN ('r', 'p') AND tc.relpersistence <> 't'
     AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden')
     AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'),
-- One row per key column, flat: grouping 20,000 indexes' keys into per-index arrays here costs more
-- than the whole rest of the query; the caller groups them.
keys AS (
  SELECT u.indexrelid, ia.attnum AS ord,
         CASE WHEN (u.indkey::int2[])[ia.attnum - 1] = 0 THEN ia.atttypid ELSE ta.atttypid END AS key_type,
         COALESCE(ta.attcollation, 0) AS key_collation, ia.attoptions IS NOT NULL AS has_options
    FROM user_index u
    JOIN pg_catalog.pg_attribute ia ON ia.attrelid = u.indexrelid AND ia.attnum <= u.indnkeyatts
    LEFT JOIN pg_catalog.pg_attribute ta ON ta.attrelid = u.indrelid AND ta.attnum = (u.indkey::int2[])[ia.attnum - 1] AND ta.attnum > 0)
SELECT
  (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(oc.oid::int8, n.nspname, oc.opcname, oc.opcdefault, oc.opcintype::int8))
     FROM pg_catalog.pg_opclass oc JOIN pg_catalog.pg_namespace n ON n.oid = oc.opcnamespace
    WHERE oc.oid IN (SELECT pg_catalog.unnest(indclass::oid[]) FROM user_index)) AS opclasses,
  (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(co.oid::int8, n.nspname, co.collname))
     FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
    WHERE co.oid IN (SELECT pg_catalog.unnest(indcollation::oid[]) FROM user_index)) AS collations,
  (SELECT pg_catalog.json_build_array(pg_catalog.array_agg(indexrelid::int8), pg_catalog.array_agg(ord), pg_catalog.array_agg(key_type::int8),
                                      pg_catalog.array_agg(key_collation::int8), pg_catalog.array_agg(has_options))
     FROM keys) AS index_keys,
  (SELECT pg_catalog.json_agg(d.objid::int8)
     FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
      AND d.deptype = 'e') AS extension_owned,
  (SELECT pg_catalog.json_agg(r.application_name ORDER BY r.application_name)
     FROM pg_catalog.pg_stat_replication r) AS replicas`;

/** json_agg of nothing is null. */
interface ImportFactsRow {
  opclasses: [oid: number, schema: string, name: string, isDefault: boolean, inputType: number][] | null;
  collations: [oid: number, schema: string, name: string][] | null;
  /** Parallel arrays, one entry per key column: index, key position (1-based), type, column collation, opclass options. */
  index_keys: [indexes: number[] | null, positions: number[] | null, types: number[] | null, collations: number[] | null, options: boolean[] | null];
  extension_owned: number[] | null;
  replicas: (string | null)[] | null;
}

export interface OpclassFacts {
  readonly schema: string;
  readonly name: string;
  readonly isDefault: boolean;
  readonly inputType: number;
}

export interface ImportFacts {
  readonly opclasses: ReadonlyMap<number, OpclassFacts>;
  readonly collations: ReadonlyMap<number, { readonly schema: string; readonly name: string }>;
  /** By index OID: each key's type and its table column's collation (0 for an expression). */
  readonly indexKeys: ReadonlyMap<number, { readonly types: readonly number[]; readonly collations: readonly number[]; readonly opclassOptions: boolean }>;
  readonly extensionOwned: ReadonlySet<number>;
  readonly replicas: readonly string[];
}

export async function readImportFacts(session: CatalogSession): Promise<ImportFacts> {
  const [row] = await query<ImportFactsRow>(session, IMPORT_FACTS_SQL);
  return {
    opclasses: new Map((row?.opclasses ?? []).map(([oid, schema, name, isDefault, inputType]) => [oid, { schema, name, isDefault, inputType }])),
    collations: new Map((row?.collations ?? []).map(([oid, schema, name]) => [oid, { schema, name }])),
    indexKeys: groupKeys(row?.index_keys),
    extensionOwned: new Set(row?.extension_owned ?? []),
    replicas: (row?.replicas ?? []).map((name, i) => name || `standby${i + 1}`),
  };
}

function groupKeys(flat: ImportFactsRow['index_keys'] | undefined): Map<number, { types: number[]; collations: number[]; opclassOptions: boolean }> {
  const byIndex = new Map<number, { types: number[]; collations: number[]; opclassOptions: boolean }>();
  const [indexes, positions, types, collations, options] = flat ?? [null, null, null, null, null];
  for (const [i, oid] of (indexes ?? []).entries()) {
    const keys = byIndex.get(oid) ?? { types: [], collations: [], opclassOptions: false };
    const at = (positions?.[i] ?? 1) - 1;
    keys.types[at] = types?.[i] ?? 0;
    keys.collations[at] = collations?.[i] ?? 0;
    keys.opclassOptions ||= options?.[i] ?? false;
    byIndex.set(oid, keys);
  }
  return byIndex;
}
