import { mkdtemp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectWith, runCli, writePolicy } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let project: string;
let work: string;

const ORDERS = `table: public.orders
indexes:
  - name: orders_customer_idx
    columns: [customer]
`;
const ORDERS_MORE = `${ORDERS}  - name: orders_placed_idx
    columns: [placed_at desc]
`;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, placed_at timestamptz NOT NULL DEFAULT now())');
  await db.pool.query('INSERT INTO orders (id, customer) SELECT g, g % 50 FROM generate_series(1, 5000) g');
  await db.pool.query('DELETE FROM orders WHERE id % 3 = 0');
  await db.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  // The statement the index is for, before the apply and after it: the run page compares the two.
  for (let i = 0; i < 20; i++) await db.pool.query('SELECT id FROM orders WHERE customer = $1', [i]);
  project = await projectWith({ 'orders.yaml': ORDERS });
  const applied = await runCli(['apply', '--auto-approve', '--database-url', db.url], { cwd: project });
  expect(applied.code, applied.stderr).toBe(0);
  expect((await runCli(['plan', '--detailed-exitcode', '--database-url', db.url], { cwd: project })).code).toBe(0);
  for (let i = 0; i < 20; i++) await db.pool.query('SELECT id FROM orders WHERE customer = $1', [i]);
  // A maintain run and a routing apply: their records are not index plans, and their pages must build.
  // On a session that then exits, so its statistics (the dead rows maintain looks for) are flushed.
  const churn = new pg.Client({ connectionString: db.url });
  await churn.connect();
  await churn.query('ALTER TABLE orders SET (autovacuum_enabled = off); DELETE FROM orders WHERE id % 5 = 0');
  await churn.end();
  for (let i = 0; i < 100; i++) {
    const dead = await db.pool.query<{ n: string }>("SELECT pg_stat_get_dead_tuples('orders'::regclass) AS n");
    if (Number(dead.rows[0]?.n) > 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await writePolicy(project, 'defaults.yaml', 'defaults:\n  vacuum:\n    max_dead_ratio: 0.01\n');
  const maintained = await runCli(['maintain', '--database-url', db.url], { cwd: project });
  expect(maintained.code, maintained.stderr).toBe(0);
  await writePolicy(project, 'routing.yaml', 'routing:\n  replicas:\n    - name: standby1\n      url_env: REPLICA_URL\n  reads: replica\n  max_lag_ms: 60000\n');
  const routed = await runCli(['apply', '--auto-approve', '--database-url', db.url], { cwd: project, env: { REPLICA_URL: db.standbyUrl } });
  expect(routed.code, routed.stderr).toBe(0);
  // A saved plan not applied yet: the report shows it beside the history.
  await writePolicy(project, 'orders.yaml', ORDERS_MORE);
  const planned = await runCli(['plan', '--out', 'pending.json', '--database-url', db.url], { cwd: project, env: { REPLICA_URL: db.standbyUrl } });
  expect(planned.code, planned.stderr).toBe(0);
  work = await mkdtemp(path.join(tmpdir(), 'pgwarden-report-test-'));
});

afterAll(async () => {
  await db?.close();
  if (work) await rm(work, { recursive: true, force: true });
  if (project) await rm(project, { recursive: true, force: true });
});

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(full)));
    else out.push(full);
  }
  return out;
}

describe('pgwarden report --out DIR', () => {
  // One astro build (10-30 s on a busy 2-core machine) serves the tests of this block.
  it('builds a static site with the plan history, a page per run, the index ledger, vacuum and health', { timeout: 150_000 }, async () => {
    const out = path.join(work, 'site');
    const r = await runCli(['report', '--out', out, '--plans', 'pending.json', '--live-url', 'http://127.0.0.1:3000', '--database-url', db.url], { cwd: project });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/pgwarden report: 4 run\(s\)/);

    const history = await readFile(path.join(out, 'index.html'), 'utf8');
    expect(history).toContain('href="/runs/1/"');
    expect(history).toContain('saved plan');
    expect(history).toContain('succeeded');

    const run = await readFile(path.join(out, 'runs', '1', 'index.html'), 'utf8');
    expect(run).toMatch(/CREATE INDEX CONCURRENTLY (&quot;|")orders_customer_idx/);
    expect(run).toContain('SHARE UPDATE EXCLUSIVE');
    expect(run).toContain('orders.yaml:');
    expect(run).toMatch(/applied in \d/);
    expect(run).toContain('Statements on the changed tables, before and since');
    expect(run).toContain('SELECT id FROM orders WHERE customer = $1');

    // The maintain run: its tables with their figures, not an empty list of changes.
    const maintain = await readFile(path.join(out, 'runs', '2', 'index.html'), 'utf8');
    expect(maintain).toContain('maintain #2');
    expect(maintain).toMatch(/VACUUM \(ANALYZE\) (&quot;|")public(&quot;|")\.(&quot;|")orders/);
    expect(maintain).toMatch(/[\d.]+k? → 0/);
    expect(maintain).not.toContain('No changes: the database already matched');
    // The routing apply: where each change runs instead of a table.
    const routing = await readFile(path.join(out, 'runs', '3', 'index.html'), 'utf8');
    expect(routing).toContain('CREATE TABLE IF NOT EXISTS pgwarden.heartbeat');
    expect(routing).toContain('the primary');

    // Identifiers may break after their dots and underscores (<wbr>): read the text without them.
    const ledger = (await readFile(path.join(out, 'indexes', 'index.html'), 'utf8')).replaceAll('<wbr>', '');
    expect(ledger).toContain('public.orders_customer_idx');
    expect(ledger).toMatch(/class="flag managed"/);

    const vacuum = (await readFile(path.join(out, 'tables', 'index.html'), 'utf8')).replaceAll('<wbr>', '');
    expect(vacuum).toContain('public.orders');

    const sizes = (await readFile(path.join(out, 'sizes', 'index.html'), 'utf8')).replaceAll('<wbr>', '');
    expect(sizes).toMatch(/public\.orders<\/code>/);

    const health = await readFile(path.join(out, 'health', 'index.html'), 'utf8');
    expect(health).toContain('cache hit');
    expect(health).not.toContain('no health snapshot');
  });

  it('ships no JavaScript on any page but the live one, and says how much the live page ships', async () => {
    const out = path.join(work, 'site');
    for (const page of ['index.html', 'runs/1/index.html', 'indexes/index.html', 'tables/index.html', 'sizes/index.html', 'health/index.html']) {
      const html = await readFile(path.join(out, page), 'utf8');
      expect(html, page).not.toMatch(/<script/);
    }
    const live = await readFile(path.join(out, 'live', 'index.html'), 'utf8');
    expect(live).toContain('<astro-island');
    const js = (await files(path.join(out, '_astro'))).filter((f) => f.endsWith('.js'));
    const bytes = (await Promise.all(js.map((f) => stat(f)))).reduce((n, s) => n + s.size, 0);
    expect(bytes).toBeGreaterThan(50_000);
    expect(bytes).toBeLessThan(500_000);
  });

  it('points the published live page at the serve URL it was given', async () => {
    const live = await readFile(path.join(work, 'site', 'live', 'index.html'), 'utf8');
    expect(live).toContain('http://127.0.0.1:3000');
  });

  it('is ready for GitHub Pages: a .nojekyll file, so Jekyll keeps the _astro folder', async () => {
    expect((await stat(path.join(work, 'site', '.nojekyll'))).isFile()).toBe(true);
    expect((await files(path.join(work, 'site', '_astro'))).length).toBeGreaterThan(0);
  });

  it('links every page’s assets under --base when the site is published in a subfolder', { timeout: 150_000 }, async () => {
    const out = path.join(work, 'site-sub');
    const r = await runCli(['report', '--out', out, '--plans', 'pending.json', '--base', '/sub/', '--database-url', db.url], { cwd: project });
    expect(r.code, r.stderr).toBe(0);
    expect((await stat(path.join(out, '.nojekyll'))).isFile()).toBe(true);
    for (const page of ['index.html', 'live/index.html', 'runs/1/index.html']) {
      const html = await readFile(path.join(out, page), 'utf8');
      const assets = [...html.matchAll(/(?:href|src|component-url|renderer-url)="([^"]*_astro[^"]*)"/g)].map((m) => m[1] ?? '');
      expect(assets.length, page).toBeGreaterThan(0);
      expect(assets.filter((a) => !a.startsWith('/sub/_astro/')), page).toEqual([]);
      expect(html, page).toContain('href="/sub/live/"');
      expect([...html.matchAll(/(?:href|src)="(\/[^"]*)"/g)].map((m) => m[1]).filter((link) => !link?.startsWith('/sub/')), page).toEqual([]);
    }
  });
});

describe('pgwarden report: bad input', () => {
  it('requires --out', async () => {
    const r = await runCli(['report', '--database-url', db.url], { cwd: project });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--out DIR is required/);
  });

  it('refuses to write into a folder that holds something else', async () => {
    const dir = path.join(work, 'occupied');
    await mkdir(dir);
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    const r = await runCli(['report', '--out', dir, '--database-url', db.url], { cwd: project });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not empty and holds no previous report; nothing was written/);
    expect(await readdir(dir)).toEqual(['notes.txt']);
  });

  it('names a --plans file that is missing or is not a plan', async () => {
    const missing = await runCli(['report', '--out', path.join(work, 'x1'), '--plans', 'nope.json'], { cwd: project });
    expect(missing.stderr).toMatch(/--plans nope.json: no such file/);
    await writeFile(path.join(project, 'broken.json'), '{"formatVersion": 99}');
    const broken = await runCli(['report', '--out', path.join(work, 'x2'), '--plans', 'broken.json'], { cwd: project });
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/--plans broken.json: not a pgwarden plan/);
  });

  it('refuses a --live-url that is not an http(s) URL and a --base that is not a path', async () => {
    expect((await runCli(['report', '--out', path.join(work, 'x3'), '--live-url', 'javascript:alert(1)', '--database-url', db.url], { cwd: project })).stderr).toMatch(/--live-url must be an http\(s\) URL/);
    expect((await runCli(['report', '--out', path.join(work, 'x4'), '--base', 'docs', '--database-url', db.url], { cwd: project })).stderr).toMatch(/--base must be a path starting with \//);
  });

  it('says the database cannot be reached in one line, without the password', async () => {
    const u = new URL(db.url);
    u.password = 'hunter2';
    u.port = '1';
    const r = await runCli(['report', '--out', path.join(work, 'x5'), '--database-url', u.toString()], { cwd: project });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot connect to the database/);
    expect(r.stderr).not.toContain('hunter2');
  });
});
