import { parseSync } from 'libpg-query';
import type { ConstantPredicate, TableAccess } from '../analysis/column-usage.ts';
import { distinctValues, type TableStatistics } from '../analysis/table-statistics.ts';
import type { DesiredIndex } from '../policy/desired.ts';
import { ident } from '../sql/ident.ts';
import { predicateSelectivity } from './selectivity.ts';

/**
 * Index candidates: the indexes worth costing for a workload, generated from how its statements use
 * each table's columns. Pure. A candidate is a btree (the method the advisor reasons about): equality
 * columns first, most selective first; then the range column or the ORDER BY columns; with covering
 * (INCLUDE) and partial (WHERE) variants where they can pay off.
 */

export interface CandidateKey {
  readonly column: string;
  readonly order: 'asc' | 'desc';
}

export interface IndexCandidate {
  /** Stable identity: table, keys, include, predicate. */
  readonly id: string;
  readonly schema: string;
  readonly table: string;
  readonly keys: readonly CandidateKey[];
  readonly include: readonly string[];
  /** A partial index's predicate, SQL on the table's own column names. */
  readonly where?: string;
  /** The share of the table's rows the predicate keeps (pg_stats), for size estimates. */
  readonly whereShare?: number;
  /** Workload statements (keys) whose usage produced it. */
  readonly sources: readonly string[];
}

/** A workload statement's access to one table, with the statement it belongs to. */
export interface SourcedAccess {
  readonly statementKey: string;
  readonly access: TableAccess;
}

export interface CandidateOptions {
  /** Tables smaller than this get no candidates: the planner reads them whole anyway. */
  readonly minTableRows: number;
  /** A constant predicate makes a partial variant when it keeps at most this share of the rows. */
  readonly partialMaxShare: number;
  /** A covering variant INCLUDEs at most this many columns ... */
  readonly maxIncludeColumns: number;
  /** ... each at most this wide on average (pg_stats.avg_width). */
  readonly maxIncludeWidth: number;
}

export const DEFAULT_CANDIDATE_OPTIONS: CandidateOptions = {
  minTableRows: 1_000,
  partialMaxShare: 0.5,
  maxIncludeColumns: 4,
  maxIncludeWidth: 32,
};

export function candidateId(c: Pick<IndexCandidate, 'schema' | 'table' | 'keys' | 'include' | 'where'>): string {
  return JSON.stringify([c.schema, c.table, c.keys.map((k) => `${k.column} ${k.order}`), [...c.include].sort(), c.where ?? null]);
}

/** Every candidate for the accesses, merged by identity (their sources joined). */
export function generateCandidates(
  accesses: readonly SourcedAccess[],
  tables: ReadonlyMap<string, TableStatistics>,
  options: CandidateOptions = DEFAULT_CANDIDATE_OPTIONS,
): IndexCandidate[] {
  const byId = new Map<string, IndexCandidate>();
  const add = (shape: Omit<IndexCandidate, 'id' | 'sources'>, source: string): void => {
    if (shape.keys.length === 0 || shape.keys.length > 32) return;
    const id = candidateId(shape);
    const before = byId.get(id);
    const sources = before === undefined ? [source] : before.sources.includes(source) ? before.sources : [...before.sources, source];
    byId.set(id, { ...shape, id, sources });
  };
  for (const { statementKey, access } of accesses) {
    if (access.write === 'insert') continue;
    const table = tables.get(`${access.table.schema}.${access.table.name}`);
    if (table === undefined || table.kind === 'view' || table.kind === 'foreign' || table.rows < options.minTableRows) continue;
    for (const shape of accessCandidates(access, table, options)) add(shape, statementKey);
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * The candidates plus every leading part of their keys, as plain indexes: the steps Extend grows a
 * multi-column index through, so that `(a)` can be chosen alone when `(a, b)` does not pay for its
 * extra bytes. Sorted by id, merged by identity.
 */
export function withKeyPrefixes(candidates: readonly IndexCandidate[]): IndexCandidate[] {
  const byId = new Map(candidates.map((c) => [c.id, c]));
  for (const c of candidates) {
    for (let n = 1; n < c.keys.length; n += 1) {
      const shape = { schema: c.schema, table: c.table, keys: c.keys.slice(0, n), include: [], ...(c.where === undefined ? {} : { where: c.where, ...(c.whereShare === undefined ? {} : { whereShare: c.whereShare }) }) };
      const id = candidateId(shape);
      const before = byId.get(id);
      byId.set(id, { ...shape, id, sources: [...new Set([...(before?.sources ?? []), ...c.sources])] });
    }
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

type Shape = Omit<IndexCandidate, 'id' | 'sources'>;

function accessCandidates(access: TableAccess, table: TableStatistics, options: CandidateOptions): Shape[] {
  const base = { schema: table.schema, table: table.name };
  const stat = (column: string) => table.columnStats.find((c) => c.name === column);
  // Equality columns, the most selective (most distinct values) first.
  const equality = unique(access.equality.map((p) => p.column)).sort(
    (a, b) => (distinctValues(stat(b), table.rows) ?? 0) - (distinctValues(stat(a), table.rows) ?? 0) || (a < b ? -1 : 1),
  );
  const eqKeys = equality.map((column): CandidateKey => ({ column, order: 'asc' }));
  const ranges = unique(access.range.map((p) => p.column)).filter((c) => !equality.includes(c));
  const order = sortKeys(access.orderBy.filter((s) => !equality.includes(s.column)));
  const shapes: Shape[] = [];
  const push = (keys: readonly CandidateKey[]): void => {
    if (keys.length > 0) shapes.push({ ...base, keys: dedupeKeys(keys), include: [] });
  };
  if (eqKeys.length > 0) push(eqKeys);
  if (order.length > 0) push([...eqKeys, ...order]);
  for (const range of ranges) push([...eqKeys, { column: range, order: 'asc' }]);
  // The ORDER BY may start with the range column (`created_at >= $1 ORDER BY created_at`): same index.
  for (const join of unique(access.joins.map((j) => j.column)).filter((c) => !equality.includes(c))) {
    push([{ column: join, order: 'asc' }]);
    if (eqKeys.length > 0) push([...eqKeys, { column: join, order: 'asc' }]);
  }
  if (access.groupBy.length > 0 && order.length === 0) {
    push([...eqKeys, ...access.groupBy.filter((c) => !equality.includes(c)).map((column): CandidateKey => ({ column, order: 'asc' }))]);
  }

  const variants: Shape[] = [...shapes];
  for (const shape of shapes) {
    const covering = coveringVariant(shape, access, table, options);
    if (covering) variants.push(covering);
  }
  const partial = partialPredicate(access.constantPredicates, table, options);
  if (partial !== undefined) {
    for (const shape of [...variants]) {
      // A key compared with the predicate's own constant is constant within the partial index.
      const keys = shape.keys.filter((k) => !partial.constantColumns.includes(k.column));
      const where = { where: partial.sql, whereShare: partial.share };
      // Columns only the predicate needs are not stored: the planner knows their values from it (an
      // index-only scan may use a partial index whose predicate implies the query's conditions).
      const include = shape.include.filter((c) => !partial.columns.includes(c));
      variants.push({ ...shape, keys: keys.length > 0 ? keys : shape.keys, include, ...where });
    }
  }
  return variants;
}

/**
 * ORDER BY columns as index keys. A btree scans both ways, so only the relative directions matter:
 * the keys are normalised to start ascending (`a DESC, b DESC` is `(a, b)` read backwards).
 */
function sortKeys(order: TableAccess['orderBy']): CandidateKey[] {
  const flip = order[0]?.direction === 'desc';
  return order.map((s) => ({ column: s.column, order: (s.direction === 'desc') !== flip ? 'desc' : 'asc' }));
}

function coveringVariant(shape: Shape, access: TableAccess, table: TableStatistics, options: CandidateOptions): Shape | undefined {
  if (access.allColumns || access.write !== undefined) return undefined;
  const keyColumns = new Set(shape.keys.map((k) => k.column));
  const rest = access.referenced.filter((c) => !keyColumns.has(c));
  if (rest.length === 0 || rest.length > options.maxIncludeColumns) return undefined;
  const narrow = rest.every((c) => {
    const s = table.columnStats.find((x) => x.name === c);
    return s !== undefined && (s.avgWidth ?? (s.length > 0 ? s.length : Number.POSITIVE_INFINITY)) <= options.maxIncludeWidth;
  });
  return narrow ? { ...shape, include: [...rest].sort() } : undefined;
}

/** The constant predicates of an access as one partial-index predicate, when they keep few enough rows. */
function partialPredicate(
  predicates: readonly ConstantPredicate[],
  table: TableStatistics,
  options: CandidateOptions,
): { sql: string; share: number; constantColumns: string[]; columns: string[] } | undefined {
  if (predicates.length === 0) return undefined;
  const parts = unique(predicates.map(predicateSql)).sort();
  const share = predicates.reduce((s, p) => s * predicateSelectivity(p, table), 1);
  if (share > options.partialMaxShare) return undefined;
  // Columns the predicate pins to one value (= constant, IS NULL, a boolean): no use as keys of the partial index.
  const constantColumns = predicates
    .filter((p) => (p.kind === 'compare' && p.operator === '=') || (p.kind === 'null' && !p.negated) || p.kind === 'bool')
    .map((p) => p.column);
  return { sql: parts.join(' AND '), share, constantColumns, columns: unique(predicates.map((p) => p.column)) };
}

/** A predicate on the table's own columns (the statement's aliases dropped). */
export function predicateSql(p: ConstantPredicate): string {
  const column = columnSql(p.column);
  switch (p.kind) {
    case 'compare':
      return `${column} ${p.operator} ${p.value}`;
    case 'null':
      return `${column} IS ${p.negated ? 'NOT ' : ''}NULL`;
    case 'bool':
      return p.value ? column : `NOT ${column}`;
  }
}

/** A column name as it reads best in SQL: bare when PostgreSQL reads it back as the same column, quoted otherwise. */
export function columnSql(column: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(column)) return ident(column);
  try {
    const tree = parseSync(`SELECT ${column}`) as { stmts?: { stmt?: { SelectStmt?: { targetList?: { ResTarget?: { val?: { ColumnRef?: unknown } } }[] } } }[] };
    const target = tree.stmts?.[0]?.stmt?.SelectStmt?.targetList?.[0]?.ResTarget?.val;
    return target?.ColumnRef !== undefined ? column : ident(column);
  } catch {
    // A reserved word (`select`, `order`) does not parse as a column.
    return ident(column);
  }
}

function dedupeKeys(keys: readonly CandidateKey[]): CandidateKey[] {
  const seen = new Set<string>();
  return keys.filter((k) => (seen.has(k.column) ? false : (seen.add(k.column), true)));
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** The candidate as a policy index (btree, default NULLS placement): what DDL and the policy writer take. */
export function candidateIndex(candidate: IndexCandidate, name: string): DesiredIndex {
  return {
    schema: candidate.schema,
    table: candidate.table,
    name,
    method: 'btree',
    unique: false,
    nullsNotDistinct: false,
    keys: candidate.keys.map((k) => ({ kind: 'column' as const, column: k.column, order: k.order, nulls: k.order === 'desc' ? ('first' as const) : ('last' as const) })),
    include: candidate.include,
    ...(candidate.where === undefined ? {} : { where: candidate.where }),
    source: { file: '(pgwarden advise)', line: 0, col: 0 },
  };
}
