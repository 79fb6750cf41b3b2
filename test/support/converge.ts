import pg from 'pg';
import { expect } from 'vitest';
import { runCli, type CliResult } from './cli.ts';
import type { TestDatabase } from './database.ts';

/**
 * What the plan/apply integration tests share, bound to the test file's database (a getter: the
 * database is made in `beforeAll`). `applyAndConverge` is the rule every applying test follows:
 * apply, then plan again and find nothing left to change.
 */
export function convergeHelpers(database: () => TestDatabase) {
  const env = (): NodeJS.ProcessEnv => ({ DATABASE_URL: database().url });

  async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
    return (await database().pool.query(text, values)).rows;
  }

  async function plan(project: string, ...args: string[]): Promise<CliResult> {
    return runCli(['plan', '--detailed-exitcode', ...args], { cwd: project, env: env() });
  }

  async function applyAndConverge(project: string, ...args: string[]): Promise<string> {
    const applied = await runCli(['apply', '--auto-approve', ...args], { cwd: project, env: env() });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const again = await plan(project);
    expect(again.stdout).toContain('No changes.');
    expect(again.code).toBe(0);
    return applied.stdout;
  }

  /** What a concurrent build leaves when it runs into lock_timeout waiting for an old snapshot: an INVALID index. */
  async function leaveInvalidIndex(statement: string): Promise<void> {
    const old = new pg.Client({ connectionString: database().url });
    const builder = new pg.Client({ connectionString: database().url });
    await Promise.all([old.connect(), builder.connect()]);
    try {
      await old.query(`BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1`);
      await builder.query(`SET lock_timeout = '300ms'`);
      await expect(builder.query(statement)).rejects.toThrow('lock timeout');
    } finally {
      await old.query('ROLLBACK');
      await Promise.all([old.end(), builder.end()]);
    }
  }

  return { env, sql, plan, applyAndConverge, leaveInvalidIndex };
}
