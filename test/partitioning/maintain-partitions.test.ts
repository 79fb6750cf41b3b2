import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
});
