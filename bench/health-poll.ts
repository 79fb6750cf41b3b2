/**
 * `npm run bench:health`: what the live page costs.
 *
 * In its own embedded cluster (primary + streaming standby, removed at the end):
 *
 *   poll       one health-collector poll (primary + standby) on the example database (small scale, the
 *              example workload running) and on a 5,000-table catalog (PK + 3 indexes each): median
 *              wall time, median database time (the collector's own statements as pg_stat_statements
 *              timed them) and the number of queries; beside it the baseline: the same totals read
 *              through the pg_stat_user_* / pg_statio_user_* views in one query, as many tools do.
 *   site       `astro build` of the report site with 1,000 history records, against 10 records.
 *   weight     the JavaScript the live page ships (raw and gzip), against the other pages (none).
 *
 * Options: --polls N (15), --tables N (5000), --builds N (3), --records N (1000).
 */
import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { connectSpec, createPoolFor } from '../engine/connection/open-connection.ts';
import { ensurePgwardenSchema } from '../engine/store/schema.ts';
import { clusterDown, clusterUp } from '../engine/cluster/embedded-cluster.ts';
import { createHealthCollector } from '../engine/live-health/health-collector.ts';
import { makePlan } from '../engine/plan/make-plan.ts';
import type { Plan } from '../engine/plan/plan.ts';
import { loadPolicies } from '../engine/policy/load.ts';
import { buildSite } from '../engine/serve/site-build.ts';
import { collectSiteData } from '../engine/serve/site-data.ts';
import { loadExample } from '../engine/example/load.ts';
import { runWorkload } from '../engine/example/workload.ts';
import { freePort, withDatabase } from '../engine/cluster/local-address.ts';

const { values: flags } = parseArgs({
  options: {
    polls: { type: 'string', default: '15' },
    tables: { type: 'string', default: '5000' },
    builds: { type: 'string', default: '3' },
    records: { type: 'string', default: '1000' },
  },
  strict: true,
});
const POLLS = Number(flags.polls);
const TABLES = Number(flags.tables);
const BUILDS = Number(flags.builds);
const RECORDS = Number(flags.records);

const log = (line: string): void => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};
const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
const kb = (n: number): string => `${(n / 1024).toFixed(1)} kB`;

async function sql(url: string, text: string, values?: unknown[]): Promise<pg.QueryResult> {
  const c = await connectSpec(url);
  try {
    return await c.query(text, values);
  } finally {
    await c.end();
  }
}

/** The same totals through the standard views: the baseline a poll is compared with. */
const VIEWS_BASELINE_SQL = `
SELECT (SELECT sum(seq_scan) FROM pg_stat_user_tables) AS seq_scan,
       (SELECT sum(idx_scan) FROM pg_stat_user_indexes) AS idx_scan,
       (SELECT sum(idx_blks_hit) FROM pg_statio_user_indexes) AS idx_hit,
       (SELECT sum(idx_blks_read) FROM pg_statio_user_indexes) AS idx_read,
       (SELECT sum(n_dead_tup) FROM pg_stat_user_tables) AS dead,
       (SELECT json_agg(t) FROM (SELECT relname, n_dead_tup FROM pg_stat_user_tables ORDER BY n_dead_tup DESC LIMIT 10) t) AS worst`;

interface PollFigures {
  readonly wallMs: number;
  readonly dbMs: number;
  readonly queries: number;
  readonly baselineMs: number;
}

async function measurePolls(url: string, standbyUrl: string): Promise<PollFigures> {
  const collector = createHealthCollector({ primaryUrl: url, standbys: [{ name: 'standby1', url: standbyUrl }], slowIntervalMs: 3_600_000 });
  const walls: number[] = [];
  const queries: number[] = [];
  const perQuery = new Map<string, number[]>();
  try {
    // The first poll connects, reads the settings and every statement text once, and starts the slow
    // cadence (once a minute in serve): none of that is what every later poll costs.
    await collector.pollOnce();
    await collector.slowSettled();
    await collector.pollOnce();
    await sql(url, 'SELECT public.pg_stat_statements_reset()');
    for (let i = 0; i < POLLS; i++) {
      await new Promise((r) => setTimeout(r, 300));
      const s = await collector.pollOnce();
      if (!s) throw new Error(`poll failed: ${collector.state().error}`);
      walls.push(s.poll.wallMs);
      queries.push(Object.keys(s.poll.queryMs).filter((k) => k !== 'statement-texts').length);
      for (const [k, v] of Object.entries(s.poll.queryMs)) perQuery.set(k, [...(perQuery.get(k) ?? []), v]);
    }
  } finally {
    await collector.stop();
  }
  const own = await sql(url, `SELECT sum(total_exec_time)::float8 AS ms FROM public.pg_stat_statements WHERE query LIKE '%pgwarden:health%'`);
  const dbMs = Number(own.rows[0]?.ms ?? 0) / POLLS;
  log(`round trips per query (median ms): ${[...perQuery].map(([k, v]) => `${k} ${median(v).toFixed(1)}`).join(', ')}`);
  const baseline: number[] = [];
  const c = await connectSpec(url);
  for (let i = 0; i < POLLS; i++) {
    const t0 = performance.now();
    await c.query(VIEWS_BASELINE_SQL);
    baseline.push(performance.now() - t0);
  }
  await c.end();
  return { wallMs: median(walls), dbMs, queries: median(queries), baselineMs: median(baseline) };
}

async function buildCatalog(url: string): Promise<void> {
  const perBatch = 250;
  for (let start = 0; start < TABLES; start += perBatch) {
    const end = Math.min(TABLES, start + perBatch) - 1;
    await sql(
      url,
      `DO $$ BEGIN FOR i IN ${start}..${end} LOOP
         EXECUTE format('CREATE TABLE t%s (id bigint PRIMARY KEY, tenant_id int NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), status text, kind text)', i);
         EXECUTE format('CREATE INDEX t%s_tenant_created_idx ON t%s (tenant_id, created_at DESC)', i, i);
         EXECUTE format('CREATE INDEX t%s_status_idx ON t%s (status)', i, i);
         EXECUTE format('CREATE INDEX t%s_kind_idx ON t%s (kind)', i, i);
       END LOOP; END $$`,
    );
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out;
}

async function buildTimes(url: string, records: number, outDir: string): Promise<number[]> {
  const c = await connectSpec(url);
  try {
    await c.query('TRUNCATE pgwarden.history');
    await c.query(
      `INSERT INTO pgwarden.history (kind, started_at, finished_at, duration_ms, outcome, actor, git_commit, git_branch, fingerprint, summary, plan)
       SELECT 'apply', now() - g * interval '1 hour', now() - g * interval '1 hour' + interval '3 seconds', 3000 + g,
              CASE WHEN g % 17 = 0 THEN 'failed' ELSE 'succeeded' END, 'ci@runner', md5(g::text) || md5(g::text), 'main', md5('f' || g),
              $1::jsonb, $2::jsonb
         FROM generate_series(1, $3::int) g`,
      [JSON.stringify(planTemplate?.summary ?? {}), JSON.stringify(planTemplate), records],
    );
    const times: number[] = [];
    for (let i = 0; i < BUILDS; i++) {
      const t0 = performance.now();
      const data = await collectSiteData(c, { mode: 'report', liveUrl: null, historyLimit: records + 10 });
      await buildSite({ data, outDir });
      times.push(performance.now() - t0);
      log(`site with ${records} records built in ${fmt(times[times.length - 1] ?? 0)}`);
    }
    return times;
  } finally {
    await c.end();
  }
}

/** A real plan of the example (its bundled policies, not yet applied): each synthetic record carries it. */
let planTemplate: Plan | null = null;

async function main(): Promise<void> {
  const baseDir = await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-health-'));
  await chmod(baseDir, 0o755);
  const out = await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-site-'));
  try {
    const urls = await clusterUp({ baseDir, primaryPort: await freePort(), standbyPort: await freePort(), settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } });
    await sql(urls.primaryUrl, 'CREATE DATABASE bench_example');
    await sql(urls.primaryUrl, 'CREATE DATABASE bench_catalog');
    const example = withDatabase(urls.primaryUrl, 'bench_example');
    const catalog = withDatabase(urls.primaryUrl, 'bench_catalog');
    for (const u of [example, catalog]) await sql(u, 'CREATE EXTENSION pg_stat_statements SCHEMA public');

    log('loading the example platform (small scale)');
    const c = await connectSpec(example);
    await loadExample(c, { scale: 'small' });
    const { desired } = await loadPolicies(path.join(import.meta.dirname, '..', 'policies'));
    const plan = await makePlan(c, desired, new Date());
    planTemplate = plan.ok ? plan.plan : null;
    await ensurePgwardenSchema(c);
    await c.end();

    log(`example database: ${POLLS} polls with the example workload running`);
    const pool = createPoolFor(example, { max: 4 });
    pool.on('error', () => undefined);
    const workload = runWorkload(pool, { durationMs: 60_000, ratePerSecond: 20, concurrency: 4 });
    const onExample = await measurePolls(example, withDatabase(urls.standbyUrl, 'bench_example'));
    await workload;
    await pool.end();

    log(`building the ${TABLES}-table catalog (${TABLES * 4} indexes)`);
    const t0 = performance.now();
    await buildCatalog(catalog);
    await sql(catalog, 'ANALYZE');
    log(`built in ${fmt(performance.now() - t0)}`);
    const onCatalog = await measurePolls(catalog, withDatabase(urls.standbyUrl, 'bench_catalog'));

    log(`site builds: ${BUILDS} with ${RECORDS} records, ${BUILDS} with 10`);
    const small = await buildTimes(example, 10, out);
    const large = await buildTimes(example, RECORDS, out);
    const files = await filesUnder(out);
    const js = files.filter((f) => f.endsWith('.js'));
    const css = files.filter((f) => f.endsWith('.css'));
    const size = async (list: string[]): Promise<{ raw: number; gz: number }> => {
      let raw = 0;
      let gz = 0;
      for (const f of list) {
        const b = await readFile(f);
        raw += b.length;
        gz += gzipSync(b, { level: 9 }).length;
      }
      return { raw, gz };
    };
    const jsSize = await size(js);
    const cssSize = await size(css);
    const liveHtml = (await stat(path.join(out, 'live', 'index.html'))).size;
    const historyHtml = (await stat(path.join(out, 'index.html'))).size;
    const pages = files.filter((f) => f.endsWith('.html')).length;

    const row = (label: string, a: string, b: string, ratio: string): string => `  ${label.padEnd(44)} ${a.padStart(12)} ${b.padStart(14)} ${ratio.padStart(8)}`;
    const lines = [
      `pgwarden health collector and site (PostgreSQL 16 embedded, ${os.cpus().length} cores, Node ${process.version})`,
      '',
      row('one poll (median of ' + POLLS + ')', 'pgwarden', 'views baseline', 'ratio'),
      row('example db: wall time (primary + standby)', fmt(onExample.wallMs), '', ''),
      row('example db: database time', fmt(onExample.dbMs), fmt(onExample.baselineMs), `${(onExample.baselineMs / Math.max(onExample.dbMs, 0.001)).toFixed(1)}x`),
      row('example db: queries per poll', String(onExample.queries), '1 (partial)', ''),
      row(`${TABLES} tables: wall time (primary + standby)`, fmt(onCatalog.wallMs), '', ''),
      row(`${TABLES} tables: database time`, fmt(onCatalog.dbMs), fmt(onCatalog.baselineMs), `${(onCatalog.baselineMs / Math.max(onCatalog.dbMs, 0.001)).toFixed(1)}x`),
      row(`${TABLES} tables: queries per poll`, String(onCatalog.queries), '1 (partial)', ''),
      '',
      row(`site build (median of ${BUILDS})`, `${RECORDS} records`, '10 records', 'ratio'),
      row('astro build, data included', fmt(median(large)), fmt(median(small)), `${(median(large) / median(small)).toFixed(2)}x`),
      row('pages written', String(pages), String(10 + 5), ''),
      '',
      row('page weight', 'live page', 'other pages', ''),
      row('JavaScript (raw / gzip)', `${kb(jsSize.raw)} / ${kb(jsSize.gz)}`, '0', ''),
      row('CSS (raw / gzip, shared)', `${kb(cssSize.raw)} / ${kb(cssSize.gz)}`, '', ''),
      row(`HTML (history page: ${RECORDS} rows)`, kb(liveHtml), kb(historyHtml), ''),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await clusterDown({ baseDir, destroy: true }).catch(() => undefined);
    await rm(baseDir, { recursive: true, force: true });
    await rm(out, { recursive: true, force: true });
  }
}

await main();
