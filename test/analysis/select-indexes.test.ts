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
  return { statements, candidates, evaluator: ev, writeCost: () => ({ ms: 0, hotLostRows: 0, entries: 0 }), maxIndexes: 10, minNetMs: 1, ...extra };
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
    const writeCost = (): WriteCost => ({ ms: 5000, hotLostRows: 0, entries: 500_000 });

    const selection = await selectIndexes(input([reads], [tenant], ev, { writeCost }));

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

/** An index serving a statement: its keys start with `keys` (the cheapest serving index of a set wins). */
function shaped(keys: string[], include: string[] = []): IndexCandidate {
  const shape = { schema: 'public', table: 'events', keys: keys.map((column) => ({ column, order: 'asc' as const })), include };
  return { ...shape, id: candidateId(shape), sources: [] };
}

const MB = 1024 * 1024;

/**
 * A planner stand-in for sets: per statement, its base cost and the cost with an index whose keys begin
 * with given columns (and, optionally, store given columns); sizes: 1 MB per column stored.
 */
function setEvaluator(costs: Record<string, { base: number; with: { keys: string[]; stores?: string[]; cost: number }[] }>): Evaluator {
  return {
    method: 'statistics',
    async cost(s, set) {
      let best: StatementCost = { cost: costs[s.key]!.base, uses: [], access: 'Seq Scan' };
      for (const c of set) {
        for (const option of costs[s.key]!.with) {
          const keysFit = option.keys.every((k, i) => c.keys[i]?.column === k);
          const stored = new Set([...c.keys.map((k) => k.column), ...c.include]);
          if (keysFit && (option.stores ?? []).every((x) => stored.has(x)) && option.cost < best.cost) best = { cost: option.cost, uses: [c.id], access: 'Index Scan' };
        }
      }
      return best;
    },
    async size(c) {
      return (c.keys.length + c.include.length) * MB;
    },
    async close() {},
  };
}

describe('choosing indexes under a storage budget', () => {
  const workload = async (): Promise<WorkloadStatement[]> => [
    await statement('a', 'SELECT id FROM public.events WHERE tenant_id = $1', 100, 1),
    await statement('b', 'SELECT id FROM public.events WHERE tenant_id = $1 AND server_id = $2', 100, 1),
  ];
  const costs = {
    a: { base: 100, with: [{ keys: ['tenant_id'], cost: 10 }] },
    b: { base: 100, with: [{ keys: ['tenant_id'], cost: 20 }, { keys: ['tenant_id', 'server_id'], cost: 2 }] },
  };
  const candidates = [shaped(['tenant_id']), shaped(['tenant_id', 'server_id'])];

  it('grows a chosen index by a key when the extra key pays for its bytes, and keeps no separate prefix', async () => {
    const selection = await selectIndexes(input(await workload(), candidates, setEvaluator(costs), { budgetBytes: 4 * MB }));

    expect(selection.selected.map((s) => s.candidate.keys.map((k) => k.column))).toEqual([['tenant_id', 'server_id']]);
    expect(selection.bytes).toBe(2 * MB);
    expect(selection.selected[0]!.budgetLeftBytes).toBe(2 * MB);
  });

  it('stops at the budget: the narrower index that fits, the wider one reported as not fitting', async () => {
    const selection = await selectIndexes(input(await workload(), candidates, setEvaluator(costs), { budgetBytes: 1.5 * MB }));

    expect(selection.selected.map((s) => s.candidate.keys.map((k) => k.column))).toEqual([['tenant_id']]);
    expect(selection.rejected).toEqual([expect.objectContaining({ candidate: candidates[1], reason: 'budget' })]);
  });

  it('merges the INCLUDE columns two statements want into one index on the same keys, not two copies of the btree', async () => {
    const statements = [
      await statement('a', 'SELECT kind FROM public.events WHERE tenant_id = $1', 100, 1),
      await statement('b', 'SELECT server_id FROM public.events WHERE tenant_id = $1', 100, 1),
    ];
    const covering = {
      a: { base: 100, with: [{ keys: ['tenant_id'], cost: 30 }, { keys: ['tenant_id'], stores: ['kind'], cost: 5 }] },
      b: { base: 100, with: [{ keys: ['tenant_id'], cost: 30 }, { keys: ['tenant_id'], stores: ['server_id'], cost: 5 }] },
    };
    const selection = await selectIndexes(input(statements, [shaped(['tenant_id'], ['kind']), shaped(['tenant_id'], ['server_id'])], setEvaluator(covering)));

    expect(selection.selected.map((s) => [s.candidate.keys.map((k) => k.column), s.candidate.include])).toEqual([[['tenant_id'], ['kind', 'server_id']]]);
  });

  it('under a tight budget prefers the narrow index serving both statements to a wide one serving one better', async () => {
    const statements = await workload();
    const wide = shaped(['tenant_id', 'server_id'], ['kind', 'status']);
    const narrow = shaped(['tenant_id']);
    const tight = {
      a: { base: 100, with: [{ keys: ['tenant_id'], cost: 10 }] },
      b: { base: 100, with: [{ keys: ['tenant_id'], cost: 20 }, { keys: ['tenant_id', 'server_id'], stores: ['kind', 'status'], cost: 1 }] },
    };
    const selection = await selectIndexes(input(statements, [wide, narrow], setEvaluator(tight), { budgetBytes: 3 * MB }));

    expect(selection.selected.map((s) => s.candidate.id)).toEqual([narrow.id]);
  });

  it('drops an index chosen early once the ones chosen after it serve all its statements better', async () => {
    const statements = await workload();
    const tenant = shaped(['tenant_id']);
    const server = shaped(['server_id', 'tenant_id', 'kind']);
    const costs2 = {
      a: { base: 100, with: [{ keys: ['tenant_id'], cost: 40 }, { keys: ['server_id'], cost: 10 }] },
      b: { base: 100, with: [{ keys: ['server_id'], cost: 40 }] },
    };
    const selection = await selectIndexes(input(statements, [tenant, server], setEvaluator(costs2), { budgetBytes: 4 * MB }));

    // (tenant_id) first (60 saved per MB against 150 for 3 MB), then the 3 MB one (90 more): the first is then worth nothing.
    expect(selection.selected.map((x) => x.candidate.id)).toEqual([server.id]);
    expect(selection.bytes).toBe(3 * MB);
    expect(selection.selected[0]!.round).toBe(2);
  });
});
