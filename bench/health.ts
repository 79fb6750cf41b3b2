/**
 * `node --import tsx bench/health.ts`: what `pgwarden health` and `pgwarden maintain` cost.
 *
 * In its own embedded cluster (throwaway, on free ports):
 *
 *   1. health of a database of 5,000 tables (one in ten holding rows, churned), a fresh connection per
 *      run as a CLI run has: pgwarden's constant-query read (scores + bloat estimates), the same with
 *      pgstattuple installed (exact figures within the default 10 s budget), and the baseline a
 *      per-table tool would run (the same figures, one table at a time: N+1 queries).
 *   2. maintain on the example platform's churned tables (scale `demo`): a busy day of updates on
 *      deployments, servers and incidents (autovacuum off on them, so nothing cleans up behind the
 *      bench's back), then `pgwarden maintain` with the bundled policies; health before and after and
 *      the time taken; against the baseline of a nightly `VACUUM ANALYZE` of the whole database.
 *
 * Options: --tables N (5000), --runs N (9), --baseline-runs N (3), --maintain-runs N (5),
 *          --scale small|demo (demo), --only health|maintain,
 *          --keep (reuse the cluster in $TMPDIR/pgwarden-bench-vacuum).
 */
import { access, chmod, mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connectSpec } from '../engine/connection/open-connection.ts';
import { loadExample } from '../engine/example/load.ts';
import { clusterDown, clusterUp } from '../engine/cluster/embedded-cluster.ts';
import { vacuumHealthReport, type VacuumHealthReport } from '../engine/vacuum-health/vacuum-health-report.ts';
import { planMaintenance, runMaintenance } from '../engine/maintain/maintain.ts';
import type { DesiredState } from '../engine/policy/desired.ts';
import { formatPolicyError } from '../engine/policy/desired.ts';
import { loadPolicies } from '../engine/policy/load.ts';
import { freePort, withDatabase } from '../engine/cluster/local-address.ts';

const { values: flags } = parseArgs({
  options: {
    tables: { type: 'string', default: '5000' },
    runs: { type: 'string', default: '9' },
    'baseline-runs': { type: 'string', default: '3' },
    'maintain-runs': { type: 'string', default: '5' },
    scale: { type: 'string', default: 'demo' },
    keep: { type: 'boolean', default: false },
    only: { type: 'string' },
  },
  allowPositionals: false,
  strict: true,
});

function positiveInt(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${String(text)}`);
  return n;
}

const TABLES = positiveInt('tables', flags.tables);
const RUNS = positiveInt('runs', flags.runs);
const BASELINE_RUNS = positiveInt('baseline-runs', flags['baseline-runs']);
const MAINTAIN_RUNS = positiveInt('maintain-runs', flags['maintain-runs']);
const SCALE = flags.scale === 'small' ? 'small' : 'demo';
const KEEP = flags.keep === true;
if (flags.only !== undefined && flags.only !== 'health' && flags.only !== 'maintain') throw new Error(`--only must be health or maintain, got ${flags.only}`);
const ONLY = flags.only;
const POLICIES = fileURLToPath(new URL('../policies', import.meta.url));
/** The example tables a busy day churns. */
const CHURNED = ['deployments', 'servers', 'incidents'] as const;

const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectSpec(url);
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function databaseExists(adminUrl: string, name: string): Promise<boolean> {
  return withClient(adminUrl, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

const count = (n: number): string => Math.round(n).toLocaleString('en-US');

// ---------------------------------------------------------------------------------------------------
// 1. Health of 5,000 tables

/**
 * Tables t0000..: a primary key and a secondary index each; one in ten holds 200 rows (one in fifty
 * 4,000, large enough for pgstattuple to measure), half of them updated afterwards.
 */
async function buildTables(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`CREATE SCHEMA IF NOT EXISTS bench`);
    // In batches: one transaction creating thousands of tables runs out of lock table (max_locks_per_transaction).
    for (let from = 0; from < TABLES; from += 500) {
      await c.query(`
        DO $$
        BEGIN
          FOR i IN ${from}..${Math.min(TABLES, from + 500) - 1} LOOP
            EXECUTE format('CREATE TABLE bench.t%s (id bigint PRIMARY KEY, tenant_id int NOT NULL, status text NOT NULL, payload text, created_at timestamptz NOT NULL DEFAULT now())', lpad(i::text, 4, '0'));
            EXECUTE format('CREATE INDEX ON bench.t%s (tenant_id, created_at)', lpad(i::text, 4, '0'));
            IF i % 10 = 0 THEN
              EXECUTE format('INSERT INTO bench.t%s (id, tenant_id, status, payload) SELECT g, g %% 7, ''new'', repeat(''x'', 60) FROM generate_series(1, %s) g',
                             lpad(i::text, 4, '0'), CASE WHEN i % 50 = 0 THEN 4000 ELSE 200 END);
            END IF;
          END LOOP;
        END $$`);
    }
    await c.query('SELECT pg_stat_force_next_flush()');
    await c.query('ANALYZE');
    for (let from = 0; from < TABLES; from += 500) {
      await c.query(`
        DO $$
        BEGIN
          FOR i IN ${from}..${Math.min(TABLES, from + 500) - 1} BY 10 LOOP
            EXECUTE format('UPDATE bench.t%s SET status = ''done'' WHERE id %% 2 = 0', lpad(i::text, 4, '0'));
          END LOOP;
        END $$`);
    }
    await c.query('SELECT pg_stat_force_next_flush()');
    await c.query('CREATE TABLE bench.built (at timestamptz DEFAULT now())');
    await c.query('INSERT INTO bench.built DEFAULT VALUES');
  });
}

interface HealthSeries {
  readonly label: string;
  readonly queries: number;
  readonly samples: number[];
  readonly note?: string;
}

/**
 * The same figures the way a per-table tool asks for them: each table's counters from
 * pg_stat_user_tables, then its column widths from pg_stats (for the bloat estimate), by name.
 */
async function perTableBaseline(c: pg.Client): Promise<number> {
  const tables = (await c.query<{ oid: string; schema: string; name: string }>(
    `SELECT c.oid::int8::text AS oid, n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'bench' AND c.relkind = 'r'`,
  )).rows;
  let queries = 1;
  for (const t of tables) {
    await c.query(
      `SELECT n_live_tup, n_dead_tup, n_mod_since_analyze, last_vacuum, last_autovacuum, last_analyze, last_autoanalyze,
              age(c.relfrozenxid) AS xid_age, pg_relation_size(c.oid) AS bytes, c.reltuples, c.reloptions
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relid = $1::oid`,
      [t.oid],
    );
    await c.query(`SELECT attname, null_frac, avg_width FROM pg_stats WHERE schemaname = $1 AND tablename = $2`, [t.schema, t.name]);
    queries += 2;
  }
  return queries;
}

async function healthBench(url: string): Promise<HealthSeries[]> {
  const series: HealthSeries[] = [];
  let tables = 0;
  const measure = async (label: string, runs: number, fn: (c: pg.Client) => Promise<number>, note?: string): Promise<void> => {
    const samples: number[] = [];
    let queries = 0;
    for (let i = 0; i < runs; i += 1) {
      // A fresh connection per run, as a CLI invocation has (its catalog caches start cold).
      const t0 = performance.now();
      queries = await withClient(url, fn);
      samples.push(performance.now() - t0);
    }
    log(`${label}: median ${fmtMs(median(samples))} (${samples.map(fmtMs).join(', ')})`);
    series.push({ label, queries, samples, ...(note === undefined ? {} : { note }) });
  };
  await measure('pgwarden health (scores + bloat estimates)', RUNS, async (c) => {
    const report: VacuumHealthReport = await vacuumHealthReport(c, undefined, { exact: false });
    tables = report.tables.length;
    return report.queries;
  });
  await withClient(url, (c) => c.query('CREATE EXTENSION IF NOT EXISTS pgstattuple'));
  let exactNote = '';
  await measure(
    'pgwarden health, pgstattuple installed (exact)',
    RUNS,
    async (c) => {
      const report = await vacuumHealthReport(c, undefined);
      exactNote = `${count(report.bloat.tablesMeasured)} tables + ${count(report.bloat.indexesMeasured)} indexes measured exactly`;
      return report.queries;
    },
  );
  const last = series.at(-1);
  if (last) series[series.length - 1] = { ...last, note: exactNote };
  await withClient(url, (c) => c.query('DROP EXTENSION pgstattuple'));
  await measure('baseline: one table at a time (N+1)', BASELINE_RUNS, perTableBaseline);
  log(`health read ${count(tables)} tables`);
  return series;
}

// ---------------------------------------------------------------------------------------------------
// 2. maintain on the example's churned tables

interface MaintainSample {
  readonly ms: number;
  readonly tables: number;
  readonly worstBefore: number;
  readonly worstAfter: number;
  readonly deadBefore: number;
  readonly deadAfter: number;
}

/** A busy day on the platform: most deployments change status twice, servers report in, incidents resolve. */
async function churn(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`UPDATE public.deployments SET status = 'running', updated_at = now() WHERE id % 10 < 3`);
    await c.query(`UPDATE public.deployments SET status = 'succeeded', finished_at = now(), updated_at = now() WHERE id % 10 < 2`);
    await c.query(`UPDATE public.servers SET last_seen_at = now(), updated_at = now() WHERE id % 4 = 0`);
    await c.query(`UPDATE public.incidents SET status = 'resolved', resolved_at = now() WHERE id % 5 = 0`);
    await c.query('SELECT pg_stat_force_next_flush()');
  });
  // The churning session's counters are flushed once it is idle; wait until they show.
  await withClient(url, async (c) => {
    for (let i = 0; i < 100; i += 1) {
      const r = await c.query<{ dead: number }>(`SELECT pg_stat_get_dead_tuples('public.deployments'::regclass)::float8 AS dead`);
      if ((r.rows[0]?.dead ?? 0) > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
}

async function churnedFigures(url: string, desired: DesiredState): Promise<{ worst: number; dead: number; tables: VacuumHealthReport['tables'] }> {
  const report = await withClient(url, (c) => vacuumHealthReport(c, desired, { exact: false }));
  const churned = report.tables.filter((t) => t.schema === 'public' && (CHURNED as readonly string[]).includes(t.name));
  return { worst: Math.min(...churned.map((t) => t.health)), dead: churned.reduce((sum, t) => sum + t.deadTuples, 0), tables: churned };
}

async function maintainBench(url: string, desired: DesiredState): Promise<{ maintain: MaintainSample[]; baseline: MaintainSample[]; due: string }> {
  const maintain: MaintainSample[] = [];
  const baseline: MaintainSample[] = [];
  let due = '';
  for (let i = 0; i < MAINTAIN_RUNS; i += 1) {
    await churn(url);
    const before = await churnedFigures(url, desired);
    const t0 = performance.now();
    const plan = await withClient(url, (c) => planMaintenance(c, desired, new Date()));
    const result = await runMaintenance(plan, { databaseUrl: url, parallel: 1, lockTimeoutMs: 5000 });
    const ms = performance.now() - t0;
    if (result.outcome !== 'succeeded') throw new Error(`maintain ${result.outcome}`);
    due = result.results.map((r) => `${r.task.name} (${r.task.action})`).join(', ');
    const after = await churnedFigures(url, desired);
    maintain.push({ ms, tables: result.results.length, worstBefore: before.worst, worstAfter: after.worst, deadBefore: before.dead, deadAfter: after.dead });
    log(`maintain run ${i + 1}: ${result.results.length} tables in ${fmtMs(ms)}, worst health ${before.worst.toFixed(2)} -> ${after.worst.toFixed(2)}`);

    await churn(url);
    const b = await churnedFigures(url, desired);
    const t1 = performance.now();
    await withClient(url, (c) => c.query('VACUUM ANALYZE'));
    const bms = performance.now() - t1;
    const a = await churnedFigures(url, desired);
    const tables = await withClient(url, async (c) => Number((await c.query(`SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`)).rows[0]?.n));
    baseline.push({ ms: bms, tables, worstBefore: b.worst, worstAfter: a.worst, deadBefore: b.dead, deadAfter: a.dead });
    log(`VACUUM ANALYZE run ${i + 1}: ${fmtMs(bms)}, worst health ${b.worst.toFixed(2)} -> ${a.worst.toFixed(2)}`);
  }
  return { maintain, baseline, due };
}

// ---------------------------------------------------------------------------------------------------

async function main(cleanup: { run: () => Promise<void> }): Promise<void> {
  const baseDir = KEEP ? path.join(os.tmpdir(), 'pgwarden-bench-vacuum') : await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-vacuum-'));
  await mkdir(baseDir, { recursive: true });
  await chmod(baseDir, 0o755);
  cleanup.run = async () => {
    await clusterDown({ baseDir, destroy: !KEEP }).catch((e: Error) => log(`stopping the cluster failed: ${e.message}`));
  };
  const kept = KEEP && (await access(path.join(baseDir, 'cluster.json')).then(() => true, () => false));
  const urls = await clusterUp({
    baseDir,
    ...(kept ? {} : { primaryPort: await freePort(), standbyPort: await freePort() }),
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
    log,
  });
  const admin = urls.primaryUrl;
  const version = await withClient(admin, async (c) => (await c.query<{ v: string }>('SELECT current_setting($$server_version$$) AS v')).rows[0]?.v ?? '?');

  const out: string[] = [];
  if (ONLY !== 'maintain') out.push(...(await healthSection(admin, version)));
  if (ONLY === undefined) out.push('');
  if (ONLY !== 'health') out.push(...(await maintainSection(admin)));
  process.stdout.write(`${out.join('\n')}\n`);
}

async function healthSection(admin: string, version: string): Promise<string[]> {
  const manyUrl = withDatabase(admin, 'bench_health');
  if (!(await databaseExists(admin, 'bench_health'))) {
    await withClient(admin, (c) => c.query('CREATE DATABASE bench_health'));
    log(`building ${count(TABLES)} tables`);
    const t0 = performance.now();
    await buildTables(manyUrl);
    log(`built in ${fmtMs(performance.now() - t0)}`);
  }
  const health = await healthBench(manyUrl);
  const base = health.find((s) => s.label.startsWith('baseline'));
  const baseMedian = base ? median(base.samples) : 0;
  const out: string[] = [];
  out.push(`pgwarden health: ${count(TABLES)} tables (${count(TABLES / 10)} with rows, ${count(TABLES / 50)} of them over 128 kB), PostgreSQL ${version}, fresh connection per run`);
  out.push('');
  out.push(`  ${'method'.padEnd(48)} ${'queries'.padStart(8)} ${'runs'.padStart(5)} ${'median'.padStart(9)} ${'vs baseline'.padStart(12)}`);
  for (const s of health) {
    const m = median(s.samples);
    const ratio = s === base ? '1.0x' : `${(baseMedian / m).toFixed(1)}x faster`;
    out.push(`  ${s.label.padEnd(48)} ${count(s.queries).padStart(8)} ${String(s.samples.length).padStart(5)} ${fmtMs(m).padStart(9)} ${ratio.padStart(12)}${s.note ? `  (${s.note})` : ''}`);
  }
  return out;
}

async function maintainSection(admin: string): Promise<string[]> {
  const exampleUrl = withDatabase(admin, 'bench_example');
  if (!(await databaseExists(admin, 'bench_example'))) {
    await withClient(admin, (c) => c.query('CREATE DATABASE bench_example'));
    log(`loading the example at ${SCALE} scale`);
    await withClient(exampleUrl, (c) => loadExample(c, { scale: SCALE, seed: 1, onProgress: (m) => log(m) }));
  }
  // Nothing cleans up behind the bench's back: maintain (or the baseline) is the only vacuum these tables get.
  await withClient(exampleUrl, async (c) => {
    for (const t of CHURNED) await c.query(`ALTER TABLE public.${t} SET (autovacuum_enabled = false)`);
    await c.query('VACUUM ANALYZE');
  });
  const loaded = await loadPolicies(POLICIES);
  if (loaded.errors.length > 0) throw new Error(loaded.errors.map(formatPolicyError).join('; '));
  const sizes = await withClient(exampleUrl, async (c) =>
    (await c.query<{ name: string; rows: number }>(`SELECT relname AS name, reltuples::float8 AS rows FROM pg_class WHERE relname = ANY ($1) AND relkind = 'r' ORDER BY relname`, [[...CHURNED]])).rows,
  );
  const maintained = await maintainBench(exampleUrl, loaded.desired);
  const out: string[] = [];
  const rows = sizes.map((s) => `${s.name} ~${count(s.rows)}`).join(', ');
  out.push(`pgwarden maintain on the example's churned tables (${SCALE} scale: ${rows}), medians of ${MAINTAIN_RUNS} churn-and-clean runs`);
  out.push(`  due each run: ${maintained.due}`);
  out.push('');
  out.push(`  ${'method'.padEnd(40)} ${'tables'.padStart(6)} ${'worst health'.padStart(14)} ${'dead tuples'.padStart(18)} ${'time'.padStart(9)} ${'vs baseline'.padStart(12)}`);
  const line = (label: string, samples: readonly MaintainSample[], ratio: string): string => {
    const pick = (f: (s: MaintainSample) => number): number => median(samples.map(f));
    const health = `${pick((s) => s.worstBefore).toFixed(2)} -> ${pick((s) => s.worstAfter).toFixed(2)}`;
    const dead = `${count(pick((s) => s.deadBefore))} -> ${count(pick((s) => s.deadAfter))}`;
    return `  ${label.padEnd(40)} ${String(pick((s) => s.tables)).padStart(6)} ${health.padStart(14)} ${dead.padStart(18)} ${fmtMs(pick((s) => s.ms)).padStart(9)} ${ratio.padStart(12)}`;
  };
  const mMs = median(maintained.maintain.map((s) => s.ms));
  const bMs = median(maintained.baseline.map((s) => s.ms));
  out.push(line('pgwarden maintain (plan + VACUUM due)', maintained.maintain, `${(bMs / mMs).toFixed(1)}x faster`));
  out.push(line('baseline: VACUUM ANALYZE (whole database)', maintained.baseline, '1.0x'));
  return out;
}

const cleanup = { run: async (): Promise<void> => undefined };
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${signal}: stopping the cluster`);
    void cleanup.run().finally(() => process.exit(130));
  });
}
try {
  await main(cleanup);
} catch (error) {
  log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanup.run();
}
