/**
 * `npm run bench:convert`: what converting a plain table into a partitioned one online costs.
 *
 * In its own embedded primary + streaming standby (or PGWARDEN_BENCH_URL's server, without a standby):
 *
 *   1. the example's `events` at demo scale (2.5M rows, `loadExample`), copied into a plain table
 *      `bench.events` (same columns, primary key, foreign key), four times over for `--rows 10m`;
 *   2. the floor: a plain `INSERT INTO <partitioned> SELECT * FROM bench.events` into a table of the
 *      same shape the conversion builds (the same partitions, keys and declared indexes);
 *   3. a writer (single-row INSERTs and UPDATEs, paced) for `--baseline` seconds before the conversion,
 *      then during the whole `apply` of policies/events.yaml's declarations on `bench.events`;
 *   4. the conversion: wall time (plan included) against the floor, the writer's p50/p99/max during vs
 *      before, the swap's lock time, and the standby's replay lag sampled every 100 ms during it.
 *
 * Options: --rows 2.5m|10m (2.5m), --baseline SECONDS (15), --rate STATEMENTS_PER_SECOND (200).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connectSpec } from '../engine/connection/open-connection.ts';
import { loadExample } from '../engine/example/load.ts';
import { apply, type ApplyEvent } from '../engine/apply/apply.ts';
import { clusterDown, clusterUp } from '../engine/cluster/embedded-cluster.ts';
import { freePort, withDatabase } from '../engine/cluster/local-address.ts';
import { makePlan } from '../engine/plan/make-plan.ts';
import type { DesiredState, DesiredTable } from '../engine/policy/desired.ts';
import { loadPolicies } from '../engine/policy/load.ts';
import { createIndexSql } from '../engine/sql/ddl.ts';
import { ident, literal, qualified } from '../engine/sql/ident.ts';
import type { ConvertTable } from '../engine/diff/convert-change.ts';

const { values: flags } = parseArgs({
  options: {
    rows: { type: 'string', default: '2.5m' },
    baseline: { type: 'string', default: '15' },
    rate: { type: 'string', default: '200' },
  },
  strict: true,
});
const COPIES = flags.rows === '10m' ? 4 : 1;
if (!['2.5m', '10m'].includes(flags.rows)) throw new Error('--rows is 2.5m or 10m');
const BASELINE_S = Number(flags.baseline);
const RATE = Number(flags.rate);

const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const ms = (v: number): string => (v >= 100 ? `${Math.round(v)} ms` : `${v.toFixed(1)} ms`);
const s = (v: number): string => `${(v / 1000).toFixed(1)} s`;

async function connect(url: string, name = 'pgwarden bench'): Promise<pg.Client> {
  const client = await connectSpec(url, { application_name: name });
  client.on('error', () => undefined);
  return client;
}

/** The plain table: the example's events, as they would be before anyone partitioned them. */
async function plainEvents(url: string): Promise<number> {
  const c = await connect(url);
  try {
    await c.query(`DROP SCHEMA IF EXISTS bench CASCADE; DROP SCHEMA IF EXISTS floor CASCADE; CREATE SCHEMA bench; CREATE SCHEMA floor`);
    await c.query(`CREATE TABLE bench.events (LIKE public.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
    await c.query(`CREATE SEQUENCE bench.events_id_seq OWNED BY bench.events.id`);
    await c.query(`ALTER TABLE bench.events ALTER COLUMN id SET DEFAULT nextval('bench.events_id_seq')`);
    for (let copy = 0; copy < COPIES; copy += 1) {
      // Later copies: ids shifted past the first's, so the key stays unique.
      log(`  copying the example's events into bench.events (${copy + 1}/${COPIES})`);
      await c.query(`INSERT INTO bench.events SELECT id + ${copy} * 100000000, tenant_id, server_id, kind, status, created_at, payload FROM public.events`);
    }
    log('  primary key, foreign key, VACUUM ANALYZE');
    await c.query(`ALTER TABLE bench.events ADD CONSTRAINT events_pkey PRIMARY KEY (id, created_at)`);
    await c.query(`ALTER TABLE bench.events ADD CONSTRAINT events_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES public.tenants (id)`);
    await c.query(`SELECT setval('bench.events_id_seq', (SELECT max(id) FROM bench.events))`);
    await c.query(`VACUUM ANALYZE bench.events`);
    const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM bench.events`);
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await c.end();
  }
}

/** policies/events.yaml's declarations, on bench.events. */
async function benchPolicies(): Promise<DesiredState> {
  const { desired, errors } = await loadPolicies(path.join(process.cwd(), 'policies'));
  if (errors.length > 0) throw new Error(errors[0]?.message);
  const events = desired.tables.find((t) => t.name === 'events')!;
  const retarget = (t: DesiredTable): DesiredTable => ({ ...t, schema: 'bench', indexes: t.indexes.map((i) => ({ ...i, schema: 'bench' })) });
  // Retention off: the conversion keeps every month it copies (the example's year is within it anyway).
  const partitioning = { ...events.partitioning!, retention: undefined };
  return { tables: [{ ...retarget(events), partitioning }], files: desired.files };
}

/** The conversion's change as plan makes it: its shape is what the floor is built with. */
async function convertChange(url: string, desired: DesiredState): Promise<ConvertTable> {
  const c = await connect(url);
  try {
    const outcome = await makePlan(c, desired, new Date());
    if (!outcome.ok) throw new Error(outcome.errors.map((e) => e.message).join('; '));
    const change = outcome.plan.changes.find((x) => x.change.kind === 'convert-table')?.change;
    if (change?.kind !== 'convert-table') throw new Error('the plan has no convert change');
    return change;
  } finally {
    await c.end();
  }
}

/** The floor: the same partitioned shape in schema `floor`, filled by one INSERT ... SELECT. */
async function floorMs(url: string, change: ConvertTable): Promise<number> {
  const c = await connect(url);
  try {
    const t = qualified('floor', 'events');
    const statements = [
      `CREATE TABLE ${t} (LIKE bench.events INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (${ident(change.keyColumn)})`,
      `ALTER TABLE ${t} ADD CONSTRAINT events_pkey ${change.primaryKey.definition}`,
      ...change.partitions.map((p) => `CREATE TABLE ${qualified('floor', p.name)} PARTITION OF ${t} FOR VALUES FROM (${literal(p.from)}) TO (${literal(p.to)})`),
      ...(change.defaultPartition ? [`CREATE TABLE ${qualified('floor', change.defaultPartition)} PARTITION OF ${t} DEFAULT`] : []),
      ...change.indexes.map((i) => createIndexSql(i.index, { schema: 'floor', table: 'events', name: i.index.name })),
      ...change.foreignKeys.map((f) => `ALTER TABLE ${t} ADD CONSTRAINT ${ident(f.name)} ${f.definition}`),
    ];
    await c.query(statements.join(';\n'));
    const t0 = performance.now();
    await c.query(`INSERT INTO ${t} SELECT * FROM bench.events`);
    return performance.now() - t0;
  } finally {
    await c.end();
  }
}

/** Paced single-row writes to bench.events (the name follows the table through the swap). */
function startWriter(url: string) {
  const latencies: { at: number; ms: number }[] = [];
  let stop = false;
  let errors = 0;
  const run = async (): Promise<void> => {
    const c = await connect(url, 'bench writer');
    const [range] = (await c.query<{ lo: string; hi: string }>(`SELECT min(id)::text AS lo, max(id)::text AS hi FROM bench.events`)).rows;
    const lo = Number(range?.lo ?? 1);
    const hi = Number(range?.hi ?? 1);
    let i = 0;
    const interval = 1000 / RATE;
    let next = performance.now();
    while (!stop) {
      i += 1;
      const t0 = performance.now();
      try {
        if (i % 2 === 0) {
          await c.query(`INSERT INTO bench.events (tenant_id, server_id, kind, status, created_at) VALUES ($1, $2, 'bench', 'pending', now())`, [1 + (i % 500), 1 + (i % 5000)]);
        } else {
          const id = lo + Math.floor(Math.random() * (hi - lo));
          await c.query(`UPDATE bench.events SET status = 'processed' WHERE id = $1`, [id]);
        }
        latencies.push({ at: Date.now(), ms: performance.now() - t0 });
      } catch {
        errors += 1;
      }
      next += interval;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = performance.now();
    }
    await c.end();
  };
  const done = run();
  return {
    between: (from: number, to: number): number[] => latencies.filter((l) => l.at >= from && l.at <= to).map((l) => l.ms),
    errors: (): number => errors,
    async stop(): Promise<void> {
      stop = true;
      await done;
    },
  };
}

/** The standby's replay lag, sampled on the primary every 100 ms. */
function startLagSampler(url: string) {
  const samples: number[] = [];
  let stop = false;
  const run = async (): Promise<void> => {
    const c = await connect(url, 'bench lag');
    while (!stop) {
      const r = await c.query<{ lag: number | null }>(`SELECT max(EXTRACT(epoch FROM replay_lag) * 1000)::float8 AS lag FROM pg_stat_replication`);
      samples.push(r.rows[0]?.lag ?? 0);
      await new Promise((res) => setTimeout(res, 100));
    }
    await c.end();
  };
  const done = run();
  return {
    samples,
    async stop(): Promise<void> {
      stop = true;
      await done;
    },
  };
}

async function main(): Promise<void> {
  let baseDir: string | null = null;
  try {
    let adminUrl = process.env['PGWARDEN_BENCH_URL'] ?? '';
    if (adminUrl === '') {
      baseDir = await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-convert-'));
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
    const admin = await connect(adminUrl);
    await admin.query('DROP DATABASE IF EXISTS pgwarden_bench_convert WITH (FORCE)');
    await admin.query('CREATE DATABASE pgwarden_bench_convert');
    await admin.end();
    const url = withDatabase(adminUrl, 'pgwarden_bench_convert');
    log('loading the example at demo scale');
    const setup = await connect(url);
    await loadExample(setup, { scale: 'demo', onProgress: (m) => log(`  ${m}`) });
    const server = (await setup.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]?.v ?? '?';
    await setup.end();
    const rows = await plainEvents(url);
    const desired = await benchPolicies();
    const change = await convertChange(url, desired);
    log(`the floor: INSERT INTO a partitioned table of the same shape SELECT * FROM bench.events (${rows.toLocaleString('en-US')} rows)`);
    const floor = await floorMs(url, change);
    const cleanup = await connect(url);
    await cleanup.query('DROP SCHEMA floor CASCADE; CHECKPOINT');
    await cleanup.end();

    const writer = startWriter(url);
    log(`writer alone for ${BASELINE_S} s`);
    const baselineFrom = Date.now();
    await new Promise((r) => setTimeout(r, BASELINE_S * 1000));
    const baselineTo = Date.now();
    log('converting bench.events online');
    const lag = startLagSampler(url);
    let swapLockMs = NaN;
    let copyLine = '';
    let verifyLine = '';
    const events: ApplyEvent[] = [];
    const t0 = performance.now();
    const convertFrom = Date.now();
    await apply({
      databaseUrl: url,
      desired,
      allowDrop: false,
      lockTimeoutMs: 5000,
      buildTimeoutMs: 0,
      retries: 5,
      backoffMs: 500,
      now: () => new Date(),
      who: { actor: 'bench', gitCommit: null, gitBranch: null },
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'notice') {
          log(`  ${e.message}`);
          const held = /ACCESS EXCLUSIVE held (\d+) ms/.exec(e.message);
          if (held) swapLockMs = Number(held[1]);
          if (e.message.startsWith('copied ')) copyLine = e.message;
          if (e.message.startsWith('verified: ')) verifyLine = e.message;
        }
      },
    });
    const wall = performance.now() - t0;
    const convertTo = Date.now();
    await lag.stop();
    await writer.stop();
    const before = writer.between(baselineFrom, baselineTo);
    const during = writer.between(convertFrom, convertTo);
    const lines = [
      '',
      `pgwarden conversion benchmark — one run, PostgreSQL ${server} (embedded, fsync off) with a streaming standby, ${os.cpus().length} cores, Node ${process.version}`,
      `bench.events: ${rows.toLocaleString('en-US')} rows (the example's events${COPIES > 1 ? `, ${COPIES} times over` : ''}), ${change.partitions.length} monthly partitions + default, ${change.indexes.length} declared indexes, a foreign key`,
      '',
      `                                                      time      vs the floor`,
      `floor: INSERT INTO partitioned SELECT * FROM plain   ${s(floor).padStart(8)}   1.00x`,
      `online conversion (apply, plan included)             ${s(wall).padStart(8)}   ${(wall / floor).toFixed(2)}x`,
      `  ${copyLine}`,
      `  ${verifyLine}`,
      `swap: ACCESS EXCLUSIVE held ${swapLockMs} ms`,
      '',
      `writer (${RATE}/s, single-row INSERT or UPDATE)   p50        p99        max      statements`,
      `  before (${BASELINE_S} s alone)                 ${ms(percentile(before, 50)).padStart(8)}   ${ms(percentile(before, 99)).padStart(8)}   ${ms(Math.max(...before)).padStart(8)}   ${before.length}`,
      `  during the conversion                ${ms(percentile(during, 50)).padStart(8)}   ${ms(percentile(during, 99)).padStart(8)}   ${ms(Math.max(...during)).padStart(8)}   ${during.length}`,
      `  p99 during / before: ${(percentile(during, 99) / percentile(before, 99)).toFixed(2)}x; failed statements: ${writer.errors()}`,
      '',
      lag.samples.length > 0
        ? `standby replay lag during the conversion (every 100 ms): p50 ${ms(percentile(lag.samples, 50))}, p99 ${ms(percentile(lag.samples, 99))}, max ${ms(Math.max(...lag.samples))}`
        : 'no standby',
      '',
    ];
    process.stdout.write(lines.join('\n'));
    const done = await connect(adminUrl);
    await done.query('DROP DATABASE IF EXISTS pgwarden_bench_convert WITH (FORCE)');
    await done.end();
  } finally {
    if (baseDir !== null) {
      await clusterDown({ baseDir, destroy: true }).catch((e: Error) => log(`stopping the cluster failed: ${e.message}`));
      await rm(baseDir, { recursive: true, force: true });
    }
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
