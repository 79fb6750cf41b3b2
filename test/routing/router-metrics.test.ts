import { createServer } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthCollector, type HealthCollector } from '../../engine/live-health/health-collector.ts';
import type { HealthSnapshot, RoutingHealth } from '../../engine/live-health/health-snapshot.ts';
import { createRouter, type RoutingPool } from '../../engine/routing/index.ts';
import { startServeServer, type ServeServer } from '../../engine/serve/serve-server.ts';
import { CREATE_HEARTBEAT_SQL, CREATE_ROUTER_METRICS_SQL } from '../../engine/sql/routing-ddl.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * The router's metrics reach the live page: routers against the suite's real primary and standby publish
 * to pgwarden.router_metrics (created here as `apply` creates it), `pgwarden serve`'s collector reads
 * the fresh rows in its poll, and /api/health carries the routing section.
 */

let db: TestDatabase;
let collector: HealthCollector;
let server: ServeServer;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return typeof address === 'object' && address !== null ? address.port : 1;
}

function router(application: string, replica: { name: string; url: string }): RoutingPool {
  return createRouter({
    primary: db.url,
    replicas: [{ name: replica.name, connection: replica.url }],
    application,
    metricsIntervalMs: 200,
    readYourWritesScope: 'session',
  });
}

/** Resolves once the router has published again after this call, so the rows hold everything done before. */
async function published(r: RoutingPool): Promise<void> {
  const before = r.metrics().publisher?.publications ?? 0;
  await waitFor('a publication', () => (r.metrics().publisher?.publications ?? 0) >= before + 2);
}

async function health(): Promise<{ body: string; snapshot: HealthSnapshot }> {
  const response = await fetch(`${server.url}/api/health`);
  const body = await response.text();
  return { body, snapshot: (JSON.parse(body) as { snapshot: HealthSnapshot }).snapshot };
}

beforeAll(async () => {
  db = await useTestDatabase();
  if (db.standbyUrl === '') throw new Error('these tests need the suite’s streaming standby');
  await db.pool.query(CREATE_HEARTBEAT_SQL);
  await db.pool.query(CREATE_ROUTER_METRICS_SQL);
  await db.pool.query('CREATE TABLE items (id serial PRIMARY KEY, note text); INSERT INTO items (note) SELECT g::text FROM generate_series(1, 100) g');
  await waitFor(
    'the table on the standby',
    async () => {
      const client = new pg.Client({ connectionString: db.standbyUrl });
      try {
        await client.connect();
        return (await client.query<{ here: boolean }>(`SELECT to_regclass('public.items') IS NOT NULL AS here`)).rows[0]?.here === true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    15_000,
  );
  // Polled by hand: each test decides when the collector looks.
  collector = createHealthCollector({ primaryUrl: db.url, intervalMs: 60_000, slowIntervalMs: 3_600_000 });
  server = await startServeServer({ databaseUrl: db.url, collector, site: null, host: '127.0.0.1', port: 0 });
}, 30_000);

afterAll(async () => {
  await server?.close();
  await collector?.stop();
  await db?.close();
});

describe("the routers' metrics on the live page's API", () => {
  it('shows reads to the standby, and the reads that fell back to the primary with their reasons', async () => {
    const api = router('orders-api', { name: 'standby1', url: db.standbyUrl });
    const worker = router('billing-worker', { name: 'standby2', url: `postgres://postgres@127.0.0.1:${await closedPort()}/${db.name}` });
    try {
      await waitFor('standby1 to take reads', () => api.metrics().replicas[0]?.healthy === true);
      await waitFor('standby2 to be seen unreachable', () => worker.metrics().replicas[0]?.reason === 'unreachable');

      for (let i = 0; i < 50; i += 1) await api.query('SELECT count(*) FROM items');
      for (let i = 0; i < 5; i += 1) {
        const session = api.session();
        await session.query('INSERT INTO items (note) VALUES ($1)', [`w${i}`]);
        await session.query('SELECT note FROM items WHERE note = $1', [`w${i}`]);
      }
      for (let i = 0; i < 20; i += 1) await worker.query('SELECT count(*) FROM items');
      await Promise.all([published(api), published(worker)]);

      await collector.pollOnce();
      const { body, snapshot } = await health();

      const routing = snapshot.routing as RoutingHealth;
      expect(routing.state).toBe('reporting');
      expect(routing.routers.map((r) => r.application)).toEqual(['billing-worker', 'orders-api']);
      const standby1 = routing.targets.find((t) => t.name === 'standby1');
      expect(standby1).toMatchObject({ kind: 'replica', seenBy: 1, healthyIn: 1 });
      expect(standby1?.reads).toBeGreaterThanOrEqual(45);
      expect(standby1?.readsPerSecond).toBeGreaterThan(0);
      expect(routing.targets.find((t) => t.name === 'standby2')).toMatchObject({ healthyIn: 0, reads: 0, reasons: ['unreachable'] });
      expect(routing.targets[0]).toMatchObject({ name: 'primary', kind: 'primary' });
      expect(routing.targets[0]?.reads).toBeGreaterThanOrEqual(25);
      expect(routing.fallbacks).toContainEqual({ reason: 'unreachable', count: 20 });
      expect(routing.fallbacks).toContainEqual({ reason: 'read-your-writes', count: 5 });
      expect(routing.replicaReadShare).toBeGreaterThan(0.5);
      expect(routing.primaryStatementsPerSecond).toBeGreaterThan(0);
      expect(body).not.toMatch(/postgres:\/\//);
    } finally {
      await Promise.all([api.end(), worker.end()]);
    }
  });

  it('leaves out a router whose row has not been updated for over a minute, and counts it as silent', async () => {
    const stale = JSON.stringify({ version: 1, policy: { reads: 'replica', maxLagMs: 1000 }, reads: { primary: 7000, replicas: { standby1: 90_000 } }, fallbacks: { lag: 500 } });
    await db.pool.query(
      `INSERT INTO pgwarden.router_metrics (instance, application, host, pid, started_at, updated_at, counters)
       VALUES ('gone', 'old-deploy', 'web-7', 4242, now() - interval '2 hours', now() - interval '5 minutes', $1::jsonb)`,
      [stale],
    );
    const api = router('orders-api', { name: 'standby1', url: db.standbyUrl });
    try {
      await waitFor('standby1 to take reads', () => api.metrics().replicas[0]?.healthy === true);
      for (let i = 0; i < 10; i += 1) await api.query('SELECT count(*) FROM items');
      await published(api);

      await collector.pollOnce();
      const routing = (await health()).snapshot.routing as RoutingHealth;

      expect(routing.routers.map((r) => r.instance)).not.toContain('gone');
      expect(routing.staleRouters).toBe(1);
      expect(routing.targets.find((t) => t.name === 'standby1')?.reads).toBeLessThan(1000);
      expect(routing.fallbacks.find((f) => f.reason === 'lag')).toBeUndefined();
    } finally {
      await api.end();
      await db.pool.query(`DELETE FROM pgwarden.router_metrics WHERE instance = 'gone'`);
    }
  });

  it('removes its row when the router ends', async () => {
    const api = router('orders-api', { name: 'standby1', url: db.standbyUrl });
    await published(api);
    const instance = api.metrics().publisher?.instance;

    await api.end();

    const rows = await db.pool.query('SELECT 1 FROM pgwarden.router_metrics WHERE instance = $1', [instance]);
    expect(rows.rowCount).toBe(0);
  });
});

describe('a router where the routing policy was not applied', () => {
  it('skips publishing, says why, and creates no table', async () => {
    const bare = await useTestDatabase();
    const r = createRouter({ primary: bare.url, replicas: [], metricsIntervalMs: 200 });
    try {
      await waitFor('the publisher to find no table', () => r.metrics().publisher?.state === 'missing-table');
      await r.query('SELECT 1');

      expect(r.metrics().publisher?.error).toContain('run `pgwarden apply` with the routing policy');
      const found = await bare.pool.query<{ here: boolean }>(`SELECT to_regclass('pgwarden.router_metrics') IS NOT NULL AS here`);
      expect(found.rows[0]?.here).toBe(false);
    } finally {
      await r.end();
      await bare.close();
    }
  });

  it('makes the collector report that the table is missing, without failing its poll', async () => {
    const bare = await useTestDatabase();
    const c = createHealthCollector({ primaryUrl: bare.url, intervalMs: 60_000, slowIntervalMs: 3_600_000 });
    try {
      const snapshot = await c.pollOnce();

      expect(snapshot?.routing).toMatchObject({ state: 'no-table', routers: [] });
      expect(snapshot?.routing?.note).toContain('apply the routing policy');
    } finally {
      await c.stop();
      await bare.close();
    }
  });
});
