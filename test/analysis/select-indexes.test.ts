import { describe, expect, it } from 'vitest';
import type { Evaluator, StatementCost } from '../../engine/advisor/evaluator.ts';
import { candidateId, type IndexCandidate } from '../../engine/advisor/index-candidate.ts';
import { selectIndexes, type SelectionInput } from '../../engine/advisor/select-indexes.ts';
import type { WriteCost } from '../../engine/advisor/write-cost.ts';
import type { WorkloadStatement } from '../../engine/advisor/workload.ts';
import { columnUsage, type TableShape } from '../../engine/analysis/column-usage.ts';
import { parseStatement } from '../../engine/analysis/sql-statement.ts';

// The workload-level choice is pure logic over an Evaluator: a test double that knows each statement's
// plan cost with and without each candidate stands in for the planner (no database is involved at all).

const EVENTS: TableShape = { schema: 'public', name: 'events', columns: ['id', 'tenant_id', 'server_id', 'kind', 'created_at'] };

async function statement(key: string, sql: string, calls: number, meanMs: number): Promise<WorkloadStatement> {
  const parsed = await parseStatement(sql);
  if (!parsed.ok) throw new Error(parsed.message);
  const usage = columnUsage(parsed.tree, parsed.text, (schema, name) => (name === 'events' && (schema ?? 'public') === 'public' ? EVENTS : undefined));
  return { key, queryId: key, query: sql, calls, totalMs: calls * meanMs, meanMs, rowsPerCall: 1, statement: parsed, repairs: [], usage };
}

function candidate(column: string): IndexCandidate {
  const shape = { schema: 'public', table: 'events', keys: [{ column, order: 'asc' as const }], include: [] };
  return { ...shape, id: candidateId(shape), sources: [] };
}

/** Plan costs by statement: the baseline, and the cost with each candidate (the cheapest of a set wins). */
function evaluator(costs: Record<string, { base: number; with: Record<string, number> }>): Evaluator {
  return {
    method: 'statistics',
    async cost(s, set): Promise<StatementCost> {
      const c = costs[s.key]!;
      let best: StatementCost = { cost: c.base, uses: [], access: 'Seq Scan' };
      for (const candidate of set) {
        const cost = c.with[candidate.keys[0]!.column];
        if (cost !== undefined && cost < best.cost) best = { cost, uses: [candidate.id], access: 'Index Scan' };
      }
      return best;
    },
    async size() {
      return 8192;
    },
    async close() {},
  };
}

function input(statements: WorkloadStatement[], candidates: IndexCandidate[], ev: Evaluator, extra: Partial<SelectionInput> = {}): SelectionInput {
  return { statements, candidates, evaluator: ev, writeCosts: new Map<string, WriteCost>(), maxIndexes: 10, minNetMs: 1, ...extra };
}

describe('choosing indexes for the whole workload', () => {
  it('a frequent statement with a modest gain per call beats a rare one with a large gain', async () => {
    const frequent = await statement('f', 'SELECT id FROM public.events WHERE tenant_id = $1', 10_000, 2);
    const rare = await statement('r', 'SELECT id FROM public.events WHERE server_id = $1', 5, 100);
    const ev = evaluator({ f: { base: 100, with: { tenant_id: 80 } }, r: { base: 1000, with: { server_id: 10 } } });
    const tenant = candidate('tenant_id');
    const server = candidate('server_id');

    const selection = await selectIndexes(input([frequent, rare], [server, tenant], ev, { maxIndexes: 1 }));

    // 10,000 calls x 2 ms x 20% = 4 s, against 5 calls x 100 ms x 99% = 0.5 s.
    expect(selection.selected.map((s) => s.candidate.id)).toEqual([tenant.id]);
    expect(selection.selected[0]!.savedMs).toBeCloseTo(4000);
    expect(selection.rejected).toEqual([expect.objectContaining({ candidate: server, reason: 'limit' })]);
    expect(selection.rejected[0]!.savedMs).toBeCloseTo(495);
  });

  it('never chooses more than --max-indexes, best first; the rest are reported as beyond the limit', async () => {
    const statements = [
      await statement('a', 'SELECT id FROM public.events WHERE tenant_id = $1', 100, 10),
      await statement('b', 'SELECT id FROM public.events WHERE server_id = $1', 100, 20),
      await statement('c', 'SELECT id FROM public.events WHERE kind = $1', 100, 30),
    ];
    const ev = evaluator({
      a: { base: 100, with: { tenant_id: 10 } },
      b: { base: 100, with: { server_id: 10 } },
      c: { base: 100, with: { kind: 10 } },
    });
    const candidates = ['tenant_id', 'server_id', 'kind'].map(candidate);

    const selection = await selectIndexes(input(statements, candidates, ev, { maxIndexes: 2 }));

    expect(selection.selected.map((s) => s.candidate.keys[0]!.column)).toEqual(['kind', 'server_id']);
    expect(selection.rejected.map((r) => [r.candidate.keys[0]!.column, r.reason])).toEqual([['tenant_id', 'limit']]);
  });

  it('an index whose write cost outweighs what it saves is not chosen, and says why', async () => {
    const reads = await statement('a', 'SELECT id FROM public.events WHERE tenant_id = $1', 100, 10);
    const tenant = candidate('tenant_id');
    const ev = evaluator({ a: { base: 100, with: { tenant_id: 10 } } });
    const writeCosts = new Map<string, WriteCost>([[tenant.id, { ms: 5000, hotLostRows: 0, entries: 500_000 }]]);

    const selection = await selectIndexes(input([reads], [tenant], ev, { writeCosts }));

    expect(selection.selected).toEqual([]);
    expect(selection.rejected).toEqual([expect.objectContaining({ candidate: tenant, reason: 'write-cost', savedMs: 900 })]);
  });

  it('a second index gains only what the first one left: a statement both serve is not counted twice', async () => {
    const s = await statement('a', 'SELECT id FROM public.events WHERE tenant_id = $1 AND server_id = $2', 100, 10);
    const ev = evaluator({ a: { base: 100, with: { tenant_id: 10, server_id: 12 } } });

    const selection = await selectIndexes(input([s], [candidate('tenant_id'), candidate('server_id')], ev));

    expect(selection.selected.map((x) => x.candidate.keys[0]!.column)).toEqual(['tenant_id']);
  });
});
