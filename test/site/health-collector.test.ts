import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthCollector, type HealthCollector } from '../../engine/live-health/health-collector.ts';
import { ident } from '../../engine/sql/ident.ts';
import { readExternalTableHealth } from '../../engine/live-health/external-health.ts';
import { readDatabase, readSessions } from '../../engine/live-health/health-readings.ts';
import { startLagSampler } from '../../engine/replica-lag/lag-sampler.ts';
import { CREATE_HEARTBEAT_SQL } from '../../engine/sql/routing-ddl.ts';
import { blackholeProxy, type BlackholeProxy } from '../routing/blackhole-proxy.ts';
import { primaryAdminUrl, useTestDatabase, type TestDatabase } from '../support/database.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A backend that flushed its table and index counters less than a second ago holds new ones back for
 * up to 10 s (PGSTAT_IDLE_INTERVAL, PostgreSQL 15+): the workload runs on one session that then asks
 * for its counters to be flushed, so the next poll sees them.
 */
async function workload(sql: string, runs: number): Promise<void> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    for (let i = 0; i < runs; i++) await client.query(sql, [i]);
    await client.query('SELECT pg_catalog.pg_stat_force_next_flush()');
  } finally {
    await client.end();
  }
  await sleep(100);
}

let db: TestDatabase;
const collectors: HealthCollector[] = [];

function collector(options: Partial<Parameters<typeof createHealthCollector>[0]> = {}): HealthCollector {
  const c = createHealthCollector({ primaryUrl: db.url, slowIntervalMs: 3_600_000, ...options });
  collectors.push(c);
  return c;
}

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await db.pool.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, total numeric NOT NULL)`);
  await db.pool.query(`INSERT INTO orders SELECT g, g % 500, g FROM generate_series(1, 40000) g`);
  await db.pool.query('ANALYZE orders');
});

afterAll(async () => {
  for (const c of collectors) await c.stop();
  await db?.close();
});

describe('the health collector on the real primary and standby', () => {
  it('shows the index-scan share and index hit rate rising once the workload uses an index', async () => {
    const c = collector();
    await c.pollOnce();
    await workload('SELECT count(*) FROM orders WHERE customer = $1', 20);
    const seqOnly = await c.pollOnce();
    expect(seqOnly?.figures.indexScanShare).toBeLessThan(0.2);

    await db.pool.query('CREATE INDEX orders_customer_idx ON orders (customer)');
    await workload('SELECT count(*) FROM orders WHERE customer = $1', 1);
    await c.pollOnce();
    await workload('SELECT count(*) FROM orders WHERE customer = $1', 200);
    const indexed = await c.pollOnce();
    expect(indexed?.figures.indexScanShare).toBeGreaterThan(0.9);
    expect(indexed?.figures.indexHitRatio).toBeGreaterThan(0.9);
  });

  it('reports statement latency from the window and names the statements with the most time', async () => {
    const c = collector();
    await c.pollOnce();
    await sleep(50);
    for (let i = 0; i < 30; i++) await db.pool.query('SELECT pg_sleep(0.01), $1::int AS marker_for_top', [i]);
    // Texts are fetched when a statement is first seen: one more poll names it.
    await c.pollOnce();
    for (let i = 0; i < 30; i++) await db.pool.query('SELECT pg_sleep(0.01), $1::int AS marker_for_top', [i]);
    const s = await c.pollOnce();
    const top = s?.statements.top[0];
    expect(top?.query).toContain('marker_for_top');
    expect(top?.calls).toBe(30);
    expect(top?.meanMs).toBeGreaterThan(9);
    expect(top?.meanMs).toBeLessThan(200);
    expect(s?.figures.latencyP95Ms).toBeGreaterThan(5);
    // The collector's own queries are not the workload, and their time is measured.
    expect(s?.statements.top.some((q) => q.query?.includes('pgwarden:health'))).toBe(false);
    expect(s?.poll.databaseMs).toBeGreaterThan(0);
  });

  it('runs the same number of queries per poll whatever the number of tables', async () => {
    const c = collector();
    await c.pollOnce();
    // Statement texts are fetched only when new statements appear: not a per-table cost.
    const queries = (s: Awaited<ReturnType<HealthCollector['pollOnce']>>): string[] => Object.keys(s?.poll.queryMs ?? {}).filter((k) => k !== 'statement-texts').sort();
    const few = queries(await c.pollOnce());
    await db.pool.query(`DO $$ BEGIN FOR i IN 1..300 LOOP EXECUTE format('CREATE TABLE extra_%s (id int PRIMARY KEY, v text)', i); END LOOP; END $$`);
    await c.pollOnce();
    const many = await c.pollOnce();
    expect(many?.tables.count).toBeGreaterThanOrEqual(301);
    expect(queries(many)).toEqual(few);
    expect(few.length).toBeLessThanOrEqual(6);
    expect(many?.poll.wallMs).toBeLessThan(5000);
  });

  it('sees the standby’s lag rise while its replay is paused, and fall after resuming', async (ctx) => {
    if (!db.standbyUrl) return ctx.skip();
    const standby = new pg.Client({ connectionString: db.standbyUrl });
    await standby.connect();
    const c = collector({ standbys: [{ name: 'standby1', url: db.standbyUrl }] });
    try {
      await c.pollOnce();
      await standby.query('SELECT pg_catalog.pg_wal_replay_pause()');
      // Keep the pause short: other test files share this standby.
      for (let i = 0; i < 8; i++) {
        await db.pool.query('INSERT INTO orders VALUES ($1, 1, 1)', [100_000 + i]);
        await sleep(150);
      }
      const paused = await c.pollOnce();
      await sleep(600);
      const later = await c.pollOnce();
      const s1 = paused?.standbys.find((s) => s.name === 'standby1');
      const s2 = later?.standbys.find((s) => s.name === 'standby1');
      expect(s1?.state).toBe('replay-paused');
      expect(s2?.lagMs).toBeGreaterThan(s1?.lagMs ?? Infinity);
      expect(s2?.lagMs).toBeGreaterThan(500);
      expect(later?.findings.some((f) => f.kind === 'replay-paused')).toBe(true);
    } finally {
      await standby.query('SELECT pg_catalog.pg_wal_replay_resume()');
    }
    await db.pool.query('INSERT INTO orders VALUES (200000, 1, 1)');
    let caughtUp = false;
    for (let i = 0; i < 30 && !caughtUp; i++) {
      await sleep(200);
      const s = (await c.pollOnce())?.standbys.find((x) => x.name === 'standby1');
      caughtUp = s?.state === 'streaming' && (s.lagMs ?? Infinity) < 1000;
    }
    await standby.end();
    expect(caughtUp).toBe(true);
  });

  it('says disconnected when the database refuses it, and recovers without a restart', async () => {
    const c = collector({ connectTimeoutMs: 1000 });
    expect(await c.pollOnce()).not.toBeNull();
    const admin = new pg.Client({ connectionString: primaryAdminUrl() });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${ident(db.name)} ALLOW_CONNECTIONS false`);
      await admin.query(`SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND application_name LIKE 'pgwarden health%'`, [db.name]);
      expect(await c.pollOnce()).toBeNull();
      expect(c.state().state).toBe('disconnected');
      expect(c.state().error).not.toMatch(/postgres:\/\/|127\.0\.0\.1/);
    } finally {
      await admin.query(`ALTER DATABASE ${ident(db.name)} ALLOW_CONNECTIONS true`);
      await admin.end();
    }
    const back = await c.pollOnce();
    expect(back).not.toBeNull();
    expect(c.state().state).toBe('connected');
    // The first poll after an outage has no window: rates start afresh rather than spanning the gap.
    expect(back?.windowMs).toBeNull();
  });

  it('keeps its own statements out of the top statements: the slow cadence’s, the lag sampler’s and the heartbeat’s too', async () => {
    await db.pool.query(CREATE_HEARTBEAT_SQL);
    const standbys = db.standbyUrl ? [{ name: 'standby1', url: db.standbyUrl }] : [];
    const sampler = startLagSampler({ primary: db.url, replicas: standbys.map((s) => ({ name: s.name, connection: s.url })), intervalMs: 50, heartbeatIntervalMs: 50 });
    const c = collector({
      standbys,
      slowIntervalMs: 0,
      tableHealth: (client) => readExternalTableHealth(client),
      routerLag: async () => new Map(sampler.latest().map((l) => [l.name, { lagMs: l.lagMs, source: l.lagSource }])),
    });
    try {
      await sampler.ready();
      let last: Awaited<ReturnType<HealthCollector['pollOnce']>> = null;
      for (let i = 0; i < 4; i++) {
        for (let k = 0; k < 20; k++) await db.pool.query('SELECT max(total) AS the_workload FROM orders WHERE customer = $1', [k]);
        await sleep(200);
        last = await c.pollOnce();
        await c.slowSettled();
      }
      const texts = (last?.statements.top ?? []).map((t) => t.query ?? '');
      expect(texts.some((t) => t.includes('the_workload'))).toBe(true);
      expect(last?.slow?.tableHealth).not.toBeNull();
      expect(sampler.heartbeat()?.writes).toBeGreaterThan(0);
      const ours = /^SET |set_config|pgwarden|pg_stat_replication|pg_stat_wal_receiver|pg_last_wal_replay_lsn|pg_stat_get_live_tuples|pg_stats\b|autovacuum_vacuum_threshold|pg_proc\b/;
      expect(texts.filter((t) => ours.test(t))).toEqual([]);
      expect(last?.poll.databaseMs).toBeGreaterThan(0);
    } finally {
      await sampler.stop();
    }
  });

  it('keeps the slow cadence’s index findings with the SQL that fixes them', async () => {
    await db.pool.query('CREATE INDEX orders_total_idx ON orders (total)');
    await db.pool.query('CREATE INDEX orders_total_dup ON orders (total)');
    const c = collector({ slowIntervalMs: 0 });
    await c.pollOnce();
    await c.slowSettled();
    const s = await c.pollOnce();
    expect(s?.slow?.duplicateIndexes.map((d) => d.name)).toContain('orders_total_idx');
    expect(s?.slow?.duplicateIndexes.find((d) => d.name === 'orders_total_idx')?.duplicateOf).toBe('orders_total_dup');
    expect(s?.findings.some((f) => f.kind === 'duplicate-index' && f.fixSql === 'DROP INDEX CONCURRENTLY "public"."orders_total_idx";')).toBe(true);
  });
});

describe('the health collector when a server stops answering without closing the connection', () => {
  const proxies: BlackholeProxy[] = [];
  afterAll(async () => {
    for (const p of proxies) await p.close();
  });
  const proxyTo = async (url: string): Promise<BlackholeProxy> => {
    const p = await blackholeProxy(url);
    proxies.push(p);
    return p;
  };
  const limits = { statementTimeoutMs: 500, connectTimeoutMs: 500, pollTimeoutMs: 1500 };

  it('says disconnected within the poll deadline when the primary goes silent, and recovers when it answers again', async () => {
    const proxy = await proxyTo(db.url);
    const c = collector({ primaryUrl: proxy.url, ...limits });
    expect(await c.pollOnce()).not.toBeNull();
    expect(c.state().state).toBe('connected');

    proxy.blackhole();
    const t0 = Date.now();
    expect(await c.pollOnce()).toBeNull();
    expect(Date.now() - t0).toBeLessThan(limits.pollTimeoutMs + 500);
    expect(c.state().state).toBe('disconnected');
    // Still silent: the next poll (a fresh connection into the void) gives up just as fast.
    const t1 = Date.now();
    expect(await c.pollOnce()).toBeNull();
    expect(Date.now() - t1).toBeLessThan(limits.pollTimeoutMs + 500);

    proxy.resume();
    expect(await c.pollOnce()).not.toBeNull();
    expect(c.state().state).toBe('connected');
  });

  it('keeps polling on its own loop through the silence instead of hanging', async () => {
    const proxy = await proxyTo(db.url);
    const c = collector({ primaryUrl: proxy.url, intervalMs: 300, ...limits });
    const states: string[] = [];
    c.subscribe((e) => {
      if (e.type === 'state') states.push(e.state.state);
    });
    c.start();
    for (let i = 0; i < 50 && c.state().state !== 'connected'; i++) await sleep(100);
    proxy.blackhole();
    const silentAt = Date.now();
    for (let i = 0; i < 50 && c.state().state !== 'disconnected'; i++) await sleep(100);
    expect(c.state().state).toBe('disconnected');
    expect(Date.now() - silentAt).toBeLessThan(limits.pollTimeoutMs + 300 + 1000);
    proxy.resume();
    for (let i = 0; i < 60 && c.state().state !== 'connected'; i++) await sleep(100);
    expect(c.state().state).toBe('connected');
    await c.stop();
    // A state event also says when the reason changes while disconnected (the deadline, then the
    // connection's own error): the transitions are what must read connected, disconnected, connected.
    expect(states.filter((s, i) => s !== states[i - 1])).toEqual(['connected', 'disconnected', 'connected']);
  });

  it('never holds the primary’s snapshot up for a silent standby, and reports the standby down at its deadline', async (ctx) => {
    if (!db.standbyUrl) return ctx.skip();
    const proxy = await proxyTo(db.standbyUrl);
    const c = collector({ standbys: [{ name: 'standby1', url: proxy.url }], standbyGraceMs: 100, ...limits });
    const before = await c.pollOnce();
    expect(before?.standbys.find((s) => s.name === 'standby1')?.state).toBe('streaming');

    proxy.blackhole();
    const t0 = Date.now();
    const during = await c.pollOnce();
    expect(during).not.toBeNull();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(c.state().state).toBe('connected');

    await sleep(limits.pollTimeoutMs + 200);
    const after = await c.pollOnce();
    const standby = after?.standbys.find((s) => s.name === 'standby1');
    expect(standby?.state).toBe('down');
    expect(standby?.error).toMatch(/no answer within 1500 ms/);

    proxy.resume();
    let back = false;
    for (let i = 0; i < 30 && !back; i++) {
      await sleep(200);
      back = (await c.pollOnce())?.standbys.find((s) => s.name === 'standby1')?.state === 'streaming';
    }
    expect(back).toBe(true);
  });
});

describe('the age of the oldest open transaction', () => {
  it('is measured on the clock, so a transaction that began after the poll’s own is never a negative age', async () => {
    const poller = new pg.Client({ connectionString: db.url });
    const other = new pg.Client({ connectionString: db.url });
    await Promise.all([poller.connect(), other.connect()]);
    try {
      // The poller's transaction starts first (its now() is fixed there); the other one starts after it,
      // and the poller reads pg_stat_activity only then.
      await poller.query('BEGIN');
      await poller.query('SELECT 1');
      // Compared in the server at microsecond precision (a JavaScript Date keeps milliseconds, so two
      // starts within one millisecond would look equal); begun again until strictly later: a condition.
      const { rows: before } = await poller.query<{ t: string }>('SELECT pg_catalog.now()::text AS t');
      let later = false;
      while (!later) {
        await other.query('BEGIN');
        const { rows } = await other.query<{ later: boolean }>('SELECT pg_catalog.now() > $1::timestamptz AS later', [before[0]!.t]);
        later = rows[0]!.later;
        if (!later) await other.query('COMMIT');
      }
      const reading = await readDatabase(poller, {});
      expect(reading.longestTransactionMs).not.toBeNull();
      expect(reading.longestTransactionMs!).toBeGreaterThanOrEqual(0);
      const sessions = await readSessions(poller, {});
      for (const s of sessions) expect(s.transactionMs).toBeGreaterThanOrEqual(0);
      await poller.query('COMMIT');
      await other.query('COMMIT');
    } finally {
      await Promise.all([poller.end(), other.end()]);
    }
  });
});

describe('blocked sessions', () => {
  it('names who blocks whom, and for how long the blocked one has waited', async () => {
    const holder = new pg.Client({ connectionString: db.url });
    const waiter = new pg.Client({ connectionString: db.url });
    const poller = new pg.Client({ connectionString: db.url });
    await Promise.all([holder.connect(), waiter.connect(), poller.connect()]);
    try {
      const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const waiterPid = (await waiter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
      const blocked = waiter.query('SELECT count(*) FROM orders');
      // Until the server shows the wait: a condition, not a delay.
      while ((await poller.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", [waiterPid])).rowCount === 0) await sleep(20);
      const sessions = await readSessions(poller, {});
      const w = sessions.find((s) => s.pid === waiterPid);
      expect(w?.blockedBy).toEqual([holderPid]);
      expect(w?.waitingMs).toBeGreaterThanOrEqual(0);
      expect(w?.query).toBe('SELECT count(*) FROM orders');
      const h = sessions.find((s) => s.pid === holderPid);
      expect(h?.blockedBy).toEqual([]);
      expect(h?.waitingMs).toBeNull();
      expect(h?.query).toBe('LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
      await holder.query('COMMIT');
      await blocked;
    } finally {
      await Promise.all([holder.end(), waiter.end(), poller.end()]);
    }
  });
});
