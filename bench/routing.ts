/**
 * `npm run bench:routing`: what the read-replica router costs and what it buys, on the example platform.
 *
 * In its own embedded cluster (a PostgreSQL 16 primary and a streaming hot standby, both on this machine),
 * with the example at small scale and the bundled policies' indexes applied:
 *
 *   1. overhead: the same statement, one at a time, through a plain pg.Pool and through the router, to
 *      the same server (reads: the standby; writes: the primary). p50/p99 per query over a bounded loop,
 *      runs alternated, medians of the runs and the router/pool ratio. The router's background work
 *      (lag sampling and the heartbeat, 10 ticks/s) runs throughout, as it does in production.
 *   2. read throughput under a concurrent write load: the API's read queries, N readers in a closed loop
 *      for a fixed time, with writers inserting events at a fixed rate, with `reads: replica` (reads
 *      split to the standby) against `reads: primary` (everything on the primary), runs alternated.
 *   3. replication lag during those split runs, as the router measured it every 100 ms: the combined
 *      bound, the heartbeat's age and pg_stat_replication.replay_lag, p50/p99/max.
 *
 * The cluster runs with fsync off (the machine's disk is shared) and synchronous_commit on.
 *
 * Options: --runs N (9), --queries N (2000 per overhead run), --duration 8s (per throughput run),
 *          --readers N (4), --write-rate N (300 inserts/s).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connectSpec, createPoolFor } from '../engine/connection/open-connection.ts';
import { loadExample } from '../engine/example/load.ts';
import { buildDeck, drawOperation } from '../engine/example/workload.ts';
import { readWorkloadContext } from '../engine/example/workload-context.ts';
import { WORKLOAD_QUERIES } from '../engine/example/workload-queries.ts';
import { apply } from '../engine/apply/apply.ts';
import { clusterDown, clusterUp } from '../engine/cluster/embedded-cluster.ts';
import { formatPolicyError } from '../engine/policy/desired.ts';
import { loadPolicies } from '../engine/policy/load.ts';
import { createRouter, lagStats, statementFacts, type RoutingPool } from '../engine/routing/index.ts';
import { createStatementClassifier } from '../engine/routing/statement-classifier.ts';
import { CREATE_HEARTBEAT_SQL } from '../engine/sql/routing-ddl.ts';
import { freePort, withDatabase } from '../engine/cluster/local-address.ts';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '9' },
    queries: { type: 'string', default: '2000' },
    duration: { type: 'string', default: '8s' },
    readers: { type: 'string', default: '4' },
    'write-rate': { type: 'string', default: '300' },
  },
  strict: true,
});

function positiveInt(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${String(text)}`);
  return n;
}

const RUNS = positiveInt('runs', flags.runs);
const QUERIES = positiveInt('queries', flags.queries);
const DURATION_MS = Number(/^(\d+)s$/u.exec(flags.duration ?? '')?.[1] ?? NaN) * 1000;
if (!Number.isFinite(DURATION_MS) || DURATION_MS <= 0) throw new Error(`--duration must be like 8s, got ${flags.duration}`);
const READERS = positiveInt('readers', flags.readers);
const WRITE_RATE = positiveInt('write-rate', flags['write-rate']);
const WARMUP = 200;
const DATABASE = 'pgwarden_bench';

// ---------------------------------------------------------------------------------------------------
// Helpers

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
};

/** Nearest-rank percentile of an ascending array. */
const percentile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;

const ms = (value: number | null | undefined, digits = 3): string => (value === null || value === undefined || Number.isNaN(value) ? '-' : `${value.toFixed(digits)} ms`);

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('   ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

type Queryable = Pick<pg.Pool, 'query'>;

interface Latency {
  readonly p50: number;
  readonly p99: number;
}

/**
 * Per-query latency of the same statement through two pools, interleaved query by query (the order
 * alternating), so that whatever else the machine does hits both alike. After a warm-up of each.
 */
async function pairedLatencies(a: Queryable, b: Queryable, text: string, values: (i: number) => unknown[], count: number): Promise<[Latency, Latency]> {
  for (let i = 0; i < WARMUP; i += 1) {
    await a.query(text, values(i));
    await b.query(text, values(i));
  }
  const samples: [number[], number[]] = [[], []];
  const time = async (pool: Queryable, into: number[], i: number): Promise<void> => {
    const t0 = performance.now();
    await pool.query(text, values(i));
    into.push(performance.now() - t0);
  };
  for (let i = 0; i < count; i += 1) {
    if (i % 2 === 0) {
      await time(a, samples[0], i);
      await time(b, samples[1], i);
    } else {
      await time(b, samples[1], i);
      await time(a, samples[0], i);
    }
  }
  return samples.map((s) => {
    s.sort((x, y) => x - y);
    return { p50: percentile(s, 0.5), p99: percentile(s, 0.99) };
  }) as [Latency, Latency];
}

// ---------------------------------------------------------------------------------------------------
// Setup

const baseDir = await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-routing-'));
await chmod(baseDir, 0o755);
const say = (text: string): void => void process.stdout.write(`${text}\n`);

try {
  say(`pgwarden routing benchmark — ${os.cpus().length} cores, Node ${process.version}`);
  const urls = await clusterUp({
    baseDir,
    primaryPort: await freePort(),
    standbyPort: await freePort(),
    // fsync off spares the shared disk; synchronous_commit stays on (the default), because with it off
    // commits reach the standby only when the WAL writer flushes (up to wal_writer_delay later).
    settings: { fsync: 'off', full_page_writes: 'off' },
  });
  const admin = await connectSpec(urls.primaryUrl);
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  await admin.end();
  const primaryUrl = withDatabase(urls.primaryUrl, DATABASE);
  const standbyUrl = withDatabase(urls.standbyUrl, DATABASE);

  const setup = await connectSpec(primaryUrl);
  const summary = await loadExample(setup, { scale: 'small' });
  await setup.query(CREATE_HEARTBEAT_SQL);
  await setup.end();
  const policiesDir = new URL('../policies', import.meta.url).pathname;
  const { desired, errors } = await loadPolicies(policiesDir);
  if (errors.length > 0) throw new Error(`the bundled policies are invalid: ${errors.map(formatPolicyError).join('; ')}`);
  const applied = await apply({
    databaseUrl: primaryUrl,
    desired: { ...desired, tables: desired.tables.map((t) => ({ ...t })) },
    allowDrop: false,
    lockTimeoutMs: 5000,
    buildTimeoutMs: 0,
    retries: 3,
    backoffMs: 200,
    now: () => new Date(),
  });
  say(`example: small scale (${Object.entries(summary.rows).map(([t, n]) => `${t} ${n.toLocaleString('en-US')}`).join(', ')}); bundled policies applied (${applied.applied} changes)`);
  // Let the standby replay the load and the index builds before measuring anything.
  for (let tries = 0; ; tries += 1) {
    try {
      await (await connectSpec(standbyUrl)).end();
      break;
    } catch (error) {
      if (tries > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  const newRouter = (reads: 'replica' | 'primary'): RoutingPool =>
    createRouter({ primary: { connectionString: primaryUrl, max: READERS + 2 }, replicas: [{ name: 'standby1', connection: standbyUrl }], reads, maxLagMs: 1000, readYourWritesScope: 'session' });

  // -------------------------------------------------------------------------------------------------
  // 1. Overhead

  say(`\n1. Router overhead vs a plain pg.Pool to the same server (${QUERIES} queries each per run after ${WARMUP} warm-up, one at a time, interleaved query by query, ${RUNS} runs)\n`);
  const READ = 'SELECT id, slug, name FROM public.tenants WHERE id = $1';
  const WRITE = 'UPDATE public.tenants SET name = name WHERE id = $1';
  const router = newRouter('replica');
  await router.ready();
  // The baseline is the driver itself, deliberately: plain node-postgres pools, not the connection module.
  const standbyPool = new pg.Pool({ connectionString: standbyUrl, max: READERS + 2 });
  const primaryPool = new pg.Pool({ connectionString: primaryUrl, max: READERS + 2 });
  const figures = { readPool: [] as Latency[], readRouter: [] as Latency[], writePool: [] as Latency[], writeRouter: [] as Latency[] };
  const tenant = (i: number): unknown[] => [(i % 50) + 1];
  // Writes through the router would keep its reads on the primary (read-your-writes): they run in their own session.
  const writer = router.session();
  const routerWrites: Queryable = { query: writer.query };
  for (let run = 0; run < RUNS; run += 1) {
    const [readPool, readRouter] = await pairedLatencies(standbyPool, router, READ, tenant, QUERIES);
    const [writePool, writeRouter] = await pairedLatencies(primaryPool, routerWrites, WRITE, tenant, QUERIES);
    figures.readPool.push(readPool);
    figures.readRouter.push(readRouter);
    figures.writePool.push(writePool);
    figures.writeRouter.push(writeRouter);
  }
  const m = router.metrics();
  if ((m.targets.replicas['standby1'] ?? 0) < RUNS * (QUERIES + WARMUP)) throw new Error('the router did not send the reads to the standby; the overhead figure would be wrong');
  // Pool and router ran interleaved within each run, so each run's ratio compares like with like; the
  // ratio shown is the median of the runs' ratios (the machine's load moves both figures together).
  const row = (label: string, base: Latency[], mine: Latency[]): string[] => {
    const [b50, b99, r50, r99] = [median(base.map((f) => f.p50)), median(base.map((f) => f.p99)), median(mine.map((f) => f.p50)), median(mine.map((f) => f.p99))];
    const ratio50 = median(base.map((f, i) => (mine[i]?.p50 ?? NaN) / f.p50));
    const ratio99 = median(base.map((f, i) => (mine[i]?.p99 ?? NaN) / f.p99));
    return [label, ms(b50), ms(r50), `${ratio50.toFixed(3)}x`, `${((ratio50 - 1) * 100).toFixed(1)}%`, ms(b99), ms(r99), `${ratio99.toFixed(3)}x`];
  };
  say(
    table(
      ['statement', 'pool p50', 'router p50', 'p50 ratio', 'overhead', 'pool p99', 'router p99', 'p99 ratio'],
      [row('read  (standby) ' + READ.slice(0, 28) + '…', figures.readPool, figures.readRouter), row('write (primary) ' + WRITE.slice(0, 28) + '…', figures.writePool, figures.writeRouter)],
    ),
  );
  say(`   per-run p50, read:  pool ${figures.readPool.map((f) => f.p50.toFixed(3)).join(' ')} | router ${figures.readRouter.map((f) => f.p50.toFixed(3)).join(' ')} (ms)`);
  say(`   per-run p50, write: pool ${figures.writePool.map((f) => f.p50.toFixed(3)).join(' ')} | router ${figures.writeRouter.map((f) => f.p50.toFixed(3)).join(' ')} (ms)`);
  say(`   classifier: ${m.classifier.parses} parses, ${m.classifier.hits.toLocaleString('en-US')} cache hits`);
  // The routing decision alone, in process (no network): what the router adds to every query's CPU time.
  const classifier = createStatementClassifier();
  await classifier.route(READ);
  const first = performance.now();
  await statementFacts(`${READ} -- uncached`);
  const parseMs = performance.now() - first;
  const decisions: number[] = [];
  for (let run = 0; run < RUNS; run += 1) {
    const n = 1_000_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i += 1) classifier.route(READ);
    decisions.push(((performance.now() - t0) / n) * 1e6);
  }
  say(`   routing decision in process: ${median(decisions).toFixed(0)} ns per query (cached text, median of ${RUNS} x 1,000,000); first sight of a text: one parse, ${parseMs.toFixed(2)} ms`);
  await Promise.all([router.end(), standbyPool.end(), primaryPool.end()]);

  // -------------------------------------------------------------------------------------------------
  // 2 + 3. Throughput under a write load, and lag

  say(`\n2. Read throughput under a concurrent write load (${READERS} readers in a closed loop, ${WRITE_RATE} inserts/s, ${DURATION_MS / 1000} s per run, ${Math.max(3, Math.ceil(RUNS / 2))} runs per mode, alternated)\n`);
  const contextPool = createPoolFor(primaryUrl, { max: 2 });
  const context = await readWorkloadContext(contextPool);
  await contextPool.end();
  const reads = buildDeck(WORKLOAD_QUERIES.filter((q) => q.access === 'read'), 1);
  const inserts = buildDeck(WORKLOAD_QUERIES.filter((q) => q.name === 'insert_event'), 2);
  const throughputRuns = Math.max(3, Math.ceil(RUNS / 2));
  interface ModeRun {
    readsPerS: number;
    p50: number;
    p99: number;
    writesPerS: number;
    onStandby: number;
    lag: { combined: ReturnType<typeof lagStats>; heartbeat: number[]; replay: number[] } | null;
  }
  const results: Record<'replica' | 'primary', ModeRun[]> = { replica: [], primary: [] };
  let ticket = 0;
  for (let run = 0; run < throughputRuns; run += 1) {
    for (const mode of run % 2 === 0 ? (['replica', 'primary'] as const) : (['primary', 'replica'] as const)) {
      const pool = newRouter(mode);
      await pool.ready();
      const writers = createPoolFor(primaryUrl, { max: 2 });
      const started = performance.now();
      const until = started + DURATION_MS;
      const samples: number[] = [];
      let written = 0;
      const reader = async (): Promise<void> => {
        while (performance.now() < until) {
          const op = drawOperation(reads, context, 7, ticket++);
          const t0 = performance.now();
          await pool.query(op.query.sql, [...op.values]);
          samples.push(performance.now() - t0);
        }
      };
      const writerLoop = async (share: number): Promise<void> => {
        const interval = 1000 / (WRITE_RATE / share);
        for (let next = performance.now(); next < until; next += interval) {
          const wait = next - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          const op = drawOperation(inserts, context, 9, ticket++);
          await writers.query(op.query.sql, [...op.values]);
          written += 1;
        }
      };
      await Promise.all([...Array.from({ length: READERS }, reader), writerLoop(2), writerLoop(2)]);
      const seconds = (performance.now() - started) / 1000;
      samples.sort((a, b) => a - b);
      const metrics = pool.metrics();
      const history = pool.lagHistory('standby1').filter((p) => p.at >= Date.now() - DURATION_MS);
      const num = (values: (number | null)[]): number[] => values.flatMap((v) => (v === null ? [] : [v])).sort((a, b) => a - b);
      results[mode].push({
        readsPerS: samples.length / seconds,
        p50: percentile(samples, 0.5),
        p99: percentile(samples, 0.99),
        writesPerS: written / seconds,
        onStandby: (metrics.targets.replicas['standby1'] ?? 0) / Math.max(1, metrics.statements),
        lag: mode === 'replica' ? { combined: lagStats(history), heartbeat: num(history.map((p) => p.heartbeatLagMs)), replay: num(history.map((p) => p.replayLagMs)) } : null,
      });
      await Promise.all([pool.end(), writers.end()]);
    }
  }
  const modeRow = (label: string, runs: ModeRun[]): string[] => [
    label,
    median(runs.map((r) => r.readsPerS)).toFixed(0),
    ms(median(runs.map((r) => r.p50)), 2),
    ms(median(runs.map((r) => r.p99)), 2),
    median(runs.map((r) => r.writesPerS)).toFixed(0),
    `${(median(runs.map((r) => r.onStandby)) * 100).toFixed(0)}%`,
  ];
  say(table(['reads go to', 'reads/s', 'read p50', 'read p99', 'writes/s', 'on standby'], [modeRow('primary (baseline)', results.primary), modeRow('standby (router)', results.replica)]));
  const ratio = median(results.replica.map((r) => r.readsPerS)) / median(results.primary.map((r) => r.readsPerS));
  say(`   split / all-on-primary read throughput: ${ratio.toFixed(2)}x`);
  say(`   per-run reads/s: primary ${results.primary.map((r) => r.readsPerS.toFixed(0)).join(' ')} | split ${results.replica.map((r) => r.readsPerS.toFixed(0)).join(' ')}`);

  say(`\n3. Replication lag during the split runs, sampled every 100 ms (medians over ${throughputRuns} runs)\n`);
  const lagRuns = results.replica.flatMap((r) => (r.lag === null ? [] : [r.lag]));
  const lagRow = (label: string, pick: (l: (typeof lagRuns)[number]) => { p50: number | null; p99: number | null; max: number | null; n: number }): string[] => {
    const figures = lagRuns.map(pick);
    const med = (get: (f: (typeof figures)[number]) => number | null): number => median(figures.flatMap((f) => (get(f) === null ? [] : [get(f) as number])));
    return [label, ms(med((f) => f.p50), 1), ms(med((f) => f.p99), 1), ms(med((f) => f.max), 1), String(Math.round(median(figures.map((f) => f.n))))];
  };
  const dist = (values: number[]): { p50: number | null; p99: number | null; max: number | null; n: number } =>
    values.length === 0 ? { p50: null, p99: null, max: null, n: 0 } : { p50: percentile(values, 0.5), p99: percentile(values, 0.99), max: values.at(-1) ?? null, n: values.length };
  say(
    table(
      ['measure', 'p50', 'p99', 'max', 'samples'],
      [
        lagRow('lag (combined bound, routes reads)', (l) => ({ p50: l.combined.p50Ms, p99: l.combined.p99Ms, max: l.combined.maxMs, n: l.combined.samples })),
        lagRow('heartbeat age (primary clock)', (l) => dist(l.heartbeat)),
        lagRow('pg_stat_replication.replay_lag', (l) => dist(l.replay)),
      ],
    ),
  );
} finally {
  await clusterDown({ baseDir, destroy: true }).catch(() => undefined);
  await rm(baseDir, { recursive: true, force: true });
}
