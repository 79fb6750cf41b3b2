import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { churnedTable, deadTuples } from '../vacuum/churn.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
const env = (): NodeJS.ProcessEnv => ({ DATABASE_URL: db.url });

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`CREATE TABLE metrics (id bigint NOT NULL, at timestamptz NOT NULL, host text) PARTITION BY RANGE (at)`);
});
afterAll(async () => {
  await db.close();
});

const POLICY = `
table: metrics
indexes:
  - name: metrics_host_at_idx
    columns: [host, at]
partitioning:
  by: range
  column: at
  interval: month
  premake: 2
  retention: { keep: 6, then: drop }
  default_partition: true
`;

describe('pgwarden maintain keeps partitions ahead', () => {
  it('creates the partitions the policy wants ahead of now, and leaves every other change to apply', async () => {
    const project = await projectWith({ 'metrics.yaml': POLICY });
    const maintain = await runCli(['maintain'], { cwd: project, env: env() });
    expect(maintain.stderr).toBe('');
    expect(maintain.code).toBe(0);
    expect(maintain.stdout).toMatch(/partitions: 4 partition change\(s\) applied ahead of time/);
    const now = new Date();
    const name = (monthsAhead: number): string => {
      const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + monthsAhead, 1));
      return `metrics_${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
    };
    const rows = await db.pool.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'metrics'::regclass ORDER BY 1`);
    expect(rows.rows.map((r) => r.relname)).toEqual([name(0), name(1), name(2), 'metrics_default']);
    // The index is apply's business, not maintain's: still planned, and nothing else.
    const plan = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() });
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('+ create index metrics_host_at_idx');
    expect(plan.stdout).toContain('Plan: 1 to add, 0 to change, 0 to destroy.');
    const applied = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    expect(applied.code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
    // Run again: nothing left to create.
    const again = await runCli(['maintain'], { cwd: project, env: env() });
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain('applied ahead of time');
  });

  it('writes an apply history record only when it applied a partition change', async () => {
    await db.pool.query(`CREATE TABLE samples (at timestamptz NOT NULL) PARTITION BY RANGE (at)`);
    const project = await projectWith({ 'samples.yaml': `table: samples\npartitioning: { by: range, column: at, interval: day, premake: 1 }\n` });
    const records = async (): Promise<number> => Number((await db.pool.query(`SELECT count(*) AS n FROM pgwarden.history WHERE kind = 'apply'`)).rows[0]?.n);
    // The first run creates today's and tomorrow's partitions: that is an apply, recorded.
    expect((await runCli(['maintain'], { cwd: project, env: env() })).stdout).toContain('applied ahead of time');
    const before = await records();
    expect(before).toBeGreaterThan(0);
    for (let run = 0; run < 3; run += 1) expect((await runCli(['maintain'], { cwd: project, env: env() })).code).toBe(0);
    expect(await records()).toBe(before);
  });
});

/** Leaves `partition` "detach pending", as an apply interrupted in the second phase of DETACH ... CONCURRENTLY would. */
async function interruptedDetach(parent: string, partition: string): Promise<void> {
  const reader = new pg.Client({ connectionString: db.url });
  const detacher = new pg.Client({ connectionString: db.url });
  await Promise.all([reader.connect(), detacher.connect()]);
  try {
    await reader.query(`BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM ${parent}`);
    await detacher.query(`SET lock_timeout = '200ms'`);
    await expect(detacher.query(`ALTER TABLE ${parent} DETACH PARTITION ${partition} CONCURRENTLY`)).rejects.toThrow(/lock timeout/);
    await reader.query('COMMIT');
  } finally {
    await Promise.all([reader.end(), detacher.end()]);
  }
  const rows = await db.pool.query(`SELECT inhdetachpending AS p FROM pg_inherits WHERE inhrelid = $1::regclass`, [partition]);
  expect(rows.rows).toEqual([{ p: true }]);
}

describe('partition upkeep never stops maintain from vacuuming', () => {
  it('leaves a pending detach that would drop the partition to apply --allow-drop, and does the rest', async () => {
    await db.pool.query(`CREATE TABLE logs (at timestamptz NOT NULL, line text) PARTITION BY RANGE (at)`);
    await db.pool.query(`CREATE TABLE logs_2020_01 PARTITION OF logs FOR VALUES FROM ('2020-01-01 00:00:00+00') TO ('2020-02-01 00:00:00+00')`);
    await interruptedDetach('logs', 'logs_2020_01');
    const project = await projectWith({
      'logs.yaml': `table: logs
partitioning: { by: range, column: at, interval: month, premake: 1, retention: { keep: 6, then: drop }, default_partition: false }
vacuum: { max_dead_ratio: 0.1 }
`,
    });
    const maintain = await runCli(['maintain'], { cwd: project, env: env() });
    expect(maintain.stderr).toBe('');
    expect(maintain.code).toBe(0);
    expect(maintain.stdout).toMatch(/partitions: 2 partition change\(s\) applied ahead of time/);
    // Still pending and still there: finishing it drops the partition, which only `apply --allow-drop` may do.
    expect((await db.pool.query(`SELECT inhdetachpending AS p FROM pg_inherits WHERE inhrelid = 'logs_2020_01'::regclass`)).rows).toEqual([{ p: true }]);
    const plan = await runCli(['plan'], { cwd: project, env: env() });
    expect(plan.stdout).toContain('finish the interrupted detach of logs_2020_01 from public.logs, then drop it');
    const applied = await runCli(['apply', '--auto-approve', '--allow-drop'], { cwd: project, env: env() });
    expect(applied.code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
    await db.pool.query(`DROP TABLE logs`);
  });

  it('reports a partition policy the database cannot follow in one line, vacuums anyway and exits 1', async () => {
    await churnedTable(db.pool, 'public', 'jobs');
    const project = await projectWith({
      'jobs.yaml': `table: jobs\nvacuum: { max_dead_ratio: 0.05 }\n`,
      'audit.yaml': `table: audit_log\npartitioning: { by: range, column: at, interval: month, premake: 1 }\n`,
    });
    const maintain = await runCli(['maintain'], { cwd: project, env: env() });
    const upkeep = maintain.stderr.split('\n').filter((line) => line.startsWith('partitions:'));
    expect(upkeep).toHaveLength(1);
    expect(upkeep[0]).toMatch(/^partitions: upkeep failed, vacuum work goes on: .*audit_log/);
    expect(maintain.stdout).toMatch(/ {2}public\.jobs +VACUUM \(ANALYZE\) .* done/);
    expect(await deadTuples(db.pool, 'public', 'jobs')).toBe(0);
    expect(maintain.code).toBe(1);
    await db.pool.query(`DROP TABLE jobs`);
  });
});
