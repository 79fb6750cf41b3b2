import type { Plan } from '../plan/plan.ts';
import { qualified } from '../sql/ident.ts';

/**
 * After an apply, a statement on a changed table that runs slower than before by more than its noise
 * band: the finding that says an index (advised or not) made a plan worse — a statement the advisor
 * could not evaluate may switch to a new index and lose. It carries the exact revert: the policy
 * entries the apply built, by file and line, and the statement that undoes each at once.
 *
 * The noise band: three standard errors of the mean since the apply (the execution time's standard
 * deviation before it, over the square root of the calls since), at least 10% of the mean before and
 * 0.1 ms; and at least MIN_CALLS_SINCE calls since, so that one slow call is not a verdict.
 */

export const MIN_CALLS_SINCE = 5;

export interface StatementSinceApply {
  readonly id: string;
  readonly query: string;
  readonly callsBefore: number;
  readonly meanBeforeMs: number;
  readonly stddevBeforeMs?: number | null;
  readonly callsSince: number | null;
  readonly meanSinceMs: number | null;
}

export interface RevertStep {
  /** The policy entry to remove (file:line), when the change came from a policy file. */
  readonly policy?: { readonly file: string; readonly line: number };
  readonly index: string;
  /** Undoes the change now, without waiting for the next apply. */
  readonly sql: string;
}

export interface ApplyRegression {
  readonly statementId: string;
  readonly query: string;
  readonly meanBeforeMs: number;
  readonly meanSinceMs: number;
  readonly callsSince: number;
  readonly noiseMs: number;
  readonly revert: readonly RevertStep[];
}

export function noiseBandMs(s: StatementSinceApply): number {
  const calls = Math.max(1, s.callsSince ?? 1);
  const standardError = (s.stddevBeforeMs ?? 0) / Math.sqrt(calls);
  return Math.max(3 * standardError, 0.1 * s.meanBeforeMs, 0.1);
}

export function applyRegressions(plan: Plan | null, statements: readonly StatementSinceApply[]): ApplyRegression[] {
  if (plan === null) return [];
  const built = plan.changes.flatMap((entry) => {
    const c = entry.change;
    if (c.kind !== 'create-index' && c.kind !== 'replace-index') return [];
    const step: RevertStep = {
      ...(c.source === undefined ? {} : { policy: { file: c.source.file, line: c.source.line } }),
      index: `${c.index.schema}.${c.index.name}`,
      sql: `DROP INDEX CONCURRENTLY ${qualified(c.index.schema, c.index.name)};`,
    };
    return [{ table: c.table.name.toLowerCase(), step }];
  });
  if (built.length === 0) return [];
  const out: ApplyRegression[] = [];
  for (const s of statements) {
    if (s.callsSince === null || s.meanSinceMs === null || s.callsSince < MIN_CALLS_SINCE) continue;
    const noiseMs = noiseBandMs(s);
    if (s.meanSinceMs <= s.meanBeforeMs + noiseMs) continue;
    // The same loose match that chose the statements recorded with the apply: the table's name in its text.
    const text = s.query.toLowerCase();
    const revert = built.filter((b) => text.includes(b.table)).map((b) => b.step);
    if (revert.length === 0) continue;
    out.push({ statementId: s.id, query: s.query, meanBeforeMs: s.meanBeforeMs, meanSinceMs: s.meanSinceMs, callsSince: s.callsSince, noiseMs, revert });
  }
  return out;
}
