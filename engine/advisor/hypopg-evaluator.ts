import type pg from 'pg';
import { hypopgCreateSql, hypopgResetSql } from '../catalog/analysis-queries.ts';
import { describeAccess, relationLabel, walkPlan } from '../analysis/explain-plan.ts';
import { explainStatement, planRelationFacts, type ServerFacts } from '../analysis/explain-statement.ts';
import type { RelationFacts } from '../analysis/plan-finding.ts';
import { tableKey, type TableStatistics } from '../analysis/table-statistics.ts';
import { estimateIndexBytes } from './cost-model.ts';
import type { DesiredIndex } from '../policy/desired.ts';
import { createIndexSql } from '../sql/ddl.ts';
import { setKey, type Evaluator, type StatementCost } from './evaluator.ts';
import { candidateIndex, type IndexCandidate } from './index-candidate.ts';
import type { WorkloadStatement } from './workload.ts';

/**
 * Evidence from the planner itself: each index set is created as hypothetical indexes (hypopg —
 * visible to this session's planner only, nothing is built or locked), and the statement's generic
 * plan is asked for. Hypothetical indexes show in plans as `<oid>btree_...`: that is how a plan's
 * use of a candidate is recognised.
 */
export function hypopgEvaluator(
  client: pg.ClientBase,
  facts: ServerFacts,
  hypopgSchema: string,
  tables: ReadonlyMap<string, TableStatistics>,
  declared: readonly DesiredIndex[],
): Evaluator {
  const cache = new Map<string, StatementCost>();
  const relations = new Map<string, RelationFacts>();
  const reset = async (): Promise<void> => {
    await client.query(hypopgResetSql(hypopgSchema));
  };
  const create = async (index: DesiredIndex): Promise<number> => {
    const sql = createIndexSql(index, { schema: index.schema, table: index.table, name: index.name });
    const row = (await client.query<{ oid: string }>(hypopgCreateSql(hypopgSchema), [sql])).rows[0];
    if (row === undefined) throw new Error(`hypopg did not create ${sql}`);
    return Number(row.oid);
  };

  return {
    method: 'hypopg',
    async cost(statement, all) {
      // Only the indexes on the statement's own tables can change its plan: fewer to create, and the
      // cache answers for every set that differs elsewhere.
      const set = all.filter((c) => statement.usage.accesses.some((a) => a.table.schema === c.schema && a.table.name === c.table));
      const key = setKey(statement, set);
      const cached = cache.get(key);
      if (cached) return cached;
      await reset();
      // Declared but not yet built: part of the baseline, as after the next apply.
      for (const index of declared) await create(index);
      const byOid = new Map<number, string>();
      for (const candidate of set) byOid.set(await create(candidateIndex(candidate, 'hypothetical')), candidate.id);
      const result = await explainStatement(client, facts, statement.statement, { analyze: false, tables });
      const uses = new Set<string>();
      for (const node of walkPlan(result.explain.plan)) {
        const oid = /^<(\d+)>/.exec(node.indexName ?? '')?.[1];
        const id = oid === undefined ? undefined : byOid.get(Number(oid));
        if (id !== undefined) uses.add(id);
      }
      const unknown = [...walkPlan(result.explain.plan)].some((n) => n.relation !== undefined && !relations.has(relationLabel(n) ?? ''));
      if (unknown) for (const [k, v] of await planRelationFacts(client, [result.explain])) relations.set(k, v);
      const parentOf = (relation: string): string | undefined => {
        const parent = relations.get(relation)?.parent;
        return parent === undefined ? undefined : `${parent.schema}.${parent.name}`;
      };
      const access = describeAccess(result.explain.plan, parentOf, (name) => (/^<\d+>/.test(name) ? '(advised index)' : name));
      const cost: StatementCost = { cost: result.explain.plan.totalCost, uses: [...uses], access };
      cache.set(key, cost);
      return cost;
    },
    // Sizes from the statistics model, not hypopg_relation_size(): hypopg's estimates came out about
    // twice the built size on a TPC-H-like database (issue 17), the model's within a few percent.
    async size(candidate) {
      const table = tables.get(tableKey(candidate.schema, candidate.table));
      return table === undefined ? 0 : estimateIndexBytes(table, candidate, candidate.whereShare ?? 1);
    },
    async close() {
      await reset().catch(() => undefined);
    },
  };
}
