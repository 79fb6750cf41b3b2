import type pg from 'pg';
import { PLANNER_SETTINGS_SQL } from '../catalog/analysis-queries.ts';
import type { TableAccess } from '../analysis/column-usage.ts';
import { ancestry, describeAccess, walkPlan, type PlanNode } from '../analysis/explain-plan.ts';
import { explainStatement, planRelationFacts, type ServerFacts } from '../analysis/explain-statement.ts';
import type { RelationFacts } from '../analysis/plan-finding.ts';
import { tableKey, type TableStatistics } from '../analysis/table-statistics.ts';
import { DEFAULT_COSTS, estimateIndexBytes, indexPathCost, sortCost, type CostConstants } from './cost-model.ts';
import { setKey, type Evaluator, type StatementCost } from './evaluator.ts';
import type { IndexCandidate } from './index-candidate.ts';
import type { WorkloadStatement } from './workload.ts';

/**
 * Evidence without hypopg: the statement's real generic plan, with each scan of a table replaced by
 * the cheapest candidate index path when the cost model says it is cheaper (cost-model.ts), together
 * with the nodes that path makes unnecessary above the scan — a Gather, a Sort the index order
 * provides, the rest of the input a LIMIT does not need. Labelled an estimate wherever it is shown.
 */
export async function statisticsEvaluator(
  client: pg.ClientBase,
  facts: ServerFacts,
  tables: ReadonlyMap<string, TableStatistics>,
  declared: readonly IndexCandidate[],
  /** The table's btree indexes as they are, in the model's terms. */
  existing: readonly IndexCandidate[],
): Promise<Evaluator> {
  const constants = await readCostConstants(client);
  const baselines = new Map<string, { root: PlanNode; relations: ReadonlyMap<string, RelationFacts> }>();
  const cache = new Map<string, StatementCost>();

  const baseline = async (statement: WorkloadStatement): Promise<{ root: PlanNode; relations: ReadonlyMap<string, RelationFacts> }> => {
    const known = baselines.get(statement.key);
    if (known) return known;
    const result = await explainStatement(client, facts, statement.statement, { analyze: false, tables });
    const relations = await planRelationFacts(client, [result.explain]);
    const entry = { root: result.explain.plan, relations };
    baselines.set(statement.key, entry);
    return entry;
  };

  return {
    method: 'statistics',
    async cost(statement, set) {
      const key = setKey(statement, set);
      const cached = cache.get(key);
      if (cached) return cached;
      const { root, relations } = await baseline(statement);
      const parentOf = (relation: string): string | undefined => {
        const parent = relations.get(relation)?.parent;
        return parent === undefined ? undefined : `${parent.schema}.${parent.name}`;
      };
      const all = [...declared, ...set];
      let saved = 0;
      const uses = new Set<string>();
      const access: string[] = [];
      for (const unit of scanUnits(root, relations, tables)) {
        const accessOf = matchAccess(statement.usage.accesses, unit);
        const best = accessOf === undefined ? undefined : bestReplacement(root, unit, accessOf, all, existing, constants);
        if (best !== undefined && best.saving > 0) {
          saved += best.saving;
          if (!declared.some((d) => d.id === best.candidate.id)) uses.add(best.candidate.id);
          const where = unit.partitions > 1 ? `${unit.partitions} partitions of ` : '';
          access.push(`${best.indexOnly ? 'Index Only Scan' : 'Index Scan'} using (advised index) on ${where}${unit.table.schema}.${unit.table.name}`);
        } else {
          access.push(describeAccess(unit.node, parentOf));
        }
      }
      const cost: StatementCost = { cost: Math.max(root.totalCost * 0.0001, root.totalCost - saved), uses: [...uses], access: [...new Set(access)].join(', ') };
      cache.set(key, cost);
      return cost;
    },
    async size(candidate) {
      const table = tables.get(tableKey(candidate.schema, candidate.table));
      if (table === undefined) return 0;
      return estimateIndexBytes(table, candidate, candidate.whereShare ?? 1, constants);
    },
    async close() {},
  };
}

/**
 * What a candidate index would replace: one scan of a table, or — for a partitioned table — the
 * Append over the partitions the plan still reads (after pruning), costed as one table of their
 * combined size with the parent's statistics (pg_stats' inherited rows), one index descent each.
 */
interface ScanUnit {
  readonly node: PlanNode;
  readonly table: TableStatistics;
  /** The alias the statement gave the table (a partition scan's alias is numbered: events_3). */
  readonly alias?: string;
  readonly partitions: number;
}

function scanUnits(root: PlanNode, relations: ReadonlyMap<string, RelationFacts>, tables: ReadonlyMap<string, TableStatistics>): ScanUnit[] {
  const units: ScanUnit[] = [];
  const consumed = new Set<number>();
  for (const node of walkPlan(root)) {
    if (consumed.has(node.id) || node.relation === undefined || node.relation.schema === undefined) continue;
    const own = tableKey(node.relation.schema, node.relation.name);
    const facts = relations.get(own);
    const parent = facts?.parent;
    const alias = node.relation.alias;
    const aliasOf = alias === undefined ? {} : { alias };
    if (parent === undefined) {
      const table = tables.get(own);
      if (table !== undefined) units.push({ node, table, ...aliasOf, partitions: 1 });
      continue;
    }
    const parentTable = tables.get(tableKey(parent.schema, parent.name));
    if (parentTable === undefined) continue;
    const chain = ancestry(root, node.id);
    const append = chain[chain.length - 2];
    const siblings = append !== undefined && (append.kind === 'append' || append.kind === 'merge-append')
      ? append.children.map((child) => ({ child, facts: child.relation?.schema === undefined ? undefined : relations.get(tableKey(child.relation.schema, child.relation.name)) }))
      : [];
    const samePartitions = siblings.length > 0 && siblings.every((s) => s.facts?.parent?.schema === parent.schema && s.facts.parent.name === parent.name);
    if (append === undefined || !samePartitions) {
      const table = { ...parentTable, rows: facts?.rows ?? 0, pages: facts?.pages ?? 0, allVisiblePages: facts?.allVisiblePages ?? 0 };
      units.push({ node, table, ...aliasOf, partitions: 1 });
      continue;
    }
    for (const s of siblings) consumed.add(s.child.id);
    const sum = (pick: (f: RelationFacts) => number): number => siblings.reduce((n, s) => n + (s.facts ? pick(s.facts) : 0), 0);
    const table = { ...parentTable, rows: sum((f) => f.rows), pages: sum((f) => f.pages), allVisiblePages: sum((f) => f.allVisiblePages) };
    units.push({ node: append, table, ...aliasOf, partitions: siblings.length });
  }
  return units;
}

function matchAccess(accesses: readonly TableAccess[], unit: ScanUnit): TableAccess | undefined {
  const own = accesses.filter((a) => a.table.schema === unit.table.schema && a.table.name === unit.table.name);
  if (own.length <= 1 || unit.alias === undefined) return own[0];
  const alias = unit.alias;
  return own.find((a) => a.alias === alias) ?? own.find((a) => a.alias === alias.replace(/_\d+$/, ''));
}

interface Replacement {
  readonly candidate: IndexCandidate;
  readonly saving: number;
  readonly indexOnly: boolean;
}

const PASS_THROUGH = new Set(['gather', 'gather-merge', 'sort', 'incremental-sort', 'limit']);

/** The best candidate for one scan node, and how much plan cost it saves. */
function bestReplacement(
  root: PlanNode,
  unit: ScanUnit,
  access: TableAccess,
  candidates: readonly IndexCandidate[],
  existing: readonly IndexCandidate[],
  c: CostConstants,
): Replacement | undefined {
  const { node: scan, table } = unit;
  // Index scans already in the plan stay: the planner chose them over the rest; a candidate must beat
  // the whole chain of nodes it would make unnecessary.
  const chain = ancestry(root, scan.id).reverse();
  let top = scan;
  for (const node of chain.slice(1)) {
    const partial = node.kind === 'aggregate' && typeof node.properties['Partial Mode'] === 'string';
    if ((PASS_THROUGH.has(node.kind) || partial) && node.children.length === 1) top = node;
    else break;
  }
  const within = chain.slice(0, chain.indexOf(top) + 1);
  const limit = within.find((n) => n.kind === 'limit');
  const aggregates = within.some((n) => n.kind === 'aggregate');
  const parent = chain[chain.indexOf(top) + 1];
  // The inner side of a nested loop runs once per outer row: its cost in the plan is per loop.
  const loops = parent?.kind === 'nested-loop' && parent.children[1] === top ? Math.max(1, parent.children[0]?.planRows ?? 1) : 1;

  const modelled = (candidate: IndexCandidate): { cost: number; indexOnly: boolean } | undefined => {
    if (candidate.schema !== table.schema || candidate.table !== table.name) return undefined;
    const path = indexPathCost(table, access, candidate, c);
    if (!path.usable) return undefined;
    // One descent per partition read.
    let cost = path.totalCost + (unit.partitions - 1) * path.startupCost;
    // The statement's ORDER BY decides, not the plan's nodes: a Merge Append or an index may be what
    // provides the order now.
    const orderSatisfied = access.orderBy.length === 0 || path.providesOrder;
    if (limit !== undefined && orderSatisfied && !aggregates) {
      // LIMIT $n in a generic plan: the planner assumes a tenth of the input is needed.
      const wanted = access.limit === undefined || access.limit === 'param' ? 0.1 * path.tuples : Math.min(path.tuples, access.limit);
      cost = path.startupCost + (path.totalCost - path.startupCost) * Math.min(1, wanted / Math.max(1, path.tuples));
    }
    if (!orderSatisfied) cost += sortCost(path.tuples, typeof access.limit === 'number' ? access.limit : undefined, c);
    if (aggregates) cost += path.tuples * 2 * c.cpuOperatorCost;
    return { cost, indexOnly: path.indexOnly };
  };
  // What the statement pays now: the plan's own cost for these nodes, or what the model says an index
  // that exists would cost if that is less — so a candidate is credited only for beating both, and
  // the model is never compared with the planner where it merely disagrees with it.
  let current = top.totalCost;
  for (const index of existing) current = Math.min(current, modelled(index)?.cost ?? Number.POSITIVE_INFINITY);

  let best: Replacement | undefined;
  for (const candidate of candidates) {
    const m = modelled(candidate);
    if (m === undefined) continue;
    const saving = (current - m.cost) * loops;
    if (best === undefined || saving > best.saving) best = { candidate, saving, indexOnly: m.indexOnly };
  }
  return best;
}

async function readCostConstants(client: pg.ClientBase): Promise<CostConstants> {
  const rows = (await client.query<{ name: string; setting: string }>(PLANNER_SETTINGS_SQL)).rows;
  const get = (name: string, fallback: number): number => {
    const value = Number(rows.find((r) => r.name === name)?.setting);
    return Number.isFinite(value) && value > 0 ? value : fallback;
  };
  return {
    seqPageCost: get('seq_page_cost', DEFAULT_COSTS.seqPageCost),
    randomPageCost: get('random_page_cost', DEFAULT_COSTS.randomPageCost),
    cpuTupleCost: get('cpu_tuple_cost', DEFAULT_COSTS.cpuTupleCost),
    cpuIndexTupleCost: get('cpu_index_tuple_cost', DEFAULT_COSTS.cpuIndexTupleCost),
    cpuOperatorCost: get('cpu_operator_cost', DEFAULT_COSTS.cpuOperatorCost),
    // pg_settings reports effective_cache_size in blocks.
    effectiveCacheSize: get('effective_cache_size', DEFAULT_COSTS.effectiveCacheSize),
    blockSize: get('block_size', DEFAULT_COSTS.blockSize),
  };
}
