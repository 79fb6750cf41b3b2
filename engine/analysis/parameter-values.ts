import type { ColumnUsage, ParameterColumn } from './column-usage.ts';
import type { ParsedStatement } from './sql-statement.ts';
import { visitTree } from './sql-statement.ts';
import { tableKey, type ColumnStatistics, type TableStatistics } from './table-statistics.ts';

/** A value for one `$n`, and where it came from: printed next to every plan made with it. */
export interface BoundParameter {
  readonly number: number;
  /** Text, as the server parses it for the parameter's type; null binds NULL. */
  readonly value: string | null;
  readonly source: 'given' | 'sampled' | 'default';
  /** How it was chosen, e.g. "most common value of public.events.tenant_id (3.1% of rows)". */
  readonly note: string;
  /** The parameter's type as the server inferred it, when known. */
  readonly type?: string;
}

/**
 * Values for a statement's parameters when none are given, so it can be planned as a custom plan or
 * executed (EXPLAIN ANALYZE). A parameter compared with a column gets a value from that column's
 * pg_stats: its most common value for equality (in a skewed workload, the heaviest caller), for a
 * lower bound the value with a tenth of the rows above it, for an upper bound a tenth below. Other
 * parameters get a value by their type: LIMIT 100, OFFSET 0, an interval of one day, now().
 */
export function sampleParameters(
  statement: ParsedStatement,
  usage: ColumnUsage,
  tables: ReadonlyMap<string, TableStatistics>,
  types: readonly string[],
): BoundParameter[] {
  const byNumber = new Map<number, ParameterColumn>();
  for (const p of usage.parameters) if (!byNumber.has(p.number)) byNumber.set(p.number, p);
  const limits = limitParameters(statement);
  const fields = fieldParameters(statement);
  const out: BoundParameter[] = [];
  for (let n = 1; n <= statement.parameterCount; n += 1) {
    const type = types[n - 1];
    const typed = type === undefined ? {} : { type };
    const column = byNumber.get(n);
    const sampled = column === undefined ? undefined : fromStatistics(column, tables);
    if (sampled !== undefined) {
      out.push({ number: n, ...sampled, source: 'sampled', ...typed });
      continue;
    }
    const field = fields.get(n);
    if (field !== undefined) {
      out.push({ number: n, value: field, source: 'default', note: `'${field}' (a field name)`, ...typed });
      continue;
    }
    const limit = limits.get(n);
    if (limit !== undefined) {
      out.push({ number: n, value: limit === 'limit' ? '100' : '0', source: 'default', note: limit === 'limit' ? 'LIMIT 100' : 'OFFSET 0', ...typed });
      continue;
    }
    out.push({ number: n, ...byType(type), source: 'default', ...typed });
  }
  return out;
}

function fromStatistics(p: ParameterColumn, tables: ReadonlyMap<string, TableStatistics>): { value: string; note: string } | undefined {
  const table = tables.get(tableKey(p.schema, p.table));
  const column = table?.columnStats.find((c) => c.name === p.column);
  if (column === undefined) return undefined;
  const where = `${p.schema}.${p.table}.${p.column}`;
  const histogram = column.histogram.filter((v): v is string => v !== null);
  if (p.operator === ':=') {
    const fresh = beyondLargest(column, histogram, where);
    if (fresh !== undefined) return fresh;
  }
  if (p.operator === '=' || p.operator === ':=' || histogram.length === 0) {
    const index = column.mostCommon.findIndex((v) => v !== null);
    const value = column.mostCommon[index];
    if (typeof value === 'string') {
      const freq = column.mostCommonFreqs[index];
      return { value, note: `most common value of ${where}${freq === undefined ? '' : ` (${(freq * 100).toFixed(1)}% of rows)`}` };
    }
  }
  if (histogram.length === 0) return undefined;
  const at = (q: number): string => histogram[Math.min(histogram.length - 1, Math.round(q * (histogram.length - 1)))] as string;
  if (p.operator === '>' || p.operator === '>=') return { value: at(0.9), note: `90th percentile of ${where} (a tenth of the rows above)` };
  if (p.operator === '<' || p.operator === '<=') return { value: at(0.1), note: `10th percentile of ${where} (a tenth of the rows below)` };
  return { value: at(0.5), note: `median of ${where}` };
}

const INTEGER_TYPES = new Set(['bigint', 'integer', 'smallint']);

/**
 * A value written to a column whose values are all distinct (a key, most likely unique): any value
 * sampled from it would collide. For an integer column, one past twice the largest value sampled.
 */
function beyondLargest(column: ColumnStatistics, histogram: readonly string[], where: string): { value: string; note: string } | undefined {
  const largest = histogram[histogram.length - 1];
  if (column.nDistinct !== -1 || !INTEGER_TYPES.has(column.type) || largest === undefined || !/^-?\d+$/.test(largest)) return undefined;
  const big = BigInt(largest);
  const value = (big > 0n ? big * 2n : 0n) + 1n;
  const limit = column.type === 'smallint' ? 32767n : column.type === 'integer' ? 2147483647n : 9223372036854775807n;
  if (value > limit) return undefined;
  return { value: value.toString(), note: `beyond the largest value of ${where} (its values are all distinct: a sampled one would collide)` };
}

/** `date_trunc($1, t)`, `date_part($1, t)`: the field is a parameter; an empty string would be an error. */
function fieldParameters(statement: ParsedStatement): Map<number, string> {
  const found = new Map<number, string>();
  visitTree(statement.tree, (type, value) => {
    if (type !== 'FuncCall') return;
    const names = ((value['funcname'] as { String?: { sval?: string } }[] | undefined) ?? []).map((n) => n.String?.sval ?? '');
    const name = (names[names.length - 1] ?? '').toLowerCase();
    const first = (value['args'] as { ParamRef?: { number?: number } }[] | undefined)?.[0]?.ParamRef?.number;
    if (first === undefined) return;
    if (name === 'date_trunc') found.set(first, 'day');
    if (name === 'date_part' || name === 'extract') found.set(first, 'year');
  });
  return found;
}

function limitParameters(statement: ParsedStatement): Map<number, 'limit' | 'offset'> {
  const found = new Map<number, 'limit' | 'offset'>();
  visitTree(statement.tree, (type, value) => {
    if (type !== 'SelectStmt') return;
    for (const [field, kind] of [['limitCount', 'limit'], ['limitOffset', 'offset']] as const) {
      visitTree(value[field], (t, v) => {
        if (t === 'ParamRef' && typeof v['number'] === 'number') found.set(v['number'], kind);
      });
    }
  });
  return found;
}

/** Types with a value that is valid and unremarkable, for a parameter no statistics speak for (a NOT NULL column takes it). */
const OBVIOUS_VALUES: readonly (readonly [(type: string) => boolean, string, string])[] = [
  [(t) => t.endsWith('[]'), '{}', "'{}' (an empty array)"],
  [(t) => ['text', 'name', 'citext', 'bytea'].includes(t) || t.startsWith('character'), '', "'' (empty)"],
  [(t) => t === 'json' || t === 'jsonb', '{}', "'{}' (an empty object)"],
  [(t) => t === 'uuid', '00000000-0000-0000-0000-000000000000', 'the nil UUID'],
  [(t) => t === 'inet' || t === 'cidr', '127.0.0.1', '127.0.0.1'],
  [(t) => t.startsWith('time ') || t === 'time', '00:00', 'midnight'],
];

function byType(type: string | undefined): { value: string | null; note: string } {
  const t = (type ?? '').toLowerCase();
  if (t === 'interval') return { value: '1 day', note: "interval '1 day'" };
  if (t.startsWith('timestamp') || t === 'date') return { value: new Date().toISOString(), note: 'now' };
  if (['bigint', 'integer', 'smallint', 'numeric', 'double precision', 'real'].includes(t)) return { value: '1', note: '1' };
  if (t === 'boolean') return { value: 'true', note: 'true' };
  const obvious = OBVIOUS_VALUES.find(([test]) => test(t));
  if (obvious !== undefined) return { value: obvious[1], note: obvious[2] };
  return { value: null, note: 'NULL (no statistics to sample from)' };
}
