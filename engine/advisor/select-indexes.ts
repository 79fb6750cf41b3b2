import type { Evaluator, StatementCost } from './evaluator.ts';
import type { IndexCandidate } from './index-candidate.ts';
import type { WriteCost } from './write-cost.ts';
import type { WorkloadStatement } from './workload.ts';

/**
 * Chooses at most `maxIndexes` indexes for the whole workload, greedily by net time saved: each round
 * adds the candidate that saves the most execution time over the window — calls × mean time × the
 * share of plan cost it removes, given the indexes already chosen — minus what it costs the writes.
 * No per-query threshold: a 10% gain on the most frequent statement can beat a 99% gain on a rare one.
 * Gains only shrink as indexes are added (an index can only take work another already took), so a
 * candidate whose last gain is below the round's best is not re-costed (lazy greedy).
 */

/** A statement's plan must get at least this much cheaper (share of its cost) for the gain to count. */
export const MIN_COST_CUT = 0.05;

export interface StatementGain {
  readonly statement: WorkloadStatement;
  readonly before: StatementCost;
  readonly after: StatementCost;
  /** calls x mean x (before - after) / baseline cost. */
  readonly savedMs: number;
}

export interface SelectedIndex {
  readonly candidate: IndexCandidate;
  readonly round: number;
  /** Statements it makes cheaper, given the indexes chosen before it. */
  readonly gains: readonly StatementGain[];
  readonly savedMs: number;
  readonly write: WriteCost;
  readonly netMs: number;
}

export interface RejectedIndex {
  readonly candidate: IndexCandidate;
  readonly reason: 'write-cost' | 'limit';
  readonly savedMs: number;
  readonly write: WriteCost;
}

export interface Selection {
  readonly selected: readonly SelectedIndex[];
  readonly rejected: readonly RejectedIndex[];
  readonly baseline: ReadonlyMap<string, StatementCost>;
  /** Cost of each statement with every selected index. */
  readonly final: ReadonlyMap<string, StatementCost>;
  readonly evaluations: number;
}

export interface SelectionInput {
  readonly statements: readonly WorkloadStatement[];
  readonly candidates: readonly IndexCandidate[];
  readonly evaluator: Evaluator;
  readonly writeCosts: ReadonlyMap<string, WriteCost>;
  readonly maxIndexes: number;
  /** A candidate must save at least this much (net) over the window. */
  readonly minNetMs: number;
  readonly onProgress?: (message: string) => void;
}

export async function selectIndexes(input: SelectionInput): Promise<Selection> {
  const { evaluator, statements } = input;
  let evaluations = 0;
  const cost = async (s: WorkloadStatement, set: readonly IndexCandidate[]): Promise<StatementCost> => {
    evaluations += 1;
    return evaluator.cost(s, set);
  };
  const affected = new Map<string, WorkloadStatement[]>();
  for (const c of input.candidates) {
    affected.set(
      c.id,
      statements.filter((s) => s.usage.accesses.some((a) => a.write !== 'insert' && a.table.schema === c.schema && a.table.name === c.table)),
    );
  }
  const baseline = new Map<string, StatementCost>();
  for (const s of statements) baseline.set(s.key, await cost(s, []));
  const current = new Map(baseline);
  // A cost cut of a few percent is within what an estimate can be off by: it counts as none. (Not a
  // per-query threshold of the kind that misses wins: any real cut on a frequent statement passes.)
  const saved = (s: WorkloadStatement, c: StatementCost): number => {
    const base = baseline.get(s.key)?.cost ?? 0;
    const cut = base > 0 ? (base - c.cost) / base : 0;
    return cut >= MIN_COST_CUT ? s.calls * s.meanMs * cut : 0;
  };

  const chosen: IndexCandidate[] = [];
  const selected: SelectedIndex[] = [];
  const bound = new Map<string, number>(input.candidates.map((c) => [c.id, Number.POSITIVE_INFINITY]));
  const lastSaved = new Map<string, number>();
  for (let round = 1; round <= input.maxIndexes; round += 1) {
    const remaining = input.candidates.filter((c) => !chosen.includes(c)).sort((a, b) => (bound.get(b.id) ?? 0) - (bound.get(a.id) ?? 0));
    let best: SelectedIndex | undefined;
    for (const candidate of remaining) {
      if (best !== undefined && (bound.get(candidate.id) ?? 0) <= best.netMs) break;
      const gains: StatementGain[] = [];
      for (const s of affected.get(candidate.id) ?? []) {
        const before = current.get(s.key) as StatementCost;
        const after = await cost(s, [...chosen, candidate]);
        const gain = saved(s, after) - saved(s, before);
        if (gain > 0) gains.push({ statement: s, before, after, savedMs: gain });
      }
      const savedMs = gains.reduce((sum, g) => sum + g.savedMs, 0);
      const write = input.writeCosts.get(candidate.id) ?? { ms: 0, hotLostRows: 0, entries: 0 };
      const netMs = savedMs - write.ms;
      bound.set(candidate.id, netMs);
      lastSaved.set(candidate.id, savedMs);
      if (best === undefined || netMs > best.netMs) best = { candidate, round, gains, savedMs, write, netMs };
    }
    if (best === undefined || best.netMs <= input.minNetMs) break;
    input.onProgress?.(`round ${round}: ${best.candidate.table} (${best.candidate.keys.map((k) => k.column).join(', ')}) saves ${best.netMs.toFixed(0)} ms`);
    chosen.push(best.candidate);
    selected.push(best);
    for (const g of best.gains) current.set(g.statement.key, g.after);
  }

  const rejected: RejectedIndex[] = input.candidates
    .filter((c) => !chosen.includes(c) && (lastSaved.get(c.id) ?? 0) > input.minNetMs)
    .map((candidate) => {
      const write = input.writeCosts.get(candidate.id) ?? { ms: 0, hotLostRows: 0, entries: 0 };
      const savedMs = lastSaved.get(candidate.id) ?? 0;
      return { candidate, reason: savedMs - write.ms <= input.minNetMs ? ('write-cost' as const) : ('limit' as const), savedMs, write };
    })
    .filter((r) => r.reason === 'write-cost' || selected.length >= input.maxIndexes);

  const final = new Map<string, StatementCost>();
  for (const s of statements) final.set(s.key, chosen.length === 0 ? (baseline.get(s.key) as StatementCost) : await cost(s, chosen));
  return { selected, rejected, baseline, final, evaluations };
}
