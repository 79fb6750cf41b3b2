/**
 * `npm run bench:advisor`: the advisor against the example platform at demo scale (2.5M events).
 *
 * In its own embedded cluster (PostgreSQL 16, primary only is used): loads the example, runs the API's
 * workload `--runs` times (the "before" baseline: the tables have only their primary keys), then runs
 * `pgwarden advise --write` on a copy of the bundled policies without the indexes they declare for
 * that workload (so the advisor has to find them), `pgwarden apply` (CREATE INDEX CONCURRENTLY),
 * and the same workload `--runs` times again. Prints per query the median over the runs of each run's
 * p50 latency, before and after, and the speedup; plus how long `advise` itself took.
 *
 * Options: --runs N (3), --duration 10s (per run), --rate N (20 requests/s), --keep (reuse the cluster
 * and the loaded data in $TMPDIR/pgwarden-bench-advisor between runs).
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connectSpec, createPoolFor } from '../engine/connection/open-connection.ts';
import { run } from '../engine/cli/main.ts';
import { clusterDown, clusterUp } from '../engine/cluster/embedded-cluster.ts';
import { ident } from '../engine/sql/ident.ts';
import { loadExample } from '../engine/example/load.ts';
import { runWorkload, type WorkloadReport } from '../engine/example/workload.ts';
import { policiesWithout, WORKLOAD_INDEXES } from '../test/analysis/policy-fixture.ts';
import { freePort } from '../engine/cluster/local-address.ts';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10s' },
    rate: { type: 'string', default: '20' },
    keep: { type: 'boolean', default: false },
  },
  allowPositionals: false,
  strict: true,
});

const RUNS = Number(flags.runs);
const DURATION_MS = Number(/^(\d+)s$/.exec(flags.duration ?? '')?.[1] ?? Number.NaN) * 1000;
const RATE = Number(flags.rate);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be a positive integer, got ${flags.runs}`);
if (!(DURATION_MS > 0)) throw new Error(`--duration must be like 10s, got ${flags.duration}`);
if (!(RATE > 0)) throw new Error(`--rate must be positive, got ${flags.rate}`);
const KEEP = flags.keep === true;
const DATABASE = 'pgwarden_bench_advisor';

const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, cwd, isTTY: false, color: false });
  return { code, stdout, stderr };
}

async function workloadRuns(pool: pg.Pool, label: string): Promise<WorkloadReport[]> {
  const reports: WorkloadReport[] = [];
  for (let i = 1; i <= RUNS; i += 1) {
    reports.push(await runWorkload(pool, { durationMs: DURATION_MS, ratePerSecond: RATE, concurrency: 4, seed: i }));
    log(`${label} run ${i}/${RUNS}: ${reports.at(-1)?.count} requests`);
  }
  return reports;
}

function fmt(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '-';
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(2)} ms`;
}

async function main(): Promise<void> {
  const baseDir = KEEP ? path.join(os.tmpdir(), 'pgwarden-bench-advisor') : path.join(os.tmpdir(), `pgwarden-bench-advisor-${process.pid}`);
  await mkdir(baseDir, { recursive: true });
  await chmod(baseDir, 0o755);
  let project = '';
  const urls = await clusterUp({
    baseDir,
    primaryPort: await freePort(),
    standbyPort: await freePort(),
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
  });
  try {
    const admin = await connectSpec(urls.primaryUrl);
    await admin.query(`DROP DATABASE IF EXISTS ${ident(DATABASE)} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${ident(DATABASE)}`);
    await admin.end();
    const url = new URL(urls.primaryUrl);
    url.pathname = `/${DATABASE}`;
    const client = await connectSpec(url.toString());
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const loaded = await loadExample(client, { scale: 'demo', onProgress: (m) => log(m) });
    log(`loaded: ${Object.entries(loaded.rows).map(([t, n]) => `${t} ${n.toLocaleString('en-US')}`).join(', ')}`);
    await client.query('SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)');
    await client.end();

    const pool = createPoolFor(url.toString(), { max: 4 });
    const before = await workloadRuns(pool, 'before');

    project = await policiesWithout(WORKLOAD_INDEXES);
    const adviseMs: number[] = [];
    let advice = '';
    for (let i = 0; i < 3; i += 1) {
      const started = performance.now();
      const result = await cli(['advise', '--database-url', url.toString(), '--json'], project);
      adviseMs.push(performance.now() - started);
      if (result.code !== 0) throw new Error(`advise failed: ${result.stderr}`);
      advice = result.stdout;
    }
    const report = JSON.parse(advice) as { method: string; indexes: { name: string; sql: string; netMs: number }[] };
    const written = await cli(['advise', '--database-url', url.toString(), '--write'], project);
    if (written.code !== 0) throw new Error(`advise --write failed: ${written.stderr}`);
    const applyStarted = performance.now();
    const applied = await cli(['apply', '--auto-approve', '--database-url', url.toString()], project);
    if (applied.code !== 0) throw new Error(`apply failed: ${applied.stderr}`);
    const applyMs = performance.now() - applyStarted;
    const plan = await cli(['plan', '--database-url', url.toString()], project);
    log(`apply took ${(applyMs / 1000).toFixed(1)} s; plan again: ${plan.stdout.includes('No changes.') ? 'No changes.' : 'CHANGES REMAIN'}`);

    const after = await workloadRuns(pool, 'after');
    await pool.end();

    const out: string[] = [];
    out.push(`pgwarden advise on the example platform, demo scale (${loaded.rows.events.toLocaleString('en-US')} events), PostgreSQL 16 embedded, ${os.cpus().length} cores`);
    out.push(`workload: ${RUNS} runs of ${DURATION_MS / 1000} s at ${RATE} requests/s (concurrency 4) before and after; per query the median over the runs of each run's p50`);
    out.push(`advise (evidence: ${report.method}): median ${(median(adviseMs) / 1000).toFixed(2)} s over 3 runs; apply (CREATE INDEX CONCURRENTLY) ${(applyMs / 1000).toFixed(1)} s`);
    out.push('advised:');
    for (const index of report.indexes) out.push(`  ${index.sql}`);
    out.push('');
    out.push(`${'query'.padEnd(30)} ${'before p50'.padStart(11)} ${'after p50'.padStart(11)} ${'speedup'.padStart(9)}   before p95 -> after p95`);
    for (const q of before[0]?.queries ?? []) {
      const b = median(before.map((r) => r.queries.find((x) => x.name === q.name)?.p50Ms ?? Number.NaN));
      const a = median(after.map((r) => r.queries.find((x) => x.name === q.name)?.p50Ms ?? Number.NaN));
      const b95 = median(before.map((r) => r.queries.find((x) => x.name === q.name)?.p95Ms ?? Number.NaN));
      const a95 = median(after.map((r) => r.queries.find((x) => x.name === q.name)?.p95Ms ?? Number.NaN));
      const ratio = b / a;
      out.push(`${q.name.padEnd(30)} ${fmt(b).padStart(11)} ${fmt(a).padStart(11)} ${(Number.isFinite(ratio) ? `${ratio.toFixed(ratio >= 10 ? 0 : 1)}x` : '-').padStart(9)}   ${fmt(b95)} -> ${fmt(a95)}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    if (project) await rm(project, { recursive: true, force: true });
    await clusterDown({ baseDir, destroy: !KEEP }).catch((e: Error) => log(`stopping the cluster failed: ${e.message}`));
    if (!KEEP) await rm(baseDir, { recursive: true, force: true });
  }
}

await main();
