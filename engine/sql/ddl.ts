import type { DesiredIndex, DesiredIndexKey } from '../policy/desired.ts';
import { ident, literal, qualified } from './ident.ts';

/**
 * All DDL text pgwarden runs is written here, from typed values, through `ident()`. The only policy
 * text that reaches SQL unquoted is what is SQL by nature — an index expression or `where`
 * predicate — and a statement carrying it reaches the server only after PostgreSQL's own parser
 * (libpg_query) has read it as exactly one CREATE INDEX (engine/catalog/canonicalise.ts).
 */

/** `schema.name` or `name` of an operator class or collation, each part quoted. */
function qualifiedName(name: string): string {
  const dot = name.indexOf('.');
  return dot > 0 ? qualified(name.slice(0, dot), name.slice(dot + 1)) : ident(name);
}

function keySql(key: DesiredIndexKey, ordered: boolean): string {
  const parts = [key.kind === 'column' ? ident(key.column) : `(${key.expression})`];
  if (key.collation) parts.push(`COLLATE ${qualifiedName(key.collation)}`);
  if (key.opclass) parts.push(qualifiedName(key.opclass));
  if (ordered) {
    if (key.order === 'desc') parts.push('DESC');
    const defaultNulls = key.order === 'desc' ? 'first' : 'last';
    if (key.nulls !== defaultNulls) parts.push(`NULLS ${key.nulls.toUpperCase()}`);
  }
  return parts.join(' ');
}

/** True when the statement for this index holds policy text that is SQL by nature. */
export function carriesPolicySql(index: DesiredIndex): boolean {
  return index.where !== undefined || index.keys.some((k) => k.kind === 'expression');
}

export interface CreateIndexTarget {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  /** CONCURRENTLY: a plain table, outside a transaction. */
  readonly concurrently?: boolean;
  /** ON ONLY: the partitioned parent alone; its partitions' indexes are attached one by one. */
  readonly only?: boolean;
  readonly ifNotExists?: boolean;
}

/**
 * @example createIndexSql(index, { schema: 'public', table: 'events', name: 'events_tenant_idx', concurrently: true })
 * // CREATE INDEX CONCURRENTLY "events_tenant_idx" ON "public"."events" USING btree ("tenant_id", "created_at" DESC)
 */
export function createIndexSql(index: DesiredIndex, target: CreateIndexTarget): string {
  const ordered = index.method === 'btree';
  const sql = [
    index.unique ? 'CREATE UNIQUE INDEX' : 'CREATE INDEX',
    target.concurrently ? 'CONCURRENTLY' : '',
    target.ifNotExists ? 'IF NOT EXISTS' : '',
    ident(target.name),
    'ON',
    target.only ? 'ONLY' : '',
    target.schema === '' ? ident(target.table) : qualified(target.schema, target.table),
    `USING ${index.method}`,
    `(${index.keys.map((k) => keySql(k, ordered)).join(', ')})`,
    index.include.length > 0 ? `INCLUDE (${index.include.map(ident).join(', ')})` : '',
    index.nullsNotDistinct ? 'NULLS NOT DISTINCT' : '',
    index.with !== undefined && Object.keys(index.with).length > 0 ? `WITH (${storageParameterListSql(index.with)})` : '',
    index.where !== undefined ? `WHERE (${index.where})` : '',
  ];
  return sql.filter((part) => part !== '').join(' ');
}

export function dropIndexSql(schema: string, name: string, options: { concurrently: boolean }): string {
  return `DROP INDEX ${options.concurrently ? 'CONCURRENTLY ' : ''}IF EXISTS ${qualified(schema, name)}`;
}

export function renameIndexSql(schema: string, from: string, to: string): string {
  return `ALTER INDEX ${qualified(schema, from)} RENAME TO ${ident(to)}`;
}

export function attachIndexSql(schema: string, parentIndex: string, partitionIndexSchema: string, partitionIndex: string): string {
  return `ALTER INDEX ${qualified(schema, parentIndex)} ATTACH PARTITION ${qualified(partitionIndexSchema, partitionIndex)}`;
}

export function setLockTimeoutSql(ms: number): string {
  return `SET lock_timeout = ${literal(`${Math.max(0, Math.round(ms))}ms`)}`;
}

export function setStatementTimeoutSql(ms: number): string {
  return `SET statement_timeout = ${literal(`${Math.max(0, Math.round(ms))}ms`)}`;
}

/**
 * A storage parameter name with its namespace split off, each part quoted: `"toast"."autovacuum_enabled"`
 * (a quoted `"toast.autovacuum_enabled"` would be one unknown name to PostgreSQL).
 */
export function storageParameterName(parameter: string): string {
  const dot = parameter.indexOf('.');
  return dot > 0 ? `${ident(parameter.slice(0, dot))}.${ident(parameter.slice(dot + 1))}` : ident(parameter);
}

/**
 * The inside of `WITH (...)` / `SET (...)`: values are string literals, which PostgreSQL parses by the
 * parameter's type (and stores as written).
 *
 * @example storageParameterListSql({ autovacuum_vacuum_scale_factor: '0.02', 'toast.autovacuum_enabled': 'false' })
 * // "autovacuum_vacuum_scale_factor" = '0.02', "toast"."autovacuum_enabled" = 'false'
 */
export function storageParameterListSql(parameters: Readonly<Record<string, string>>): string {
  return Object.entries(parameters)
    .map(([name, value]) => `${storageParameterName(name)} = ${literal(value)}`)
    .join(', ');
}

/**
 * `ALTER TABLE IF EXISTS ... SET (...), RESET (...)`: one statement, so both halves land together.
 * IF EXISTS: a table dropped since the plan was made is skipped with a notice, not an error.
 */
export function alterStorageParametersSql(schema: string, table: string, set: Readonly<Record<string, string>>, reset: readonly string[]): string {
  const actions = [
    Object.keys(set).length > 0 ? `SET (${storageParameterListSql(set)})` : '',
    reset.length > 0 ? `RESET (${reset.map(storageParameterName).join(', ')})` : '',
  ].filter((a) => a !== '');
  return `ALTER TABLE IF EXISTS ${qualified(schema, table)} ${actions.join(', ')}`;
}

/**
 * `ALTER INDEX IF EXISTS ... SET (...), RESET (...)`: one statement, so both halves land together.
 * PostgreSQL (<= 17) refuses it on a partitioned index; the diff replaces those instead.
 */
export function alterIndexParametersSql(schema: string, name: string, set: Readonly<Record<string, string>>, reset: readonly string[]): string {
  const actions = [
    Object.keys(set).length > 0 ? `SET (${storageParameterListSql(set)})` : '',
    reset.length > 0 ? `RESET (${reset.map(storageParameterName).join(', ')})` : '',
  ].filter((a) => a !== '');
  return `ALTER INDEX IF EXISTS ${qualified(schema, name)} ${actions.join(', ')}`;
}
