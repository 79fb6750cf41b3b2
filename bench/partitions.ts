/**
 * `npm run bench:partitions`: what partition policies cost at plan time, and what partitioning buys a query.
 *
 * In its own embedded cluster (or PGWARDEN_BENCH_URL's server):
 *
 *   1. plan time against a table of N daily partitions (1,000 by default; also N/10 to show the
 *      round trips do not grow): the warm plan with the same index policy but no `partitioning:` (the
 *      foundation's path) vs with `partitioning:` (premake, retention, default partition), and a plan
 *      that has partitions to create while a default partition exists (one more round trip: the
 *      default partition's rows of those ranges are counted). Round trips from the catalog session.
 *   2. the example at demo scale (2.5M events over 12 months, `loadExample`): a one-month aggregate on
 *      the partitioned `events` vs the same rows in an unpartitioned copy, alternated, and the share of
 *      partitions pruned (EXPLAIN (ANALYZE, FORMAT JSON) read by `partitionPruning`).
 *
 * Options: --partitions N (1000), --runs N (9), --scale demo|small (demo).
 */
import { chmod, mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connectSpec } from '../engine/connection/open-connection.ts';
import { loadExample } from '../engine/example/load.ts';
import { formatPartitionPruning, partitionPruning } from '../engine/analysis/partition-pruning.ts';
import { apply } from '../engine/apply/apply.ts';
import { catalogSession } from '../engine/catalog/introspect.ts';
import { introspectPartitions, leafPartitions } from '../engine/catalog/partition-queries.ts';
import { clusterDown, clusterUp } from '../engine/cluster/embedded-cluster.ts';
import { makePlan } from '../engine/plan/make-plan.ts';
import { formatPolicyError, type DesiredState } from '../engine/policy/desired.ts';
import { loadPolicies } from '../engine/policy/load.ts';
import { freePort, withDatabase } from '../engine/cluster/local-address.ts';

const { values: flags } = parseArgs({
  options: {
    partitions: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '9' },
    scale: { type: 'string', default: 'demo' },
  },
  strict: true,
});
const PARTITIONS = Number(flags.partitions);
const RUNS = Number(flags.runs);
const SCALE = flags.scale === 'small' ? 'small' : 'demo';
if (!Number.isInteger(PARTITIONS) || PARTITIONS < 10 || !Number.isInteger(RUNS) || RUNS < 1) throw new Error('--partitions >= 10 and --runs >= 1, whole numbers');

const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

const fmt = (ms: number): string => (ms >= 100 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`);

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectSpec(url, { application_name: 'pgwarden' });
  client.on('error', () => undefined);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------
// 1. Plan time on N partitions

/** Daily partitions ending on `end` (exclusive), a default partition, rows in each, one partitioned index. */
async function buildPartitioned(url: string, table: string, partitions: number, end: Date): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`DROP TABLE IF EXISTS bench.${table}; CREATE SCHEMA IF NOT EXISTS bench`);
    await c.query(`CREATE TABLE bench.${table} (id bigint NOT NULL, tenant_id int NOT NULL, created_at timestamptz NOT NULL, payload text) PARTITION BY RANGE (created_at)`);
    const first = new Date(end.getTime() - partitions * 86_400_000);
    for (let lo = 0; lo < partitions; lo += 200) {
      const hi = Math.min(lo + 200, partitions) - 1;
      // Named as the policy's default daily pattern names them: {table}_{YYYY}_{MM}_{DD}.
      await c.query(`DO $$
        DECLARE d date;
        BEGIN
          FOR i IN ${lo}..${hi} LOOP
            d := DATE '${first.toISOString().slice(0, 10)}' + i;
            EXECUTE format('CREATE TABLE bench.%I PARTITION OF bench.${table} FOR VALUES FROM (%L) TO (%L)',
                           '${table}_' || to_char(d, 'YYYY_MM_DD'), d::text || ' 00:00:00+00', (d + 1)::text || ' 00:00:00+00');
          END LOOP;
        END $$`);
    }
    await c.query(`CREATE TABLE bench.${table}_default PARTITION OF bench.${table} DEFAULT`);
    await c.query(`INSERT INTO bench.${table} SELECT g, g % 50, TIMESTAMPTZ '${first.toISOString()}' + (g % ${partitions}) * interval '1 day' + interval '1 hour', 'x'
                     FROM generate_series(1, ${partitions * 20}) g`);
    await c.query(`CREATE INDEX ${table}_tenant_created_idx ON bench.${table} (tenant_id, created_at)`);
    await c.query(`ANALYZE bench.${table}`);
  });
}

function policy(table: string, partitioning: boolean): string {
  const lines = [`table: bench.${table}`, 'indexes:', `  - name: ${table}_tenant_created_idx`, '    columns: [tenant_id, created_at]'];
  if (partitioning) lines.push('partitioning:', '  by: range', '  column: created_at', '  interval: day', '  premake: 3', '  retention: { keep: 5000, then: detach }', '  default_partition: true');
  return `${lines.join('\n')}\n`;
}

async function loadOne(dir: string, text: string): Promise<DesiredState> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'policy.yaml'), text);
  const { desired, errors } = await loadPolicies(dir);
  if (errors.length > 0) throw new Error(errors.map(formatPolicyError).join('; '));
  return desired;
}

interface PlanSeries {
  readonly label: string;
  readonly ms: number[];
  readonly roundTrips: Set<number>;
  changes: number;
}

/** The variants' runs interleaved (A B C A B C ...), so a busy moment of the shared machine hits them alike. */
async function measurePlans(url: string, variants: readonly { label: string; desired: DesiredState }[], now: Date): Promise<PlanSeries[]> {
  const series: PlanSeries[] = variants.map((v) => ({ label: v.label, ms: [], roundTrips: new Set<number>(), changes: 0 }));
  for (let i = 0; i < RUNS; i += 1) {
    for (const [k, variant] of variants.entries()) {
      const s = series[k]!;
      await withClient(url, async (c) => {
        const t0 = performance.now();
        const outcome = await makePlan(c, variant.desired, now);
        s.ms.push(performance.now() - t0);
        if (!outcome.ok) throw new Error(outcome.errors.map(formatPolicyError).join('; '));
        s.roundTrips.add(outcome.roundTrips);
        s.changes = outcome.plan.changes.length;
      });
    }
  }
  for (const s of series) log(`${s.label}: median ${fmt(median(s.ms))}, ${[...s.roundTrips].join('/')} round trips, ${s.changes} changes`);
  return series;
}

async function timeCatalogQuery(url: string, table: string): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i += 1) {
    await withClient(url, async (c) => {
      const t0 = performance.now();
      await introspectPartitions(catalogSession(c), [{ schema: 'bench', name: table }]);
      ms.push(performance.now() - t0);
    });
  }
  return median(ms);
}

async function planBench(url: string, scratch: string): Promise<string[]> {
  // "Now" is the last partition's day: premake 3 asks for three more days (created by the first apply below).
  const end = new Date(Date.UTC(2025, 0, 1));
  const now = new Date(end.getTime() - 86_400_000 + 12 * 3_600_000);
  const sizes = [Math.round(PARTITIONS / 10), PARTITIONS];
  const rows: PlanSeries[] = [];
  const queryMs: string[] = [];
  for (const n of sizes) {
    const table = `events_${n}`;
    log(`building bench.${table}: ${n} daily partitions + default`);
    await buildPartitioned(url, table, n, end);
    const plain = await loadOne(path.join(scratch, `plain-${n}`), policy(table, false));
    const partitioned = await loadOne(path.join(scratch, `part-${n}`), policy(table, true));
    const options = { databaseUrl: url, allowDrop: false, lockTimeoutMs: 5000, buildTimeoutMs: 0, retries: 1, backoffMs: 100, now: () => now };
    // The index adopted first: the foundation's steady state.
    await apply({ ...options, desired: plain });
    const [foundation, toCreate] = await measurePlans(url, [
      { label: `${n} partitions, index policy only (foundation path)`, desired: plain },
      { label: `${n} partitions, + partitioning, 3 to create (default rows counted)`, desired: partitioned },
    ], now);
    await apply({ ...options, desired: partitioned });
    const [foundationAgain, warm] = await measurePlans(url, [
      { label: `${n} partitions, index policy only (foundation path)`, desired: plain },
      { label: `${n} partitions, + partitioning, steady state (no changes)`, desired: partitioned },
    ], now);
    if (warm!.changes !== 0) throw new Error(`the steady-state plan on ${n} partitions has ${warm!.changes} changes`);
    rows.push(foundation!, toCreate!, foundationAgain!, warm!);
    queryMs.push(`${n} partitions: ${fmt(await timeCatalogQuery(url, table))}`);
  }
  const width = Math.max(...rows.map((r) => r.label.length));
  const lines = [`${''.padEnd(width)}   median   round trips   changes   vs the foundation path, same runs`];
  for (const [i, r] of rows.entries()) {
    const base = rows[i - (i % 2)]!;
    lines.push(`${r.label.padEnd(width)}   ${fmt(median(r.ms)).padStart(6)}   ${[...r.roundTrips].join('/').padStart(11)}   ${String(r.changes).padStart(7)}   ${(median(r.ms) / median(base.ms)).toFixed(2)}x`);
  }
  lines.push(`the partition catalog query alone (introspectPartitions, one round trip): ${queryMs.join(', ')}`);
  return lines;
}

// ---------------------------------------------------------------------------------------------------
// 2. A month's query, partitioned vs not

async function queryBench(url: string): Promise<string[]> {
  const summary = await withClient(url, (c) => loadExample(c, { scale: SCALE, onProgress: (m) => log(`  ${m}`) }));
  log(`loaded ${summary.rows.events.toLocaleString('en-US')} events`);
  await withClient(url, async (c) => {
    await c.query(`DROP TABLE IF EXISTS public.events_unpartitioned`);
    await c.query(`CREATE TABLE public.events_unpartitioned AS SELECT * FROM public.events ORDER BY created_at`);
    await c.query(`ALTER TABLE public.events_unpartitioned ADD PRIMARY KEY (id, created_at)`);
    await c.query(`VACUUM ANALYZE public.events_unpartitioned`);
    await c.query(`VACUUM ANALYZE public.events`);
  });
  // A whole month in the middle of the history.
  const end = new Date(summary.endAt);
  const from = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 6, 1));
  const to = new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 5, 1));
  const monthSql = (table: string): string =>
    `SELECT kind, count(*) FROM public.${table} WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz GROUP BY kind`;
  const params = [from.toISOString(), to.toISOString()];
  const times: Record<'partitioned' | 'unpartitioned', number[]> = { partitioned: [], unpartitioned: [] };
  let pruning = '';
  let rows = 0;
  await withClient(url, async (c) => {
    const partitions = await leafPartitions(catalogSession(c), { schema: 'public', name: 'events' });
    // Warm both tables' pages into shared buffers / the OS cache first: the comparison is of work, not of disk.
    await c.query(monthSql('events'), params);
    await c.query(monthSql('events_unpartitioned'), params);
    for (let i = 0; i < RUNS; i += 1) {
      for (const table of i % 2 === 0 ? (['events', 'events_unpartitioned'] as const) : (['events_unpartitioned', 'events'] as const)) {
        const r = await c.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${monthSql(table)}`, params);
        const plan = r.rows[0]?.['QUERY PLAN'];
        const top = Array.isArray(plan) ? (plan[0] as Record<string, unknown>) : {};
        times[table === 'events' ? 'partitioned' : 'unpartitioned'].push(Number(top['Execution Time']));
        if (table === 'events') {
          pruning = formatPartitionPruning(partitionPruning(plan, partitions));
          const planNode = top['Plan'] as Record<string, unknown> | undefined;
          rows = Number(planNode?.['Actual Rows'] ?? 0);
        }
      }
    }
    const counted = await c.query<{ n: string }>(`SELECT count(*) AS n FROM public.events WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz`, params);
    rows = Number(counted.rows[0]?.n ?? rows);
  });
  const p = median(times.partitioned);
  const u = median(times.unpartitioned);
  return [
    `one-month aggregate over [${from.toISOString().slice(0, 10)}, ${to.toISOString().slice(0, 10)}): ${rows.toLocaleString('en-US')} of ${summary.rows.events.toLocaleString('en-US')} events`,
    `  SELECT kind, count(*) FROM <table> WHERE created_at >= $1 AND created_at < $2 GROUP BY kind`,
    `                            median (server execution time, ${RUNS} runs alternated)`,
    `  unpartitioned copy        ${fmt(u).padStart(8)}   1.00x`,
    `  events, monthly ranges    ${fmt(p).padStart(8)}   ${(u / p).toFixed(1)}x faster`,
    `  pruning: ${pruning}`,
  ];
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-partitions-'));
  let baseDir: string | null = null;
  try {
    let adminUrl = process.env['PGWARDEN_BENCH_URL'] ?? '';
    if (adminUrl === '') {
      baseDir = await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-cluster-'));
      await chmod(baseDir, 0o755);
      const urls = await clusterUp({
        baseDir,
        primaryPort: await freePort(),
        standbyPort: await freePort(),
        settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
        log: (line) => log(line),
      });
      adminUrl = urls.primaryUrl;
    }
    await withClient(adminUrl, async (c) => {
      await c.query('DROP DATABASE IF EXISTS pgwarden_bench_partitions WITH (FORCE)');
      await c.query('CREATE DATABASE pgwarden_bench_partitions');
    });
    const url = withDatabase(adminUrl, 'pgwarden_bench_partitions');
    const server = await withClient(url, async (c) => (await c.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]?.v ?? '?');
    const planLines = await planBench(url, scratch);
    const queryLines = await queryBench(url);
    const cpus = os.cpus();
    process.stdout.write(
      [
        '',
        `pgwarden partitions benchmark — medians of ${RUNS}, PostgreSQL ${server} (embedded, fsync off), ${cpus.length} cores, Node ${process.version}`,
        '',
        'plan time (makePlan on a fresh connection, daily partitions, one partitioned index):',
        ...planLines,
        '',
        ...queryLines,
        '',
      ].join('\n'),
    );
    await withClient(adminUrl, (c) => c.query('DROP DATABASE IF EXISTS pgwarden_bench_partitions WITH (FORCE)'));
  } finally {
    if (baseDir !== null) {
      await clusterDown({ baseDir, destroy: true }).catch((e: Error) => log(`stopping the cluster failed: ${e.message}`));
      await rm(baseDir, { recursive: true, force: true });
    }
    await rm(scratch, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
