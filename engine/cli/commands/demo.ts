import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runWorkload } from '../../example/workload.ts';
import { formatWorkloadReport, type WorkloadReport } from '../../example/workload-report.ts';
import { apply, APPLY_DEFAULTS } from '../../apply/apply.ts';
import { clusterUp, ClusterError, defaultBaseDir } from '../../cluster/embedded-cluster.ts';
import { makePlan } from '../../plan/make-plan.ts';
import { loadPolicies } from '../../policy/load.ts';
import { renderPlanText, renderPolicyErrors } from '../../render/render-text.ts';
import { CliError, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';
import { parseDuration } from '../duration.ts';
import { progressPrinter } from '../progress-printer.ts';
import { convertDemo, isConversion, partitionDemo } from './demo-partitions.ts';
import { vacuumDemo } from './demo-vacuum.ts';
import { routingDemo } from './demo-routing.ts';
import { liveDemo } from './demo-live.ts';
import { adviseDemo } from './demo-advise.ts';
import { serveCommand } from './serve.ts';
import { ensureExampleDatabase } from '../../cluster/example-database.ts';
import { withDatabase } from '../../cluster/local-address.ts';
import { settingsOf } from '../../connection/connection-settings.ts';
import { connect, createPool } from '../../connection/open-connection.ts';

/** The repository's own example policies: the demo runs them wherever it is started from. */
const EXAMPLE_POLICIES = fileURLToPath(new URL('../../../policies', import.meta.url));
const DEMO_DATABASE = 'pgwarden_demo';

interface Demo {
  readonly io: Io;
  readonly pause: boolean;
  step: number;
}

async function heading(demo: Demo, title: string): Promise<void> {
  if (demo.io.signal?.aborted) throw new CliError('demo stopped; run `npm start` again to resume where it left off');
  demo.step += 1;
  demo.io.stdout(`\n== ${demo.step}. ${title} ${'='.repeat(Math.max(0, 70 - title.length))}\n\n`);
}

async function pauseHere(demo: Demo): Promise<void> {
  if (!demo.pause || !demo.io.prompt) return;
  await demo.io.prompt('\n[Enter] to continue, Ctrl-C to stop (re-running resumes) ').catch((error: unknown) => {
    if (demo.io.signal?.aborted) throw new CliError('demo stopped; run `npm start` again to resume where it left off');
    throw error;
  });
}

interface SlowStatement {
  query: string;
  calls: string;
  mean_ms: number;
  share: number;
}

async function slowestStatements(client: pg.Client): Promise<SlowStatement[]> {
  const r = await client.query<SlowStatement>(
    `SELECT pg_catalog.regexp_replace(s.query, '\\s+', ' ', 'g') AS query, s.calls::text AS calls,
            s.mean_exec_time::float8 AS mean_ms,
            (100 * s.total_exec_time / NULLIF(SUM(s.total_exec_time) OVER (), 0))::float8 AS share
       FROM public.pg_stat_statements s
      WHERE s.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
        AND s.query ~* '^\\s*(select|insert|update|with)' AND s.query !~ 'pg_catalog'
      ORDER BY s.total_exec_time DESC LIMIT 5`,
  );
  return r.rows;
}

function formatSlow(rows: readonly SlowStatement[]): string {
  const lines = rows.map((r) => `  ${r.share.toFixed(0).padStart(3)}%  ${r.mean_ms.toFixed(1).padStart(9)} ms  ${r.calls.padStart(6)}x  ${r.query.slice(0, 90)}`);
  return `  share   mean time   calls  statement\n${lines.join('\n')}\n`;
}

function formatSpeedup(before: WorkloadReport, after: WorkloadReport): string {
  const rows = before.queries
    .filter((q) => q.access === 'read')
    .map((q) => {
      const a = after.queries.find((x) => x.name === q.name);
      const b50 = q.p50Ms;
      const a50 = a?.p50Ms ?? null;
      const ratio = b50 !== null && a50 !== null && a50 > 0 ? b50 / a50 : null;
      const speedup = ratio === null ? 'n/a' : ratio >= 1.5 ? `${ratio.toFixed(ratio < 10 ? 1 : 0)}x faster` : 'about the same (already fast)';
      const fmt = (v: number | null): string => (v === null ? '-' : `${v.toFixed(1)} ms`);
      return `  ${q.name.padEnd(30)} ${fmt(b50).padStart(11)} -> ${fmt(a50).padStart(9)}   ${speedup}`;
    });
  return `  query (p50)                         before       after\n${rows.join('\n')}\n`;
}

/** `pgwarden serve` until Ctrl-C, while the API's workload runs in rounds of 5 s at 10 requests/s. */
async function serveWithTraffic(io: Io, pool: pg.Pool, serveArgs: readonly string[]): Promise<void> {
  let serving = true;
  const traffic = (async () => {
    while (serving) await runWorkload(pool, { durationMs: 5000, ratePerSecond: 10, concurrency: 2 }).catch(() => undefined);
  })();
  try {
    await serveCommand(serveArgs, io);
  } finally {
    serving = false;
    await traffic;
  }
}

export const demoOptions = defineOptions({
  yes: { type: 'boolean', short: 'y', description: 'do not pause between steps' },
  scale: { type: 'string', value: 'SCALE', byDefault: 'demo', description: 'demo or small (the example data\'s size)' },
  duration: { type: 'string', value: 'DURATION', byDefault: '10s', description: 'how long each workload step runs' },
  reset: { type: 'boolean', description: 'reload the example data from scratch' },
  port: { type: 'string', value: 'PORT', byDefault: '5432', description: 'the embedded primary\'s port' },
  'standby-port': { type: 'string', value: 'PORT', byDefault: '5433', description: 'the embedded standby\'s port' },
  'serve-port': { type: 'string', value: 'PORT', byDefault: '3000', description: 'the port of `pgwarden serve` at the end of the tour' },
});

export async function demoCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, demoOptions);
  const scale = values.scale ?? 'demo';
  if (scale !== 'demo' && scale !== 'small') throw new CliError(`--scale must be demo or small, got "${scale}"`);
  const durationMs = values.duration ? parseDuration(values.duration, 'duration') : 10_000;
  const demo: Demo = { io, pause: !values.yes && io.isTTY, step: 0 };

  io.stdout('pgwarden demo: an infrastructure platform on PostgreSQL 16, tuned by policies in git.\n');
  await heading(demo, 'Start PostgreSQL 16: a primary and a streaming hot standby (embedded, no Docker)');
  const urls = await clusterUp({
    baseDir: io.env['PGWARDEN_HOME'] ?? defaultBaseDir(),
    primaryPort: values.port ? Number(values.port) : undefined,
    standbyPort: values['standby-port'] ? Number(values['standby-port']) : undefined,
    log: (line) => io.stdout(`  ${line}\n`),
  }).catch((error: unknown) => {
    if (error instanceof ClusterError) throw new CliError(error.message, error.hint);
    throw error;
  });
  io.stdout(`  primary ${urls.primaryUrl}\n  standby ${urls.standbyUrl}\n`);

  await heading(demo, `Load the example platform (${scale} scale): tenants, servers, deployments, incidents, events`);
  // events is loaded plain, as a table that grew before anyone partitioned it: the partitioning step converts it online.
  const example = await ensureExampleDatabase(urls.primaryUrl, { name: DEMO_DATABASE, scale, reload: values.reset ?? false, plainEvents: true, onProgress: (m) => io.stdout(`  ${m}\n`) });
  if (example.loaded) io.stdout(`  ${Object.entries(example.loaded.rows).map(([t, n]) => `${t}: ${n.toLocaleString('en-US')}`).join(', ')}\n`);
  else io.stdout('  already loaded by an earlier run (`--reset` reloads it)\n');
  const url = example.url;
  const pool = createPool(settingsOf(url), { max: 6, application_name: 'pgwarden demo workload' });
  pool.on('error', () => undefined);
  const client = await connect(settingsOf(url), { application_name: 'pgwarden demo' });
  try {
    await pauseHere(demo);

    await heading(demo, `The API's workload for ${durationMs / 1000} s, before any tuning`);
    await client.query('SELECT public.pg_stat_statements_reset()');
    const before = await runWorkload(pool, { durationMs, ratePerSecond: 20, concurrency: 4 });
    io.stdout(formatWorkloadReport(before));
    io.stdout('\n  Where the time went (pg_stat_statements):\n');
    io.stdout(formatSlow(await slowestStatements(client)));
    await pauseHere(demo);

    await heading(demo, 'The plan for the policies in policies/ (what `pgwarden plan` prints in a pull request)');
    const policyDir = path.relative(io.cwd, EXAMPLE_POLICIES) || '.';
    const { desired, errors } = await loadPolicies(EXAMPLE_POLICIES, { displayDir: policyDir });
    if (errors.length > 0) {
      io.stderr(renderPolicyErrors(errors));
      throw new CliError('the example policies are invalid', undefined, 1, true);
    }
    const outcome = await makePlan(client, desired, new Date());
    if (!outcome.ok) {
      io.stderr(renderPolicyErrors(outcome.errors, 'planning'));
      throw new CliError('the example policies do not match the example database', undefined, 1, true);
    }
    io.stdout(renderPlanText(outcome.plan, { color: io.color }));
    await pauseHere(demo);

    await heading(demo, 'Apply online: CREATE INDEX CONCURRENTLY under a 5 s lock_timeout, writes keep flowing');
    const result = await apply({
      databaseUrl: url,
      desired,
      ...APPLY_DEFAULTS,
      signal: io.signal,
      onEvent: progressPrinter(io),
      // The conversion of events is the partitioning step's, under the workload.
      select: (c) => !isConversion(c.change.kind),
    });
    io.stdout(result.plan.changes.length === 0 ? '  nothing to do: the policies were applied by an earlier run\n' : `  applied ${result.applied} change(s) in ${(result.ms / 1000).toFixed(1)} s\n`);
    const again = await makePlan(client, desired, new Date());
    const left = again.ok ? again.plan.changes : [];
    io.stdout(
      `  plan again: ${
        !again.ok ? 'changes remain (unexpected)' : left.length === 0 ? 'No changes.' : left.every((c) => isConversion(c.change.kind)) ? 'only the conversion of public.events remains (the partitioning step does it)' : 'changes remain (unexpected)'
      }\n`,
    );
    await pauseHere(demo);

    await heading(demo, 'Partitions: events converted online under the workload; by month, three ahead, a default one; a month query reads one partition');
    await convertDemo(io, { url, pool, desired });
    io.stdout(await partitionDemo(client, new Date()));
    await pauseHere(demo);

    await heading(demo, 'The same workload again, on the indexes the policies declared');
    const after = await runWorkload(pool, { durationMs, ratePerSecond: 20, concurrency: 4 });
    io.stdout(formatWorkloadReport(after));
    io.stdout(`\n${formatSpeedup(before, after)}`);
    await pauseHere(demo);

    await heading(demo, 'Table health: churn pushes deployments below its floor, `pgwarden maintain` restores it');
    await vacuumDemo(client, url, desired, io);
    await pauseHere(demo);

    await heading(demo, 'Read-replica routing: SELECTs to the standby within 250 ms of lag, writes to the primary');
    await routingDemo(io, { primaryUrl: url, standbyUrl: withDatabase(urls.standbyUrl, DEMO_DATABASE), durationMs, desired });
    await pauseHere(demo);

    await heading(demo, 'The live page: what `pgwarden serve` shows every 5 s (rates over the window, not since reset)');
    await liveDemo(io, { primaryUrl: url, standbyUrl: withDatabase(urls.standbyUrl, DEMO_DATABASE), durationMs });
    await pauseHere(demo);

    await heading(demo, 'Slow queries and index advice: `pgwarden analyze` finds them, `pgwarden advise` proposes the fix');
    await adviseDemo(io, { url, pool, desired, policiesDir: EXAMPLE_POLICIES, displayDir: policyDir });
    await pauseHere(demo);

    // At a terminal the tour ends on the live page itself, with the workload running so its gauges move.
    if (demo.pause) {
      await heading(demo, 'The live page in your browser, with the workload running (Ctrl-C ends the demo)');
      await serveWithTraffic(io, pool, [
        '--database-url', url, '--port', values['serve-port'] ?? '3000',
        '--standby', `standby1=${withDatabase(urls.standbyUrl, DEMO_DATABASE)}`, '--write-heartbeat',
      ]);
    }

    io.stdout(
      [
        '',
        'Next:',
        `  export DATABASE_URL=${url}`,
        '  npx pgwarden plan          # edit policies/*.yaml, then see the plan',
        '  npx pgwarden status        # both servers and the standby replay lag',
        '  npx pgwarden health        # every table\'s health and bloat, worst first',
        '  npx pgwarden serve         # the live page and report site on http://127.0.0.1:3000',
        '  npx pgwarden down          # stop the cluster (data kept in .pgwarden/)',
        '',
      ].join('\n'),
    );
    return 0;
  } finally {
    await client.end().catch(() => undefined);
    await pool.end().catch(() => undefined);
  }
}
