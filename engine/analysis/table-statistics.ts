import type pg from 'pg';
import { SEARCH_PATH_TABLES_SQL, WORKLOAD_TABLES_SQL } from '../catalog/analysis-queries.ts';
import type { TableResolver, TableShape } from './column-usage.ts';
import type { RelationName } from './sql-statement.ts';

/** A column with the planner's statistics about it (pg_stats); statistics absent before ANALYZE. */
export interface ColumnStatistics {
  readonly name: string;
  /** format_type(), e.g. `bigint`, `timestamp with time zone`. */
  readonly type: string;
  /** pg_type.typlen: bytes of a fixed-width type, -1 for varlena. */
  readonly length: number;
  readonly nullFrac?: number;
  /** pg_stats.n_distinct: > 0 a count, < 0 minus a fraction of the rows. */
  readonly nDistinct?: number;
  readonly avgWidth?: number;
  readonly correlation?: number;
  /** Most common values as text, with their frequencies. */
  readonly mostCommon: readonly (string | null)[];
  readonly mostCommonFreqs: readonly number[];
  readonly histogram: readonly (string | null)[];
}

export interface TableStatistics extends TableShape {
  readonly oid: number;
  /** Views and foreign tables are resolved (so a statement on them is not "missing") but never indexed. */
  readonly kind: 'table' | 'partitioned' | 'matview' | 'view' | 'foreign';
  readonly rows: number;
  readonly pages: number;
  readonly allVisiblePages: number;
  readonly bytes: number;
  /** Cumulative since the statistics were reset: rows inserted, updated (of which HOT), deleted. */
  readonly inserted: number;
  readonly updated: number;
  readonly hotUpdated: number;
  readonly deleted: number;
  readonly indexCount: number;
  readonly columnStats: readonly ColumnStatistics[];
}

interface TableRow {
  oid: string;
  schema: string;
  name: string;
  relkind: string;
  row_estimate: number;
  pages: string;
  all_visible: string;
  bytes: string;
  inserted: string;
  updated: string;
  hot_updated: string;
  deleted: string;
  index_count: number;
  columns: {
    name: string;
    type: string;
    length: number;
    null_frac: number | null;
    n_distinct: number | null;
    avg_width: number | null;
    correlation: number | null;
    mcv: string | null;
    mcf: number[] | null;
    histogram: string | null;
  }[];
}

export function tableKey(schema: string, name: string): string {
  return `${schema}.${name}`;
}

/**
 * Reads the named tables (unqualified names resolved through the session's search_path, as the server
 * would) with their columns and statistics: two round trips whatever the number of tables.
 */
export async function readTableStatistics(client: pg.ClientBase, relations: readonly RelationName[]): Promise<Map<string, TableStatistics>> {
  const unqualified = [...new Set(relations.filter((r) => r.schema === undefined).map((r) => r.name))];
  const found = unqualified.length === 0
    ? []
    : (await client.query<{ schema: string; name: string }>(SEARCH_PATH_TABLES_SQL, [unqualified])).rows;
  const wanted = [...relations.filter((r) => r.schema !== undefined), ...found] as { schema: string; name: string }[];
  if (wanted.length === 0) return new Map();
  const rows = (await client.query<TableRow>(WORKLOAD_TABLES_SQL, [wanted.map((w) => w.schema), wanted.map((w) => w.name)])).rows;
  return new Map(rows.map((row) => [tableKey(row.schema, row.name), parseTable(row)]));
}

function parseTable(row: TableRow): TableStatistics {
  const columnStats = row.columns.map(
    (c): ColumnStatistics => ({
      name: c.name,
      type: c.type,
      length: c.length,
      ...(c.null_frac === null ? {} : { nullFrac: c.null_frac }),
      ...(c.n_distinct === null ? {} : { nDistinct: c.n_distinct }),
      ...(c.avg_width === null ? {} : { avgWidth: c.avg_width }),
      ...(c.correlation === null ? {} : { correlation: c.correlation }),
      mostCommon: c.mcv === null ? [] : parseArrayLiteral(c.mcv),
      mostCommonFreqs: c.mcf ?? [],
      histogram: c.histogram === null ? [] : parseArrayLiteral(c.histogram),
    }),
  );
  return {
    oid: Number(row.oid),
    schema: row.schema,
    name: row.name,
    kind: ({ p: 'partitioned', m: 'matview', v: 'view', f: 'foreign' } as const)[row.relkind as 'p' | 'm' | 'v' | 'f'] ?? 'table',
    columns: columnStats.map((c) => c.name),
    rows: row.row_estimate,
    pages: Number(row.pages),
    allVisiblePages: Number(row.all_visible),
    bytes: Number(row.bytes),
    inserted: Number(row.inserted),
    updated: Number(row.updated),
    hotUpdated: Number(row.hot_updated),
    deleted: Number(row.deleted),
    indexCount: row.index_count,
    columnStats,
  };
}

/**
 * Resolves names as written in a statement: `schema.table` exactly, a bare `table` to the first
 * schema of the search path that has it (`searchPath` as current_schemas(false) lists it).
 */
export function tableResolver(tables: ReadonlyMap<string, TableStatistics>, searchPath: readonly string[]): TableResolver {
  return (schema, name) => {
    if (schema !== undefined) return tables.get(tableKey(schema, name));
    for (const s of searchPath) {
      const table = tables.get(tableKey(s, name));
      if (table !== undefined) return table;
    }
    return undefined;
  };
}

/**
 * A one-dimensional array literal as PostgreSQL prints it (`{a,"b c",NULL}`) into its elements.
 * Nested arrays (statistics of array columns) come back as their text.
 */
export function parseArrayLiteral(text: string): (string | null)[] {
  if (!text.startsWith('{') || !text.endsWith('}')) return [];
  const out: (string | null)[] = [];
  let i = 1;
  const end = text.length - 1;
  while (i < end) {
    if (text[i] === '"') {
      let value = '';
      i += 1;
      while (i < end && text[i] !== '"') {
        if (text[i] === '\\') i += 1;
        value += text[i] ?? '';
        i += 1;
      }
      out.push(value);
      i += 1;
    } else if (text[i] === '{') {
      let depth = 0;
      const start = i;
      do {
        if (text[i] === '{') depth += 1;
        if (text[i] === '}') depth -= 1;
        i += 1;
      } while (i < end && depth > 0);
      out.push(text.slice(start, i));
    } else {
      let j = i;
      while (j < end && text[j] !== ',') j += 1;
      const raw = text.slice(i, j);
      out.push(raw === 'NULL' ? null : raw);
      i = j;
    }
    if (text[i] === ',') i += 1;
  }
  return out;
}

/** Distinct values of a column, the planner's way (negative n_distinct is a fraction of the rows). */
export function distinctValues(column: ColumnStatistics | undefined, rows: number): number | undefined {
  const n = column?.nDistinct;
  if (n === undefined) return undefined;
  return n < 0 ? Math.max(1, -n * rows) : Math.max(1, n);
}
