import type { Evaluator, StatementCost } from './evaluator.ts';
import { candidateId, type IndexCandidate } from './index-candidate.ts';
import type { WriteCost } from './write-cost.ts';
import type { WorkloadStatement } from './workload.ts';

/**
 * Chooses the index set for the whole workload: a greedy search over the candidates in the manner of
 * Extend (Schlosser, Kossmann, Boissier, ICDE 2019), which the experimental comparison of Kossmann et
 * al. (VLDB 2020) found best in cost per storage across budgets. Each step takes the one move that
 * saves the most time — per byte of storage when there is a storage budget — with the whole workload
 * re-costed given the indexes already chosen (AutoAdmin's what-if costing, Chaudhuri & Narasayya 1997):
 *
 * - **add** a candidate (its keys not already the leading keys of a chosen index: one btree serves
 *   every prefix of its keys, so a prefix is no new index);
 * - **extend** a chosen index by the keys of a candidate that starts with them (Extend's step-by-step
 *   multi-column growth: `(a)` becomes `(a, b)` when that pays for its extra bytes), or by the INCLUDE
 *   columns of a candidate with the same keys (index-only scans, taken only when they pay for their
 *   size, and the two merged into one index rather than two copies of the same btree).
 *
 * Saved time is calls × mean time × the share of the plan's cost the set removes, minus the write
 * cost of the index (every inserted row and non-HOT update maintains it). No per-query threshold: a
 * 10% gain on the most frequent statement can beat a 99% gain on a rare one. The search stops when no
 * move saves more than `minNetMs` net, when the next index does not fit the budget, or at
 * `maxIndexes`. Gains only shrink as indexes are added, so a move whose last score is below the
 * step's best is not re-costed (lazy greedy, as DB2Advis's benefit/size ordering allows).
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
  /** The step that added it (an extension keeps the step of the index it grew from). */
  readonly round: number;
  /** Statements that would be slower without it, the rest of the set kept (what it alone is worth). */
  readonly gains: readonly StatementGain[];
  readonly savedMs: number;
  readonly write: WriteCost;
  readonly netMs: number;
  /** Estimated size (the evaluator's size model). */
  readonly bytes: number;
  /** Budget left after the set up to and including this index (undefined without a budget). */
  readonly budgetLeftBytes?: number;
}

export interface RejectedIndex {
  readonly candidate: IndexCandidate;
  readonly reason: 'write-cost' | 'limit' | 'budget';
  readonly savedMs: number;
  readonly write: WriteCost;
  readonly bytes: number;
}

export interface Selection {
  readonly selected: readonly SelectedIndex[];
  readonly rejected: readonly RejectedIndex[];
  readonly baseline: ReadonlyMap<string, StatementCost>;
  /** Cost of each statement with every selected index. */
  readonly final: ReadonlyMap<string, StatementCost>;
  readonly evaluations: number;
  /** Estimated bytes of the selected indexes. */
  readonly bytes: number;
}

export interface SelectionInput {
  readonly statements: readonly WorkloadStatement[];
  readonly candidates: readonly IndexCandidate[];
  readonly evaluator: Evaluator;
  /** What the index costs the writes of the window (a candidate, or one grown from candidates). */
  readonly writeCost: (candidate: IndexCandidate) => WriteCost;
  readonly maxIndexes: number;
  /** Storage the new indexes may take together (estimated bytes); none: unbounded. */
  readonly budgetBytes?: number;
  /** A move must save at least this much (net) over the window. */
  readonly minNetMs: number;
  readonly onProgress?: (message: string) => void;
}

interface Move {
  readonly key: string;
  readonly candidate: IndexCandidate;
  /** The chosen index it replaces (an extension), if any. */
  readonly replaces?: IndexCandidate;
}

interface Scored {
  readonly move: Move;
  readonly gainMs: number;
  readonly netMs: number;
  readonly deltaBytes: number;
  readonly score: number;
  readonly costs: ReadonlyMap<string, StatementCost>;
}

/** The smallest size a move is charged, so that a free move's score stays finite: one page. */
const MIN_CHARGE_BYTES = 8192;

export async function selectIndexes(input: SelectionInput): Promise<Selection> {
  const { evaluator, statements } = input;
  let evaluations = 0;
  const cost = async (s: WorkloadStatement, set: readonly IndexCandidate[]): Promise<StatementCost> => {
    evaluations += 1;
    return evaluator.cost(s, set);
  };
  const sizes = new Map<string, number>();
  const size = async (c: IndexCandidate): Promise<number> => {
    const known = sizes.get(c.id);
    if (known !== undefined) return known;
    const bytes = await evaluator.size(c);
    sizes.set(c.id, bytes);
    return bytes;
  };
  const writeCosts = new Map<string, WriteCost>();
  const writeOf = (c: IndexCandidate): WriteCost => {
    const known = writeCosts.get(c.id) ?? input.writeCost(c);
    writeCosts.set(c.id, known);
    return known;
  };
  // The statements that read the table and touch the index's leading column: an index whose first key
  // a statement never names does not narrow its scan (costing it there was most of the evaluations).
  const affected = new Map<string, WorkloadStatement[]>();
  const affectedBy = (c: IndexCandidate): WorkloadStatement[] => {
    const lead = c.keys[0]?.column;
    const key = JSON.stringify([c.schema, c.table, lead]);
    let found = affected.get(key);
    if (found === undefined) {
      found = statements.filter((s) =>
        s.usage.accesses.some((a) => a.write !== 'insert' && a.table.schema === c.schema && a.table.name === c.table && (lead === undefined || a.referenced.includes(lead))),
      );
      affected.set(key, found);
    }
    return found;
  };

  const baseline = new Map<string, StatementCost>();
  for (const s of statements) baseline.set(s.key, await cost(s, []));
  // A cost cut of a few percent is within what an estimate can be off by: it counts as none.
  const saved = (s: WorkloadStatement, c: StatementCost): number => {
    const base = baseline.get(s.key)?.cost ?? 0;
    const cut = base > 0 ? (base - c.cost) / base : 0;
    return cut >= MIN_COST_CUT ? s.calls * s.meanMs * cut : 0;
  };

  let chosen: IndexCandidate[] = [];
  const roundOf = new Map<string, number>();
  const current = new Map(baseline);
  let usedBytes = 0;
  const budget = input.budgetBytes ?? Number.POSITIVE_INFINITY;
  const bound = new Map<string, number>();
  const lastNet = new Map<string, { savedMs: number; netMs: number; fits: boolean }>();

  const score = async (move: Move): Promise<Scored> => {
    const set = [...chosen.filter((c) => c !== move.replaces), move.candidate];
    const costs = new Map<string, StatementCost>();
    let gainMs = 0;
    for (const s of affectedBy(move.candidate)) {
      const after = await cost(s, set);
      costs.set(s.key, after);
      gainMs += saved(s, after) - saved(s, current.get(s.key) as StatementCost);
    }
    const deltaBytes = (await size(move.candidate)) - (move.replaces === undefined ? 0 : await size(move.replaces));
    const deltaWrite = writeOf(move.candidate).ms - (move.replaces === undefined ? 0 : writeOf(move.replaces).ms);
    const netMs = gainMs - deltaWrite;
    // With a budget, time saved per byte (Extend's benefit/storage ratio); without one, time saved.
    const s = input.budgetBytes === undefined ? netMs : netMs / Math.max(MIN_CHARGE_BYTES, deltaBytes);
    return { move, gainMs, netMs, deltaBytes, score: s, costs };
  };

  for (let round = 1; ; round += 1) {
    const moves = candidateMoves(input.candidates, chosen, chosen.length < input.maxIndexes);
    moves.sort((a, b) => (bound.get(b.key) ?? Number.POSITIVE_INFINITY) - (bound.get(a.key) ?? Number.POSITIVE_INFINITY) || (a.key < b.key ? -1 : 1));
    let best: Scored | undefined;
    for (const move of moves) {
      const known = bound.get(move.key);
      if (best !== undefined && known !== undefined && known <= best.score) break;
      const scored = await score(move);
      bound.set(move.key, scored.score);
      const fits = usedBytes + scored.deltaBytes <= budget;
      if (move.replaces === undefined) lastNet.set(move.candidate.id, { savedMs: scored.gainMs, netMs: scored.netMs, fits });
      if (!fits || scored.netMs <= input.minNetMs) continue;
      if (best === undefined || scored.score > best.score) best = scored;
    }
    if (best === undefined) break;
    const { move } = best;
    chosen = [...chosen.filter((c) => c !== move.replaces), move.candidate];
    roundOf.set(move.candidate.id, move.replaces === undefined ? round : (roundOf.get(move.replaces.id) ?? round));
    usedBytes += best.deltaBytes;
    for (const [key, c] of best.costs) current.set(key, c);
    const shape = `${move.candidate.table} (${move.candidate.keys.map((k) => k.column).join(', ')})`;
    input.onProgress?.(`step ${round}: ${move.replaces === undefined ? 'add' : 'extend to'} ${shape}, saves ${best.netMs.toFixed(0)} ms`);
  }

  // What each chosen index alone is worth: the workload with the rest of the set, without it. An index
  // chosen early that later ones made redundant (each statement it served now has a better one) is
  // worth nothing on its own any more: it is dropped, the least useful first, and the rest re-weighed
  // (the reduction step of AutoAdmin and DB2Advis's final pass).
  const worth = async (set: readonly IndexCandidate[]): Promise<{ final: Map<string, StatementCost>; selected: SelectedIndex[] }> => {
    const final = new Map<string, StatementCost>();
    for (const s of statements) final.set(s.key, set.length === 0 ? (baseline.get(s.key) as StatementCost) : await cost(s, set));
    const selected: SelectedIndex[] = [];
    let running = 0;
    for (const candidate of [...set].sort((a, b) => (roundOf.get(a.id) ?? 0) - (roundOf.get(b.id) ?? 0))) {
      const rest = set.filter((c) => c !== candidate);
      const gains: StatementGain[] = [];
      for (const s of affectedBy(candidate)) {
        const after = final.get(s.key) as StatementCost;
        const before = await cost(s, rest);
        const gain = saved(s, after) - saved(s, before);
        if (gain > 0) gains.push({ statement: s, before, after, savedMs: gain });
      }
      const savedMs = gains.reduce((sum, g) => sum + g.savedMs, 0);
      const write = writeOf(candidate);
      const bytes = await size(candidate);
      running += bytes;
      selected.push({
        candidate,
        round: roundOf.get(candidate.id) ?? 0,
        gains,
        savedMs,
        write,
        netMs: savedMs - write.ms,
        bytes,
        ...(input.budgetBytes === undefined ? {} : { budgetLeftBytes: input.budgetBytes - running }),
      });
    }
    return { final, selected };
  };
  let { final, selected } = await worth(chosen);
  for (;;) {
    const useless = selected.filter((x) => x.netMs <= input.minNetMs).sort((a, b) => a.netMs - b.netMs)[0];
    if (useless === undefined) break;
    input.onProgress?.(`dropping ${useless.candidate.table} (${useless.candidate.keys.map((k) => k.column).join(', ')}): the indexes chosen after it serve its statements`);
    chosen = chosen.filter((c) => c !== useless.candidate);
    usedBytes -= useless.bytes;
    ({ final, selected } = await worth(chosen));
  }

  const served = (c: IndexCandidate): boolean => chosen.some((x) => sameTarget(x, c) && startsWith(x.keys, c.keys) && c.include.every((i) => x.include.includes(i) || x.keys.some((k) => k.column === i)));
  const rejected: RejectedIndex[] = [];
  for (const candidate of input.candidates) {
    const last = lastNet.get(candidate.id);
    if (chosen.includes(candidate) || served(candidate) || last === undefined || last.savedMs <= input.minNetMs) continue;
    const write = writeOf(candidate);
    const reason = last.netMs <= input.minNetMs ? 'write-cost' : !last.fits ? 'budget' : chosen.length >= input.maxIndexes ? 'limit' : undefined;
    if (reason === undefined) continue;
    rejected.push({ candidate, reason, savedMs: last.savedMs, write, bytes: await size(candidate) });
  }
  return { selected, rejected, baseline, final, evaluations, bytes: usedBytes };
}

/** The moves from the chosen set: add a candidate (while there is room), or grow a chosen index. */
function candidateMoves(candidates: readonly IndexCandidate[], chosen: readonly IndexCandidate[], mayAdd: boolean): Move[] {
  const moves: Move[] = [];
  for (const c of candidates) {
    if (chosen.includes(c)) continue;
    // One btree serves every prefix of its keys: the same leading keys are an extension, not a new index.
    const grows = chosen.filter((x) => sameTarget(x, c) && (startsWith(c.keys, x.keys) || startsWith(x.keys, c.keys)));
    if (grows.length === 0) {
      if (mayAdd) moves.push({ key: c.id, candidate: c });
      continue;
    }
    for (const x of grows) {
      const grown = extension(x, c);
      if (grown !== undefined) moves.push({ key: `${x.id}>${grown.id}`, candidate: grown, replaces: x });
    }
  }
  return [...new Map(moves.map((m) => [m.key, m])).values()];
}

/**
 * `x` grown towards `c`: c's keys when they extend x's, with the INCLUDE columns of both (keys
 * dropped from them); undefined when it would be x itself.
 */
function extension(x: IndexCandidate, c: IndexCandidate): IndexCandidate | undefined {
  const keys = c.keys.length >= x.keys.length ? c.keys : x.keys;
  const keyColumns = new Set(keys.map((k) => k.column));
  const include = [...new Set([...x.include, ...c.include])].filter((i) => !keyColumns.has(i)).sort();
  const shape = { schema: x.schema, table: x.table, keys, include, ...(x.where === undefined ? {} : { where: x.where }), ...(x.whereShare === undefined ? {} : { whereShare: x.whereShare }) };
  const id = candidateId(shape);
  if (id === x.id) return undefined;
  return { ...shape, id, sources: [...new Set([...x.sources, ...c.sources])] };
}

function sameTarget(a: IndexCandidate, b: IndexCandidate): boolean {
  return a.schema === b.schema && a.table === b.table && (a.where ?? null) === (b.where ?? null);
}

function startsWith(keys: IndexCandidate['keys'], prefix: IndexCandidate['keys']): boolean {
  return prefix.length <= keys.length && prefix.every((k, i) => keys[i]?.column === k.column && keys[i]?.order === k.order);
}
