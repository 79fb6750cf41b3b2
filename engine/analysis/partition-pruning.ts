/**
 * How many partitions of one partitioned table a query really touched, read from its
 * `EXPLAIN (ANALYZE, FORMAT JSON)` plan (plain `EXPLAIN (FORMAT JSON)` works too: then "scanned" means
 * "left in the plan"). Pure: the caller gives the plan and the table's partitions.
 *
 * PostgreSQL prunes in three places, and each leaves a different trace:
 * - at plan time (constants in the WHERE clause): the partition's scan is simply absent from the plan;
 * - at executor startup (parameters, stable functions such as now()): the Append node says
 *   "Subplans Removed": N and the partition's scan is absent;
 * - during execution (a join's values, PostgreSQL 11+): the scan is in the plan but never executed
 *   ("Actual Loops": 0).
 *
 * @example
 * const [row] = (await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM events WHERE created_at >= '2026-11-01'`)).rows;
 * formatPartitionPruning(partitionPruning(row['QUERY PLAN'], partitions))
 * // "1 of 13 partitions scanned, 92% pruned (12 at plan time)"
 */

export interface PartitionName {
  /** Compared only when given: EXPLAIN names the schema only with VERBOSE. */
  readonly schema?: string;
  readonly name: string;
}

export interface PartitionPruning {
  /** Partitions the table has (leaf partitions). */
  readonly total: number;
  /** Partitions whose scan ran (with ANALYZE) or would run (without). */
  readonly scanned: number;
  readonly scannedPartitions: readonly string[];
  /** Absent from the plan, neither scanned nor removed at startup: pruned by the planner. */
  readonly prunedAtPlanTime: number;
  /** "Subplans Removed", summed over the Append / Merge Append nodes over these partitions. */
  readonly prunedAtStartup: number;
  /** In the plan but never executed ("Actual Loops": 0). */
  readonly prunedAtRunTime: number;
  /** 0–100: the share of partitions not scanned. */
  readonly prunedPercent: number;
  /** The plan carries actual figures (EXPLAIN ANALYZE). */
  readonly analyzed: boolean;
}

type JsonObject = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The root node, from EXPLAIN's whole output (`[{ "Plan": ... }]`), one element of it, or a node. */
function rootNode(explain: unknown): JsonObject | undefined {
  const first = Array.isArray(explain) ? explain[0] : explain;
  if (!isObject(first)) return undefined;
  return isObject(first['Plan']) ? first['Plan'] : first;
}

function children(node: JsonObject): JsonObject[] {
  const plans = node['Plans'];
  return Array.isArray(plans) ? plans.filter(isObject) : [];
}

function* walk(node: JsonObject): Generator<JsonObject> {
  yield node;
  for (const child of children(node)) yield* walk(child);
}

export function partitionPruning(explain: unknown, partitions: readonly PartitionName[]): PartitionPruning {
  const root = rootNode(explain);
  const total = partitions.length;
  const matches = (node: JsonObject): string | undefined => {
    const relation = node['Relation Name'];
    if (typeof relation !== 'string') return undefined;
    const schema = typeof node['Schema'] === 'string' ? node['Schema'] : undefined;
    const hit = partitions.find((p) => p.name === relation && (schema === undefined || p.schema === undefined || p.schema === schema));
    return hit === undefined ? undefined : hit.name;
  };
  const inPlan = new Set<string>();
  const executed = new Set<string>();
  let analyzed = false;
  let prunedAtStartup = 0;
  for (const node of root === undefined ? [] : walk(root)) {
    if ('Actual Loops' in node) analyzed = true;
    const name = matches(node);
    if (name !== undefined) {
      inPlan.add(name);
      const loops = node['Actual Loops'];
      if (typeof loops !== 'number' || loops > 0) executed.add(name);
    }
    const removed = node['Subplans Removed'];
    const type = node['Node Type'];
    // Only Appends over this table's partitions: a query may prune several partitioned tables.
    if (typeof removed === 'number' && (type === 'Append' || type === 'Merge Append') && [...walk(node)].some((n) => n !== node && matches(n) !== undefined)) {
      prunedAtStartup += removed;
    }
  }
  const scannedPartitions = [...executed].sort();
  const scanned = scannedPartitions.length;
  const prunedAtRunTime = inPlan.size - executed.size;
  // Startup pruning with every subplan removed leaves no Append to count it on: such partitions land in plan time.
  const prunedAtPlanTime = Math.max(0, total - inPlan.size - prunedAtStartup);
  return {
    total,
    scanned,
    scannedPartitions,
    prunedAtPlanTime,
    prunedAtStartup: Math.min(prunedAtStartup, total - inPlan.size),
    prunedAtRunTime,
    prunedPercent: total === 0 ? 0 : (100 * (total - scanned)) / total,
    analyzed,
  };
}

/** "1 of 13 partitions scanned, 92% pruned (12 at plan time)". */
export function formatPartitionPruning(p: PartitionPruning): string {
  const where = [
    p.prunedAtPlanTime > 0 ? `${p.prunedAtPlanTime} at plan time` : '',
    p.prunedAtStartup > 0 ? `${p.prunedAtStartup} at executor startup` : '',
    p.prunedAtRunTime > 0 ? `${p.prunedAtRunTime} during execution` : '',
  ].filter((s) => s !== '');
  const verb = p.analyzed ? 'scanned' : 'in the plan';
  return `${p.scanned} of ${p.total} partition${p.total === 1 ? '' : 's'} ${verb}, ${Math.floor(p.prunedPercent)}% pruned${where.length > 0 ? ` (${where.join(', ')})` : ''}`;
}
