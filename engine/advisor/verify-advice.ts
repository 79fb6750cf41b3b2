import type pg from 'pg';
import { columnUsage } from '../analysis/column-usage.ts';
import type { ServerFacts } from '../analysis/explain-statement.ts';
import { sampleParameters, type BoundParameter } from '../analysis/parameter-values.ts';
import { tableResolver, type TableStatistics } from '../analysis/table-statistics.ts';
import { ident, literal } from '../sql/ident.ts';
import type { WorkloadStatement } from './workload.ts';

/**
 * `advise --verify`, for a staging copy: each advised index is built for real inside a transaction,
 * the read statements on its table are run with EXPLAIN ANALYZE (values sampled from pg_stats, custom
 * plans as the statements' executions get), and the transaction is rolled back. An index is kept only
 * when the time it saves, measured, is positive and no statement on its table got slower beyond its
 * noise band — which also catches a statement the index was not meant for that switches to a worse
 * plan because of it. Never the default: the build holds a SHARE lock on the table (writes wait) for
 * as long as it takes, which is no way to treat production.
 */

/** Runs per statement and state; the median is compared. */
export const VERIFY_RUNS = 3;

export interface MeasuredStatement {
  readonly queryId: string;
  readonly query: string;
  readonly calls: number;
  /** Median of VERIFY_RUNS executions without the index (the existing indexes only). */
  readonly beforeMs: number;
  /** The same with the index built. */
  readonly afterMs: number;
  /** What counts as a change: the wider spread of the two states' runs, at least 10% and 0.2 ms. */
  readonly noiseMs: number;
  readonly verdict: 'faster' | 'slower' | 'same';
  /** The first comparison said slower: both states were measured again right after each other, and the verdict is on all the runs. */
  readonly remeasured?: true;
}

export interface IndexVerification {
  readonly index: string;
  readonly kept: boolean;
  /** calls x (before - after), summed over the statements measured. */
  readonly measuredSavedMs: number;
  readonly statements: readonly MeasuredStatement[];
  /** Why it was not kept, or why a statement could not be measured. */
  readonly note?: string;
}

export interface VerifyTarget {
  readonly name: string;
  readonly schema: string;
  readonly table: string;
  /** CREATE INDEX (not CONCURRENTLY: it runs inside the transaction). */
  readonly buildSql: string;
}

export async function verifyIndexes(
  client: pg.ClientBase,
  facts: ServerFacts,
  targets: readonly VerifyTarget[],
  statements: readonly WorkloadStatement[],
  tables: ReadonlyMap<string, TableStatistics>,
  options: { readonly timeoutMs: number; readonly onProgress?: (message: string) => void },
): Promise<IndexVerification[]> {
  const resolve = tableResolver(tables, facts.searchPath);
  const reads = statements.filter((s) => s.statement.readOnly);
  const onTable = (t: VerifyTarget): WorkloadStatement[] =>
    reads.filter((s) => s.usage.accesses.some((a) => a.table.schema === t.schema && a.table.name === t.table));
  const values = new Map<string, readonly BoundParameter[]>();
  const before = new Map<string, number[] | string>();
  const measure = async (s: WorkloadStatement): Promise<number[] | string> => {
    try {
      let bound = values.get(s.key);
      if (bound === undefined) {
        bound = await sampledValues(client, s, tables, resolve);
        values.set(s.key, bound);
      }
      return await timedRuns(client, s, bound, options.timeoutMs);
    } catch (error) {
      return (error as Error).message;
    }
  };

  const out: IndexVerification[] = [];
  for (const target of targets) {
    const measured: MeasuredStatement[] = [];
    const failures: string[] = [];
    const unmeasured = onTable(target).filter((s) => !before.has(s.key));
    if (unmeasured.length > 0) {
      // The baseline in a transaction too (the runs use savepoints), read-only: nothing is built.
      await client.query('BEGIN READ ONLY');
      try {
        for (const s of unmeasured) before.set(s.key, await measure(s));
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
      }
    }
    options.onProgress?.(`verifying ${target.name}: building it in a transaction`);
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL lock_timeout = 5000`);
      await client.query('SAVEPOINT pgwarden_unbuilt');
      await client.query(target.buildSql);
      const runs = new Map<string, { was: number[]; now: number[] }>();
      for (const s of onTable(target)) {
        const was = before.get(s.key);
        const now = await measure(s);
        if (was === undefined || typeof was === 'string' || typeof now === 'string') {
          failures.push(`${s.queryId} not measured: ${typeof now === 'string' ? now : (was ?? 'no baseline')}`);
          continue;
        }
        runs.set(s.key, { was: [...was], now });
      }
      // A statement that measured slower is measured again, with the index and then without it (rolled
      // back to before the build), right after each other: on a loaded machine the baseline, taken
      // earlier, may have had a quieter moment. The verdict is on all the runs of both states.
      const suspects = onTable(target).filter((s) => {
        const r = runs.get(s.key);
        return r !== undefined && compare(s, r.was, r.now).verdict === 'slower';
      });
      if (suspects.length > 0) {
        for (const s of suspects) {
          const again = await measure(s);
          if (typeof again !== 'string') runs.get(s.key)?.now.push(...again);
        }
        await client.query('ROLLBACK TO SAVEPOINT pgwarden_unbuilt');
        for (const s of suspects) {
          const again = await measure(s);
          if (typeof again !== 'string') runs.get(s.key)?.was.push(...again);
        }
      }
      for (const s of onTable(target)) {
        const r = runs.get(s.key);
        if (r !== undefined) measured.push({ ...compare(s, r.was, r.now), ...(suspects.includes(s) ? { remeasured: true as const } : {}) });
      }
    } catch (error) {
      failures.push(`the build failed: ${(error as Error).message}`);
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
    }
    const measuredSavedMs = measured.reduce((sum, m) => sum + m.calls * (m.beforeMs - m.afterMs), 0);
    const slower = measured.filter((m) => m.verdict === 'slower');
    const faster = measured.filter((m) => m.verdict === 'faster');
    const kept = slower.length === 0 && faster.length > 0 && measuredSavedMs > 0;
    const why = slower.length > 0
      ? `slower with it: ${slower.map((m) => m.queryId).join(', ')}`
      : faster.length === 0
        ? 'no statement measured faster with it'
        : undefined;
    const notes = [...(kept ? [] : why === undefined ? [] : [why]), ...failures];
    out.push({ index: target.name, kept, measuredSavedMs, statements: measured, ...(notes.length === 0 ? {} : { note: notes.join('; ') }) });
  }
  return out;
}

/**
 * Each read statement's execution times (VERIFY_RUNS runs after a warm-up) in one read-only
 * transaction, or why it could not be measured. `values` keeps the sampled values between calls, so
 * that a comparison runs every state with the same ones.
 */
export async function measureStatements(
  client: pg.ClientBase,
  facts: ServerFacts,
  statements: readonly WorkloadStatement[],
  tables: ReadonlyMap<string, TableStatistics>,
  values: Map<string, readonly BoundParameter[]>,
  timeoutMs: number,
): Promise<Map<string, number[] | string>> {
  const resolve = tableResolver(tables, facts.searchPath);
  const out = new Map<string, number[] | string>();
  await client.query('BEGIN READ ONLY');
  try {
    for (const s of statements.filter((x) => x.statement.readOnly)) {
      try {
        let bound = values.get(s.key);
        if (bound === undefined) {
          bound = await sampledValues(client, s, tables, resolve);
          values.set(s.key, bound);
        }
        out.set(s.key, await timedRuns(client, s, bound, timeoutMs));
      } catch (error) {
        out.set(s.key, (error as Error).message);
      }
    }
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
  return out;
}

export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Two states' runs compared: a change beyond the noise band (the wider spread of the two states' runs, at
 * least 10% and 0.2 ms) or every run of one state beyond every run of the other by that floor. One wild run
 * widens the spread past any difference (0.17 ms before, 23 ms after, a 28 ms spread: a regression called
 * "same"); complete separation is a verdict too (3 against 3 separate by chance once in 20; 6 against 6
 * once in 924).
 */
export function runsVerdict(was: readonly number[], now: readonly number[]): { beforeMs: number; afterMs: number; noiseMs: number; verdict: 'faster' | 'slower' | 'same' } {
  const beforeMs = median(was);
  const afterMs = median(now);
  const spread = Math.max(Math.max(...was) - Math.min(...was), Math.max(...now) - Math.min(...now));
  const floor = Math.max(beforeMs * 0.1, 0.2);
  const noiseMs = Math.max(spread, floor);
  const verdict =
    afterMs > beforeMs + noiseMs || Math.min(...now) - Math.max(...was) > floor ? 'slower'
      : afterMs < beforeMs - noiseMs || Math.min(...was) - Math.max(...now) > floor ? 'faster'
        : 'same';
  return { beforeMs, afterMs, noiseMs, verdict };
}

function compare(s: WorkloadStatement, was: number[], now: number[]): MeasuredStatement {
  return { queryId: s.queryId, query: s.query, calls: s.calls, ...runsVerdict(was, now) };
}

let counter = 0;

/** Values for the statement's parameters: types from PREPARE, values from pg_stats (parameter-values.ts). */
async function sampledValues(
  client: pg.ClientBase,
  s: WorkloadStatement,
  tables: ReadonlyMap<string, TableStatistics>,
  resolve: ReturnType<typeof tableResolver>,
): Promise<readonly BoundParameter[]> {
  if (s.statement.parameterCount === 0) return [];
  const name = `pgwarden_verify_${process.pid}_${(counter += 1)}`;
  await client.query(`PREPARE ${ident(name)} AS ${s.statement.text}`);
  try {
    const r = await client.query<{ types: string[] | null }>(
      'SELECT parameter_types::text[] AS types FROM pg_catalog.pg_prepared_statements WHERE name = $1',
      [name],
    );
    const usage = columnUsage(s.statement.tree, s.statement.text, resolve);
    return sampleParameters(s.statement, usage, tables, r.rows[0]?.types ?? []);
  } finally {
    await client.query(`DEALLOCATE ${ident(name)}`).catch(() => undefined);
  }
}

/**
 * The statement's execution time over VERIFY_RUNS runs of EXPLAIN (ANALYZE, TIMING OFF): the plan is
 * a custom one for the sampled values, as most executions of a statement get. A first run warms the
 * cache and is not counted. Inside a savepoint, so that a failure leaves the surrounding transaction
 * (and the index built in it) usable.
 */
async function timedRuns(client: pg.ClientBase, s: WorkloadStatement, values: readonly BoundParameter[], timeoutMs: number): Promise<number[]> {
  const args = values.map((v) => (v.value === null ? 'NULL' : literal(v.value)));
  const name = `pgwarden_verify_${process.pid}_${(counter += 1)}`;
  await client.query(`PREPARE ${ident(name)} AS ${s.statement.text}`);
  try {
    const times: number[] = [];
    for (let run = 0; run <= VERIFY_RUNS; run += 1) {
      await client.query('SAVEPOINT pgwarden_verify');
      try {
        await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
        await client.query('SET LOCAL plan_cache_mode = force_custom_plan');
        const sql = `EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${values.length === 0 ? `EXECUTE ${ident(name)}` : `EXECUTE ${ident(name)}(${args.join(', ')})`}`;
        const rows = (await client.query<{ 'QUERY PLAN': { 'Execution Time': number }[] }>(sql)).rows;
        const ms = rows[0]?.['QUERY PLAN'][0]?.['Execution Time'];
        if (run > 0 && typeof ms === 'number') times.push(ms);
        await client.query('RELEASE SAVEPOINT pgwarden_verify');
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT pgwarden_verify').catch(() => undefined);
        throw error;
      }
    }
    return times;
  } finally {
    await client.query(`DEALLOCATE ${ident(name)}`).catch(() => undefined);
  }
}
