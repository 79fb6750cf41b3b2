import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { storageParametersFor } from '../../engine/diff/vacuum-settings.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { storageParameterListSql } from '../../engine/sql/ddl.ts';
import { runCli, writePolicy } from '../support/cli.ts';
import { project as projectWith, removeProjects } from './projects.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import path from 'node:path';

let db: TestDatabase;
const env = (): NodeJS.ProcessEnv => ({ DATABASE_URL: db.url });

async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db.pool.query(text, values)).rows;
}

/** The table's reloptions and its TOAST table's, as PostgreSQL stores them. */
async function options(table: string): Promise<{ main: string[]; toast: string[] | null }> {
  const [row] = await sql(
    `SELECT COALESCE(c.reloptions, '{}') AS main, CASE WHEN c.reltoastrelid <> 0 THEN COALESCE(t.reloptions, '{}') END AS toast
       FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid WHERE c.oid = $1::regclass`,
    [table],
  );
  return { main: (row?.['main'] as string[]) ?? [], toast: (row?.['toast'] as string[] | null) ?? null };
}

async function apply(project: string, ...extra: string[]): Promise<void> {
  const result = await runCli(['apply', '--auto-approve', ...extra], { cwd: project, env: env() });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}

async function expectNoChanges(project: string): Promise<void> {
  const plan = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() });
  expect(plan.stdout).toContain('No changes.');
  expect(plan.code).toBe(0);
}

const JOBS = `table: app.jobs
vacuum:
  autovacuum:
    vacuum_scale_factor: 0.02
    analyze_threshold: 500
    enabled: true
  toast:
    enabled: false
`;

beforeAll(async () => {
  db = await useTestDatabase();
});
afterAll(async () => {
  await db.close();
  await removeProjects();
});
beforeEach(async () => {
  await sql(`DROP SCHEMA IF EXISTS app CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA app`);
  await sql(`CREATE TABLE app.jobs (id bigint PRIMARY KEY, payload text, state text)`);
});

describe('autovacuum settings as code', () => {
  it('plans ALTER TABLE ... SET, applies it online, and plans no changes after', async () => {
    const project = await projectWith({ 'jobs.yaml': JOBS });
    const plan = await runCli(['plan'], { cwd: project, env: env() });

    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain(
      '~ set autovacuum_enabled (default) -> true, autovacuum_vacuum_scale_factor (default) -> 0.02, autovacuum_analyze_threshold (default) -> 500, toast.autovacuum_enabled (default) -> false on app.jobs',
    );
    expect(plan.stdout).toContain('lock:  SHARE UPDATE EXCLUSIVE on app.jobs — online, reads and writes continue');
    expect(plan.stdout).toContain(
      `ALTER TABLE IF EXISTS "app"."jobs" SET ("autovacuum_enabled" = 'true', "autovacuum_vacuum_scale_factor" = '0.02', "autovacuum_analyze_threshold" = '500', "toast"."autovacuum_enabled" = 'false')`,
    );
    expect(plan.stdout).toContain('from:  policies/jobs.yaml:6');

    await apply(project);
    expect(await options('app.jobs')).toEqual({
      main: ['autovacuum_enabled=true', 'autovacuum_vacuum_scale_factor=0.02', 'autovacuum_analyze_threshold=500'],
      toast: ['autovacuum_enabled=false'],
    });
    await expectNoChanges(project);
  });

  it('resets a setting removed from the policy, and changes one whose value changed', async () => {
    const project = await projectWith({ 'jobs.yaml': JOBS });
    await apply(project);
    await writePolicy(project, 'jobs.yaml', `table: app.jobs\nvacuum:\n  autovacuum:\n    vacuum_scale_factor: 0.05\n`);

    const plan = await runCli(['plan'], { cwd: project, env: env() });
    expect(plan.stdout).toContain(
      '~ set autovacuum_vacuum_scale_factor 0.02 -> 0.05; reset autovacuum_enabled (was true), autovacuum_analyze_threshold (was 500), toast.autovacuum_enabled (was false) on app.jobs',
    );
    await apply(project);
    expect(await options('app.jobs')).toEqual({ main: ['autovacuum_vacuum_scale_factor=0.05'], toast: [] });
    await expectNoChanges(project);

    // The whole vacuum block gone: what pgwarden set is reset too.
    await writePolicy(project, 'jobs.yaml', `table: app.jobs\n`);
    await apply(project);
    expect(await options('app.jobs')).toEqual({ main: [], toast: [] });
    await expectNoChanges(project);
  });

  it('leaves a setting someone else made alone and reports it, unless the table is fully managed', async () => {
    await sql(`ALTER TABLE app.jobs SET (autovacuum_vacuum_cost_limit = 2000, fillfactor = 90)`);
    const project = await projectWith({ 'jobs.yaml': `table: app.jobs\nvacuum:\n  autovacuum: { vacuum_scale_factor: 0.02 }\n` });

    const plan = await runCli(['plan'], { cwd: project, env: env() });
    expect(plan.stdout).toContain(
      'warning: policies/jobs.yaml:2:1: app.jobs has autovacuum_vacuum_cost_limit=2000, which its vacuum policy does not declare; pgwarden leaves it alone',
    );
    await apply(project);
    expect((await options('app.jobs')).main).toEqual(['autovacuum_vacuum_cost_limit=2000', 'fillfactor=90', 'autovacuum_vacuum_scale_factor=0.02']);

    await writePolicy(project, 'jobs.yaml', `table: app.jobs\nmanaged: full\nvacuum:\n  autovacuum: { vacuum_scale_factor: 0.02 }\n`);
    await apply(project);
    // fillfactor is not a vacuum setting: never pgwarden's to reset.
    expect((await options('app.jobs')).main).toEqual(['fillfactor=90', 'autovacuum_vacuum_scale_factor=0.02']);
    await expectNoChanges(project);
  });

  it('puts a partitioned table\'s settings on every partition, none on the parent, and a partition made later with them needs nothing', async () => {
    await sql(`CREATE TABLE app.events (id bigint, at timestamptz NOT NULL, body text) PARTITION BY RANGE (at)`);
    await sql(`CREATE TABLE app.events_2026_01 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')`);
    await sql(`CREATE TABLE app.events_2026_02 PARTITION OF app.events FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')`);
    const policy = `table: app.events\nvacuum:\n  autovacuum: { vacuum_scale_factor: 0.01, vacuum_insert_threshold: -1 }\n  toast: { vacuum_truncate: false }\n`;
    const project = await projectWith({ 'events.yaml': policy });

    const plan = await runCli(['plan'], { cwd: project, env: env() });
    expect(plan.stdout).toContain('on app.events (2 of 2 partitions)');
    await apply(project);
    for (const partition of ['app.events_2026_01', 'app.events_2026_02']) {
      expect(await options(partition)).toEqual({
        main: ['autovacuum_vacuum_scale_factor=0.01', 'autovacuum_vacuum_insert_threshold=-1'],
        toast: ['vacuum_truncate=false'],
      });
    }
    expect((await options('app.events')).main).toEqual([]);
    await expectNoChanges(project);

    // What the partition policy does for a new partition: create it WITH the table's settings.
    const { desired } = await loadPolicies(path.join(project, 'policies'));
    const events = desired.tables.find((t) => t.name === 'events');
    if (events === undefined) throw new Error('events policy not loaded');
    await sql(`CREATE TABLE app.events_2026_03 PARTITION OF app.events FOR VALUES FROM ('2026-03-01') TO ('2026-04-01') WITH (${storageParameterListSql(storageParametersFor(events))})`);
    expect((await options('app.events_2026_03')).main).toEqual(['autovacuum_vacuum_scale_factor=0.01', 'autovacuum_vacuum_insert_threshold=-1']);
    await expectNoChanges(project);

    // One created without them is brought in line by the next apply.
    await sql(`CREATE TABLE app.events_2026_04 PARTITION OF app.events FOR VALUES FROM ('2026-04-01') TO ('2026-05-01')`);
    const next = await runCli(['plan'], { cwd: project, env: env() });
    expect(next.stdout).toContain('on app.events (1 of 4 partitions)');
    expect(next.stdout).toContain('ALTER TABLE IF EXISTS "app"."events_2026_04"');
    await apply(project);
    await expectNoChanges(project);
  });

  it('gives every table no policy names the defaults document\'s settings', async () => {
    await sql(`CREATE TABLE app.audit (id bigint, note text)`);
    const project = await projectWith({
      'defaults.yaml': `defaults:\n  vacuum:\n    autovacuum: { vacuum_scale_factor: 0.05 }\n`,
      'jobs.yaml': `table: app.jobs\nvacuum:\n  autovacuum: { analyze_scale_factor: 0.02 }\n`,
    });

    await apply(project);
    expect((await options('app.audit')).main).toEqual(['autovacuum_vacuum_scale_factor=0.05']);
    expect((await options('app.jobs')).main).toEqual(['autovacuum_vacuum_scale_factor=0.05', 'autovacuum_analyze_scale_factor=0.02']);
    await expectNoChanges(project);
  });

  it('refuses an out-of-range setting with its position before touching the database', async () => {
    const project = await projectWith({ 'jobs.yaml': `table: app.jobs\nvacuum:\n  autovacuum:\n    vacuum_cost_delay: 250\n    vacuum_scale_fator: 0.1\n` });

    const result = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('policies/jobs.yaml:4:24: "vacuum_cost_delay" must be at most 100, got 250 (autovacuum_vacuum_cost_delay accepts 0 to 100)');
    expect(result.stderr).toContain('policies/jobs.yaml:5:5: unknown key "vacuum_scale_fator" in autovacuum settings');
    expect(result.stderr).toContain('2 errors in the policies; nothing was sent to the database.');
    expect((await options('app.jobs')).main).toEqual([]);
  });

  it('refuses a saved plan once a table its policy names was dropped, and skips a dropped table only the defaults covered', async () => {
    await sql(`CREATE TABLE app.scratch (id int)`);
    const project = await projectWith({ 'jobs.yaml': JOBS, 'defaults.yaml': `defaults:\n  vacuum:\n    autovacuum: { vacuum_threshold: 1000 }\n` });
    expect((await runCli(['plan', '--out', 'plan.json'], { cwd: project, env: env() })).code).toBe(0);

    // A table only the defaults cover is not part of the plan's fingerprint: its ALTER is IF EXISTS.
    await sql(`DROP TABLE app.scratch`);
    await apply(project, '--plan', 'plan.json');
    expect((await options('app.jobs')).main).toContain('autovacuum_vacuum_threshold=1000');
    await expectNoChanges(project);

    await writePolicy(project, 'jobs.yaml', JOBS.replace('0.02', '0.03'));
    expect((await runCli(['plan', '--out', 'plan.json'], { cwd: project, env: env() })).code).toBe(0);
    await sql(`DROP TABLE app.jobs`);
    const stale = await runCli(['apply', '--auto-approve', '--plan', 'plan.json'], { cwd: project, env: env() });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toBe(`pgwarden: the policies do not match the database: table app.jobs does not exist in database ${db.name}\n`);
    expect(await sql(`SELECT count(*)::int AS n FROM pgwarden.history WHERE outcome = 'running'`)).toEqual([{ n: 0 }]);
  });

  it('waits at most lock_timeout for a table an open transaction locked, and says so', async () => {
    const project = await projectWith({ 'jobs.yaml': JOBS });
    const holder = new pg.Client({ connectionString: db.url, application_name: 'test lock holder' });
    await holder.connect();
    try {
      await holder.query('BEGIN; LOCK TABLE app.jobs IN SHARE UPDATE EXCLUSIVE MODE');
      const started = Date.now();
      const result = await runCli(['apply', '--auto-approve', '--lock-timeout', '200ms', '--retries', '1'], { cwd: project, env: env() });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('could not take its lock within lock_timeout (200 ms) after 2 tries');
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect((await options('app.jobs')).main).toEqual([]);
    await apply(project);
    await expectNoChanges(project);
  });
});
