import type pg from 'pg';
import type { TableName } from './introspect.ts';
import { query, type CatalogSession } from './introspect.ts';
import { qualified, ident } from '../sql/ident.ts';

/**
 * What the partition policies need beyond `introspect()`: for each table a `partitioning:` policy names,
 * its partition key, the type of the declared column, and every partition with its bounds in a form that
 * does not depend on the session (UTC, ISO 8601). One round trip whatever the number of partitions.
 */

/** The column types a time range can be declared on; anything else is a policy error. */
export type TimeKeyType = 'date' | 'timestamp' | 'timestamptz';

/** A range bound: an instant (`2026-11-01T00:00:00.000000Z`), or PostgreSQL's MINVALUE / MAXVALUE. */
export type RangeBound = string;

export interface ActualPartition {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** DEFAULT partition. */
  readonly isDefault: boolean;
  /** Range bounds; null for a default partition or a bound that is not a single-column range. */
  readonly from: RangeBound | null;
  readonly to: RangeBound | null;
  /** The bound as PostgreSQL prints it, for messages. */
  readonly boundText: string;
  /** A `DETACH ... CONCURRENTLY` was interrupted: the partition is half-detached until FINALIZE. */
  readonly detachPending: boolean;
  readonly partitioned: boolean;
  /** pg_class.reltuples: -1 when never vacuumed or analyzed. */
  readonly rowEstimate: number;
  /** Table, indexes and TOAST, from relpages: an estimate as of the last VACUUM or ANALYZE. */
  readonly totalBytes: number;
}

/** A foreign key that references the partitioned table (or one of its partitions). */
export interface ReferencingKey {
  readonly name: string;
  /** The referencing table. */
  readonly schema: string;
  readonly table: string;
  /** pg_constraint.confdeltype: a no action, r restrict, c cascade, n set null, d set default. */
  readonly onDelete: 'a' | 'r' | 'c' | 'n' | 'd';
  /** pg_get_constraintdef: what re-creates it. */
  readonly definition: string;
}

export interface PartitionedTableInfo {
  readonly schema: string;
  readonly name: string;
  readonly oid: number;
  readonly partitioned: boolean;
  /** `r` range, `l` list, `h` hash; null for a plain table. */
  readonly strategy: 'r' | 'l' | 'h' | null;
  /** Key columns in order; null for an expression key. */
  readonly keyColumns: readonly (string | null)[];
  /** The type of every column, by name (`format_type`), to check the declared column. */
  readonly columnTypes: Readonly<Record<string, string>>;
  /** Insertable columns in order (not dropped, not generated): what a row move copies. */
  readonly insertableColumns: readonly string[];
  readonly rowEstimate: number;
  readonly bytes: number;
  readonly partitions: readonly ActualPartition[];
  /** Foreign keys of other tables (or this one) whose referenced side is this table or a partition of it. */
  readonly referencingKeys: readonly ReferencingKey[];
  /** User triggers on the default partition that fire on DELETE (the parent's row triggers, cloned, included). */
  readonly defaultDeleteTriggers: readonly string[];
}

/**
 * One side of a range bound as pg_get_expr printed it (`'2026-11-01 01:00:00+01'`, or MINVALUE) as epoch
 * seconds. `type` is the key column's type OID: 1184 timestamptz, 1114 timestamp, 1082 date (a wall-clock
 * time or a date counts as UTC). String functions, not a regular expression per bound: on 1,000
 * partitions the difference is most of the query's time.
 */
function epochOf(side: string, type: string): string {
  return `CASE WHEN ${side} IS NULL THEN NULL
       WHEN ${side} !~~ '''%' THEN ${side}
       WHEN ${type} = 1184 THEN pg_catalog.date_part('epoch', pg_catalog.btrim(${side}, '''')::timestamptz)::text
       WHEN ${type} IN (1114, 1082) THEN pg_catalog.date_part('epoch', pg_catalog.btrim(${side}, '''')::timestamp)::text END`;
}

/**
 * $1/$2: schema and table names. Bounds are deparsed by pg_get_expr in the session's TimeZone and
 * DateStyle, then cast back in the same session (so it reads them exactly) to epoch seconds: the result is
 * the same whatever the session settings were.
 */
export const PARTITIONED_TABLES_SQL = `
WITH named AS (SELECT s, t FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS p(s, t)),
tables AS (
  SELECT c.oid, n.nspname, c.relname, c.relkind, c.reltuples, pt.partstrat, pt.partattrs, pt.partdefid,
         -- the type of the first key column, to read the bounds back
         (SELECT ka.atttypid FROM pg_catalog.pg_attribute ka WHERE ka.attrelid = c.oid AND ka.attnum = pt.partattrs[0]) AS key_type
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN named ON named.s = n.nspname AND named.t = c.relname
    LEFT JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = c.oid
   WHERE c.relkind IN ('r', 'p')),
-- MATERIALIZED: each bound is deparsed once (a flattened subquery would deparse it per reference)
parts AS MATERIALIZED (
  SELECT i.inhparent AS parent, pc.oid, pn.nspname, pc.relname, pc.relkind, pc.reltuples, i.inhdetachpending,
         -- from relpages (as of the last VACUUM / ANALYZE): a stat() per file of 1,000 partitions (heap,
         -- TOAST, each index) would be most of the query's time
         (pc.relpages::int8 + COALESCE((SELECT tc.relpages FROM pg_catalog.pg_class tc WHERE tc.oid = pc.reltoastrelid), 0)
          + COALESCE((SELECT pg_catalog.sum(ic.relpages) FROM pg_catalog.pg_index x
                       JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid WHERE x.indrelid = pc.oid), 0))::int8
           * pg_catalog.current_setting('block_size')::int8 AS bytes,
         pg_catalog.pg_get_expr(pc.relpartbound, pc.oid) AS bound
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class pc ON pc.oid = i.inhrelid
    JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
   WHERE i.inhparent IN (SELECT oid FROM tables)),
-- a single-column range bound split into its two sides; anything else (several columns, list, hash) stays unparsed
sides AS MATERIALIZED (
  SELECT p.*,
         CASE WHEN p.single THEN pg_catalog.substr(pg_catalog.split_part(p.bound, ') TO (', 1), 18) END AS lo,
         CASE WHEN p.single THEN pg_catalog.rtrim(pg_catalog.split_part(p.bound, ') TO (', 2), ')') END AS hi
    FROM (SELECT parts.*, parts.bound ~~ 'FOR VALUES FROM (%) TO (%)' AND parts.bound !~~ '%, %' AS single FROM parts) p)
SELECT t.oid::int8 AS oid, t.nspname AS schema, t.relname AS name, t.relkind = 'p' AS partitioned,
       t.partstrat AS strategy,
       COALESCE(ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(t.partattrs::int2[]) WITH ORDINALITY AS k(attnum, ord)
                        LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                       ORDER BY k.ord), '{}') AS key_columns,
       COALESCE((SELECT pg_catalog.jsonb_object_agg(a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod))
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}') AS column_types,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              ORDER BY a.attnum) AS insertable_columns,
       t.reltuples::float8 AS row_estimate,
       pg_catalog.pg_total_relation_size(t.oid) AS bytes,
       -- conparentid = 0: the constraint as declared, not its clones on each partition (PostgreSQL 12+)
       COALESCE((
         SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                  'name', fk.conname, 'schema', fn.nspname, 'table', fc.relname, 'onDelete', fk.confdeltype,
                  'definition', pg_catalog.pg_get_constraintdef(fk.oid)) ORDER BY fn.nspname, fc.relname, fk.conname)
           FROM pg_catalog.pg_constraint fk
           JOIN pg_catalog.pg_class fc ON fc.oid = fk.conrelid
           JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
          WHERE fk.contype = 'f' AND fk.conparentid = 0
            AND (fk.confrelid = t.oid OR fk.confrelid IN (SELECT p.oid FROM parts p WHERE p.parent = t.oid))), '[]') AS referencing_keys,
       -- tgtype bit 3 is DELETE; a clone of the parent's row trigger is internal before PostgreSQL 15
       ARRAY(SELECT tg.tgname::text FROM pg_catalog.pg_trigger tg
              WHERE tg.tgrelid = t.partdefid AND (tg.tgtype::int & 8) <> 0
                AND (NOT tg.tgisinternal OR (tg.tgparentid <> 0 AND tg.tgconstraint = 0))
              ORDER BY 1) AS default_delete_triggers,
       COALESCE((
         SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                  'oid', s.oid::int8, 'schema', s.nspname, 'name', s.relname,
                  'isDefault', s.oid = t.partdefid,
                  'boundText', s.bound,
                  'from', ${epochOf('s.lo', 't.key_type')},
                  'to', ${epochOf('s.hi', 't.key_type')},
                  'detachPending', s.inhdetachpending,
                  'partitioned', s.relkind = 'p',
                  'rowEstimate', s.reltuples::float8,
                  'totalBytes', s.bytes) ORDER BY s.relname)
           FROM sides s WHERE s.parent = t.oid), '[]') AS partitions
  FROM tables t`;

interface PartitionedTableRow {
  oid: string;
  schema: string;
  name: string;
  partitioned: boolean;
  strategy: 'r' | 'l' | 'h' | null;
  key_columns: (string | null)[];
  column_types: Record<string, string>;
  insertable_columns: string[];
  row_estimate: number;
  bytes: string;
  partitions: ActualPartition[];
  referencing_keys: ReferencingKey[];
  default_delete_triggers: string[];
}

/** Epoch seconds (or MINVALUE / MAXVALUE) as the canonical bound. */
function canonical(bound: string | null): RangeBound | null {
  if (bound === null || bound === 'MINVALUE' || bound === 'MAXVALUE') return bound;
  const seconds = Number(bound);
  if (!Number.isFinite(seconds)) return null;
  const whole = Math.floor(seconds);
  const micros = Math.round((seconds - whole) * 1e6);
  return `${new Date(whole * 1000).toISOString().slice(0, 19)}.${String(micros).padStart(6, '0')}Z`;
}

/** One round trip: the tables named (plain or partitioned), each with its partitions. */
export async function introspectPartitions(session: CatalogSession, named: readonly TableName[]): Promise<PartitionedTableInfo[]> {
  if (named.length === 0) return [];
  const rows = await query<PartitionedTableRow>(session, PARTITIONED_TABLES_SQL, [named.map((t) => t.schema), named.map((t) => t.name)]);
  return rows.map((r) => ({
    schema: r.schema,
    name: r.name,
    oid: Number(r.oid),
    partitioned: r.partitioned,
    strategy: r.strategy,
    keyColumns: r.key_columns,
    columnTypes: r.column_types,
    insertableColumns: r.insertable_columns,
    rowEstimate: r.row_estimate,
    bytes: Number(r.bytes),
    partitions: r.partitions.map((p) => ({ ...p, oid: Number(p.oid), totalBytes: Number(p.totalBytes), from: canonical(p.from), to: canonical(p.to) })),
    referencingKeys: r.referencing_keys,
    defaultDeleteTriggers: r.default_delete_triggers,
  }));
}

/** A range the default partition is checked for, before a partition for it is created. */
export interface DefaultRowsProbe {
  readonly schema: string;
  /** The default partition. */
  readonly table: string;
  readonly column: string;
  readonly type: TimeKeyType;
  /** Bound literals as PostgreSQL reads them for `type` (see `boundLiteral`). */
  readonly from: string;
  readonly to: string;
}

const SQL_TYPE: Readonly<Record<TimeKeyType, string>> = { date: 'date', timestamp: 'timestamp', timestamptz: 'timestamptz' };

/**
 * Counts, in one round trip, the rows each default partition holds in each range about to get its own
 * partition: PostgreSQL refuses to attach a partition while the default partition holds rows of its
 * range. Each probe is a range scan of the default partition, which is meant to stay small.
 */
export async function countDefaultRows(session: CatalogSession, probes: readonly DefaultRowsProbe[]): Promise<number[]> {
  if (probes.length === 0) return [];
  const values: string[] = [];
  const parts = probes.map((p, i) => {
    values.push(p.from, p.to);
    const type = SQL_TYPE[p.type];
    const column = ident(p.column);
    return `SELECT ${i} AS probe, (SELECT pg_catalog.count(*) FROM ONLY ${qualified(p.schema, p.table)}
             WHERE ${column} >= $${2 * i + 1}::text::${type} AND ${column} < $${2 * i + 2}::text::${type})::int8 AS n`;
  });
  const rows = await query<{ probe: number; n: string }>(session, parts.join('\nUNION ALL\n'), values);
  const counts = new Array<number>(probes.length).fill(0);
  for (const r of rows) counts[r.probe] = Number(r.n);
  return counts;
}

/** Leaf partitions of a partitioned table, at any depth (PostgreSQL 12+ pg_partition_tree). */
export const LEAF_PARTITIONS_SQL = `
SELECT n.nspname AS schema, c.relname AS name
  FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass($1)) t
  JOIN pg_catalog.pg_class c ON c.oid = t.relid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE t.isleaf AND t.level > 0
 ORDER BY n.nspname, c.relname`;

/** The partitions a query on `table` may scan: the input `partitionPruning()` counts against. */
export async function leafPartitions(session: CatalogSession, table: TableName): Promise<{ schema: string; name: string }[]> {
  return query<{ schema: string; name: string }>(session, LEAF_PARTITIONS_SQL, [qualified(table.schema, table.name)]);
}

/** A table retention detached for `then: drop` whose DROP did not run: a plain table, no longer in pg_inherits. */
export interface RetiredPartition {
  /** The partitioned table it was detached from. */
  readonly parentSchema: string;
  readonly parentName: string;
  readonly schema: string;
  readonly name: string;
  readonly rowEstimate: number;
  readonly totalBytes: number;
}

/**
 * $1/$2: the parents' schema and table names. A record counts only while its relation still exists under
 * the recorded name and is not a partition again: a relation dropped since (its OID perhaps reused), or
 * one attached again by hand, is not pgwarden's to drop.
 */
export const RETIRED_PARTITIONS_SQL = `
SELECT r.parent_schema, r.parent_name, n.nspname AS schema, c.relname AS name, c.reltuples::float8 AS row_estimate,
       pg_catalog.pg_total_relation_size(c.oid) AS bytes
  FROM pgwarden.retired_partition r
  JOIN pg_catalog.pg_class c ON c.oid = r.relid AND c.relname = r.table_name AND NOT c.relispartition
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = r.schema_name
 WHERE (r.parent_schema, r.parent_name) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])))
 ORDER BY n.nspname, c.relname`;

/**
 * The retired partitions of the named parents. The registry exists only once an apply has recorded
 * something, so its presence is asked first: one round trip without it, two with it.
 */
export async function retiredPartitions(session: CatalogSession, parents: readonly TableName[]): Promise<RetiredPartition[]> {
  if (parents.length === 0) return [];
  const [registry] = await query<{ present: boolean }>(session, `SELECT pg_catalog.to_regclass('pgwarden.retired_partition') IS NOT NULL AS present`);
  if (!registry?.present) return [];
  const rows = await query<{ parent_schema: string; parent_name: string; schema: string; name: string; row_estimate: number; bytes: string }>(
    session,
    RETIRED_PARTITIONS_SQL,
    [parents.map((p) => p.schema), parents.map((p) => p.name)],
  );
  return rows.map((r) => ({ parentSchema: r.parent_schema, parentName: r.parent_name, schema: r.schema, name: r.name, rowEstimate: r.row_estimate, totalBytes: Number(r.bytes) }));
}

/** Whether a DETACH ... CONCURRENTLY left the partition pending (PostgreSQL 14+). */
export const DETACH_PENDING_SQL = `
SELECT i.inhdetachpending AS pending FROM pg_catalog.pg_inherits i WHERE i.inhrelid = pg_catalog.to_regclass($1)`;

export async function isDetachPending(client: pg.ClientBase, schema: string, name: string): Promise<boolean> {
  const r = await client.query<{ pending: boolean }>(DETACH_PENDING_SQL, [qualified(schema, name)]);
  return r.rows[0]?.pending === true;
}
