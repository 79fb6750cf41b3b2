import type { IndexCandidate } from './index-candidate.ts';
import type { WorkloadStatement } from './workload.ts';

/**
 * How the advisor learns what an index set would do to a statement. Two implementations:
 * `hypopg` asks the planner itself, with hypothetical indexes; `statistics` estimates with the
 * planner's cost formulas from pg_stats. Both cost generic plans: the workload's statements are
 * normalised, their values unknown.
 */
export interface StatementCost {
  /** Planner cost of the whole statement. */
  readonly cost: number;
  /** Ids of the candidates the plan uses. */
  readonly uses: readonly string[];
  /** How the plan reads the tables, for the evidence ("Index Scan using <candidate> on public.events"). */
  readonly access: string;
}

export interface Evaluator {
  readonly method: 'hypopg' | 'statistics';
  /** Cost with the existing (and declared, not yet built) indexes plus `set`. */
  cost(statement: WorkloadStatement, set: readonly IndexCandidate[]): Promise<StatementCost>;
  /** Estimated size of the index in bytes. */
  size(candidate: IndexCandidate): Promise<number>;
  /** Leaves the session as it found it (hypothetical indexes dropped). */
  close(): Promise<void>;
}

/** A cache key for a set: order does not matter. */
export function setKey(statement: WorkloadStatement, set: readonly IndexCandidate[]): string {
  return `${statement.key}\u0000${set.map((c) => c.id).sort().join('\u0001')}`;
}
