import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workflowCommand } from '../../engine/cli/policy-errors.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

// Policy errors as data (--json) and as GitHub annotations, from validate (no database) and from plan
// (errors only the database can find).
let db: TestDatabase;
let broken: string;
let mismatched: string;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query('CREATE TABLE orders (id int PRIMARY KEY, tenant_id int)');
  broken = await projectWith({
    'orders.yaml': 'table: public.orders\nindexes:\n  - name: orders_tenant_idx\n    colums: [tenant_id]\n',
    'z.yaml': 'table: public.orders\n',
  });
  mismatched = await projectWith({ 'orders.yaml': 'table: public.orders\nindexes:\n  - name: orders_missing_idx\n    columns: [no_such_column]\n' });
});
afterAll(async () => {
  await db.close();
  await Promise.all([broken, mismatched].map((dir) => rm(dir, { recursive: true, force: true })));
});

interface ErrorData {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
  readonly hint: string | null;
}

describe('policy errors for machines', () => {
  it('validate --json prints every error on stdout as data and exits 1', async () => {
    const result = await runCli(['validate', '--json'], { cwd: broken });
    expect(result.code).toBe(1);
    const { valid, errors } = JSON.parse(result.stdout) as { valid: boolean; errors: ErrorData[] };
    expect(valid).toBe(false);
    expect(errors).toContainEqual({ file: 'policies/orders.yaml', line: 4, column: 5, message: expect.stringContaining('unknown key "colums"') as string, hint: 'did you mean "columns"?' });
    expect(errors).toContainEqual(expect.objectContaining({ file: 'policies/z.yaml', line: 1, message: expect.stringContaining('has two policies') as string }));
    expect(result.stderr).toContain('policies/orders.yaml:4:5: unknown key "colums"');
  });

  it('plan --json prints the errors only the database finds as data and exits 1', async () => {
    const result = await runCli(['plan', '--json'], { cwd: mismatched, env: { DATABASE_URL: db.url } });
    expect(result.code).toBe(1);
    const { errors } = JSON.parse(result.stdout) as { errors: ErrorData[] };
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ file: 'policies/orders.yaml', line: 3, message: expect.stringContaining('no_such_column') as string });
  });

  it('plan --format json does the same for errors in the files, before connecting', async () => {
    const result = await runCli(['plan', '--format', 'json'], { cwd: broken, env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } });
    expect(result.code).toBe(1);
    expect((JSON.parse(result.stdout) as { errors: ErrorData[] }).errors.length).toBe(3);
  });

  it('prints each error as a GitHub workflow command when GITHUB_ACTIONS=true', async () => {
    const result = await runCli(['validate'], { cwd: broken, env: { GITHUB_ACTIONS: 'true' } });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const commands = result.stderr.split('\n').filter((line) => line.startsWith('::error '));
    expect(commands).toHaveLength(3);
    const colums = commands.find((c) => c.startsWith('::error file=policies/orders.yaml,line=4,col=5,title=pgwarden::unknown key "colums" in index'));
    expect(colums).toMatch(/\(did you mean "columns"\?\)$/u);
  });

  it('escapes workflow command properties and data as the Actions toolkit does', () => {
    expect(workflowCommand({ file: 'policies/a,b:c.yaml', line: 2, col: 3, message: '100% sure\nnext line', hint: 'x' })).toBe(
      '::error file=policies/a%2Cb%3Ac.yaml,line=2,col=3,title=pgwarden::100%25 sure%0Anext line (x)\n',
    );
  });

  it('prints no workflow commands outside GitHub Actions', async () => {
    const result = await runCli(['validate'], { cwd: broken });
    expect(result.stderr).not.toContain('::error');
  });
});
