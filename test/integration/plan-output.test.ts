import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let project: string;
const env = (): NodeJS.ProcessEnv => ({ DATABASE_URL: db.url });

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`CREATE TABLE servers (id int PRIMARY KEY, tenant_id int, "name|pipe" text); CREATE INDEX unmanaged_idx ON servers ("name|pipe")`);
  project = await projectWith({
    'servers.yaml': 'table: servers\nindexes:\n  - name: "servers_tenant|idx"\n    columns: [tenant_id]\n',
  });
});
afterAll(async () => {
  await db.close();
});

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The `|` that split a GFM table row: those not escaped as `\\|`. */
function unescapedPipes(row: string): number {
  return (row.match(/(?<!\\)\|/g) ?? []).length;
}

describe('plan output for people and machines', () => {
  it('prints a versioned JSON plan with SQL, lock, online flag, reason, size and fingerprint', async () => {
    const result = await runCli(['plan', '--format', 'json'], { cwd: project, env: env() });
    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout) as {
      formatVersion: number;
      fingerprint: string;
      database: string;
      changes: { glyph: string; online: boolean; lock: { mode: string }; change: { reason: string; table: { bytes: number } }; steps: { kind: string; sql?: string }[] }[];
      warnings: { message: string }[];
    };
    expect(plan.formatVersion).toBe(1);
    expect(plan.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(plan.database).toBe(db.name);
    expect(plan.changes).toHaveLength(1);
    const [change] = plan.changes;
    expect(change?.glyph).toBe('+');
    expect(change?.online).toBe(true);
    expect(change?.lock.mode).toBe('SHARE UPDATE EXCLUSIVE');
    expect(change?.change.reason).toBe('declared in the policy and missing');
    expect(change?.change.table.bytes).toBeGreaterThanOrEqual(0);
    expect(change?.steps.find((s) => s.kind === 'sql')?.sql).toBe('CREATE INDEX CONCURRENTLY "servers_tenant|idx" ON "public"."servers" USING btree ("tenant_id")');
    expect(plan.warnings[0]?.message).toContain('unmanaged_idx is not declared');
  });

  it('renders Markdown for a pull request: marker, summary, warnings first, a table of changes and collapsible SQL', async () => {
    const result = await runCli(['plan', '--format', 'markdown', '--detailed-exitcode'], { cwd: project, env: env() });
    expect(result.code).toBe(2);
    const md = result.stdout;
    expect(md.startsWith('<!-- pgwarden-plan -->')).toBe(true);
    expect(md).toContain('### pgwarden plan: 1 to add, 0 to change, 0 to destroy');
    expect(md.indexOf('[!WARNING]')).toBeLessThan(md.indexOf('| | Change | Lock | Risk |'));
    // A `|` in a user's index name must not break the table.
    expect(md).toContain('| `+` | create index servers_tenant\\|idx on public.servers | SHARE UPDATE EXCLUSIVE | online build |');
    expect(md).toMatch(/<details><summary>SQL \(1 statements\)<\/summary>[\s\S]*CREATE INDEX CONCURRENTLY "servers_tenant\|idx"[\s\S]*<\/details>/);
  });

  it('keeps a hostile table, index name and predicate inside their cell, code span and SQL block', async () => {
    // Each name tries one way out: a fence, a heading, a list item, an HTML comment, the end of <details>.
    const table = 'evil`|</details>-->';
    const index = 'a```\n### pgwarden plan: no changes';
    const where = "note <> '````' AND note <> '</details><!--'";
    const unmanaged = 'u|<!--\n- [x] approved';
    await db.pool.query(`CREATE TABLE ${ident(table)} (id int, note text); CREATE INDEX ${ident(unmanaged)} ON ${ident(table)} (id)`);
    const hostile = await projectWith({ 'evil.yaml': JSON.stringify({ table, indexes: [{ name: index, columns: ['note'], where }] }) });

    const json = await runCli(['plan', '--format', 'json'], { cwd: hostile, env: env() });
    const sql = (JSON.parse(json.stdout) as { changes: { steps: { sql?: string }[] }[] }).changes.flatMap((c) => c.steps.flatMap((s) => s.sql ?? []));
    const md = (await runCli(['plan', '--format', 'markdown'], { cwd: hostile, env: env() })).stdout;
    const lines = md.split('\n');

    const fences = lines.filter((l) => /^ {0,3}`{3,}/.test(l));
    // The predicate holds a run of four backticks: the fence is five.
    expect(fences).toEqual(['`````sql', '`````']);
    const block = md.slice(md.indexOf('`````sql\n') + 9, md.lastIndexOf('\n`````\n'));
    expect(block).toContain(`${sql[0]};`);
    expect(block.split('\n').filter((l) => l.startsWith('-- '))).toHaveLength(1);

    const outside = md.replace(block, '');
    expect(outside.split('\n').filter((l) => l.startsWith('#'))).toEqual(['### pgwarden plan: 1 to add, 0 to change, 0 to destroy']);
    expect(outside.match(/(?<!\\)<\/?details>/g)).toEqual(['<details>', '</details>']);
    expect(outside.match(/(?<!\\)<!--|--(?<!\\)>/g)).toEqual(['<!--', '-->']);
    expect(outside).not.toMatch(/(^|[^\\])<(?!!-- pgwarden-plan -->|\/?details>|\/?summary>|\/?sub>)/m);

    const rows = lines.slice(lines.indexOf('| | Change | Lock | Risk | Table size | Policy |'));
    const table_ = rows.slice(0, rows.indexOf(''));
    expect(table_).toHaveLength(3);
    for (const row of table_) expect(unescapedPipes(row)).toBe(7);
    expect(table_[2]).toContain('create index a\\`\\`\\` ### pgwarden plan: no changes on public.evil\\`\\|\\</details\\>--\\>');

    const warning = lines.find((l) => l.startsWith('> - ') && l.includes('u|'));
    expect(warning).toContain('u|\\<!-- - \\[x\\] approved');
    await db.pool.query(`DROP TABLE ${ident(table)}`);
  });

  it('uses a template the user supplies instead of the bundled one', async () => {
    await writeFile(path.join(project, 'mine.hbs'), 'changes={{plan.summary.add}} db={{plan.database}}\n');
    const result = await runCli(['plan', '--format', 'markdown', '--template', 'mine.hbs'], { cwd: project, env: env() });
    expect(result.stdout).toBe(`changes=1 db=${db.name}\n`);
  });

  it('saves the plan with --out and exits 0 without --detailed-exitcode even when changes exist', async () => {
    const result = await runCli(['plan', '--out', 'saved.json'], { cwd: project, env: env() });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Plan: 1 to add, 0 to change, 0 to destroy.');
    const saved = JSON.parse(await readFile(path.join(project, 'saved.json'), 'utf8')) as { changes: unknown[] };
    expect(saved.changes).toHaveLength(1);
  });

  it('exits 1 with one clear line for an unknown format, a bad URL and an unreachable server, never printing a password', async () => {
    const format = await runCli(['plan', '--format', 'yaml'], { cwd: project, env: env() });
    expect(format.code).toBe(1);
    expect(format.stderr).toBe('pgwarden: --format must be text, json or markdown, got "yaml"\n');
    const down = await runCli(['plan'], { cwd: project, env: { DATABASE_URL: 'postgres://app:s3cret@127.0.0.1:1/db' } });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^pgwarden: cannot connect to the database: /);
    expect(down.stderr).not.toContain('s3cret');
    expect(down.stderr).not.toContain('    at ');
  });
});
