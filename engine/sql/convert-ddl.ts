import { CAPTURE_TRIGGER, TRUNCATE_GUARD } from '../catalog/conversion-queries.ts';
import type { ConvertTable } from '../diff/convert-change.ts';
import { createIndexSql, storageParameterListSql } from './ddl.ts';
import { ident, literal, qualified } from './ident.ts';

/**
 * The statements of an online conversion (engine/apply/convert/), written from the `convert-table`
 * change through `ident()`. Key values travel as bind parameters, as text cast to each key column's
 * type (format_type, from the catalog).
 */

/** The registry of conversions, in pgwarden's schema: what the next apply resumes from. */
export const CONVERSION_REGISTRY_SQL = `CREATE TABLE IF NOT EXISTS pgwarden.conversion (
     schema_name text NOT NULL,
     table_name text NOT NULL,
     relid oid NOT NULL,
     new_name text NOT NULL,
     old_name text NOT NULL,
     phase text NOT NULL CHECK (phase IN ('copying', 'swapped')),
     watermark text[],
     rows_copied bigint NOT NULL DEFAULT 0,
     started_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (schema_name, table_name))`;

/** TRUNCATE fires no row trigger: while a copy is under way it would silently empty one side only. */
const NO_TRUNCATE_SQL = `CREATE OR REPLACE FUNCTION pgwarden.convert_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'pgwarden is converting %.% into a partitioned table; TRUNCATE would empty only the old table', TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING HINT = 'wait for the conversion (pgwarden apply) to finish, or delete the rows instead';
END $$`;

const PRIVILEGES = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER', 'MAINTAIN']);

function old(c: ConvertTable): string {
  return qualified(c.table.schema, c.table.name);
}

function fresh(c: ConvertTable): string {
  return qualified(c.table.schema, c.newName);
}

/** Columns a copy writes: every column but generated ones (recomputed by the new table). */
export function copiedColumns(c: ConvertTable): string[] {
  return c.columns.filter((col) => !col.generated).map((col) => col.name);
}

function pkColumns(c: ConvertTable): readonly string[] {
  return c.primaryKey.columns;
}

function typeOf(c: ConvertTable, column: string): string {
  // format_type() output is a type name PostgreSQL printed, not user text: safe to cast to.
  return c.columns.find((col) => col.name === column)?.type ?? 'text';
}

function captureFunction(c: ConvertTable): string {
  return qualified('pgwarden', c.captureFunction);
}

/**
 * The row trigger that keeps the new table equal to the old one while the copy runs. It runs in the
 * writer's own transaction, so the new table changes exactly when the old one does, or not at all.
 * By key: a DELETE deletes, an INSERT or UPDATE upserts the row as it now is (deleting the old key
 * first when the update moved it). The copy only ever inserts rows that are absent (ON CONFLICT DO
 * NOTHING) and locks what it copies (FOR SHARE), so whichever of the two comes second, the newest row
 * wins: see docs/partitioning.md, "Why a trigger".
 */
export function captureFunctionSql(c: ConvertTable): string {
  const cols = copiedColumns(c);
  const keys = pkColumns(c);
  const rowOf = (rec: 'OLD' | 'NEW', names: readonly string[]): string => `(${names.map((n) => `${rec}.${ident(n)}`).join(', ')})`;
  const keyTuple = `(${keys.map(ident).join(', ')})`;
  const others = cols.filter((n) => !keys.includes(n));
  const onConflict = others.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${others.map((n) => `${ident(n)} = EXCLUDED.${ident(n)}`).join(', ')}`;
  const body = `
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM ${fresh(c)} WHERE ${keyTuple} = ${rowOf('OLD', keys)};
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' AND ${rowOf('OLD', keys)} IS DISTINCT FROM ${rowOf('NEW', keys)} THEN
    DELETE FROM ${fresh(c)} WHERE ${keyTuple} = ${rowOf('OLD', keys)};
  END IF;
  INSERT INTO ${fresh(c)} (${cols.map(ident).join(', ')}) OVERRIDING SYSTEM VALUE VALUES ${rowOf('NEW', cols)}
    ON CONFLICT ${keyTuple} ${onConflict};
  RETURN NULL;
END`;
  // SECURITY DEFINER: writers need no rights on the new table; an empty search_path, as such a function should have.
  return `CREATE OR REPLACE FUNCTION ${captureFunction(c)}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS ${literal(body)}`;
}

/** Phase one, one transaction: the new table, its partitions and indexes, the capture trigger. */
export function createSql(c: ConvertTable): string[] {
  const like = ['DEFAULTS', 'CONSTRAINTS', 'STORAGE', 'COMPRESSION', 'GENERATED', 'IDENTITY', 'COMMENTS'].map((w) => `INCLUDING ${w}`).join(' ');
  const params = Object.keys(c.storageParameters).length > 0 ? ` WITH (${storageParameterListSql(c.storageParameters)})` : '';
  const statements = [
    `CREATE TABLE ${fresh(c)} (LIKE ${old(c)} ${like}) PARTITION BY RANGE (${ident(c.keyColumn)})`,
    ...[c.primaryKey, ...c.uniqueKeys].map((k) => {
      const temp = c.newRenames.find((r) => r.to === k.name)?.from ?? k.name;
      return `ALTER TABLE ${fresh(c)} ADD CONSTRAINT ${ident(temp)} ${k.definition}`;
    }),
    ...c.partitions.map(
      (p) => `CREATE TABLE ${qualified(c.table.schema, p.name)} PARTITION OF ${fresh(c)} FOR VALUES FROM (${literal(p.from)}) TO (${literal(p.to)})${params}`,
    ),
    ...(c.defaultPartition ? [`CREATE TABLE ${qualified(c.table.schema, c.defaultPartition)} PARTITION OF ${fresh(c)} DEFAULT${params}`] : []),
    ...c.indexes.map((i) => createIndexSql(i.index, { schema: c.table.schema, table: c.newName, name: i.temporaryName })),
    // The foreign keys this table holds: each copied row is checked, as PostgreSQL (before 18) cannot add one NOT VALID to a partitioned table.
    ...c.foreignKeys.map((f) => `ALTER TABLE ${fresh(c)} ADD CONSTRAINT ${ident(f.name)} ${f.definition}`),
    captureFunctionSql(c),
    NO_TRUNCATE_SQL,
    `CREATE TRIGGER ${ident(CAPTURE_TRIGGER)} AFTER INSERT OR UPDATE OR DELETE ON ${old(c)} FOR EACH ROW EXECUTE FUNCTION ${captureFunction(c)}()`,
    `CREATE TRIGGER ${ident(TRUNCATE_GUARD)} BEFORE TRUNCATE ON ${old(c)} FOR EACH STATEMENT EXECUTE FUNCTION pgwarden.convert_no_truncate()`,
  ];
  return statements;
}

/** Drops what an attempt that cannot be resumed left: the capture, the new table, the record. */
export function cleanupSql(c: ConvertTable): string[] {
  return [
    `DROP TRIGGER IF EXISTS ${ident(CAPTURE_TRIGGER)} ON ${old(c)}`,
    `DROP TRIGGER IF EXISTS ${ident(TRUNCATE_GUARD)} ON ${old(c)}`,
    `DROP FUNCTION IF EXISTS ${captureFunction(c)}()`,
    `DROP TABLE IF EXISTS ${fresh(c)}`,
  ];
}

function keyTuple(c: ConvertTable): string {
  return `(${pkColumns(c).map(ident).join(', ')})`;
}

function params(c: ConvertTable, from: number): string {
  return `(${pkColumns(c).map((k, i) => `$${from + i}::${typeOf(c, k)}`).join(', ')})`;
}

/**
 * The upper key of the next batch: the `$n`-th key after the watermark ($1..$k), in key order, or no
 * row when fewer remain. Reads the primary key's index only.
 */
export function batchBoundSql(c: ConvertTable, fromStart: boolean): string {
  const k = pkColumns(c).length;
  const where = fromStart ? '' : `WHERE ${keyTuple(c)} > ${params(c, 1)} `;
  const offset = fromStart ? '$1' : `$${k + 1}`;
  return `SELECT ${pkColumns(c).map((col, i) => `${ident(col)}::text AS k${i}`).join(', ')} FROM ONLY ${old(c)} ${where}ORDER BY ${pkColumns(c).map(ident).join(', ')} OFFSET ${offset} LIMIT 1`;
}

/**
 * One batch: the rows with keys in (lower, upper], locked FOR SHARE so no writer changes them until
 * this short transaction commits, inserted when absent. `lower`/`upper` false: open on that side.
 */
export function copyBatchSql(c: ConvertTable, lower: boolean, upper: boolean): string {
  const k = pkColumns(c).length;
  const conds = [lower ? `${keyTuple(c)} > ${params(c, 1)}` : '', upper ? `${keyTuple(c)} <= ${params(c, lower ? k + 1 : 1)}` : ''].filter((s) => s !== '');
  const cols = copiedColumns(c).map(ident).join(', ');
  return `WITH src AS (SELECT ${cols} FROM ONLY ${old(c)}${conds.length > 0 ? ` WHERE ${conds.join(' AND ')}` : ''} FOR SHARE),
     ins AS (INSERT INTO ${fresh(c)} (${cols}) OVERRIDING SYSTEM VALUE SELECT ${cols} FROM src ON CONFLICT DO NOTHING RETURNING 1)
SELECT (SELECT pg_catalog.count(*) FROM src)::int8 AS locked, (SELECT pg_catalog.count(*) FROM ins)::int8 AS inserted`;
}

/** The bucket (interval start, UTC) of a row: which partition it belongs in, on either side. */
function bucket(c: ConvertTable): string {
  const unit = c.interval === 'week' ? 'week' : c.interval;
  const key = c.keyType === 'timestamptz' ? `(${ident(c.keyColumn)} AT TIME ZONE 'UTC')` : `${ident(c.keyColumn)}::timestamp`;
  return `pg_catalog.to_char(pg_catalog.date_trunc(${literal(unit)}, ${key}), 'YYYY-MM-DD')`;
}

/**
 * Rows and an order-independent checksum (the sum of a 64-bit hash of each row's text) per partition
 * range, for one side. Both sides are read in one REPEATABLE READ snapshot: the trigger changes both in
 * the same transaction, so any snapshot must see them equal.
 */
export function verifySql(c: ConvertTable, side: 'old' | 'new'): string {
  const rel = side === 'old' ? `ONLY ${old(c)}` : fresh(c);
  return `SELECT ${bucket(c)} AS bucket, pg_catalog.count(*)::int8 AS rows, pg_catalog.sum(pg_catalog.hashtextextended(t::text, 0)::numeric)::text AS checksum
  FROM ${rel} t GROUP BY 1 ORDER BY 1`;
}

/**
 * Phase five, one transaction under lock_timeout: both tables locked, the capture dropped, names
 * swapped, sequences handed to the new table, views re-pointed, grants carried over.
 */
export function swapSql(c: ConvertTable): string[] {
  const schema = c.table.schema;
  const cols = c.columns;
  const statements = [
    `LOCK TABLE ONLY ${old(c)} IN ACCESS EXCLUSIVE MODE`,
    `LOCK TABLE ${fresh(c)} IN ACCESS EXCLUSIVE MODE`,
    `DROP TRIGGER ${ident(CAPTURE_TRIGGER)} ON ${old(c)}`,
    `DROP TRIGGER ${ident(TRUNCATE_GUARD)} ON ${old(c)}`,
    `DROP FUNCTION ${captureFunction(c)}()`,
    `ALTER TABLE ${old(c)} RENAME TO ${ident(c.oldName)}`,
    ...c.oldRenames.map((r) => `ALTER INDEX ${qualified(schema, r.from)} RENAME TO ${ident(r.to)}`),
    ...c.newRenames.map((r) => `ALTER INDEX ${qualified(schema, r.from)} RENAME TO ${ident(r.to)}`),
    `ALTER TABLE ${fresh(c)} RENAME TO ${ident(c.table.name)}`,
    // A serial's sequence: owned by the new table's column, so dropping the old table later keeps it.
    ...cols.filter((col) => col.sequence !== null && col.identity === '').map((col) => `ALTER SEQUENCE ${col.sequence} OWNED BY ${old(c)}.${ident(col.name)}`),
    // An identity column got a sequence of its own (PostgreSQL 17+): it continues where the old one stood.
    ...cols
      .filter((col) => col.sequence !== null && col.identity !== '')
      .map(
        (col) =>
          `SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence(${literal(old(c))}, ${literal(col.name)}), s.last_value, s.is_called) FROM ${col.sequence} s`,
      ),
    // Foreign keys of other tables follow the name: re-created against the new table without a scan
    // (NOT VALID: the rows are the verified same), validated after the swap.
    ...c.referencingKeys.flatMap((f) => [
      `ALTER TABLE ${qualified(f.schema, f.table)} DROP CONSTRAINT ${ident(f.name)}`,
      `ALTER TABLE ${qualified(f.schema, f.table)} ADD CONSTRAINT ${ident(f.name)} ${notValid(f.definition)}`,
    ]),
    ...c.views.map((v) => `CREATE OR REPLACE VIEW ${qualified(v.schema, v.name)} AS ${v.definition.replace(/;\s*$/u, '')}`),
    ...c.grants
      .filter((g) => PRIVILEGES.has(g.privilege))
      .map((g) => `GRANT ${g.privilege} ON ${old(c)} TO ${g.grantee === 'PUBLIC' ? 'PUBLIC' : ident(g.grantee)}`),
  ];
  return statements;
}

function notValid(definition: string): string {
  return / NOT VALID$/u.test(definition) ? definition : `${definition} NOT VALID`;
}

/** After the swap: the re-pointed foreign keys checked (SHARE UPDATE EXCLUSIVE: writes go on); those that were NOT VALID before stay so. */
export function validateSql(c: ConvertTable): string[] {
  return c.referencingKeys
    .filter((f) => !/ NOT VALID$/u.test(f.definition))
    .map((f) => `ALTER TABLE ${qualified(f.schema, f.table)} VALIDATE CONSTRAINT ${ident(f.name)}`);
}

export function analyzeSql(c: ConvertTable): string {
  return `ANALYZE ${old(c)}`;
}

export function dropUnpartitionedSql(schema: string, name: string): string {
  return `DROP TABLE ${qualified(schema, name)}`;
}
