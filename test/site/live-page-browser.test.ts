import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRouter, type RoutingPool } from '../../engine/routing/index.ts';
import { ident } from '../../engine/sql/ident.ts';
import { CREATE_HEARTBEAT_SQL, CREATE_ROUTER_METRICS_SQL } from '../../engine/sql/routing-ddl.ts';
import { launchBrowser, type TestBrowser } from '../support/browser.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { primaryAdminUrl, useTestDatabase, type TestDatabase } from '../support/database.ts';
import { freePort } from '../../engine/cluster/local-address.ts';

/**
 * The live page end to end: `pgwarden serve` (in-process, as the binary runs it) against the suite's
 * real primary and standby with a workload running, opened in Debian's Chromium. The site build happens
 * once, in beforeAll; the tests themselves take a few seconds each.
 */

const INTERVAL_S = 2;
let db: TestDatabase;
let browser: TestBrowser;
let cacheDir: string;
let project: string;
let baseUrl: string;
let stopServe: AbortController;
let served: Promise<{ code: number; stdout: string; stderr: string }>;
let workloadStop = false;
let workload: Promise<void>;
let router: RoutingPool | null = null;
let routedReads: Promise<void> = Promise.resolve();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The API's reads and writes a small web app makes, until told to stop; errors (an outage) are ridden out. */
async function runWorkload(url: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 3, connectionTimeoutMillis: 1000 });
  pool.on('error', () => undefined);
  let i = 0;
  while (!workloadStop) {
    i += 1;
    await Promise.all([
      pool.query('SELECT id, customer, total FROM orders WHERE customer = $1 ORDER BY id DESC LIMIT 20', [i % 200]),
      pool.query('SELECT count(*) FROM orders WHERE total > $1', [(i * 37) % 10_000]),
      pool.query('INSERT INTO orders (customer, total) VALUES ($1, $2)', [i % 200, i % 1000]),
      pool.query('UPDATE orders SET total = total + 1 WHERE id = $1', [(i % 5000) + 1]),
    ]).catch(() => sleep(200));
    await sleep(40);
  }
  await pool.end();
}

/**
 * An application's reads through the router, publishing its metrics every second: most go to the
 * standby; every tenth follows a write in its session and stays on the primary (read-your-writes).
 */
async function runRoutedReads(r: RoutingPool): Promise<void> {
  for (let i = 0; !workloadStop; i += 1) {
    const session = r.session();
    if (i % 10 === 0) await session.query('UPDATE orders SET total = total + 1 WHERE id = $1', [(i % 5000) + 1]).catch(() => undefined);
    await session.query('SELECT id, total FROM orders WHERE customer = $1 ORDER BY id DESC LIMIT 5', [i % 200]).catch(() => sleep(200));
    await sleep(20);
  }
}

const outputDir = (): string => process.env['PGWARDEN_TEST_OUTPUT'] ?? path.join(tmpdir(), 'pgwarden-test-output');

async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (error) {
      last = error;
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (${(last as Error).message})` : ''}`);
}

async function gaugeValues(page: Page): Promise<Record<string, string>> {
  return page.$$eval('[data-testid^="gauge-"]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-testid') ?? '', e.getAttribute('data-value') ?? ''])));
}

async function setConnections(allowed: boolean): Promise<void> {
  const admin = new pg.Client({ connectionString: primaryAdminUrl() });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE ${ident(db.name)} ALLOW_CONNECTIONS ${allowed ? 'true' : 'false'}`);
    if (!allowed) await admin.query('SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()', [db.name]);
  } finally {
    await admin.end();
  }
}

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await db.pool.query('CREATE TABLE orders (id bigserial PRIMARY KEY, customer int NOT NULL, total numeric NOT NULL)');
  await db.pool.query('INSERT INTO orders (customer, total) SELECT g % 200, g % 10000 FROM generate_series(1, 20000) g');
  // A partitioned table, read whole a few times: the sizes page shows it as one row that opens onto its partitions.
  await db.pool.query(`CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, kind text NOT NULL) PARTITION BY RANGE (at);
    CREATE TABLE events_2026_11 PARTITION OF events FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
    CREATE TABLE events_2026_12 PARTITION OF events FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');
    INSERT INTO events SELECT g, DATE '2026-11-01' + (g % 60), 'k' || (g % 7) FROM generate_series(1, 30000) g;
    ANALYZE events;`);
  const scanner = new pg.Client({ connectionString: db.url });
  await scanner.connect();
  for (let i = 0; i < 3; i++) await scanner.query("SELECT count(*) FROM events WHERE kind = 'k1'");
  await scanner.end();
  project = await projectWith({
    'orders.yaml': 'table: public.orders\nindexes:\n  - name: orders_customer_idx\n    columns: [customer]\n',
  });
  // The workload's reads ran before the apply too: the run page compares them before and since.
  for (let i = 0; i < 5; i++) await db.pool.query('SELECT id, customer, total FROM orders WHERE customer = $1 ORDER BY id DESC LIMIT 20', [i]);
  const applied = await runCli(['apply', '--auto-approve', '--database-url', db.url], { cwd: project });
  expect(applied.code, applied.stderr).toBe(0);
  expect((await runCli(['plan', '--detailed-exitcode', '--database-url', db.url], { cwd: project })).code).toBe(0);
  workload = runWorkload(db.url);
  // The routing policy's tables, as apply creates them, and a router publishing to them.
  await db.pool.query(CREATE_HEARTBEAT_SQL);
  await db.pool.query(CREATE_ROUTER_METRICS_SQL);
  router = createRouter({
    primary: db.url,
    replicas: db.standbyUrl ? [{ name: 'standby1', connection: db.standbyUrl }] : [],
    application: 'orders-api',
    metricsIntervalMs: 1000,
    readYourWritesScope: 'session',
  });
  // An idle primary client terminated by the outage test is the application's to handle, as with pg.Pool.
  router.on('error', () => undefined);
  routedReads = runRoutedReads(router);

  cacheDir = await mkdtemp(path.join(tmpdir(), 'pgwarden-serve-cache-'));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  stopServe = new AbortController();
  const args = ['serve', '--port', String(port), '--interval', `${INTERVAL_S}s`, '--cache-dir', cacheDir, '--database-url', db.url];
  if (db.standbyUrl) args.push('--standby', `standby1=${db.standbyUrl}`);
  served = runCli(args, { cwd: project, signal: stopServe.signal });
  // The first start builds the site into the cache directory: wait for it here, not in the tests.
  await waitFor('the site to be built and served', async () => (await fetch(`${baseUrl}/live/`)).status === 200, 150_000);
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  workloadStop = true;
  await workload?.catch(() => undefined);
  await routedReads.catch(() => undefined);
  await router?.end();
  await browser?.close();
  stopServe?.abort();
  const r = await served?.catch(() => null);
  if (r && r.code !== 0) console.error(r.stderr);
  await db?.close();
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  if (project) await rm(project, { recursive: true, force: true });
});

describe('the live page in a real browser', () => {
  it('shows numbers on its gauges and updates them from the stream within two ticks', async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${baseUrl}/live/`);
    await page.waitForSelector('[data-testid="live"][data-connection="connected"]', { timeout: 15_000 });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="live"]')?.getAttribute('data-seq')) >= 2, undefined, { timeout: 10_000 });
    const before = await gaugeValues(page);
    for (const id of ['gauge-cache-hit', 'gauge-connections', 'gauge-latency']) expect(Number.isFinite(Number(before[id])) && before[id] !== '', `${id}=${before[id]}`).toBe(true);
    expect(await page.textContent('[data-testid="gauge-connections"] text')).toMatch(/^\d+\/\d+$/);
    const seq = Number(await page.getAttribute('[data-testid="live"]', 'data-seq'));
    const updated0 = await page.textContent('[data-testid="last-updated"]');

    // Two ticks of the stream, with room for a loaded machine: each moves the sequence number on.
    const t0 = Date.now();
    await page.waitForFunction((s) => Number(document.querySelector('[data-testid="live"]')?.getAttribute('data-seq')) >= s + 2, seq, { timeout: 2 * INTERVAL_S * 1000 + 4000 });
    expect(Date.now() - t0).toBeLessThan(2 * INTERVAL_S * 1000 + 4000);
    const after = await gaugeValues(page);
    expect(after).not.toEqual(before);
    expect(await page.textContent('[data-testid="last-updated"]')).not.toBe(updated0);
    expect(await page.locator('[data-testid="status-strip"] [data-figure]').count()).toBeGreaterThan(8);
    expect(await page.locator('[data-testid="slow-queries"] tbody tr').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-testid^="chart-"] canvas').count()).toBe(7);
    expect(await page.textContent('[data-testid="chart-wal"]')).toMatch(/checkpoints in the window: \d+ requested, \d+ timed/);
    // p50 beside p95 and p99; the apply of beforeAll marked on the charts, linking to its run page.
    expect(await page.textContent('[data-testid="chart-latency"]')).toMatch(/p50 \(est\.\).*p95 \(est\.\)/);
    await page.waitForSelector('[data-testid="run-mark"]', { timeout: 10_000 });
    // The statements sort by any column, highest first.
    await page.click('[data-testid="sort-rows"]');
    const rows = await page.$$eval('[data-testid="slow-queries"] tbody tr td:nth-child(5)', (tds) => tds.map((td) => Number((td.textContent ?? '').replace(/,/g, ''))));
    expect(rows).toEqual([...rows].sort((a, b) => b - a));
    expect(await page.getAttribute('[data-testid="slow-queries"] th[aria-sort="descending"]', 'aria-sort')).toBe('descending');
    await page.click('[data-testid="sort-time"]');
    // The last hour's statements, from serve's checkpoints: it has run minutes of it, and says so.
    await page.click('[data-testid="window-1h"]');
    await page.waitForSelector('[data-testid="window-queries"] tbody tr', { timeout: 15_000 });
    expect(await page.textContent('[data-testid="window-covered"]')).toMatch(/calls, .* since .* serve has run \d+ min of the 1 h so far/);
    await page.click('[data-testid="sort-calls"]');
    const calls = await page.$$eval('[data-testid="window-queries"] tbody tr td:nth-child(2)', (tds) => tds.map((td) => td.textContent ?? ''));
    expect(calls.length).toBeGreaterThan(0);
    await page.locator('[data-testid="window-queries"]').screenshot({ path: path.join(outputDir(), 'statements-1h.png') });
    // A statement opened: its text and its mean latency per interval since serve started.
    await page.click('[data-testid="window-row"]');
    await page.waitForSelector('[data-testid="statement-drill"] svg rect', { timeout: 15_000 });
    await page.locator('[data-testid="window-queries"]').screenshot({ path: path.join(outputDir(), 'statement-drill.png') });
    await page.click('[data-testid="window-5s"]');
    // The charts over the last day: the points come from /api/health/series for 1,440 minutes.
    const dayOfPoints = page.waitForResponse((r) => r.url().includes('/api/health/series?minutes=1440') && r.ok());
    await page.click('[data-testid="range-24h"]');
    await dayOfPoints;
    expect(await page.getAttribute('[data-testid="range-24h"]', 'aria-pressed')).toBe('true');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1440);
    await page.screenshot({ path: path.join(outputDir(), 'live-range-24h.png') });
    await page.click('[data-testid="range-15min"]');
    await page.click('[data-testid="sort-time"]');
    expect(await page.getAttribute('[data-testid="run-mark"]', 'href')).toBe('../runs/1/');
    expect(await page.textContent('[data-testid="run-marks"]')).toMatch(/#1 apply \d\d:\d\d:\d\d \(succeeded\)/);
    expect(errors).toEqual([]);

    const outDir = outputDir();
    await mkdir(outDir, { recursive: true });
    await page.screenshot({ path: path.join(outDir, 'live-page.png'), fullPage: true });
    for (const [name, url] of [['history', '/'], ['run', '/runs/1/'], ['indexes', '/indexes/'], ['tables', '/tables/'], ['health', '/health/']] as const) {
      await page.goto(`${baseUrl}${url}`);
      await page.screenshot({ path: path.join(outDir, `desktop-${name}.png`), fullPage: true });
    }
    // The sizes page: the partitioned table is one row; opening it lists its partitions.
    await page.goto(`${baseUrl}/sizes/`);
    await page.click('[data-testid="sizes"] tr[data-kind="partitioned"] summary');
    expect(await page.textContent('[data-testid="sizes"] tr[data-kind="partitioned"] details')).toMatch(/events_2026_11[\s\S]*events_2026_12/);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1440);
    await page.screenshot({ path: path.join(outDir, 'desktop-sizes.png'), fullPage: true });
    await page.close();
  });

  it('says "disconnected" when the database goes away and recovers when it returns', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${baseUrl}/live/`);
    await page.waitForSelector('[data-testid="live"][data-connection="connected"]', { timeout: 15_000 });
    try {
      await setConnections(false);
      await page.waitForSelector('[data-testid="live"][data-connection="disconnected"]', { timeout: 3 * INTERVAL_S * 1000 + 4000 });
      expect(await page.textContent('[data-testid="connection"]')).toBe('disconnected');
      const reason = (await page.textContent('[data-testid="connection-reason"]')) ?? '';
      expect(reason).toMatch(/database unreachable/);
      expect(reason).not.toMatch(/postgres:\/\/|127\.0\.0\.1/);
    } finally {
      await setConnections(true);
    }
    await page.waitForSelector('[data-testid="live"][data-connection="connected"]', { timeout: 3 * INTERVAL_S * 1000 + 6000 });
    const seq = Number(await page.getAttribute('[data-testid="live"]', 'data-seq'));
    await page.waitForFunction((s) => Number(document.querySelector('[data-testid="live"]')?.getAttribute('data-seq')) > s, seq, { timeout: 2 * INTERVAL_S * 1000 + 4000 });
    await page.close();
  });

  it('shows the routers in a Routing panel: reads per target and the reads that fell back, with why', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${baseUrl}/live/`);
    await page.waitForSelector('[data-testid="routing"][data-state="reporting"]', { timeout: 15_000 });
    // Rates need a router's publications over a few seconds: wait until the replica's share shows.
    const replica = db.standbyUrl ? 'standby1' : 'primary';
    await page.waitForFunction((name) => Number(document.querySelector(`[data-testid="routing-target"][data-target="${name}"]`)?.getAttribute('data-rate')) > 0, replica, {
      timeout: 6 * INTERVAL_S * 1000,
    });
    await page.waitForSelector('[data-testid="routing-fallback"][data-reason="read-your-writes"]', { timeout: 6 * INTERVAL_S * 1000 });

    expect(await page.textContent('[data-testid="routing-routers"]')).toMatch(/^1 router reporting/);
    expect(await page.locator('[data-testid="routing-target"]').count()).toBe(db.standbyUrl ? 2 : 1);
    expect(await page.textContent('[data-testid="routing"]')).toContain('orders-api');
    expect(await page.textContent('[data-testid="routing-fallback"][data-reason="read-your-writes"]')).toMatch(/^\d+ read-your-writes$/);

    const outDir = outputDir();
    await mkdir(outDir, { recursive: true });
    await page.locator('[data-testid="routing"]').screenshot({ path: path.join(outDir, 'routing-panel-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.locator('[data-testid="routing"]').screenshot({ path: path.join(outDir, 'routing-panel-light.png') });
    await page.close();
  });

  it('draws blocked sessions as a tree: the session holding the lock, and under it those waiting', async () => {
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    const page = await browser.context.newPage();
    try {
      const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
      await page.goto(`${baseUrl}/live/`);
      await page.waitForSelector(`[data-testid="blocking"] [data-testid="blocking-node"][data-pid="${pid}"] [data-testid="blocking-node"]`, { timeout: 6 * INTERVAL_S * 1000 });
      expect(await page.textContent(`[data-testid="blocking-node"][data-pid="${pid}"]`)).toContain('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
      await page.locator('[data-testid="blocking"]').screenshot({ path: path.join(outputDir(), 'blocking-tree.png') });
    } finally {
      await holder.query('COMMIT').catch(() => undefined);
      await holder.end();
      await page.close();
    }
  });

  it('greys the figures out and says "stale" after three intervals without a new snapshot', async () => {
    const page = await browser.context.newPage();
    // A stream that opens and never says anything (a proxy buffering it): only the first fetch lands.
    await page.route('**/api/stream', () => undefined);
    await page.clock.install();
    await page.goto(`${baseUrl}/live/`);
    await page.waitForSelector('[data-testid="live"][data-connection="connected"]', { timeout: 15_000 });
    expect(await page.getAttribute('[data-testid="live"]', 'data-stale')).toBe('false');

    await page.clock.fastForward(2 * INTERVAL_S * 1000);
    expect(await page.getAttribute('[data-testid="live"]', 'data-stale')).toBe('false');
    await page.clock.fastForward(INTERVAL_S * 1000 + 1500);

    await page.waitForSelector('[data-testid="live"][data-stale="true"]', { timeout: 2000 });
    expect(await page.textContent('[data-testid="connection"]')).toBe('stale');
    expect(await page.textContent('[data-testid="connection-reason"]')).toMatch(/^no new figures for \d+ s \(expected every 2 s\)/);
    expect(await page.getAttribute('[data-testid="live"]', 'class')).toContain('stale');
    await page.waitForFunction(() => Number(getComputedStyle(document.querySelector('[data-testid="status-strip"]') as Element).opacity) < 0.6, undefined, { timeout: 3000 });
    await page.screenshot({ path: path.join(outputDir(), 'live-page-stale.png') });
    await page.close();
  });

  it('fits a 390 px phone on every page: nothing scrolls sideways and each table keeps its key column in view', async () => {
    const phone = await launchBrowser({ viewport: { width: 390, height: 844 } });
    const outDir = outputDir();
    await mkdir(outDir, { recursive: true });
    try {
      const page = await phone.context.newPage();
      // Each page with the column that must stay in view on a phone (serve's build has no health
      // snapshot of its own: that page has no table).
      const pages: [string, string, string | null][] = [
        ['history', '/', 'Duration'],
        ['run', '/runs/1/', 'Change'],
        ['indexes', '/indexes/', 'Fix'],
        ['tables', '/tables/', 'Fix'],
        ['sizes', '/sizes/', 'Rows'],
        ['health', '/health/', null],
        ['live', '/live/', 'Total'],
      ];
      for (const [name, url, key] of pages) {
        await page.goto(`${baseUrl}${url}`);
        if (name === 'live') {
          await page.waitForSelector('[data-testid="slow-queries"] tbody tr', { timeout: 15_000 });
          await page.waitForSelector('[data-testid="routing"][data-state="reporting"]', { timeout: 15_000 });
        }
        if (name === 'live') {
          await page.click('[data-testid="window-24h"]');
          await page.waitForSelector('[data-testid="window-queries"] tbody tr', { timeout: 15_000 });
          await page.click('[data-testid="window-row"]');
          await page.waitForSelector('[data-testid="statement-drill"] svg rect', { timeout: 15_000 });
          await page.locator('.panel', { has: page.locator('[data-testid="window-queries"]') }).screenshot({ path: path.join(outDir, 'phone-statements-24h.png') });
        }
        await page.screenshot({ path: path.join(outDir, `phone-${name}.png`), fullPage: true });
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        // What sticks out, innermost first, to say where to look when this fails.
        const over = await page.evaluate(() =>
          [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > 391 && ![...e.children].some((c) => c.getBoundingClientRect().right > 391))
            .slice(0, 5)
            .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')} "${(e.textContent ?? '').slice(0, 30)}"`),
        );
        expect(width, `${name} is ${width} px wide: ${over.join('; ')}`).toBeLessThanOrEqual(390);
        if (key === null) continue;
        const header = page.locator('th', { hasText: key }).first();
        const box = await header.boundingBox({ timeout: 5000 });
        expect(box, `${name}: no "${key}" column`).not.toBeNull();
        expect(box!.x + box!.width, `${name}: "${key}" ends at ${box!.x + box!.width} px`).toBeLessThanOrEqual(390);
        // SQL and statement texts wrap between words, not inside them ("F/ROM").
        const breaks = await page.$$eval('.query, pre.sql-block, code.sql', (els) => [...new Set(els.map((e) => getComputedStyle(e).wordBreak))]);
        expect(breaks.filter((b) => b === 'break-all')).toEqual([]);
      }
      // The run page compares only statements run since the apply; the loader that filled the table is counted apart.
      await page.goto(`${baseUrl}/runs/1/`);
      expect(await page.locator('[data-testid="not-run-since"]').count()).toBe(1);
      expect(await page.textContent('[data-testid="not-run-since"]')).toMatch(/not run since the apply/);
    } finally {
      await phone.close();
    }
  });

  it('says what each figure of the poll cost is', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${baseUrl}/live/`);
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="live"]')?.getAttribute('data-seq')) >= 2, undefined, { timeout: 15_000 });
    const text = (await page.textContent('[data-testid="poll-cost"]')) ?? '';
    expect(text).toMatch(/^this poll [\d.]+ (ms|s) wall, \d+ queries · pgwarden in the database [\d.]+ (ms|s) over the last \d+ s$/);
    await page.close();
  });

  it('serves the history pages without JavaScript', async () => {
    const noJs = await launchBrowser({ javaScriptEnabled: false, colorScheme: 'light', viewport: { width: 390, height: 844 } });
    try {
      const page = await noJs.context.newPage();
      await page.goto(`${baseUrl}/`);
      expect(await page.textContent('h1')).toContain('history');
      expect(await page.locator('table tbody tr').count()).toBeGreaterThanOrEqual(1);
      await page.click('a[href="/runs/1/"]');
      expect(await page.textContent('body')).toContain('CREATE INDEX CONCURRENTLY');
    } finally {
      await noJs.close();
    }
  });
});
