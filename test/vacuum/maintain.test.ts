import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { planMaintenance, runMaintenance } from '../../engine/maintain/maintain.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { ident } from '../../engine/sql/ident.ts';
import { runCli } from '../support/cli.ts';
import { project as projectWith, removeProjects } from './projects.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import { churnedTable, deadTuples, waitFor } from './churn.ts';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { XMIN_HORIZON_SQL } from '../../engine/catalog/vacuum-queries.ts';

let db: TestDatabase;
const env = (): NodeJS.ProcessEnv => ({ DATABASE_URL: db.url });

async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db.pool.query(text, values)).rows;
}

/** The vacuum policy of the app schema's tables: nothing above 5% dead, health at least 0.95. */
const DEFAULTS = `defaults:
  vacuum:
    max_dead_ratio: 0.05
    min_health: 0.95
`;

interface HealthRow {
  schema: string;
  name: string;
  health: number;
  deadTuples: number;
  floor: number | null;
}

async function health(project: string): Promise<Map<string, HealthRow>> {
  const result = await runCli(['health', '--json', '--estimate-only'], { cwd: project, env: env() });
  // 1 while a churned table's health is red, 0 once maintain restored it: the figures are what is read here.
  expect(result.stderr).toBe('');
  expect([0, 1]).toContain(result.code);
  const report = JSON.parse(result.stdout) as { tables: HealthRow[] };
  return new Map(report.tables.map((t) => [`${t.schema}.${t.name}`, t]));
}

interface HistoryRow {
  kind: string;
  outcome: string;
  error: string | null;
  summary: Record<string, number>;
  plan: { table: string; outcome: string; sql: string; before: { deadTuples: number; health: number } | null; after: { deadTuples: number; health: number } | null }[];
}

async function lastHistory(): Promise<HistoryRow | undefined> {
  return (await sql(`SELECT kind, outcome, error, summary, plan FROM pgwarden.history ORDER BY id DESC LIMIT 1`))[0] as HistoryRow | undefined;
}

beforeAll(async () => {
  db = await useTestDatabase();
});
afterAll(async () => {
  await db.close();
  await removeProjects();
});
beforeEach(async () => {
  await sql(`DROP SCHEMA IF EXISTS app CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA app`);
});

describe('pgwarden maintain', () => {
  it('brings churned tables from below their health floor back above it, and says by how much', async () => {
    await churnedTable(db.pool, 'app', 'queue');
    await churnedTable(db.pool, 'app', 'deployments', 10_000);
    const project = await projectWith({ 'defaults.yaml': DEFAULTS });
    const before = await health(project);
    for (const name of ['app.queue', 'app.deployments']) {
      expect(before.get(name)?.health).toBeLessThan(0.95);
      expect(before.get(name)?.deadTuples).toBeGreaterThan(1_000);
    }

    const result = await runCli(['maintain'], { cwd: project, env: env() });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^\[1\/2\] VACUUM \(ANALYZE\) app\.(queue|deployments) \(health 0\.\d\d\): \d+% dead tuples/m);
    expect(result.stdout).toMatch(/maintain: 2 table\(s\) due, 2 done in \d+\.\d s \(history record \d+\)/);
    expect(result.stdout).toMatch(/ {2}app\.queue +VACUUM \(ANALYZE\) +[\d,]+ -> 0 +0\.\d\d -> 1\.00 +\d+\.\d s +done/);

    const after = await health(project);
    for (const name of ['app.queue', 'app.deployments']) {
      expect(after.get(name)?.deadTuples).toBe(0);
      expect(after.get(name)?.health).toBe(1);
    }
    const history = await lastHistory();
    expect(history).toMatchObject({ kind: 'maintain', outcome: 'succeeded', error: null });
    expect(history?.summary).toMatchObject({ due: 2, vacuum: 2, done: 2, locked: 0, failed: 0 });
    const queue = history?.plan.find((p) => p.table === 'app.queue');
    expect(queue?.sql).toMatch(/^VACUUM \(ANALYZE(, SKIP_DATABASE_STATS)?\) "app"\."queue"$/);
    expect(queue?.before?.deadTuples).toBe(before.get('app.queue')?.deadTuples);
    expect(queue?.after).toMatchObject({ deadTuples: 0, health: 1 });

    // Nothing left to do, and the plan no longer flags anything.
    const again = await runCli(['maintain'], { cwd: project, env: env() });
    expect(again.stdout).toContain('Nothing is due on');
    const plan = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() });
    expect(plan.stdout).not.toContain('below its floor');
    expect(plan.code).toBe(0);
  });

  it('shows with --dry-run what it would do, and does nothing', async () => {
    await churnedTable(db.pool, 'app', 'queue');
    await db.pool.query(`CREATE TABLE app.fresh (id int); INSERT INTO app.fresh SELECT generate_series(1, 100); SELECT pg_stat_force_next_flush()`);
    await waitFor(async () => Number((await sql(`SELECT pg_stat_get_live_tuples('app.fresh'::regclass) AS n`))[0]?.['n']) === 100, 'the rows of app.fresh to be counted');
    const project = await projectWith({ 'defaults.yaml': DEFAULTS });
    const dead = await deadTuples(db.pool, 'app', 'queue');

    const result = await runCli(['maintain', '--dry-run'], { cwd: project, env: env() });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^2 of 2 governed table\(s\) on pgwarden_test_\w+ are due, worst first \(dry run: nothing was run\):$/m);
    expect(result.stdout).toMatch(/\[1\] VACUUM \(ANALYZE\) app\.queue {2}health 0\.\d\d, [\d,]+ dead tuples\n {6}why: \d+% dead tuples \([\d,]+\), above max_dead_ratio 5\.0%\n/);
    expect(result.stdout).toContain('[2] ANALYZE app.fresh  health 0.80, 0 dead tuples\n      why: health 0.80 below min_health 0.95 (statistics)\n      why: never analyzed\n      ANALYZE "app"."fresh"');
    expect(result.stdout).not.toContain('FULL');
    expect(await deadTuples(db.pool, 'app', 'queue')).toBe(dead);
    expect(await sql(`SELECT to_regclass('pgwarden.history') AS t`)).toEqual([{ t: null }]);
  });

  it('skips a table a long transaction holds locked, after lock_timeout, names the holder, and does the rest', async () => {
    await churnedTable(db.pool, 'app', 'queue');
    await churnedTable(db.pool, 'app', 'locked', 5_000);
    const project = await projectWith({ 'defaults.yaml': DEFAULTS });
    const holder = new pg.Client({ connectionString: db.url, application_name: 'long report' });
    await holder.connect();
    let result;
    try {
      await holder.query('BEGIN; LOCK TABLE app.locked IN SHARE UPDATE EXCLUSIVE MODE');
      const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      const started = Date.now();
      result = await runCli(['maintain', '--lock-timeout', '300ms'], { cwd: project, env: env() });
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(result.stdout).toContain(`skipped: its lock was not granted within lock_timeout (300 ms); held by pid ${pid} (ShareUpdateExclusiveLock, idle in transaction, transaction open`);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/ {2}app\.locked +VACUUM \(ANALYZE\) +[\d,]+ -> \? +0\.\d\d -> \? +\d+\.\d s +skipped \(locked\)/);
    expect(await deadTuples(db.pool, 'app', 'queue')).toBe(0);
    expect(await deadTuples(db.pool, 'app', 'locked')).toBeGreaterThan(0);
    const history = await lastHistory();
    expect(history?.outcome).toBe('failed');
    expect(history?.error).toMatch(/^app\.locked: skipped: its lock was not granted within lock_timeout/);
  });

  it('skips a table dropped after it was picked, and does the rest', async () => {
    await churnedTable(db.pool, 'app', 'queue');
    await churnedTable(db.pool, 'app', 'gone', 5_000);
    const project = await projectWith({ 'defaults.yaml': DEFAULTS });
    const { desired } = await loadPolicies(path.join(project, 'policies'));
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const plan = await planMaintenance(client, desired, new Date()).finally(() => client.end());
    expect(plan.tasks.map((t) => t.name).sort()).toEqual(['gone', 'queue']);

    await sql('DROP TABLE app.gone');
    const result = await runMaintenance(plan, { databaseUrl: db.url, parallel: 1, lockTimeoutMs: 1000 });

    expect(result.results.map((r) => [r.task.name, r.outcome, r.message ?? ''])).toEqual(
      expect.arrayContaining([
        ['gone', 'dropped', 'skipped: the table was dropped after maintain picked it'],
        ['queue', 'done', ''],
      ]),
    );
    expect(result.outcome).toBe('succeeded');
    expect(await deadTuples(db.pool, 'app', 'queue')).toBe(0);
  });

  it('cancels the running VACUUM on SIGTERM, starts nothing more, and records the run as interrupted', async () => {
    await churnedTable(db.pool, 'app', 'queue', 60_000);
    await churnedTable(db.pool, 'app', 'next', 5_000);
    const project = await projectWith({ 'defaults.yaml': DEFAULTS });
    // Cost-based delay for this database's new sessions: a VACUUM that crawls, so it can be caught midway.
    await sql(`ALTER DATABASE ${ident(db.name)} SET vacuum_cost_delay = 100`);
    await sql(`ALTER DATABASE ${ident(db.name)} SET vacuum_cost_limit = 1`);
    try {
      const controller = new AbortController();
      const running = runCli(['maintain'], { cwd: project, env: env(), signal: controller.signal });
      await waitFor(
        async () => (await sql(`SELECT count(*)::int AS n FROM pg_stat_progress_vacuum WHERE datname = current_database() AND relid = 'app.queue'::regclass`))[0]?.['n'] === 1,
        'the VACUUM of app.queue to be under way',
      );
      const signalled = Date.now();
      controller.abort();
      const result = await running;

      expect(Date.now() - signalled).toBeLessThan(10_000);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/app\.queue: cancelled in \d+\.\d s — cancelled on interrupt \(the pages it already cleaned stay clean\)/);
      expect(result.stdout).toMatch(/ {2}app\.next +VACUUM \(ANALYZE\) +[\d,]+ -> \? +0\.\d\d -> \? +- +not started/);
      expect(result.stdout).toContain('Interrupted: the running VACUUM was cancelled');
      expect((await lastHistory())?.outcome).toBe('interrupted');
      expect(await sql(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query ~ '^VACUUM'`)).toEqual([{ n: 0 }]);
      expect(await deadTuples(db.pool, 'app', 'next')).toBeGreaterThan(0);
    } finally {
      await sql(`ALTER DATABASE ${ident(db.name)} RESET vacuum_cost_delay`);
      await sql(`ALTER DATABASE ${ident(db.name)} RESET vacuum_cost_limit`);
    }
  });

  it('keeps maintaining --every interval and stops cleanly when interrupted between runs', async () => {
    await churnedTable(db.pool, 'app', 'queue');
    const project = await projectWith({ 'defaults.yaml': DEFAULTS });
    const controller = new AbortController();
    const running = runCli(['maintain', '--every', '1s'], { cwd: project, env: env(), signal: controller.signal });
    await waitFor(async () => (await deadTuples(db.pool, 'app', 'queue')) === 0, 'the first run to vacuum app.queue');
    // New churn is picked up by a later run.
    await db.pool.query(`UPDATE app.queue SET state = 'again' WHERE id % 10 < 5`);
    await db.pool.query('SELECT pg_stat_force_next_flush()');
    await waitFor(async () => (await sql(`SELECT count(*)::int AS n FROM pgwarden.history WHERE kind = 'maintain' AND outcome = 'succeeded'`))[0]?.['n'] === 2, 'a second run');
    controller.abort();
    const result = await running;

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^maintain: every 1 s until interrupted/);
    expect(result.stdout).toMatch(/\] run 1: 1 table\(s\) due/);
    expect(result.stdout.match(/\] run \d+: 1 table\(s\) due/g)).toHaveLength(2);
    expect(result.stdout.trimEnd().split('\n').at(-1)).toBe('maintain: stopped.');
  });

  it('runs up to --parallel VACUUMs at once and does every table', async () => {
    for (const name of ['a', 'b', 'c']) await churnedTable(db.pool, 'app', name, 5_000);
    const project = await projectWith({ 'defaults.yaml': DEFAULTS });

    const result = await runCli(['maintain', '--parallel', '2', '--json'], { cwd: project, env: env() });
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { results: { outcome: string; after: { deadTuples: number } | null }[] };
    expect(report.results.map((r) => [r.outcome, r.after?.deadTuples])).toEqual([
      ['done', 0],
      ['done', 0],
      ['done', 0],
    ]);
    const bad = await runCli(['maintain', '--parallel', '50'], { cwd: project, env: env() });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('pgwarden: --parallel must be a whole number from 1 to 8, got "50"\n  hint: each VACUUM may use maintenance_work_mem and competes for I/O\n');
  });

  it('starts no new work once --budget is spent', async () => {
    await churnedTable(db.pool, 'app', 'queue', 5_000);
    const project = await projectWith({ 'defaults.yaml': DEFAULTS });

    const result = await runCli(['maintain', '--budget', '0ms'], { cwd: project, env: env() });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/app\.queue .* not started\n {6}the --budget was used up/);
    expect(result.stdout).toContain('The --budget ran out: the tables not started are due on the next run.');
    expect(await deadTuples(db.pool, 'app', 'queue')).toBeGreaterThan(0);
  });

  it('only analyzes a table whose statistics went stale, and a partitioned table autovacuum never analyzes', async () => {
    await sql(`CREATE TABLE app.log (id int, at date NOT NULL) PARTITION BY RANGE (at)`);
    await sql(`CREATE TABLE app.log_2026 PARTITION OF app.log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`);
    const client = await db.pool.connect();
    try {
      // Each step's counters flushed before the next: ANALYZE sets the counts outright (PostgreSQL 15+).
      await client.query(`INSERT INTO app.log SELECT g, '2026-03-01' FROM generate_series(1, 3000) g`);
      await client.query('SELECT pg_stat_force_next_flush()');
      await client.query(`ANALYZE app.log_2026`);
      await client.query(`INSERT INTO app.log SELECT g, '2026-04-01' FROM generate_series(3001, 5000) g`);
      await client.query('SELECT pg_stat_force_next_flush()');
    } finally {
      client.release();
    }
    const project = await projectWith({ 'log.yaml': `table: app.log\nvacuum:\n  analyze_after_rows: 1000\n  min_health: 0.5\n` });
    await waitFor(async () => Number((await sql(`SELECT pg_stat_get_mod_since_analyze('app.log_2026'::regclass) AS n`))[0]?.['n']) >= 2000, 'the inserts to be counted');

    const result = await runCli(['maintain'], { cwd: project, env: env() });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('ANALYZE app.log_2026 (health 0.92): 2,000 rows changed since the last ANALYZE (analyze_after_rows 1,000)');
    expect(result.stdout).toContain('ANALYZE app.log: a partitioned table never analyzed (autovacuum does not analyze partitioned tables)');
    expect(result.stdout).not.toContain('VACUUM');
    const analyzed = await sql(`SELECT relname, pg_stat_get_last_analyze_time(oid) IS NOT NULL AS analyzed FROM pg_class WHERE relname IN ('log', 'log_2026') ORDER BY relname`);
    expect(analyzed).toEqual([
      { relname: 'log', analyzed: true },
      { relname: 'log_2026', analyzed: true },
    ]);
  });

  it('refuses a read-only standby, and policies without a vacuum policy', async () => {
    const project = await projectWith({ 'defaults.yaml': DEFAULTS });
    const standby = await runCli(['maintain'], { cwd: project, env: { DATABASE_URL: db.standbyUrl } });
    expect(standby.code).toBe(1);
    expect(standby.stderr).toBe(
      'pgwarden: this server is a read-only standby (in recovery): VACUUM and ANALYZE run only on the primary, and a standby keeps its own, nearly empty activity statistics\n  hint: point --database-url at the primary\n',
    );

    const none = await projectWith({ 't.yaml': 'table: app.t\n' });
    const result = await runCli(['maintain'], { cwd: none, env: env() });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^pgwarden: no vacuum policies: maintain looks after the tables/);
  });
});

describe('a table maintain may not vacuum', () => {
  it('is reported as skipped with PostgreSQL\'s reason, not as done, and the run exits 1', async () => {
    const suffix = randomBytes(4).toString('hex');
    const owner = `pgwarden_owner_${suffix}`;
    const maintainer = `pgwarden_maint_${suffix}`;
    await sql(`CREATE ROLE ${ident(owner)}; CREATE ROLE ${ident(maintainer)} LOGIN PASSWORD 'maint-${suffix}'`);
    try {
      await churnedTable(db.pool, 'app', 'ledger');
      await sql(`ALTER TABLE app.ledger OWNER TO ${ident(owner)}; GRANT USAGE ON SCHEMA app TO ${ident(maintainer)}`);
      // Its history goes to the pgwarden schema, which CREATE SCHEMA IF NOT EXISTS checks CREATE on the database for.
      await sql(`CREATE SCHEMA pgwarden AUTHORIZATION ${ident(maintainer)}; GRANT CREATE ON DATABASE ${ident(db.name)} TO ${ident(maintainer)}`);
      const url = new URL(db.url);
      url.username = maintainer;
      url.password = `maint-${suffix}`;
      const project = await projectWith({ 'defaults.yaml': DEFAULTS });

      const result = await runCli(['maintain'], { cwd: project, env: { DATABASE_URL: url.toString() } });
      expect(result.stdout).toMatch(/app\.ledger: skipped \(not permitted\) in \d+\.\d s — skipped by PostgreSQL, which only warns: (permission denied to vacuum "ledger", skipping it|skipping "ledger" --- only .* can vacuum it)/);
      expect(result.stdout).toMatch(/ {2}app\.ledger +VACUUM \(ANALYZE\) .* skipped \(not permitted\)/);
      expect(result.code).toBe(1);
      expect(await deadTuples(db.pool, 'app', 'ledger')).toBeGreaterThan(1_000);
      const history = await lastHistory();
      expect(history).toMatchObject({ kind: 'maintain', outcome: 'failed', summary: expect.objectContaining({ done: 0, denied: 1 }) });
    } finally {
      await sql(`DROP SCHEMA app CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA app`);
      await sql(`REVOKE CREATE ON DATABASE ${ident(db.name)} FROM ${ident(maintainer)}; DROP ROLE ${ident(owner)}; DROP ROLE ${ident(maintainer)}`);
    }
  });
});

describe('what holds dead tuples back', () => {
  it('never names the session that asks', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      const holders = (await client.query<{ kind: string; holder: string }>(XMIN_HORIZON_SQL, [[]])).rows;
      expect(holders.filter((h) => h.kind === 'session' && h.holder === String(pid))).toEqual([]);
    } finally {
      await client.end();
    }
  });
});
