import { ancestry, nodeLabel, rawPlan, relationLabel, totalRows, walkPlan, type ExplainResult, type PlanNode } from './explain-plan.ts';
import { partitionPruning, type PartitionPruning } from './partition-pruning.ts';

/**
 * Findings: what is wrong in a plan, each pointing at the node that causes it, with the numbers that
 * show it and what to do. Pure: the plan plus facts about its relations in, findings out.
 */

/** The node a finding is about, as `analyze` prints it ("node 3: Parallel Seq Scan on public.events"). */
export interface NodeRef {
  readonly id: number;
  readonly path: readonly number[];
  readonly nodeType: string;
  readonly label: string;
  readonly relation?: string;
}

export type Severity = 'high' | 'medium' | 'low';

interface FindingBase {
  readonly severity: Severity;
  readonly node: NodeRef;
  /** One sentence: what happens, with its numbers. */
  readonly message: string;
  /** What to do about it. */
  readonly hint: string;
  /** Share of the plan's total cost spent at or below the node, 0..1: how much fixing it can buy. */
  readonly costShare: number;
}

export interface SeqScanFinding extends FindingBase {
  readonly kind: 'seq-scan';
  readonly table: string;
  readonly tableRows: number;
  readonly rowsScanned: number;
  readonly rowsReturned: number;
  readonly selectivity: number;
  readonly filter: string;
  readonly loops: number;
  /** Measured (ANALYZE) or estimated by the planner. */
  readonly measured: boolean;
  /** The scans of this many partitions of `table`, folded into one finding. */
  readonly partitions?: number;
}

export interface RowMisestimateFinding extends FindingBase {
  readonly kind: 'row-misestimate';
  readonly plannedRows: number;
  readonly actualRows: number;
  /** max/min of the two, >= the threshold. */
  readonly factor: number;
  readonly direction: 'under' | 'over';
}

export interface SortSpillFinding extends FindingBase {
  readonly kind: 'sort-spill';
  readonly method: string;
  readonly diskKb: number;
  readonly workMemKb?: number;
}

export interface HashSpillFinding extends FindingBase {
  readonly kind: 'hash-spill';
  readonly batches: number;
  readonly diskKb?: number;
  readonly workMemKb?: number;
}

export interface NestedLoopFinding extends FindingBase {
  readonly kind: 'nested-loop-large-inner';
  readonly outerRows: number;
  readonly innerLoops: number;
  /** Rows the inner side read over all its loops (returned plus filtered out). */
  readonly innerRowsRead: number;
  readonly inner: NodeRef;
  readonly measured: boolean;
}

export interface PartitionsNotPrunedFinding extends FindingBase {
  readonly kind: 'partitions-not-pruned';
  readonly parent: string;
  readonly scanned: number;
  readonly total: number;
  readonly partitionKey?: string;
}

export interface HeapFetchesFinding extends FindingBase {
  readonly kind: 'heap-fetches';
  readonly heapFetches: number;
  readonly rows: number;
  readonly allVisibleShare?: number;
}

export interface JitFinding extends FindingBase {
  readonly kind: 'jit-dominates';
  readonly jitMs: number;
  readonly executionMs: number;
  readonly functions: number;
}

export interface LossyBitmapFinding extends FindingBase {
  readonly kind: 'lossy-bitmap';
  readonly lossyBlocks: number;
  readonly exactBlocks: number;
}

export interface WorkersNotLaunchedFinding extends FindingBase {
  readonly kind: 'workers-not-launched';
  readonly planned: number;
  readonly launched: number;
}

export type Finding =
  | SeqScanFinding
  | RowMisestimateFinding
  | SortSpillFinding
  | HashSpillFinding
  | NestedLoopFinding
  | PartitionsNotPrunedFinding
  | HeapFetchesFinding
  | JitFinding
  | LossyBitmapFinding
  | WorkersNotLaunchedFinding;

export type FindingKind = Finding['kind'];

/** What the catalog says about a relation the plan reads; keyed by `schema.name` in the context. */
export interface RelationFacts {
  readonly schema: string;
  readonly name: string;
  readonly rows: number;
  readonly pages: number;
  readonly allVisiblePages: number;
  /** For a partition: its partitioned parent, the parent's leaf partitions, and its key. */
  readonly parent?: {
    readonly schema: string;
    readonly name: string;
    readonly partitions: readonly { readonly schema: string; readonly name: string }[];
    readonly key?: string;
  };
}

export interface FindingThresholds {
  /** A sequential scan matters from this many rows in the table. */
  readonly largeTableRows: number;
  /** ... when it returns at most this share of the rows it reads. */
  readonly selectiveShare: number;
  /** Actual vs planned rows, either way. */
  readonly misestimateFactor: number;
  /** A misestimate below this many rows (either side) is noise. */
  readonly misestimateMinRows: number;
  /** Inner side of a nested loop: this many loops ... */
  readonly nestedLoopMinLoops: number;
  /** ... or this many rows read over all of them. */
  readonly nestedLoopMinInnerRows: number;
  /** JIT time as a share of execution time. */
  readonly jitShare: number;
  /** Heap fetches as a share of an index-only scan's rows. */
  readonly heapFetchShare: number;
}

export const DEFAULT_THRESHOLDS: FindingThresholds = {
  largeTableRows: 10_000,
  selectiveShare: 0.1,
  misestimateFactor: 10,
  misestimateMinRows: 100,
  nestedLoopMinLoops: 1_000,
  nestedLoopMinInnerRows: 100_000,
  jitShare: 0.5,
  heapFetchShare: 0.1,
};

export interface FindingContext {
  readonly relations: ReadonlyMap<string, RelationFacts>;
  /** The session's work_mem, to say how far a spill is from fitting. */
  readonly workMemKb?: number;
  readonly thresholds?: Partial<FindingThresholds>;
  /** The plan is EXPLAIN (GENERIC_PLAN): its $n have no values (see prunedPartitions). */
  readonly genericPlan?: boolean;
}

export function nodeRef(node: PlanNode): NodeRef {
  const relation = relationLabel(node);
  return { id: node.id, path: node.path, nodeType: node.nodeType, label: nodeLabel(node), ...(relation === undefined ? {} : { relation }) };
}

/** Every finding of one plan, most severe and most expensive first. */
export function planFindings(explain: ExplainResult, context: FindingContext): Finding[] {
  const t: FindingThresholds = { ...DEFAULT_THRESHOLDS, ...context.thresholds };
  const root = explain.plan;
  const share = (node: PlanNode): number => (root.totalCost > 0 ? Math.min(1, node.totalCost / root.totalCost) : 0);
  const findings: Finding[] = [];
  for (const node of walkPlan(root)) {
    if (node.neverExecuted) continue;
    const base = { node: nodeRef(node), costShare: share(node) };
    const misestimate = rowMisestimate(node, root, t);
    if (misestimate) findings.push({ ...base, ...misestimate });
    const sort = sortSpill(node, context);
    if (sort) findings.push({ ...base, ...sort });
    const hash = hashSpill(node, context);
    if (hash) findings.push({ ...base, ...hash });
    const loop = nestedLoop(node, context, t);
    if (loop) findings.push({ ...base, ...loop });
    const fetches = heapFetches(node, context, t);
    if (fetches) findings.push({ ...base, ...fetches });
    if (node.lossyHeapBlocks !== undefined && node.lossyHeapBlocks > 0) {
      findings.push({
        ...base,
        kind: 'lossy-bitmap',
        severity: 'low',
        lossyBlocks: node.lossyHeapBlocks,
        exactBlocks: node.exactHeapBlocks ?? 0,
        message: `the bitmap went lossy for ${node.lossyHeapBlocks.toLocaleString('en-US')} heap blocks: every row on them is rechecked`,
        hint: `raise work_mem (now ${kb(context.workMemKb)}) for this query so the bitmap stays exact`,
      });
    }
    if (node.workersPlanned !== undefined && node.workersLaunched !== undefined && node.workersLaunched < node.workersPlanned) {
      findings.push({
        ...base,
        kind: 'workers-not-launched',
        severity: 'low',
        planned: node.workersPlanned,
        launched: node.workersLaunched,
        message: `${node.workersPlanned} parallel workers planned, ${node.workersLaunched} launched: the rest of the work ran in fewer processes`,
        hint: 'max_parallel_workers or max_worker_processes is exhausted at this moment (other parallel queries)',
      });
    }
  }
  findings.push(...seqScanFindings(root, context, t, share));
  findings.push(...partitionFindings(root, context, share));
  const jit = jitFinding(explain, t);
  if (jit) findings.push({ ...jit, node: nodeRef(root), costShare: 1 });
  const rank: Record<Severity, number> = { high: 0, medium: 1, low: 2 };
  return findings.sort((a, b) => rank[a.severity] - rank[b.severity] || b.costShare - a.costShare || a.node.id - b.node.id);
}

type Omit2<T> = Omit<T, 'node' | 'costShare'>;

/**
 * PostgreSQL's estimate of how many processes share a parallel-aware node's rows (get_parallel_divisor):
 * the workers, plus the leader's contribution, which shrinks by 0.3 per worker.
 */
function parallelDivisor(node: PlanNode, root: PlanNode): number {
  if (!node.parallelAware) return 1;
  const gather = ancestry(root, node.id).reverse().find((n) => n.kind === 'gather' || n.kind === 'gather-merge');
  const workers = gather?.workersPlanned ?? 2;
  const leader = 1 - 0.3 * workers;
  return workers + (leader > 0 ? leader : 0);
}

/** What one sequential scan with a filter reads and keeps. */
interface SeqScanObservation {
  readonly node: PlanNode;
  readonly table: string;
  readonly tableRows: number;
  readonly rowsScanned: number;
  readonly rowsReturned: number;
  readonly loops: number;
  readonly measured: boolean;
  readonly filter: string;
}

function seqScanObservation(node: PlanNode, root: PlanNode, context: FindingContext): SeqScanObservation | undefined {
  if (node.kind !== 'seq-scan' || node.filter === undefined) return undefined;
  const table = relationLabel(node) ?? '?';
  const tableRows = context.relations.get(table)?.rows ?? 0;
  const loops = node.actual?.loops ?? 1;
  const measured = node.actual !== undefined && node.rowsRemovedByFilter !== undefined;
  const rowsReturned = measured ? totalRows(node) : node.planRows * parallelDivisor(node, root);
  // Per-loop averages in EXPLAIN JSON: both counts are multiplied back by the loops.
  const rowsScanned = measured ? rowsReturned + (node.rowsRemovedByFilter ?? 0) * loops : tableRows;
  return { node, table, tableRows, rowsScanned, rowsReturned, loops, measured, filter: node.filter };
}

/**
 * Sequential-scan findings. The scans of one partitioned table's partitions are one finding on their
 * Append: the advice (an index on the parent, built on every partition) is one, and so is the
 * threshold — many small partitions add up to a large table.
 */
function seqScanFindings(root: PlanNode, context: FindingContext, t: FindingThresholds, share: (node: PlanNode) => number): Finding[] {
  const groups = new Map<string, { parent?: string; node: PlanNode; scans: SeqScanObservation[] }>();
  for (const node of walkPlan(root)) {
    if (node.neverExecuted) continue;
    const scan = seqScanObservation(node, root, context);
    if (scan === undefined) continue;
    const parent = context.relations.get(scan.table)?.parent;
    const key = parent === undefined ? `node:${node.id}` : `${parent.schema}.${parent.name}`;
    const group = groups.get(key);
    if (group !== undefined) group.scans.push(scan);
    else {
      const append = parent === undefined ? undefined : ancestry(root, node.id).reverse().find((n) => n.kind === 'append' || n.kind === 'merge-append');
      groups.set(key, { ...(parent === undefined ? {} : { parent: key }), node: append ?? node, scans: [scan] });
    }
  }
  const findings: Finding[] = [];
  for (const { parent, node, scans } of groups.values()) {
    const first = scans[0] as SeqScanObservation;
    const several = parent !== undefined && scans.length > 1;
    const sum = (pick: (s: SeqScanObservation) => number): number => scans.reduce((n, s) => n + pick(s), 0);
    const tableRows = sum((s) => s.tableRows);
    const rowsScanned = sum((s) => s.rowsScanned);
    const rowsReturned = sum((s) => s.rowsReturned);
    const loops = Math.max(...scans.map((s) => s.loops));
    const measured = scans.every((s) => s.measured);
    if (tableRows < t.largeTableRows || rowsScanned <= 0) continue;
    const selectivity = rowsReturned / rowsScanned;
    if (selectivity > t.selectiveShare) continue;
    const table = several ? (parent as string) : first.table;
    const what = several ? `sequential scans of ${scans.length} partitions of ${table}` : `sequential scan of ${table}`;
    const how = measured ? 'read' : several ? 'read an estimated' : 'reads an estimated';
    const perLoop = loops > 1 ? `, ${loops.toLocaleString('en-US')} times` : '';
    const target = several ? node : first.node;
    findings.push({
      kind: 'seq-scan',
      severity: tableRows >= 1_000_000 || loops > 1 ? 'high' : 'medium',
      node: nodeRef(target),
      costShare: share(target),
      table,
      tableRows,
      rowsScanned,
      rowsReturned,
      selectivity,
      filter: first.filter,
      loops,
      measured,
      ...(several ? { partitions: scans.length } : {}),
      message: `${what} ${how} ${count(rowsScanned)} rows to keep ${count(rowsReturned)} (${percent(selectivity)})${perLoop}; filter ${first.filter}`,
      hint: several
        ? `an index on the filtered columns of ${table} (built on every partition) turns these into index scans: see \`pgwarden advise\``
        : `an index on the filtered columns of ${table} turns this into an index scan: see \`pgwarden advise\``,
    });
  }
  return findings;
}

function rowMisestimate(node: PlanNode, root: PlanNode, t: FindingThresholds): Omit2<RowMisestimateFinding> | undefined {
  if (node.actual === undefined || node.actual.loops === 0) return undefined;
  const planned = node.planRows;
  const actual = node.actual.rows;
  const factor = ratio(planned, actual);
  if (factor < t.misestimateFactor || Math.max(planned, actual) < t.misestimateMinRows) return undefined;
  const direction = actual > planned ? 'under' : 'over';
  // A node that stops early (under a Limit, the inner side of a semi or anti join, a side of a merge
  // join) returns fewer rows than planned by design: only an underestimate is a finding there.
  if (direction === 'over' && stopsEarly(node, root)) return undefined;
  // Report where a misestimate starts, not every node it propagates to.
  const inherited = node.children.some(
    (c) => c.actual !== undefined && c.actual.loops > 0 && ratio(c.planRows, c.actual.rows) >= t.misestimateFactor,
  );
  if (inherited) return undefined;
  const relation = relationLabel(node);
  return {
    kind: 'row-misestimate',
    severity: factor >= 100 ? 'high' : 'medium',
    plannedRows: planned,
    actualRows: actual,
    factor,
    direction,
    message: `the planner expected ${count(planned)} rows and got ${count(actual)} (${factor >= 1000 ? '>1000' : factor.toFixed(0)}x ${direction === 'under' ? 'more' : 'fewer'})${node.actual.loops > 1 ? ' per loop' : ''}`,
    hint: relation
      ? `ANALYZE ${relation}; if it persists, raise the columns' statistics target or add CREATE STATISTICS for correlated columns`
      : 'the estimate is wrong from here up: check the statistics of the tables below this node',
  };
}

function stopsEarly(node: PlanNode, root: PlanNode): boolean {
  const chain = ancestry(root, node.id);
  const parent = chain[chain.length - 2];
  if (chain.some((n) => n.kind === 'limit')) return true;
  if (parent?.kind === 'merge-join') return true;
  if (parent && (parent.joinType === 'Semi' || parent.joinType === 'Anti') && parent.children[1] === node) return true;
  return node.subplanName !== undefined || chain.some((n) => n.subplanName !== undefined);
}

function sortSpill(node: PlanNode, context: FindingContext): Omit2<SortSpillFinding> | undefined {
  if (node.kind === 'sort') {
    const onDisk = node.sortSpaceType === 'Disk' || (node.sortMethod ?? '').startsWith('external');
    if (!onDisk) return undefined;
    return spill(node.sortMethod ?? 'external', node.sortSpaceKb ?? 0, context);
  }
  if (node.kind === 'incremental-sort') {
    // Incremental Sort reports per group kind: {"Full-sort Groups": {"Sort Space Disk": {"Peak Sort Space Used": n}}}.
    for (const group of ['Full-sort Groups', 'Pre-sorted Groups']) {
      const g = node.properties[group];
      const disk = typeof g === 'object' && g !== null ? (g as Record<string, unknown>)['Sort Space Disk'] : undefined;
      const peak = typeof disk === 'object' && disk !== null ? (disk as Record<string, unknown>)['Peak Sort Space Used'] : undefined;
      if (typeof peak === 'number' && peak > 0) return spill('external (incremental)', peak, context);
    }
  }
  return undefined;
}

function spill(method: string, diskKb: number, context: FindingContext): Omit2<SortSpillFinding> {
  return {
    kind: 'sort-spill',
    severity: diskKb >= 100 * 1024 ? 'high' : 'medium',
    method,
    diskKb,
    ...(context.workMemKb === undefined ? {} : { workMemKb: context.workMemKb }),
    message: `the sort spilled ${kb(diskKb)} to disk (${method})`,
    // An on-disk sort needs somewhat more memory than its temp file to run in memory.
    hint: `work_mem is ${kb(context.workMemKb)}; about ${kb(Math.ceil(diskKb * 1.5))} keeps it in memory (SET work_mem for this query or role), or an index in this order avoids the sort`,
  };
}

function hashSpill(node: PlanNode, context: FindingContext): Omit2<HashSpillFinding> | undefined {
  const workMem = context.workMemKb === undefined ? {} : { workMemKb: context.workMemKb };
  if (node.kind === 'hash' && node.hashBatches !== undefined && node.hashBatches > 1) {
    const grew = node.originalHashBatches !== undefined && node.hashBatches > node.originalHashBatches;
    return {
      kind: 'hash-spill',
      severity: node.hashBatches >= 16 ? 'high' : 'medium',
      batches: node.hashBatches,
      ...workMem,
      message: `the hash table was split into ${node.hashBatches} batches written to disk${grew ? ` (planned ${node.originalHashBatches}: the inner side was bigger than estimated)` : ''}; peak memory ${kb(node.peakMemoryKb)}`,
      hint: `work_mem is ${kb(context.workMemKb)} (times hash_mem_multiplier); raise it for this query, or reduce the rows hashed`,
    };
  }
  if (node.kind === 'aggregate' && ((node.hashAggBatches ?? 0) > 1 || (node.diskUsageKb ?? 0) > 0)) {
    return {
      kind: 'hash-spill',
      severity: (node.diskUsageKb ?? 0) >= 100 * 1024 ? 'high' : 'medium',
      batches: node.hashAggBatches ?? 1,
      ...(node.diskUsageKb === undefined ? {} : { diskKb: node.diskUsageKb }),
      ...workMem,
      message: `the hash aggregate spilled ${kb(node.diskUsageKb)} to disk in ${node.hashAggBatches ?? 1} batches`,
      hint: `work_mem is ${kb(context.workMemKb)} (times hash_mem_multiplier); raise it for this query`,
    };
  }
  return undefined;
}

function nestedLoop(node: PlanNode, context: FindingContext, t: FindingThresholds): Omit2<NestedLoopFinding> | undefined {
  if (node.kind !== 'nested-loop') return undefined;
  const [outer, inner] = node.children;
  if (outer === undefined || inner === undefined) return undefined;
  const scan = firstScan(inner);
  if (inner.actual !== undefined && outer.actual !== undefined) {
    const loops = inner.actual.loops;
    // Rows the inner side handed the join over all loops (a Materialize replays its rows every loop),
    // or what its scan read, filtered rows included: whichever is more.
    const produced = inner.actual.rows * loops;
    const scanned = scan?.actual === undefined ? 0 : (scan.actual.rows + (scan.rowsRemovedByFilter ?? 0)) * scan.actual.loops;
    const innerRowsRead = Math.max(produced, scanned);
    const fullScans = scan?.kind === 'seq-scan' && scan.actual !== undefined && scan.actual.loops >= t.nestedLoopMinLoops;
    if (innerRowsRead < t.nestedLoopMinInnerRows && !fullScans) return undefined;
    return nestedLoopFinding(totalRows(outer), loops, innerRowsRead, inner, scan, true);
  }
  // Without ANALYZE: an inner side that scans a large table whole, once per outer row.
  if (scan?.kind !== 'seq-scan') return undefined;
  const rows = context.relations.get(relationLabel(scan) ?? '')?.rows ?? 0;
  if (outer.planRows < 2 || rows < t.largeTableRows) return undefined;
  return nestedLoopFinding(outer.planRows, outer.planRows, outer.planRows * rows, inner, scan, false);
}

function nestedLoopFinding(
  outerRows: number,
  innerLoops: number,
  innerRowsRead: number,
  inner: PlanNode,
  scan: PlanNode | undefined,
  measured: boolean,
): Omit2<NestedLoopFinding> {
  const what = scan ? nodeLabel(scan) : nodeLabel(inner);
  return {
    kind: 'nested-loop-large-inner',
    severity: innerRowsRead >= 1_000_000 ? 'high' : 'medium',
    outerRows,
    innerLoops,
    innerRowsRead,
    inner: nodeRef(inner),
    measured,
    message: `nested loop runs its inner side (${what}) ${count(innerLoops)} times, reading ${measured ? '' : 'an estimated '}${count(innerRowsRead)} rows in all`,
    hint:
      scan?.kind === 'seq-scan'
        ? `an index on the join column of ${relationLabel(scan) ?? 'the inner table'} makes each loop a lookup`
        : 'check the outer side\'s row estimate: with the real count the planner would likely pick a hash or merge join',
  };
}

/** The first scan in a subtree (through Materialize, Memoize, Hash and the like). */
function firstScan(node: PlanNode): PlanNode | undefined {
  for (const n of walkPlan(node)) if (n.relation !== undefined) return n;
  return undefined;
}

function heapFetches(node: PlanNode, context: FindingContext, t: FindingThresholds): Omit2<HeapFetchesFinding> | undefined {
  if (node.kind !== 'index-only-scan' || node.heapFetches === undefined || node.actual === undefined) return undefined;
  // "Heap Fetches" is a total over all loops, unlike the row counts.
  const rows = totalRows(node);
  if (node.heapFetches < 100 || node.heapFetches < rows * t.heapFetchShare) return undefined;
  const table = relationLabel(node);
  const facts = table === undefined ? undefined : context.relations.get(table);
  const allVisibleShare = facts && facts.pages > 0 ? Math.min(1, facts.allVisiblePages / facts.pages) : undefined;
  return {
    kind: 'heap-fetches',
    severity: rows > 0 && node.heapFetches / rows >= 0.5 ? 'medium' : 'low',
    heapFetches: node.heapFetches,
    rows,
    ...(allVisibleShare === undefined ? {} : { allVisibleShare }),
    message: `index-only scan visited the heap for ${count(node.heapFetches)} of ${count(rows)} rows${allVisibleShare === undefined ? '' : ` (${percent(allVisibleShare)} of the table is marked all-visible)`}`,
    hint: `VACUUM ${table ?? 'the table'} to update its visibility map; if it recurs, lower its autovacuum_vacuum_scale_factor (\`pgwarden maintain\`)`,
  };
}

/**
 * Partitions not pruned: for each partitioned table the plan reads, issue 4's `partitionPruning`
 * counts the partitions scanned against all of them (plan-time, startup and run-time pruning alike).
 */
function partitionFindings(root: PlanNode, context: FindingContext, share: (node: PlanNode) => number): Finding[] {
  const findings: Finding[] = [];
  for (const { parent, pruning, node, prunedAtStartupOnParameters } of prunedPartitions(root, context.relations, context.genericPlan ?? false)) {
    if (pruning.total < 2 || pruning.scanned < pruning.total || prunedAtStartupOnParameters) continue;
    findings.push({
      kind: 'partitions-not-pruned',
      severity: 'medium',
      node: nodeRef(node),
      costShare: share(node),
      parent: `${parent.schema}.${parent.name}`,
      scanned: pruning.scanned,
      total: pruning.total,
      ...(parent.key === undefined ? {} : { partitionKey: parent.key }),
      message: `scans all ${pruning.total} partitions of ${parent.schema}.${parent.name}: none pruned`,
      hint: parent.key
        ? `filter on the partition key (${parent.key}) with a plain comparison to a constant or parameter so the planner can prune`
        : 'filter on the partition key so the planner can prune',
    });
  }
  return findings;
}

export interface ParentPruning {
  readonly parent: NonNullable<RelationFacts['parent']>;
  readonly pruning: PartitionPruning;
  /** The Append / Merge Append over its partitions, or the one partition scan left. */
  readonly node: PlanNode;
  /**
   * A generic plan whose scans compare the partition key with a $n. Such a plan has no values to
   * prune with: PostgreSQL prunes at executor startup, once an execution binds its values ("Subplans
   * Removed"), which EXPLAIN (GENERIC_PLAN) never reaches — so its "nothing pruned" says nothing.
   */
  readonly prunedAtStartupOnParameters: boolean;
}

/** Pruning per partitioned table whose partitions the plan reads; `genericPlan`: EXPLAIN (GENERIC_PLAN). */
export function prunedPartitions(root: PlanNode, relations: ReadonlyMap<string, RelationFacts>, genericPlan = false): ParentPruning[] {
  const parents = new Map<string, { parent: NonNullable<RelationFacts['parent']>; node: PlanNode }>();
  for (const node of walkPlan(root)) {
    const parent = relations.get(relationLabel(node) ?? '')?.parent;
    if (parent === undefined) continue;
    const key = `${parent.schema}.${parent.name}`;
    if (parents.has(key)) continue;
    const append = ancestry(root, node.id).reverse().find((n) => n.kind === 'append' || n.kind === 'merge-append');
    parents.set(key, { parent, node: append ?? node });
  }
  const raw = [{ Plan: rawPlan(root) }];
  return [...parents.values()].map(({ parent, node }) => ({
    parent,
    node,
    pruning: partitionPruning(raw, parent.partitions),
    prunedAtStartupOnParameters: genericPlan && comparesKeyWithParameter(node, parent.key),
  }));
}

/** Some scan under `node` has a condition naming a partition key column and a $n. */
function comparesKeyWithParameter(node: PlanNode, partitionKey: string | undefined): boolean {
  // "RANGE (created_at)", "LIST (region, lower(kind))": the words inside the parentheses.
  const columns = (/\((.*)\)/.exec(partitionKey ?? '')?.[1] ?? '').match(/[A-Za-z_][\w$]*/g) ?? [];
  if (columns.length === 0) return false;
  const names = new RegExp(`(^|[^\\w$])(${columns.map((c) => c.replace(/\$/g, '\\$')).join('|')})([^\\w$]|$)`);
  return [...walkPlan(node)].some((n) =>
    [n.filter, n.indexCond, n.recheckCond].some((condition) => condition !== undefined && /\$\d+/.test(condition) && names.test(condition)),
  );
}

function jitFinding(explain: ExplainResult, t: FindingThresholds): Omit2<JitFinding> | undefined {
  const jitMs = explain.jit?.totalMs;
  const executionMs = explain.executionMs;
  if (jitMs === undefined || executionMs === undefined || executionMs <= 0) return undefined;
  if (jitMs < executionMs * t.jitShare) return undefined;
  return {
    kind: 'jit-dominates',
    severity: 'high',
    jitMs,
    executionMs,
    functions: explain.jit?.functions ?? 0,
    message: `JIT compilation took ${jitMs.toFixed(1)} ms of ${executionMs.toFixed(1)} ms execution (${percent(jitMs / executionMs)})`,
    hint: 'the plan\'s cost is above jit_above_cost but the query is short: raise jit_above_cost (and jit_inline/optimize_above_cost) or SET jit = off for this workload',
  };
}

function ratio(a: number, b: number): number {
  return Math.max(a, b) / Math.max(1, Math.min(a, b));
}

export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function percent(share: number): string {
  const p = share * 100;
  return `${p < 1 && p > 0 ? p.toFixed(2) : p < 10 ? p.toFixed(1) : p.toFixed(0)}%`;
}

export function kb(value: number | undefined): string {
  if (value === undefined) return 'unknown';
  if (value >= 1024 * 1024) return `${(value / 1024 / 1024).toFixed(1)} GB`;
  if (value >= 1024) return `${(value / 1024).toFixed(value >= 10 * 1024 ? 0 : 1)} MB`;
  return `${Math.round(value)} kB`;
}
