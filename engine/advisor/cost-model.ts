import type { TableAccess } from '../analysis/column-usage.ts';
import { distinctValues, type TableStatistics } from '../analysis/table-statistics.ts';
import type { IndexCandidate } from './index-candidate.ts';
import { predicateSql } from './index-candidate.ts';
import { columnSelectivity, predicateSelectivity } from './selectivity.ts';

/**
 * The statistics-based estimate, for servers without hypopg: what a btree index scan would cost,
 * computed with PostgreSQL's own formulas (costsize.c `cost_index`, selfuncs.c `btcostestimate` /
 * `genericcostestimate`, `index_pages_fetched`) from the same inputs the planner uses — pg_stats,
 * reltuples/relpages, relallvisible and the cost settings. It leaves out what the planner adds for
 * rare cases (skip scans, bitmap combinations, parallel index scans), so it is labelled an estimate.
 */

export interface CostConstants {
  readonly seqPageCost: number;
  readonly randomPageCost: number;
  readonly cpuTupleCost: number;
  readonly cpuIndexTupleCost: number;
  readonly cpuOperatorCost: number;
  /** In pages. */
  readonly effectiveCacheSize: number;
  readonly blockSize: number;
}

/** PostgreSQL's defaults, used for any setting the server does not report. */
export const DEFAULT_COSTS: CostConstants = {
  seqPageCost: 1,
  randomPageCost: 4,
  cpuTupleCost: 0.01,
  cpuIndexTupleCost: 0.005,
  cpuOperatorCost: 0.0025,
  effectiveCacheSize: 524_288,
  blockSize: 8192,
};

export interface IndexPathEstimate {
  readonly usable: boolean;
  /** Share of the table's rows the index conditions keep. */
  readonly selectivity: number;
  /** Index entries visited. */
  readonly tuples: number;
  readonly startupCost: number;
  readonly totalCost: number;
  /** The index returns rows in the scope's ORDER BY. */
  readonly providesOrder: boolean;
  readonly indexOnly: boolean;
  /** Key columns bound by the access's conditions. */
  readonly boundKeys: number;
}

const UNUSABLE: IndexPathEstimate = { usable: false, selectivity: 1, tuples: 0, startupCost: 0, totalCost: Number.POSITIVE_INFINITY, providesOrder: false, indexOnly: false, boundKeys: 0 };

export function indexPathCost(table: TableStatistics, access: TableAccess, candidate: IndexCandidate, c: CostConstants): IndexPathEstimate {
  const partialShare = partialCoverage(access, candidate, table);
  if (partialShare === undefined) return UNUSABLE;

  const equality = new Set(access.equality.map((p) => p.column));
  const ranges = new Set(access.range.map((p) => p.column));
  let selectivity = 1;
  let quals = 0;
  let bound = 0;
  while (bound < candidate.keys.length && equality.has((candidate.keys[bound] as { column: string }).column)) {
    const column = (candidate.keys[bound] as { column: string }).column;
    selectivity *= columnSelectivity(table, column, access.equality);
    quals += 1;
    bound += 1;
  }
  const eqBound = bound;
  const next = candidate.keys[bound];
  if (next !== undefined && ranges.has(next.column)) {
    selectivity *= columnSelectivity(table, next.column, access.range);
    quals += access.range.filter((p) => p.column === next.column).length;
    bound += 1;
  }
  const providesOrder = ordersBy(access, candidate, eqBound);
  if (bound === 0 && !providesOrder) return UNUSABLE;

  const rows = Math.max(1, table.rows);
  const pages = Math.max(1, table.pages);
  const entries = Math.max(1, rows * partialShare);
  const tuples = Math.max(1, entries * selectivity);
  const indexPages = estimateIndexPages(table, candidate, partialShare, c);

  // btcostestimate: a descent costs log2(entries) comparisons plus 50 operator costs per page level.
  const height = Math.max(0, Math.ceil(Math.log(indexPages) / Math.log(256)));
  const descent = Math.ceil(Math.log2(entries)) * c.cpuOperatorCost + (height + 1) * 50 * c.cpuOperatorCost;
  const indexIo = Math.max(1, Math.ceil(selectivity * indexPages)) * c.randomPageCost;
  const indexCpu = tuples * (c.cpuIndexTupleCost + quals * c.cpuOperatorCost);

  // A partial index's predicate supplies the columns it constrains (PostgreSQL 9.6+ needs them not
  // stored for an index-only scan when the query's conditions are implied by the predicate).
  const implied = candidate.where === undefined ? [] : access.constantPredicates.map((p) => p.column);
  const indexOnly =
    access.write === undefined &&
    !access.allColumns &&
    access.referenced.every((col) => candidate.keys.some((k) => k.column === col) || candidate.include.includes(col) || implied.includes(col));
  // cost_index: uncorrelated heap fetches per Mackert-Lohman, perfectly correlated ones sequential,
  // interpolated by the square of the first key's correlation.
  const fetched = pagesFetched(tuples, pages, c.effectiveCacheSize);
  const maxIo = fetched * c.randomPageCost;
  const correlatedPages = Math.max(1, Math.ceil(selectivity * partialShare * pages));
  const minIo = c.randomPageCost + (correlatedPages - 1) * c.seqPageCost;
  const firstKey = candidate.keys[0]?.column;
  const correlation = table.columnStats.find((s) => s.name === firstKey)?.correlation ?? 0;
  let heapIo = maxIo + correlation * correlation * (minIo - maxIo);
  if (indexOnly) heapIo *= 1 - Math.min(1, table.allVisiblePages / pages);
  const otherQuals = access.equality.length + access.range.length - quals;
  const heapCpu = indexOnly ? 0 : tuples * (c.cpuTupleCost + Math.max(0, otherQuals) * c.cpuOperatorCost);

  return {
    usable: true,
    selectivity,
    tuples,
    startupCost: descent,
    totalCost: descent + indexIo + indexCpu + heapIo + heapCpu,
    providesOrder,
    indexOnly,
    boundKeys: bound,
  };
}

/**
 * The share of the table a partial index holds, when the access's own constant predicates include
 * every part of the index's predicate (so the planner may use it); 1 for a full index; undefined when
 * the index cannot serve the access.
 */
function partialCoverage(access: TableAccess, candidate: IndexCandidate, table: TableStatistics): number | undefined {
  if (candidate.where === undefined) return 1;
  const parts = candidate.where.split(' AND ');
  const own = access.constantPredicates.map(predicateSql);
  if (!parts.every((p) => own.includes(p))) return undefined;
  return access.constantPredicates
    .filter((p) => parts.includes(predicateSql(p)))
    .reduce((s, p) => s * predicateSelectivity(p, table), 1);
}

/** The keys after the bound equality prefix run in the ORDER BY's order (all forward or all backward). */
function ordersBy(access: TableAccess, candidate: IndexCandidate, eqBound: number): boolean {
  const equality = new Set(access.equality.map((p) => p.column));
  const order = access.orderBy.filter((s) => !equality.has(s.column));
  if (order.length === 0) return false;
  const keys = candidate.keys.slice(eqBound, eqBound + order.length);
  if (keys.length < order.length) return false;
  let direction: boolean | undefined;
  for (const [i, s] of order.entries()) {
    const key = keys[i];
    if (key === undefined || key.column !== s.column) return false;
    const same = (key.order === 'desc') === (s.direction === 'desc');
    if (direction === undefined) direction = same;
    else if (direction !== same) return false;
  }
  return true;
}

/** index_pages_fetched (costsize.c), for a table of `pages` pages and a cache of `cache` pages. */
export function pagesFetched(tuples: number, pages: number, cache: number): number {
  const t = Math.max(1, pages);
  const b = Math.max(1, cache);
  if (t <= b) {
    const fetched = (2 * t * tuples) / (2 * t + tuples);
    return fetched >= t ? t : Math.ceil(fetched);
  }
  const lim = (2 * t * b) / (2 * t - b);
  if (tuples <= lim) return Math.ceil((2 * t * tuples) / (2 * t + tuples));
  return Math.ceil(b + (tuples - lim) * ((t - b) / t));
}

/**
 * Pages of a btree on these columns: entries of MAXALIGN(8-byte header + key widths) plus a 4-byte
 * line pointer, leaf pages 90% full (the default fillfactor), one metapage; inner pages are ~1% more.
 * Since PostgreSQL 13 a btree without INCLUDE columns stores a key repeated in many rows once, with a
 * posting list of 6-byte heap pointers (deduplication): its keys are counted once per distinct
 * combination (pg_stats' n_distinct, multiplied across the keys, at most the rows) and each further
 * row costs 6 bytes. Types whose equality is not bytewise (numeric, floats, jsonb) are never
 * deduplicated. Without this, an index on a low-cardinality column came out 2-4 times its built size.
 */
export function estimateIndexPages(table: TableStatistics, candidate: IndexCandidate, partialShare: number, c: CostConstants): number {
  const stat = (name: string) => table.columnStats.find((x) => x.name === name);
  const width = [...candidate.keys.map((k) => k.column), ...candidate.include].reduce((sum, name) => {
    const s = stat(name);
    return sum + (s?.avgWidth ?? (s !== undefined && s.length > 0 ? s.length : 8));
  }, 0);
  const tuple = Math.ceil((8 + width) / 8) * 8 + 4;
  const usable = (c.blockSize - 24 - 16) * 0.9;
  const rows = Math.max(1, table.rows * partialShare);
  let bytes = rows * tuple;
  const dedup = candidate.include.length === 0 && candidate.keys.every((k) => !NOT_DEDUPLICATED.test(stat(k.column)?.type ?? ''));
  if (dedup) {
    let distinct = 1;
    for (const k of candidate.keys) distinct *= distinctValues(stat(k.column), table.rows) ?? rows;
    distinct = Math.min(rows, Math.max(1, distinct));
    bytes = distinct * tuple + (rows - distinct) * 6;
  }
  const leaves = Math.ceil(bytes / usable);
  return Math.max(1, Math.ceil(leaves * 1.01) + 1);
}

const NOT_DEDUPLICATED = /^(numeric|real|double precision|jsonb|float)/;

export function estimateIndexBytes(table: TableStatistics, candidate: IndexCandidate, partialShare: number, c: CostConstants = DEFAULT_COSTS): number {
  return estimateIndexPages(table, candidate, partialShare, c) * c.blockSize;
}

/** cost_sort: 2 * cpu_operator_cost per comparison; a bounded (top-N) sort compares log2(2k) times. */
export function sortCost(tuples: number, limit: number | undefined, c: CostConstants): number {
  const n = Math.max(2, tuples);
  const comparisons = limit !== undefined && limit < n ? Math.log2(Math.max(2, 2 * limit)) : Math.log2(n);
  return 2 * c.cpuOperatorCost * n * comparisons;
}
