import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDatabase } from '../../engine/cluster/local-address.ts';
import type { Plan } from '../../engine/plan/plan.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { ident } from '../../engine/sql/ident.ts';
import { runCli } from '../support/cli.ts';
import { convergeHelpers } from '../support/converge.ts';
import { primaryAdminUrl, useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
const { env, sql, applyAndConverge } = convergeHelpers(() => db);
const folders: string[] = [];

async function emptyProject(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-import-'));
  folders.push(dir);
  return dir;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: primaryAdminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function importInto(project: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(['import', ...args], { cwd: project, env: env() });
}

async function planJson(project: string, url = db.url): Promise<Plan> {
  const result = await runCli(['plan', '--json'], { cwd: project, env: { DATABASE_URL: url } });
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout) as Plan;
}

/** Every index's definition and reloptions; a partition's index without its name, which pgwarden chooses itself. */
async function indexDefinitions(url: string, declared: ReadonlySet<string>): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ schema: string; name: string; definition: string; reloptions: string[] | null; partition: boolean }>(`
      SELECT n.nspname AS schema, c.relname AS name, pg_get_indexdef(c.oid) AS definition, c.reloptions, c.relispartition AS partition
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('i', 'I') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden', 'pg_toast')`);
    return rows
      .map((r) => {
        const named = declared.has(`${r.schema}.${r.name}`) || !r.partition;
        const definition = named ? r.definition : r.definition.replace(/^(CREATE (UNIQUE )?INDEX )\S+( ON)/u, '$1<partition index>$3');
        return `${definition} ${JSON.stringify(r.reloptions)}`;
      })
      .sort();
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  db = await useTestDatabase();
  const available = await sql(`SELECT name FROM pg_available_extensions WHERE name IN ('pg_trgm', 'btree_gin', 'btree_gist') ORDER BY 1`);
  expect(available.map((r) => r['name'])).toEqual(['btree_gin', 'btree_gist', 'pg_trgm']);
  await sql(await readFile(path.join(import.meta.dirname, 'torture-schema.sql'), 'utf8'));
});
afterAll(async () => {
  await db.close();
  await Promise.all(folders.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('pgwarden import', () => {
  let project = '';

  it('writes one policy file per table, and the first plan holds only adoptions; apply, then No changes', async () => {
    project = await emptyProject();
    const imported = await importInto(project);
    expect(imported.stderr).toBe('');
    expect(imported.code).toBe(0);
    const files = (await readdir(path.join(project, 'policies'))).sort();
    expect(files).toEqual(expect.arrayContaining(['Odd_Schema.User_Table.yaml', 'app.accounts.yaml', 'app.events.yaml', 'app.metrics.yaml', 'app.regions.yaml', 'app.shards.yaml', 'readings.yaml']));
    // Extension-owned and constraint-backed indexes are not declared.
    const accounts = await readFile(path.join(project, 'policies', 'app.accounts.yaml'), 'utf8');
    expect(accounts).toMatch(/^# yaml-language-server: \$schema=/u);
    expect(accounts).toContain('# Imported by pgwarden import on ');
    expect(accounts).toContain('managed: partial');
    expect(accounts).not.toContain('accounts_pkey');
    expect(accounts).not.toContain('accounts_no_overlap');
    expect(accounts).toContain('with: {fastupdate: off, gin_pending_list_limit: 256}');
    expect(accounts).toContain('autovacuum: {vacuum_scale_factor: 0.02, enabled: true}');
    const events = await readFile(path.join(project, 'policies', 'app.events.yaml'), 'utf8');
    expect(events).toMatch(/partitioning:\n {2}by: range\n {2}column: created_at\n {2}interval: month\n {2}premake: 1\n {2}default_partition: true/u);
    const audit = await readFile(path.join(project, 'policies', 'app.audit.yaml'), 'utf8');
    expect(audit).toMatch(/ {2}interval: day\n {2}premake: 1\n {2}naming: "\{table\}_p\{YYYY\}\{MM\}\{DD\}"\n/u);
    expect(imported.stdout).toContain('app.regions is partitioned by list');
    expect(imported.stdout).toContain('app.metrics is partitioned on two levels');
    expect(imported.stdout).toContain('accounts_email_gist_trgm gives its operator class parameters');

    // The suite's primary streams to a standby: a commented routing skeleton names it, with url_env.
    const routing = await readFile(path.join(project, 'policies', 'routing.yaml'), 'utf8');
    expect(routing).toMatch(/^# {3}replicas:\n# {5}- \{ name: ".+", url_env: PGWARDEN_REPLICA_.+_URL \}$/mu);
    expect(routing).not.toContain('postgres://');

    const plan = await planJson(project);
    expect(plan.changes.length).toBeGreaterThan(25);
    for (const c of plan.changes) {
      expect(['adopt-index', 'set-storage-parameters']).toContain(c.change.kind);
      expect(c.steps.filter((s) => s.kind === 'sql')).toEqual([]);
    }
    await applyAndConverge(project);
  });

  it('rebuilds every declared index identically on a copy of the database without them', async () => {
    const { desired } = await loadPolicies(path.join(project, 'policies'));
    const declared = desired.tables.flatMap((t) => t.indexes.map((i) => `${i.schema}.${i.name}`));
    const copy = `${db.name}_copy`;
    await admin(async (c) => {
      await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [db.name]);
      await c.query(`CREATE DATABASE ${ident(copy)} TEMPLATE ${ident(db.name)}`);
    });
    const copyUrl = withDatabase(primaryAdminUrl(), copy);
    try {
      const client = new pg.Client({ connectionString: copyUrl });
      await client.connect();
      try {
        await client.query('DROP SCHEMA pgwarden CASCADE');
        for (const name of declared) {
          const [schema, index] = [name.slice(0, name.indexOf('.')), name.slice(name.indexOf('.') + 1)];
          await client.query(`DROP INDEX IF EXISTS ${ident(schema)}.${ident(index)}`);
        }
      } finally {
        await client.end();
      }
      const applied = await runCli(['apply', '--auto-approve'], { cwd: project, env: { DATABASE_URL: copyUrl } });
      expect(applied.stderr).toBe('');
      expect(applied.code).toBe(0);
      expect((await planJson(project, copyUrl)).changes).toEqual([]);
      const names = new Set(declared);
      expect(await indexDefinitions(copyUrl, names)).toEqual(await indexDefinitions(db.url, names));
    } finally {
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${ident(copy)} WITH (FORCE)`));
    }
  });

  it('merges into edited files: comments, order and edits stay, new indexes are added, vanished ones reported', async () => {
    const file = path.join(project, 'policies', 'Odd_Schema.User_Table.yaml');
    const before = await readFile(file, 'utf8');
    // The user's edits: a comment, the two first indexes swapped, one index changed.
    const [head, list] = [before.slice(0, before.indexOf('  - name: Odd Index')), before.slice(before.indexOf('  - name: Odd Index'))];
    const entries = list.split(/(?=  - name: )/u);
    const edited = `${head}  # reviewed by the team\n${entries[1]?.replace('where:', '# partial on purpose\n    where:')}${entries[0]}${entries.slice(2).join('')}`.replace('columns: [{column: "a\\"b"}]', 'columns: [{column: "a\\"b"}]\n    with: { fillfactor: 80 }');
    await writeFile(file, edited);
    await sql(`CREATE INDEX "select_idx" ON "Odd Schema"."User Table" ("select")`);
    await sql(`DROP INDEX "Odd Schema"."Odd Index"`);

    const dry = await importInto(project, '--dry-run', '--table', 'Odd Schema.*');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('+  - name: select_idx');
    expect(await readFile(file, 'utf8')).toBe(edited);

    const again = await importInto(project, '--table', 'Odd Schema.*');
    expect(again.stderr).toBe('');
    expect(again.stdout).toContain('index Odd Index of Odd Schema.User Table is declared but no longer in the database (kept; --prune removes it)');
    const merged = await readFile(file, 'utf8');
    expect(merged).toContain('# reviewed by the team');
    expect(merged).toContain('# partial on purpose');
    expect(merged).toContain('with: { fillfactor: 80 }');
    expect(merged.indexOf('name: größe_idx')).toBeLessThan(merged.indexOf('name: Odd Index'));
    expect(merged).toMatch(/- name: select_idx\n {4}columns: \[select\]\n$/u);
    // Spliced into the text: every line the user wrote is there as written.
    for (const line of edited.split('\n')) expect(merged).toContain(line);

    const pruned = await importInto(project, '--table', 'Odd Schema.*', '--prune');
    expect(pruned.stdout).toContain('(removed: --prune)');
    expect(await readFile(file, 'utf8')).not.toContain('Odd Index');
  });

  it('limits itself to --schema and --table, and says the same with --json', async () => {
    const dir = await emptyProject();
    const result = await importInto(dir, '--schema', 'app', '--table', 'app.acc*', '--json');
    const json = JSON.parse(result.stdout) as { files: { file: string; action: string }[]; unexpressed: { table: string }[]; roundTrips: number };
    expect(json.files).toEqual([{ file: 'policies/app.accounts.yaml', action: 'create' }]);
    expect(json.unexpressed.map((u) => u.table)).toEqual(['app.accounts', 'app.accounts']);
    // plan's introspection (at most 8, registries included), the recovery check and the names query: a constant, whatever the size.
    expect(json.roundTrips).toBeLessThanOrEqual(10);
  });

  describe('bad input: one clear line, nothing written', () => {
    it('a policies directory that cannot be made', async () => {
      const dir = await emptyProject();
      await writeFile(path.join(dir, 'plain-file'), '');
      const result = await importInto(dir, '--policies', 'plain-file/policies');
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^pgwarden: cannot write the policies to plain-file\/policies: .*; import wrote nothing\n$/u);
    });

    it('a policy file that does not parse', async () => {
      const dir = await emptyProject();
      await runCli(['import', '--table', 'app.shards'], { cwd: dir, env: env() });
      await writeFile(path.join(dir, 'policies', 'broken.yaml'), 'table: x\nindexes: [\n');
      const result = await importInto(dir);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^pgwarden: policies\/broken\.yaml:\d+:\d+: the file does not parse \(.*\); fix it, then import again; import wrote nothing\n$/u);
      expect((await readdir(path.join(dir, 'policies'))).sort()).toEqual(['app.shards.yaml', 'broken.yaml']);
    });

    it('two new tables whose files would have the same name', async () => {
      const dir = await emptyProject();
      await sql(`CREATE TABLE public."col lide" (a int); CREATE TABLE public."col_lide" (a int)`);
      try {
        const result = await importInto(dir, '--table', 'public.col*');
        expect(result.code).toBe(1);
        expect(result.stderr).toBe(
          'pgwarden: tables public.col lide and public.col_lide would both be written to policies/col_lide.yaml; import them separately (--table), or write one policy by hand first; import wrote nothing\n',
        );
        expect(await readdir(dir)).toEqual([]);
      } finally {
        await sql(`DROP TABLE public."col lide", public."col_lide"`);
      }
    });

    it('a file named after the table that holds another table', async () => {
      const dir = await emptyProject();
      await runCli(['import', '--table', 'app.shards'], { cwd: dir, env: env() });
      await writeFile(path.join(dir, 'policies', 'app.regions.yaml'), 'table: app.somewhere_else\n');
      const result = await importInto(dir);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        'pgwarden: policies/app.regions.yaml exists and holds no policy of app.regions, which import would write there; rename that file or move app.regions\'s policy into it, then import again; import wrote nothing\n',
      );
      expect((await readdir(path.join(dir, 'policies'))).sort()).toEqual(['app.regions.yaml', 'app.shards.yaml']);
    });
  });
});
