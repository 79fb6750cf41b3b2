/**
 * A typed reader for `EXPLAIN (FORMAT JSON)` output of PostgreSQL 14–17.
 *
 * Every node type those versions emit has its own `kind`; a node type this reader does not know (a
 * newer server, a custom scan provider's name) becomes `kind: 'unknown'` with its `nodeType` and every
 * property kept, and its children are read as usual — nothing in a plan is dropped. The properties the
 * findings need are typed; all of them stay available, as PostgreSQL wrote them, in `properties`.
 *
 * @example
 * const explain = readExplain((await client.query('EXPLAIN (FORMAT JSON) SELECT 1')).rows[0]['QUERY PLAN']);
 * explain.plan.kind // 'result'
 */

/** PostgreSQL's "Node Type" strings (explain.c), 14–17, and the kind each reads as. */
const NODE_KINDS = {
  Result: 'result',
  ProjectSet: 'project-set',
  ModifyTable: 'modify-table',
  Append: 'append',
  'Merge Append': 'merge-append',
  'Recursive Union': 'recursive-union',
  BitmapAnd: 'bitmap-and',
  BitmapOr: 'bitmap-or',
  'Nested Loop': 'nested-loop',
  'Merge Join': 'merge-join',
  'Hash Join': 'hash-join',
  'Seq Scan': 'seq-scan',
  'Sample Scan': 'sample-scan',
  Gather: 'gather',
  'Gather Merge': 'gather-merge',
  'Index Scan': 'index-scan',
  'Index Only Scan': 'index-only-scan',
  'Bitmap Index Scan': 'bitmap-index-scan',
  'Bitmap Heap Scan': 'bitmap-heap-scan',
  'Tid Scan': 'tid-scan',
  // PostgreSQL 14+.
  'Tid Range Scan': 'tid-range-scan',
  'Subquery Scan': 'subquery-scan',
  'Function Scan': 'function-scan',
  'Table Function Scan': 'table-function-scan',
  'Values Scan': 'values-scan',
  'CTE Scan': 'cte-scan',
  'Named Tuplestore Scan': 'named-tuplestore-scan',
  'WorkTable Scan': 'worktable-scan',
  'Foreign Scan': 'foreign-scan',
  'Custom Scan': 'custom-scan',
  Materialize: 'materialize',
  // PostgreSQL 14+ (called "Result Cache" only in 14's betas).
  Memoize: 'memoize',
  Sort: 'sort',
  'Incremental Sort': 'incremental-sort',
  Group: 'group',
  Aggregate: 'aggregate',
  WindowAgg: 'window-agg',
  Unique: 'unique',
  SetOp: 'set-op',
  LockRows: 'lock-rows',
  Limit: 'limit',
  Hash: 'hash',
} as const;

export type NodeKind = (typeof NODE_KINDS)[keyof typeof NODE_KINDS] | 'unknown';

/** The node kinds that read a table's rows (or an index's) and can carry a relation. */
export const SCAN_KINDS: ReadonlySet<NodeKind> = new Set<NodeKind>([
  'seq-scan', 'sample-scan', 'index-scan', 'index-only-scan', 'bitmap-heap-scan', 'tid-scan', 'tid-range-scan',
]);

/** Block counters of BUFFERS; absent without the option. */
export interface Buffers {
  readonly sharedHit: number;
  readonly sharedRead: number;
  readonly sharedDirtied: number;
  readonly sharedWritten: number;
  readonly tempRead: number;
  readonly tempWritten: number;
}

/** Present only with ANALYZE: what really happened, per loop (times in ms, rows averaged over loops). */
export interface Actuals {
  readonly startupMs: number;
  readonly totalMs: number;
  readonly rows: number;
  readonly loops: number;
}

export interface PlanNode {
  readonly kind: NodeKind;
  /** PostgreSQL's own name for the node, e.g. "Seq Scan" (always present, also for unknown kinds). */
  readonly nodeType: string;
  /** Preorder position in the plan tree, from 0 at the root: how findings point at their node. */
  readonly id: number;
  /** Children's indexes from the root, e.g. [0, 1] for the root's first child's second child. */
  readonly path: readonly number[];
  readonly parentRelationship?: string;
  readonly subplanName?: string;
  readonly parallelAware: boolean;
  readonly startupCost: number;
  readonly totalCost: number;
  readonly planRows: number;
  readonly planWidth: number;
  readonly actual?: Actuals;
  /** Set by ANALYZE for a node that never ran (a branch pruned at run time, a skipped subplan). */
  readonly neverExecuted: boolean;
  readonly relation?: { readonly schema?: string; readonly name: string; readonly alias?: string };
  readonly indexName?: string;
  readonly scanDirection?: string;
  readonly joinType?: string;
  /** Aggregate: Plain, Sorted, Hashed, Mixed; SetOp: Sorted, Hashed. */
  readonly strategy?: string;
  /** ModifyTable: Insert, Update, Delete, Merge. */
  readonly operation?: string;
  readonly filter?: string;
  readonly indexCond?: string;
  readonly recheckCond?: string;
  readonly joinFilter?: string;
  readonly hashCond?: string;
  readonly mergeCond?: string;
  readonly rowsRemovedByFilter?: number;
  readonly rowsRemovedByIndexRecheck?: number;
  readonly rowsRemovedByJoinFilter?: number;
  readonly heapFetches?: number;
  readonly exactHeapBlocks?: number;
  readonly lossyHeapBlocks?: number;
  readonly sortKey?: readonly string[];
  readonly groupKey?: readonly string[];
  readonly sortMethod?: string;
  readonly sortSpaceKb?: number;
  /** "Memory" or "Disk". */
  readonly sortSpaceType?: string;
  readonly hashBuckets?: number;
  readonly hashBatches?: number;
  readonly originalHashBatches?: number;
  readonly peakMemoryKb?: number;
  /** Hash aggregation spilled to disk (PostgreSQL 13+): batches and kB written. */
  readonly hashAggBatches?: number;
  readonly diskUsageKb?: number;
  readonly workersPlanned?: number;
  readonly workersLaunched?: number;
  /** Append / Merge Append: partitions removed by run-time pruning (executor startup). */
  readonly subplansRemoved?: number;
  readonly buffers?: Buffers;
  readonly children: readonly PlanNode[];
  /** Every property PostgreSQL wrote for this node except "Plans", unchanged. */
  readonly properties: Readonly<Record<string, unknown>>;
}

export interface JitSummary {
  readonly functions: number;
  /** Total JIT time in ms; only with ANALYZE. */
  readonly totalMs?: number;
}

export interface ExplainResult {
  readonly plan: PlanNode;
  readonly planningMs?: number;
  readonly executionMs?: number;
  readonly jit?: JitSummary;
  /** "Settings": planner settings that differ from the built-in defaults (SETTINGS option). */
  readonly settings?: Readonly<Record<string, string>>;
  readonly queryId?: string;
  /** The root object without "Plan", unchanged (Triggers, Planning buffers, ...). */
  readonly properties: Readonly<Record<string, unknown>>;
  readonly nodeCount: number;
}

/** EXPLAIN output that is not the JSON this reader expects. */
export class ExplainFormatError extends Error {}

/**
 * Reads the value of EXPLAIN (FORMAT JSON)'s single column: the parsed array (as `pg` returns a json
 * column), or its text.
 */
export function readExplain(value: unknown): ExplainResult {
  const parsed = typeof value === 'string' ? parseJson(value) : value;
  const root = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!isObject(root) || !isObject(root['Plan'])) throw new ExplainFormatError('EXPLAIN output has no "Plan"');
  const counter = { next: 0 };
  const plan = readNode(root['Plan'], [], counter);
  const { Plan: _plan, ...properties } = root;
  const settings = isObject(root['Settings'])
    ? Object.fromEntries(Object.entries(root['Settings']).map(([k, v]) => [k, String(v)]))
    : undefined;
  // A 64-bit integer: exact only when read from the text, JSON.parse rounds it past 2^53.
  const exactId = typeof value === 'string' ? /"Query Identifier":\s*(-?\d+)/.exec(value)?.[1] : undefined;
  const queryId = exactId ?? root['Query Identifier'];
  return {
    plan,
    ...optional('planningMs', num(root['Planning Time'])),
    ...optional('executionMs', num(root['Execution Time'])),
    ...optional('jit', readJit(root['JIT'])),
    ...optional('settings', settings),
    ...optional('queryId', queryId === undefined || queryId === null ? undefined : String(queryId)),
    properties,
    nodeCount: counter.next,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ExplainFormatError(`EXPLAIN output is not JSON: ${(error as Error).message}`);
  }
}

function readNode(raw: Record<string, unknown>, path: readonly number[], counter: { next: number }): PlanNode {
  const id = counter.next++;
  const nodeType = str(raw['Node Type']) ?? 'Unknown';
  const kind: NodeKind = Object.hasOwn(NODE_KINDS, nodeType) ? NODE_KINDS[nodeType as keyof typeof NODE_KINDS] : 'unknown';
  const rawChildren = Array.isArray(raw['Plans']) ? raw['Plans'].filter(isObject) : [];
  const children = rawChildren.map((child, i) => readNode(child, [...path, i], counter));
  const { Plans: _plans, ...properties } = raw;
  const relationName = str(raw['Relation Name']);
  const loops = num(raw['Actual Loops']);
  const actual: Actuals | undefined =
    loops === undefined
      ? undefined
      : {
          startupMs: num(raw['Actual Startup Time']) ?? 0,
          totalMs: num(raw['Actual Total Time']) ?? 0,
          rows: num(raw['Actual Rows']) ?? 0,
          loops,
        };
  return {
    kind,
    nodeType,
    id,
    path,
    ...optional('parentRelationship', str(raw['Parent Relationship'])),
    ...optional('subplanName', str(raw['Subplan Name'])),
    parallelAware: raw['Parallel Aware'] === true,
    startupCost: num(raw['Startup Cost']) ?? 0,
    totalCost: num(raw['Total Cost']) ?? 0,
    planRows: num(raw['Plan Rows']) ?? 0,
    planWidth: num(raw['Plan Width']) ?? 0,
    ...optional('actual', actual),
    // With ANALYZE, a node that never ran reports loops 0 (text format: "never executed").
    neverExecuted: actual !== undefined && actual.loops === 0,
    ...optional(
      'relation',
      relationName === undefined
        ? undefined
        : { name: relationName, ...optional('schema', str(raw['Schema'])), ...optional('alias', str(raw['Alias'])) },
    ),
    ...optional('indexName', str(raw['Index Name'])),
    ...optional('scanDirection', str(raw['Scan Direction'])),
    ...optional('joinType', str(raw['Join Type'])),
    ...optional('strategy', str(raw['Strategy'])),
    ...optional('operation', str(raw['Operation'])),
    ...optional('filter', str(raw['Filter'])),
    ...optional('indexCond', str(raw['Index Cond'])),
    ...optional('recheckCond', str(raw['Recheck Cond'])),
    ...optional('joinFilter', str(raw['Join Filter'])),
    ...optional('hashCond', str(raw['Hash Cond'])),
    ...optional('mergeCond', str(raw['Merge Cond'])),
    ...optional('rowsRemovedByFilter', num(raw['Rows Removed by Filter'])),
    ...optional('rowsRemovedByIndexRecheck', num(raw['Rows Removed by Index Recheck'])),
    ...optional('rowsRemovedByJoinFilter', num(raw['Rows Removed by Join Filter'])),
    ...optional('heapFetches', num(raw['Heap Fetches'])),
    ...optional('exactHeapBlocks', num(raw['Exact Heap Blocks'])),
    ...optional('lossyHeapBlocks', num(raw['Lossy Heap Blocks'])),
    ...optional('sortKey', strings(raw['Sort Key'])),
    ...optional('groupKey', strings(raw['Group Key'])),
    ...optional('sortMethod', str(raw['Sort Method'])),
    ...optional('sortSpaceKb', num(raw['Sort Space Used'])),
    ...optional('sortSpaceType', str(raw['Sort Space Type'])),
    ...optional('hashBuckets', num(raw['Hash Buckets'])),
    ...optional('hashBatches', num(raw['Hash Batches'])),
    ...optional('originalHashBatches', num(raw['Original Hash Batches'])),
    ...optional('peakMemoryKb', num(raw['Peak Memory Usage'])),
    ...optional('hashAggBatches', num(raw['HashAgg Batches'])),
    ...optional('diskUsageKb', num(raw['Disk Usage'])),
    ...optional('workersPlanned', num(raw['Workers Planned'])),
    ...optional('workersLaunched', num(raw['Workers Launched'])),
    ...optional('subplansRemoved', num(raw['Subplans Removed'])),
    ...optional('buffers', readBuffers(raw)),
    children,
    properties,
  };
}

function readBuffers(raw: Record<string, unknown>): Buffers | undefined {
  const hit = num(raw['Shared Hit Blocks']);
  if (hit === undefined) return undefined;
  return {
    sharedHit: hit,
    sharedRead: num(raw['Shared Read Blocks']) ?? 0,
    sharedDirtied: num(raw['Shared Dirtied Blocks']) ?? 0,
    sharedWritten: num(raw['Shared Written Blocks']) ?? 0,
    tempRead: num(raw['Temp Read Blocks']) ?? 0,
    tempWritten: num(raw['Temp Written Blocks']) ?? 0,
  };
}

/**
 * "JIT": {"Functions": n, "Timing": {...}}. Timing comes with ANALYZE only; "Generation" is a number up
 * to PostgreSQL 16 and an object {"Deform", "Total"} from 17, but "Total" of "Timing" is in both.
 */
function readJit(value: unknown): JitSummary | undefined {
  if (!isObject(value)) return undefined;
  const timing = isObject(value['Timing']) ? value['Timing'] : undefined;
  return { functions: num(value['Functions']) ?? 0, ...optional('totalMs', num(timing?.['Total'])) };
}

/** A node back in EXPLAIN's own JSON shape (its properties plus "Plans"), for readers of raw plans. */
export function rawPlan(node: PlanNode): Record<string, unknown> {
  return node.children.length === 0 ? { ...node.properties } : { ...node.properties, Plans: node.children.map(rawPlan) };
}

/** Every node, parents before children. */
export function* walkPlan(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.children) yield* walkPlan(child);
}

/** The chain from the root down to the node with this id (both included). */
export function ancestry(root: PlanNode, id: number): PlanNode[] {
  if (root.id === id) return [root];
  for (const child of root.children) {
    const chain = ancestry(child, id);
    if (chain.length > 0) return [root, ...chain];
  }
  return [];
}

/** `schema.name` of a scan's relation, or its bare name when the plan was made without VERBOSE. */
export function relationLabel(node: PlanNode): string | undefined {
  if (node.relation === undefined) return undefined;
  return node.relation.schema === undefined ? node.relation.name : `${node.relation.schema}.${node.relation.name}`;
}

/** How EXPLAIN's text format names a node: "Parallel Seq Scan on public.events", "Index Scan using x on t". */
export function nodeLabel(node: PlanNode): string {
  const parallel = node.parallelAware ? 'Parallel ' : '';
  const type =
    node.kind === 'aggregate' && node.strategy === 'Hashed'
      ? 'HashAggregate'
      : node.kind === 'modify-table' && node.operation !== undefined
        ? node.operation
        : node.nodeType;
  const using = node.indexName === undefined ? '' : ` using ${node.indexName}`;
  const relation = relationLabel(node);
  const on = relation === undefined ? '' : ` on ${relation}`;
  const alias = node.relation?.alias !== undefined && node.relation.alias !== node.relation.name ? ` ${node.relation.alias}` : '';
  const backward = node.scanDirection === 'Backward' ? ' Backward' : '';
  const join = node.joinType !== undefined && node.joinType !== 'Inner' && node.kind !== 'unknown' ? ` ${node.joinType}` : '';
  const cte = node.kind === 'cte-scan' && typeof node.properties['CTE Name'] === 'string' ? ` on ${node.properties['CTE Name']}` : '';
  return `${parallel}${type}${backward}${join}${using}${on}${alias}${cte}`;
}

/** Rows a node produced over all its loops (ANALYZE), or the planner's estimate for one loop. */
export function totalRows(node: PlanNode): number {
  return node.actual === undefined ? node.planRows : node.actual.rows * node.actual.loops;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function strings(value: unknown): readonly string[] | undefined {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}

/** `{ key: value }` when the value is defined, `{}` otherwise: optional properties stay absent, not undefined. */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * How a plan reads its tables, in a few words: every node that names a relation or an index, with
 * the scans of a partitioned table's partitions folded into one entry ("Parallel Seq Scan on 14
 * partitions of public.events"). `parentOf` maps `schema.partition` to `schema.parent`; `indexLabel`
 * may rename an index (the advisor's hypothetical ones).
 */
export function describeAccess(
  root: PlanNode,
  parentOf: (relation: string) => string | undefined,
  indexLabel: (name: string) => string = (name) => name,
): string {
  const groups = new Map<string, { type: string; target?: string; count: number; partitions: boolean; indexes: Set<string> }>();
  for (const node of walkPlan(root)) {
    if (node.relation === undefined && node.indexName === undefined) continue;
    const relation = relationLabel(node);
    const parent = relation === undefined ? undefined : parentOf(relation);
    const target = parent ?? relation;
    const type = `${node.parallelAware ? 'Parallel ' : ''}${node.kind === 'modify-table' && node.operation ? node.operation : node.nodeType}`;
    const key = `${type}\u0000${target ?? ''}`;
    const group = groups.get(key) ?? { type, ...(target === undefined ? {} : { target }), count: 0, partitions: parent !== undefined, indexes: new Set<string>() };
    group.count += 1;
    if (node.indexName !== undefined) group.indexes.add(indexLabel(node.indexName));
    groups.set(key, group);
  }
  return [...groups.values()]
    .map((g) => {
      // Each partition has its own copy of an index: name it when there is one, count them otherwise.
      const using = g.indexes.size === 0 ? '' : g.indexes.size === 1 ? ` using ${[...g.indexes][0]}` : ` using ${g.indexes.size} partition indexes`;
      if (g.target === undefined) return `${g.type}${using}`;
      if (!g.partitions) return `${g.type}${using} on ${g.target}`;
      return `${g.type}${using} on ${g.count} partition${g.count === 1 ? '' : 's'} of ${g.target}`;
    })
    .join(', ');
}
