import type { ColumnPredicate, ConstantPredicate } from '../analysis/column-usage.ts';
import { distinctValues, type ColumnStatistics, type TableStatistics } from '../analysis/table-statistics.ts';

/**
 * Selectivities from pg_stats, the way PostgreSQL's planner computes them (selfuncs.c), for the
 * statistics-based estimate. A parameter's value is unknown — as in a generic plan — so equality is
 * 1/n_distinct of the non-null rows and an open range the planner's default of one third.
 */

/** selfuncs.h: DEFAULT_EQ_SEL, DEFAULT_INEQ_SEL, DEFAULT_RANGE_INEQ_SEL. */
export const DEFAULT_EQ_SEL = 0.005;
export const DEFAULT_INEQ_SEL = 1 / 3;
export const DEFAULT_RANGE_INEQ_SEL = 0.005;

function column(table: TableStatistics, name: string): ColumnStatistics | undefined {
  return table.columnStats.find((c) => c.name === name);
}

/** The share of rows `column = value`; value undefined: unknown (a parameter), as in a generic plan. */
export function equalitySelectivity(table: TableStatistics, name: string, value?: string): number {
  const stats = column(table, name);
  const distinct = distinctValues(stats, table.rows);
  if (stats === undefined || distinct === undefined) return DEFAULT_EQ_SEL;
  const nonNull = 1 - (stats.nullFrac ?? 0);
  if (value === undefined) return nonNull / distinct;
  const at = stats.mostCommon.indexOf(unquote(value));
  if (at >= 0) return stats.mostCommonFreqs[at] ?? nonNull / distinct;
  // Not among the most common values: the rest of the rows spread over the rest of the values.
  const mcvShare = stats.mostCommonFreqs.reduce((s, f) => s + f, 0);
  const others = Math.max(1, distinct - stats.mostCommon.length);
  return Math.max(0, Math.min(nonNull - mcvShare, nonNull) / others);
}

/** The share of rows a column's predicates keep: equality as above, ranges by the planner's defaults. */
export function columnSelectivity(table: TableStatistics, name: string, predicates: readonly ColumnPredicate[]): number {
  const own = predicates.filter((p) => p.column === name);
  if (own.length === 0) return 1;
  const eq = own.find((p) => p.operator === '=' || p.operator === '= ANY' || p.operator === 'IN' || p.operator === 'IS NULL');
  if (eq !== undefined) {
    if (eq.operator === 'IS NULL') return column(table, name)?.nullFrac ?? DEFAULT_EQ_SEL;
    const value = eq.operand.kind === 'const' ? eq.operand.sql : undefined;
    // An IN list or = ANY: a few values; the planner multiplies per element, three is a fair guess.
    return Math.min(1, equalitySelectivity(table, name, value) * (eq.operator === '=' ? 1 : 3));
  }
  const lower = own.some((p) => p.operator === '>' || p.operator === '>=');
  const upper = own.some((p) => p.operator === '<' || p.operator === '<=');
  // A closed range on one column (a < x < b) is costed by clauselist_selectivity as one range.
  return lower && upper ? DEFAULT_RANGE_INEQ_SEL : DEFAULT_INEQ_SEL;
}

/** The share of rows a constant predicate keeps, from the column's null fraction and most common values. */
export function predicateSelectivity(p: ConstantPredicate, table: TableStatistics): number {
  const stats = column(table, p.column);
  const nullFrac = stats?.nullFrac ?? 0;
  switch (p.kind) {
    case 'null':
      return p.negated ? 1 - nullFrac : nullFrac;
    case 'bool': {
      const at = stats?.mostCommon.indexOf(p.value ? 't' : 'f') ?? -1;
      return at >= 0 ? (stats?.mostCommonFreqs[at] ?? 0.5) : 0.5;
    }
    case 'compare': {
      const eq = equalitySelectivity(table, p.column, p.value);
      if (p.operator === '=') return eq;
      if (p.operator === '<>') return Math.max(0, 1 - nullFrac - eq);
      return DEFAULT_INEQ_SEL;
    }
  }
}

/** `'resolved'`, `'resolved'::text` -> `resolved`: how the value reads in pg_stats' arrays. */
function unquote(sql: string): string {
  const m = /^'((?:[^']|'')*)'(?:::[\w\s."]+)?$/.exec(sql.trim());
  if (m) return (m[1] as string).replaceAll("''", "'");
  return sql.trim().replace(/::[\w\s."]+$/, '');
}
