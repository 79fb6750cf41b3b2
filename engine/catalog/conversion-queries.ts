import { query, type CatalogSession } from './introspect.ts';
import { qualified, ident } from '../sql/ident.ts';

/**
 * What converting a plain table into a partitioned one needs to know about it, read before the diff
 * decides anything (engine/diff/convert-change.ts): its columns, constraints, what depends on it, the
 * range of its partition key, and how fast its rows copy. One round trip for the structure of every
 * table a `partitioning:` policy names that is still plain, then one per such table for its key range
 * and a timed sample: a conversion is rare and these read rows, which no catalog query can.
 */

export interface ConversionColumn {
  readonly name: string;
  /** format_type(): what a bind parameter is cast to when the copy compares keys. */
  readonly type: string;
  readonly notNull: boolean;
  /** pg_attribute.attidentity: '' none, 'a' ALWAYS, 'd' BY DEFAULT. */
  readonly identity: '' | 'a' | 'd';
  /** A generated column is computed again on the new table, never copied. */
  readonly generated: boolean;
  /** The sequence the column owns (serial or identity), qualified and quoted; null when none. */
  readonly sequence: string | null;
  /** That sequence's owner: the swap links it to the new table, which PostgreSQL allows only between one owner's objects. */
  readonly sequenceOwner: string | null;
}

export interface ConversionConstraint {
  readonly name: string;
  /** p primary key, u unique, x exclusion. */
  readonly type: 'p' | 'u' | 'x';
  readonly columns: readonly string[];
  /** pg_get_constraintdef: `PRIMARY KEY (id, created_at)`, no table name in it. */
  readonly definition: string;
}

export interface ForeignKeyFact {
  readonly name: string;
  /** The referencing table. */
  readonly schema: string;
  readonly table: string;
  readonly definition: string;
  /** The columns of the converted table it references, in the key's order. */
  readonly referencedColumns: readonly string[];
}

export interface DependentView {
  readonly schema: string;
  readonly name: string;
  /** v view, m materialized view. */
  readonly kind: 'v' | 'm';
  readonly oid: number;
  /** pg_get_viewdef with an empty search_path (every name qualified); '' until `withViewDefinitions` reads it. */
  readonly definition: string;
}

/** A conversion recorded in `pgwarden.conversion`, as the last apply left it. */
export interface ConversionRecord {
  /** The plain table's OID when the conversion began: a table recreated since is another table. */
  readonly relid: number;
  readonly newName: string;
  /** copying: the new table and capture are in place, `watermark` copied so far; swapped: done, the old table kept. */
  readonly phase: 'copying' | 'swapped';
  /** The last primary key value copied, column by column as text; null before the first batch. */
  readonly watermark: readonly string[] | null;
  readonly rowsCopied: number;
  readonly oldName: string;
}

export interface ConversionFacts {
  readonly schema: string;
  readonly name: string;
  readonly oid: number;
  /** r plain table, p partitioned. */
  readonly relkind: 'r' | 'p';
  readonly owner: string;
  /** current_user: it creates the new table, so it owns it. */
  readonly applyingRole: string;
  /** The applying role has its owner's privileges (is it, or a member that inherits): renaming the table needs them. */
  readonly ownerPrivileges: boolean;
  readonly rowEstimate: number;
  /** pg_total_relation_size: heap, TOAST and indexes. */
  readonly bytes: number;
  readonly heapBytes: number;
  readonly columns: readonly ConversionColumn[];
  readonly keys: readonly ConversionConstraint[];
  /** CHECK constraints that are NO INHERIT: a partitioned table refuses them. */
  readonly noInheritChecks: readonly string[];
  /** Foreign keys of this table (carried over to the new one). */
  readonly foreignKeysOut: readonly { readonly name: string; readonly definition: string }[];
  /** Foreign keys of other tables (or this one) that reference it. */
  readonly foreignKeysIn: readonly ForeignKeyFact[];
  readonly views: readonly DependentView[];
  readonly rules: readonly string[];
  readonly inheritanceChildren: readonly string[];
  readonly inheritanceParents: readonly string[];
  /** Triggers a user made (not pgwarden's capture, not constraint triggers). */
  readonly userTriggers: readonly string[];
  /** pg_class.relreplident: d default (the primary key), n nothing, f full, i an index. */
  readonly replicaIdentity: 'd' | 'n' | 'f' | 'i';
  /** Indexes that back no constraint, by name: carried over only when a policy declares them. */
  readonly plainIndexes: readonly string[];
  /** GRANTs on the table, as `privilege` to `grantee` (PUBLIC when the grantee is 0). */
  readonly grants: readonly { readonly grantee: string; readonly privilege: string }[];
  readonly publications: readonly string[];
  readonly record: ConversionRecord | null;
  /** The new table the record names exists (a partitioned table), and the capture trigger is on the old one. */
  readonly newTableExists: boolean;
  readonly captureTriggerExists: boolean;
}

/** What the key range query found, and what a timed sample copy measured. */
export interface KeyRange {
  /** The key's smallest and largest value as epoch milliseconds (UTC for timestamp and date); null: no rows. */
  readonly minMs: number | null;
  readonly maxMs: number | null;
  /** Rows whose key is NULL (0 without a scan when the column is NOT NULL). */
  readonly nullKeys: number;
  /** Rows copied per second into a scratch table with the primary key, on a sample; null: no rows. */
  readonly sampleRowsPerSecond: number | null;
  readonly sampleRows: number;
  /** Exact row count, from the same scan. */
  readonly rows: number;
}

/** The table a conversion builds beside the plain one. */
export function convertingName(table: string): string {
  return cut(table, '_pgwarden_convert');
}

/** What the plain table is renamed to at the swap. */
export function unpartitionedName(table: string): string {
  return cut(table, '_unpartitioned');
}

/** The capture trigger's name on the plain table (and its TRUNCATE guard). */
export const CAPTURE_TRIGGER = 'pgwarden_convert_capture';
export const TRUNCATE_GUARD = 'pgwarden_convert_no_truncate';

/** The capture function, in pgwarden's schema, named after the plain table's OID so two conversions never share one. */
export function captureFunctionName(oid: number): string {
  return `convert_capture_${oid}`;
}

/** `base + suffix` within 63 bytes, cut on a character boundary. */
export function cut(base: string, suffix: string): string {
  let b = base;
  while (Buffer.byteLength(b + suffix, 'utf8') > 63) b = [...b].slice(0, -1).join('');
  return b + suffix;
}

const FACTS_SQL = `
WITH named AS (SELECT s, t FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS p(s, t))
SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relkind, pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       c.reltuples::float8 AS row_estimate, pg_catalog.pg_total_relation_size(c.oid) AS bytes,
       pg_catalog.pg_relation_size(c.oid) AS heap_bytes, c.relreplident AS replica_identity,
       COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                  'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'notNull', a.attnotnull,
                  'identity', a.attidentity, 'generated', a.attgenerated <> '',
                  'sequence', (SELECT pg_catalog.quote_ident(sn.nspname) || '.' || pg_catalog.quote_ident(sc.relname)
                                 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class sc ON sc.oid = d.objid
                                 JOIN pg_catalog.pg_namespace sn ON sn.oid = sc.relnamespace
                                WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid AND d.refobjsubid = a.attnum
                                  AND d.classid = 'pg_catalog.pg_class'::regclass AND sc.relkind = 'S' AND d.deptype IN ('a', 'i') LIMIT 1),
                  'sequenceOwner', (SELECT pg_catalog.pg_get_userbyid(sc.relowner)
                                 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class sc ON sc.oid = d.objid
                                WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid AND d.refobjsubid = a.attnum
                                  AND d.classid = 'pg_catalog.pg_class'::regclass AND sc.relkind = 'S' AND d.deptype IN ('a', 'i') LIMIT 1))
                  ORDER BY a.attnum)
                 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns,
       COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                  'name', k.conname, 'type', k.contype, 'definition', pg_catalog.pg_get_constraintdef(k.oid),
                  'columns', (SELECT pg_catalog.json_agg(a.attname ORDER BY u.ord) FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
                                JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum)) ORDER BY k.contype, k.conname)
                 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'x')), '[]') AS keys,
       ARRAY(SELECT k.conname::text FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c' AND k.connoinherit ORDER BY 1) AS no_inherit_checks,
       COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object('name', k.conname, 'definition', pg_catalog.pg_get_constraintdef(k.oid)) ORDER BY k.conname)
                 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'f'), '[]') AS foreign_keys_out,
       COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object('name', k.conname, 'schema', fn.nspname, 'table', fc.relname,
                                                                          'definition', pg_catalog.pg_get_constraintdef(k.oid),
                                                                          'referencedColumns', (SELECT pg_catalog.json_agg(a.attname ORDER BY u.ord) FROM pg_catalog.unnest(k.confkey) WITH ORDINALITY AS u(attnum, ord)
                                                                                                  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = u.attnum)) ORDER BY fn.nspname, fc.relname, k.conname)
                 FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class fc ON fc.oid = k.conrelid JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
                WHERE k.confrelid = c.oid AND k.contype = 'f'), '[]') AS foreign_keys_in,
       COALESCE((SELECT pg_catalog.json_agg(DISTINCT pg_catalog.jsonb_build_object('schema', vn.nspname, 'name', v.relname, 'kind', v.relkind, 'oid', v.oid::int8))
                 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
                 JOIN pg_catalog.pg_class v ON v.oid = r.ev_class JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
                WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
                  AND d.refobjid = c.oid AND v.oid <> c.oid), '[]') AS views,
       ARRAY(SELECT r.rulename::text FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN' ORDER BY 1) AS rules,
       ARRAY(SELECT i.inhrelid::regclass::text FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid ORDER BY 1) AS inheritance_children,
       ARRAY(SELECT i.inhparent::regclass::text FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid ORDER BY 1) AS inheritance_parents,
       ARRAY(SELECT t.tgname::text FROM pg_catalog.pg_trigger t
              WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgname NOT IN ($3, $4) ORDER BY 1) AS user_triggers,
       ARRAY(SELECT ic.relname::text FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
              WHERE x.indrelid = c.oid AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = c.oid)
              ORDER BY 1) AS plain_indexes,
       COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                  'grantee', CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(g.grantee) END, 'privilege', g.privilege_type))
                 FROM pg_catalog.aclexplode(c.relacl) g WHERE g.grantee <> c.relowner), '[]') AS grants,
       ARRAY(SELECT p.pubname::text FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
              WHERE pr.prrelid = c.oid ORDER BY 1) AS publications,
       EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = $3) AS capture_trigger_exists,
       CURRENT_USER::text AS applying_role, pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owner_privileges
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN named ON named.s = n.nspname AND named.t = c.relname
 WHERE c.relkind IN ('r', 'p')`;

interface FactsRow {
  oid: string;
  schema: string;
  name: string;
  relkind: 'r' | 'p';
  owner: string;
  row_estimate: number;
  bytes: string;
  heap_bytes: string;
  replica_identity: 'd' | 'n' | 'f' | 'i';
  columns: ConversionColumn[];
  keys: ConversionConstraint[];
  no_inherit_checks: string[];
  foreign_keys_out: { name: string; definition: string }[];
  foreign_keys_in: ForeignKeyFact[];
  views: DependentView[];
  rules: string[];
  inheritance_children: string[];
  inheritance_parents: string[];
  user_triggers: string[];
  plain_indexes: string[];
  grants: { grantee: string; privilege: string }[];
  publications: string[];
  capture_trigger_exists: boolean;
  applying_role: string;
  owner_privileges: boolean;
}

const RECORDS_SQL = `
SELECT r.schema_name, r.table_name, r.relid::int8 AS relid, r.new_name, r.old_name, r.phase, r.watermark, r.rows_copied::int8 AS rows_copied,
       EXISTS (SELECT 1 FROM pg_catalog.pg_class nc JOIN pg_catalog.pg_namespace nn ON nn.oid = nc.relnamespace
                WHERE nn.nspname = r.schema_name AND nc.relname = r.new_name AND nc.relkind = 'p') AS new_exists
  FROM pgwarden.conversion r
 WHERE (r.schema_name, r.table_name) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])))`;

interface RecordRow {
  schema_name: string;
  table_name: string;
  relid: string;
  new_name: string;
  old_name: string;
  phase: 'copying' | 'swapped';
  watermark: string[] | null;
  rows_copied: string;
  new_exists: boolean;
}

export interface ConversionTarget {
  readonly schema: string;
  readonly name: string;
}

/**
 * The structure of each named table, and pgwarden's record of a conversion of it. Two round trips:
 * the facts, then the record (only when `pgwarden.conversion` exists, which the first answers).
 */
export async function readConversionFacts(session: CatalogSession, tables: readonly ConversionTarget[]): Promise<ConversionFacts[]> {
  if (tables.length === 0) return [];
  const rows = await query<FactsRow & { registry: boolean }>(
    session,
    `WITH facts AS (${FACTS_SQL})
     SELECT facts.*, pg_catalog.to_regclass('pgwarden.conversion') IS NOT NULL AS registry
       FROM facts`,
    [
      tables.map((t) => t.schema),
      tables.map((t) => t.name),
      CAPTURE_TRIGGER,
      TRUNCATE_GUARD,
    ],
  );
  const records = rows.some((r) => r.registry) ? await query<RecordRow>(session, RECORDS_SQL, [tables.map((t) => t.schema), tables.map((t) => t.name)]) : [];
  return rows.map((r) => {
    const rec = records.find((x) => x.schema_name === r.schema && x.table_name === r.name);
    return {
      schema: r.schema,
      name: r.name,
      oid: Number(r.oid),
      relkind: r.relkind,
      owner: r.owner,
      applyingRole: r.applying_role,
      ownerPrivileges: r.owner_privileges,
      rowEstimate: r.row_estimate,
      bytes: Number(r.bytes),
      heapBytes: Number(r.heap_bytes),
      columns: r.columns,
      keys: r.keys,
      noInheritChecks: r.no_inherit_checks,
      foreignKeysOut: r.foreign_keys_out,
      foreignKeysIn: r.foreign_keys_in,
      views: r.views,
      rules: r.rules,
      inheritanceChildren: r.inheritance_children,
      inheritanceParents: r.inheritance_parents,
      userTriggers: r.user_triggers,
      replicaIdentity: r.replica_identity,
      plainIndexes: r.plain_indexes,
      grants: r.grants,
      publications: r.publications,
      record: rec
        ? { relid: Number(rec.relid), newName: rec.new_name, oldName: rec.old_name, phase: rec.phase, watermark: rec.watermark, rowsCopied: Number(rec.rows_copied) }
        : null,
      newTableExists: rec?.new_exists ?? false,
      captureTriggerExists: r.capture_trigger_exists,
    };
  });
}

/** Tables a finished conversion left behind (`<table>_unpartitioned`), still there: `apply --allow-drop` drops them. */
export interface KeptTable {
  readonly schema: string;
  readonly table: string;
  readonly oldName: string;
  readonly rowEstimate: number;
  readonly bytes: number;
}

export async function keptTables(session: CatalogSession, tables: readonly { schema: string; name: string }[]): Promise<KeptTable[]> {
  if (tables.length === 0) return [];
  const rows = await query<{ schema_name: string; table_name: string; old_name: string; row_estimate: number; bytes: string }>(
    session,
    `SELECT r.schema_name, r.table_name, r.old_name, c.reltuples::float8 AS row_estimate, pg_catalog.pg_total_relation_size(c.oid) AS bytes
       FROM pgwarden.conversion r JOIN pg_catalog.pg_class c ON c.oid = r.relid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = r.schema_name AND c.relname = r.old_name
      WHERE r.phase = 'swapped' AND pg_catalog.to_regclass('pgwarden.conversion') IS NOT NULL
        AND (r.schema_name, r.table_name) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])))`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return rows.map((r) => ({ schema: r.schema_name, table: r.table_name, oldName: r.old_name, rowEstimate: r.row_estimate, bytes: Number(r.bytes) }));
}

/** Is the registry there at all (a database pgwarden never applied to has no `pgwarden` schema)? */
export async function conversionRegistryExists(session: CatalogSession): Promise<boolean> {
  const [row] = await query<{ ok: boolean }>(session, `SELECT pg_catalog.to_regclass('pgwarden.conversion') IS NOT NULL AS ok`);
  return row?.ok ?? false;
}

/** Rows in the timed sample: enough to time, small enough for a plan to stay quick. */
export const SAMPLE_ROWS = 20_000;

/**
 * The key's range, its NULLs and the exact row count in one scan; then a sample of rows copied into a
 * scratch table with the same primary key, timed on the server and rolled back (a temporary table: no
 * WAL, nothing left behind). The estimate this gives is a floor: the real copy also routes rows to
 * partitions, maintains every declared index, and writes WAL.
 */
export async function readKeyRange(
  session: CatalogSession,
  table: { schema: string; name: string },
  key: { column: string; notNull: boolean },
  primaryKey: readonly string[],
): Promise<KeyRange> {
  const rel = qualified(table.schema, table.name);
  const col = ident(key.column);
  const [range] = await query<{ min_ms: number | null; max_ms: number | null; nulls: string; rows: string }>(
    session,
    `SELECT (EXTRACT(epoch FROM pg_catalog.min(${col})) * 1000)::float8 AS min_ms,
            (EXTRACT(epoch FROM pg_catalog.max(${col})) * 1000)::float8 AS max_ms,
            ${key.notNull ? '0' : `pg_catalog.count(*) FILTER (WHERE ${col} IS NULL)`} AS nulls, pg_catalog.count(*) AS rows
       FROM (SELECT ${col} FROM ONLY ${rel}) t`,
  );
  // EXTRACT(epoch): a timestamptz's instant; a timestamp's or date's wall-clock time read as UTC, as bounds are.
  const rows = Number(range?.rows ?? 0);
  if (rows === 0 || primaryKey.length === 0) {
    return { minMs: range?.min_ms ?? null, maxMs: range?.max_ms ?? null, nullKeys: Number(range?.nulls ?? 0), sampleRowsPerSecond: null, sampleRows: 0, rows };
  }
  const order = primaryKey.map(ident).join(', ');
  // Timed in a transaction that is rolled back: a temporary table, no WAL, nothing left behind.
  let sample: { ms: number; n: number } = { ms: 0, n: 0 };
  await query(session, 'BEGIN');
  try {
    await query(session, `CREATE TEMPORARY TABLE pgwarden_convert_sample (LIKE ${rel} INCLUDING DEFAULTS) ON COMMIT DROP`);
    await query(session, `ALTER TABLE pgwarden_convert_sample ADD PRIMARY KEY (${order})`);
    const [timed] = await query<{ ms: number; n: string }>(
      session,
      `WITH t0 AS MATERIALIZED (SELECT pg_catalog.clock_timestamp() AS at),
            ins AS (INSERT INTO pgwarden_convert_sample SELECT * FROM ONLY ${rel} ORDER BY ${order} LIMIT ${SAMPLE_ROWS} RETURNING 1)
       SELECT (SELECT pg_catalog.count(*) FROM ins) AS n,
              EXTRACT(epoch FROM pg_catalog.clock_timestamp() - (SELECT at FROM t0))::float8 * 1000 AS ms`,
    );
    sample = { ms: timed?.ms ?? 0, n: Number(timed?.n ?? 0) };
  } catch {
    // No TEMP privilege, or a type without a btree for the key: the plan goes on without an estimate.
    sample = { ms: 0, n: 0 };
  } finally {
    await query(session, 'ROLLBACK');
  }
  const n = sample.n;
  const ms = Math.max(sample.ms, 0.001);
  return { minMs: range?.min_ms ?? null, maxMs: range?.max_ms ?? null, nullKeys: Number(range?.nulls ?? 0), sampleRowsPerSecond: n > 0 ? (n / ms) * 1000 : null, sampleRows: n, rows };
}

/** Which of `names` already exist as relations in `schema`. */
export async function existingRelations(session: CatalogSession, schema: string, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const rows = await query<{ name: string }>(
    session,
    `SELECT c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = ANY ($2::text[]) ORDER BY 1`,
    [schema, names],
  );
  return rows.map((r) => r.name);
}

/**
 * The dependent views' queries and the definitions of the foreign keys that reference the table,
 * printed with an empty search_path so that every name in them is qualified: the swap recreates each,
 * and `schema.table` then means the new table.
 */
export async function withViewDefinitions(session: CatalogSession, facts: ConversionFacts): Promise<ConversionFacts> {
  if (facts.views.length === 0 && facts.foreignKeysIn.length === 0) return facts;
  await query(session, `BEGIN READ ONLY; SET LOCAL search_path = ''`);
  try {
    const rows = await query<{ oid: string; definition: string }>(
      session,
      `SELECT v.oid::int8 AS oid, pg_catalog.pg_get_viewdef(v.oid) AS definition FROM pg_catalog.pg_class v WHERE v.oid = ANY ($1::oid[])`,
      [facts.views.map((v) => v.oid)],
    );
    const keys = await query<{ name: string; schema: string; table: string; definition: string }>(
      session,
      `SELECT k.conname AS name, fn.nspname AS schema, fc.relname AS table, pg_catalog.pg_get_constraintdef(k.oid) AS definition
         FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class fc ON fc.oid = k.conrelid JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
        WHERE k.confrelid = $1 AND k.contype = 'f'`,
      [facts.oid],
    );
    const byOid = new Map(rows.map((r) => [Number(r.oid), r.definition]));
    const keyDefinition = (f: ForeignKeyFact): string => keys.find((k) => k.name === f.name && k.schema === f.schema && k.table === f.table)?.definition ?? f.definition;
    return {
      ...facts,
      views: facts.views.map((v) => ({ ...v, definition: byOid.get(Number(v.oid)) ?? '' })),
      foreignKeysIn: facts.foreignKeysIn.map((f) => ({ ...f, definition: keyDefinition(f) })),
    };
  } finally {
    await query(session, 'COMMIT');
  }
}

/**
 * Where the streaming standbys stand, for the copy's throttle: the primary's WAL position and clock,
 * and the standby furthest behind: the position it last reported replayed, and when it sent that report
 * (its own clock). `replay_lag` alone is not enough: it is measured only when replay passes a sampled
 * position, so a standby whose replay stopped (paused, or stuck on a conflict) keeps showing its last
 * small value while it falls further behind. Positions as byte offsets (text: they pass 2^53).
 */
export const REPLICA_POSITION_SQL = `SELECT (pg_catalog.pg_current_wal_lsn() - '0/0'::pg_lsn)::text AS current_bytes,
  (EXTRACT(epoch FROM pg_catalog.clock_timestamp()) * 1000)::float8 AS now_ms,
  w.replayed_bytes, w.reply_ms, w.reported_lag_ms,
  (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_replication r)::int AS standbys
  FROM (SELECT NULL) AS one
  LEFT JOIN LATERAL (SELECT (r.replay_lsn - '0/0'::pg_lsn)::text AS replayed_bytes, (EXTRACT(epoch FROM r.reply_time) * 1000)::float8 AS reply_ms,
                            (EXTRACT(epoch FROM r.replay_lag) * 1000)::float8 AS reported_lag_ms
                       FROM pg_catalog.pg_stat_replication r ORDER BY r.replay_lsn NULLS FIRST LIMIT 1) AS w ON true`;

export interface ReplicaPositionRow {
  readonly current_bytes: string;
  readonly now_ms: number;
  readonly replayed_bytes: string | null;
  readonly reply_ms: number | null;
  readonly reported_lag_ms: number | null;
  readonly standbys: number;
}
