import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
const env = (): NodeJS.ProcessEnv => ({ DATABASE_URL: db.url });

async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db.pool.query(text, values)).rows;
}

beforeAll(async () => {
  db = await useTestDatabase();
  await sql(`CREATE SCHEMA "Ops ""Team"""`);
  await sql(`CREATE TABLE "Ops ""Team"""."Select" ("User Id" int, "größe" text, "order" text, "x""; DROP TABLE canary; --" text)`);
  await sql(`CREATE TABLE canary (ok boolean)`);
  await sql(`INSERT INTO "Ops ""Team"""."Select" SELECT g, 'g' || g, 'o' || (g % 3), 'z' FROM generate_series(1, 1000) g`);
});
afterAll(async () => {
  await db.close();
});

describe('hostile identifiers and policy strings', () => {
  it('quotes names with quotes, spaces, capitals, unicode and reserved words, and converges', async () => {
    const project = await projectWith({
      'weird.yaml': [
        'schema: Ops "Team"',
        'table: Select',
        'indexes:',
        '  - name: "Idx \\"größe\\" order"',
        '    columns:',
        '      - column: User Id',
        '        order: desc',
        '      - column: größe',
        '    include: [order]',
        '  - name: "x\\"; DROP TABLE canary; --"',
        '    columns: [{ column: "x\\"; DROP TABLE canary; --" }]',
        '',
      ].join('\n'),
    });
    const plan = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() });
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain('ON "Ops ""Team"""."Select" USING btree ("User Id" DESC, "größe") INCLUDE ("order")');
    const applied = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
    const names = await sql(`SELECT relname FROM pg_class WHERE relnamespace = '"Ops ""Team"""'::regnamespace AND relkind = 'i' ORDER BY 1`);
    expect(names.map((r) => r['relname'])).toEqual(['Idx "größe" order', 'x"; DROP TABLE canary; --']);
    expect((await sql(`SELECT to_regclass('public.canary') IS NOT NULL AS present`))[0]?.['present']).toBe(true);
  });

  it('never executes a second statement smuggled into a where predicate', async () => {
    const project = await projectWith({
      'inject.yaml': [
        'table: canary',
        'indexes:',
        '  - name: canary_ok_idx',
        '    columns: [ok]',
        `    where: "true); DROP TABLE canary; CREATE INDEX x ON canary (ok"`,
        '',
      ].join('\n'),
    });
    const plan = await runCli(['plan'], { cwd: project, env: env() });
    expect(plan.code).toBe(1);
    expect(plan.stderr).toMatch(/inject\.yaml:3:\d+: index canary_ok_idx: .*(ends the CREATE INDEX statement|syntax error)/);
    expect((await sql(`SELECT to_regclass('public.canary') IS NOT NULL AS present`))[0]?.['present']).toBe(true);
  });

  it('reads a backslash in a predicate as the parser check did, even where the server defaults to standard_conforming_strings off', async () => {
    // With the setting off, '\\' would open a string that the next quote does not close, and the text
    // after it would be a second statement the check never saw.
    const where = `ok::text <> '\\' OR ok::text <> ');CREATE TABLE smuggled ();SELECT 1 --'`;
    const project = await projectWith({
      'backslash.yaml': ['table: canary', 'indexes:', '  - name: canary_backslash_idx', '    columns: [ok]', `    where: ${JSON.stringify(where)}`, ''].join('\n'),
    });
    const offEnv = { DATABASE_URL: `${db.url}${db.url.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c standard_conforming_strings=off')}` };
    const planned = await runCli(['plan'], { cwd: project, env: offEnv });
    expect(planned.stderr).toBe('');
    const applied = await runCli(['apply', '--auto-approve'], { cwd: project, env: offEnv });
    expect(applied.code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: offEnv })).code).toBe(0);
    expect((await sql(`SELECT to_regclass('public.smuggled') IS NULL AS absent`))[0]?.['absent']).toBe(true);
  });

  it('reports only the broken one of several expression indexes on a table, and still plans the others', async () => {
    const project = await projectWith({
      'expr.yaml': [
        'table: canary',
        'indexes:',
        '  - name: canary_bad_expr_idx',
        '    columns: [{ expression: "no_such_function(ok)" }]',
        '  - name: canary_good_expr_idx',
        '    columns: [{ expression: "(NOT ok)" }]',
        "    where: \"ok IS NOT NULL\"",
        '',
      ].join('\n'),
    });
    const plan = await runCli(['plan'], { cwd: project, env: env() });
    expect(plan.code).toBe(1);
    expect(plan.stderr).toMatch(/expr\.yaml:3:\d+: index canary_bad_expr_idx: function no_such_function\(boolean\) does not exist/);
    expect(plan.stderr).not.toContain('canary_good_expr_idx');
    expect(plan.stderr).toContain('1 error in the policies');
  });

  it('reports a missing table and a missing column at plan time with the policy location', async () => {
    const project = await projectWith({
      'a.yaml': 'table: no_such_table\nindexes:\n  - name: nope_idx\n    columns: [id]\n',
      'b.yaml': 'table: canary\nindexes:\n  - name: canary_missing_idx\n    columns: [missing_column]\n',
    });
    const plan = await runCli(['plan'], { cwd: project, env: env() });
    expect(plan.code).toBe(1);
    expect(plan.stderr).toMatch(/a\.yaml:1:1: table public\.no_such_table does not exist/);
    expect(plan.stderr).toMatch(/b\.yaml:3:\d+: index canary_missing_idx: column "missing_column" does not exist/);
    expect(plan.stderr).toContain('2 errors in the policies; nothing was changed.');
  });
});
