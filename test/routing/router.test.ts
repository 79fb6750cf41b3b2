import { createServer } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRouter, NoReplicaError, startLagSampler, type RoutingPool } from '../../engine/routing/index.ts';
import { CREATE_HEARTBEAT_SQL } from '../../engine/sql/routing-ddl.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import { blackholeProxy } from './blackhole-proxy.ts';

let db: TestDatabase;
let router: RoutingPool;
let standby: pg.Client;

/** A port nothing listens on: a replica that is down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address !== null ? address.port : 1;
}

/** Where a statement ran: the standby answers pg_is_in_recovery() with true. */
async function ranOn(pool: RoutingPool, text = 'SELECT pg_is_in_recovery() AS standby'): Promise<'standby' | 'primary'> {
  const r = await pool.query<{ standby: boolean }>(text);
  return r.rows[0]?.standby ? 'standby' : 'primary';
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(async () => {
  db = await useTestDatabase();
  if (db.standbyUrl === '') throw new Error('these tests need the suite’s streaming standby');
  await db.pool.query(CREATE_HEARTBEAT_SQL);
  // The standby knows the new database once it has replayed CREATE DATABASE.
  await waitFor('the database on the standby', async () => {
    const client = new pg.Client({ connectionString: db.standbyUrl });
    try {
      await client.connect();
      standby = client;
      return true;
    } catch {
      await client.end().catch(() => undefined);
      return false;
    }
  });
  await db.pool.query(`CREATE TABLE items (id int PRIMARY KEY, note text);
    CREATE TABLE visits (item int, at timestamptz DEFAULT now());
    CREATE FUNCTION record_visit(item int) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
      BEGIN INSERT INTO visits (item) VALUES (item); RETURN item; END $$;
    CREATE FUNCTION item_note(wanted int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT note FROM items WHERE id = wanted $$;
    INSERT INTO items SELECT g, 'note ' || g FROM generate_series(1, 100) g`);
  // Read-your-writes is per session here, so that one test's writes do not hold the next test's reads.
  router = createRouter({
    primary: { connectionString: db.url, max: 4 },
    replicas: [{ name: 'standby1', connection: db.standbyUrl }],
    maxLagMs: 1000,
    readYourWritesMs: 500,
    readYourWritesScope: 'session',
  });
  await router.ready();
  await waitFor('the standby to take reads', () => router.metrics().replicas[0]?.healthy === true);
});

afterAll(async () => {
  await router?.end();
  await standby?.end();
  await db?.close();
});

describe('the router, on the real primary and streaming standby', () => {
  it('is a pg.Pool whose SELECTs run on the standby and whose writes run on the primary', async () => {
    expect(router).toBeInstanceOf(pg.Pool);
    expect(await ranOn(router)).toBe('standby');
    const write = await router.query<{ standby: boolean }>('INSERT INTO items VALUES (1000, $1) RETURNING pg_is_in_recovery() AS standby', ['w']);
    expect(write.rows[0]?.standby).toBe(false);
    expect((await router.query('SELECT note FROM items WHERE id = $1', [5])).rows).toEqual([{ note: 'note 5' }]);
  });

  it('never sends a SELECT that writes through a function to the standby', async () => {
    const before = router.metrics();

    const r = await router.query<{ v: number }>('SELECT record_visit($1) AS v', [7]);

    expect(r.rows).toEqual([{ v: 7 }]);
    const after = router.metrics();
    expect(after.primaryStatements.function - before.primaryStatements.function).toBe(1);
    expect(after.retries['standby-refused']).toBe(before.retries['standby-refused']);
    expect(after.targets.replicas['standby1']).toBe(before.targets.replicas['standby1']);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM visits WHERE item = 7')).rows[0]).toEqual({ n: 1 });
  });

  it('sends a SELECT calling a STABLE function to the standby', async () => {
    // The function catalog is loaded in the background: wait until it knows item_note.
    await waitFor('the function catalog', async () => (await router.route('SELECT item_note(3)')).target === 'replica');
    expect(await ranOn(router, 'SELECT item_note(3) IS NOT NULL AND pg_is_in_recovery() AS standby')).toBe('standby');
  });

  it('reads a row right after writing it, every time: the session’s reads stay on the primary', async () => {
    const fallbacks = router.metrics().fallbacks['read-your-writes'];
    for (let i = 0; i < 100; i += 1) {
      const seen = await router.withSession(async () => {
        await router.query('INSERT INTO items VALUES ($1, $2)', [2000 + i, `fresh ${i}`]);
        return (await router.query('SELECT note FROM items WHERE id = $1', [2000 + i])).rows;
      });
      expect(seen).toEqual([{ note: `fresh ${i}` }]);
    }
    expect(router.metrics().fallbacks['read-your-writes'] - fallbacks).toBe(100);
  });

  it('sends a session’s reads back to the standby once read_your_writes_ms has passed', async () => {
    const session = router.session();
    await session.query('UPDATE items SET note = $1 WHERE id = 1', ['updated']);
    expect((await session.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby')).rows[0]?.standby).toBe(false);

    await new Promise((resolve) => setTimeout(resolve, 600));

    expect((await session.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby')).rows[0]?.standby).toBe(true);
  });

  it('honours a per-call override to the primary, and hands out primary clients for transactions', async () => {
    const forced = await router.query<{ standby: boolean }>({ text: 'SELECT pg_is_in_recovery() AS standby', route: 'primary' });
    expect(forced.rows[0]?.standby).toBe(false);

    const client = await router.connect();
    try {
      await client.query('BEGIN');
      expect((await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby')).rows[0]?.standby).toBe(false);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(router.metrics().primaryStatements).toMatchObject({ override: 1, transaction: 1 });
  });

  it('answers the callback form of query() as pg.Pool does', async () => {
    const rows = await new Promise<unknown[]>((resolve, reject) => {
      router.query('SELECT id FROM items WHERE id = $1', [3], (error, result) => (error ? reject(error) : resolve(result.rows)));
    });
    expect(rows).toEqual([{ id: 3 }]);
  });

  it('retries on the primary a read the standby refuses, and remembers that statement', async () => {
    // Created after the router loaded its catalog: the classifier cannot know the table is unlogged.
    await db.pool.query('CREATE UNLOGGED TABLE scratch (n int); INSERT INTO scratch VALUES (1), (2)');
    await waitFor('the standby to replay the CREATE', async () => {
      const r = await standby.query(`SELECT to_regclass('scratch') IS NOT NULL AS here`);
      return r.rows[0]?.here === true;
    });
    const before = router.metrics().retries['standby-refused'];

    expect((await router.query('SELECT count(*)::int AS n FROM scratch')).rows).toEqual([{ n: 2 }]);
    expect(router.metrics().retries['standby-refused']).toBe(before + 1);
    expect(await router.route('SELECT count(*)::int AS n FROM scratch')).toMatchObject({ target: 'primary', reason: 'learned' });
    expect((await router.query('SELECT count(*)::int AS n FROM scratch')).rows).toEqual([{ n: 2 }]);
    expect(router.metrics().retries['standby-refused']).toBe(before + 1);
  });

  it('retries on the primary a read of a table the standby has not replayed yet', async () => {
    const before = router.metrics().retries['not-replayed-yet'];
    // Pause nothing: create and read at once, faster than any replay; the read must not fail either way.
    await db.pool.query('CREATE TABLE brand_new (n int); INSERT INTO brand_new VALUES (42)');

    expect((await router.query('SELECT n FROM brand_new')).rows).toEqual([{ n: 42 }]);
    expect(router.metrics().retries['not-replayed-yet']).toBeGreaterThanOrEqual(before);
    await expect(router.query('SELECT * FROM no_such_table')).rejects.toThrow(/relation "no_such_table" does not exist/);
  });

  it('reports both lag measures, byte lag, the heartbeat and where reads went, for the live page', async () => {
    await waitFor('a heartbeat-based sample', () => (router.metrics().replicas[0]?.lag?.heartbeatLagMs ?? null) !== null);
    const m = router.metrics();
    const replica = m.replicas[0];

    expect(m.heartbeat).toMatchObject({ state: 'writing', error: null });
    expect(replica).toMatchObject({ name: 'standby1', healthy: true, reason: null });
    expect(replica?.lag).toMatchObject({ reachable: true, inRecovery: true, streaming: true, primaryView: { connected: true } });
    expect(replica?.lag?.lagMs).toBeGreaterThanOrEqual(0);
    expect(replica?.lag?.lagMs).toBeLessThan(1000);
    expect(replica?.lag?.bytesBehind).toBeGreaterThanOrEqual(0);
    expect(replica?.window.samples).toBeGreaterThan(0);
    expect(m.targets.replicas['standby1']).toBeGreaterThan(0);
    expect(JSON.parse(JSON.stringify(m))).toEqual(m);
  });
});

describe('several replicas', () => {
  it('share reads round-robin while equally fresh, and a down one takes none', async () => {
    const many = createRouter({
      primary: db.url,
      replicas: [
        { name: 'a', connection: db.standbyUrl },
        { name: 'b', connection: db.standbyUrl },
        { name: 'down', connection: `postgres://postgres@127.0.0.1:${await closedPort()}/x` },
      ],
      // Both names are the same standby: any lag difference between them is sampling noise.
      equalLagMs: 1000,
      heartbeat: false,
    });
    try {
      await many.ready();
      await waitFor('both replicas healthy', () => many.metrics().replicas.filter((r) => r.healthy).length === 2);
      for (let i = 0; i < 40; i += 1) await many.query('SELECT id FROM items WHERE id = $1', [i + 1]);

      const reads = Object.fromEntries(many.metrics().replicas.map((r) => [r.name, r.reads]));
      expect(reads['a']).toBe(20);
      expect(reads['b']).toBe(20);
      expect(reads['down']).toBe(0);
      expect(many.metrics().targets.primary).toBe(0);
    } finally {
      await many.end();
    }
  });
});

describe('a replica that is down', () => {
  it('sends reads to the primary under on_replica_down: primary, with the reason counted', async () => {
    const down = createRouter({ primary: db.url, replicas: [{ name: 'gone', connection: `postgres://postgres@127.0.0.1:${await closedPort()}/x` }], heartbeat: false });
    try {
      await down.ready();
      expect(await ranOn(down)).toBe('primary');
      expect(down.metrics().fallbacks.unreachable).toBe(1);
      expect(down.metrics().replicas[0]).toMatchObject({ healthy: false, reason: 'unreachable', lag: { reachable: false } });
    } finally {
      await down.end();
    }
  });

  it('fails reads with a clear error under on_replica_down: error', async () => {
    const down = createRouter({
      primary: db.url,
      replicas: [{ name: 'gone', connection: `postgres://postgres@127.0.0.1:${await closedPort()}/x` }],
      onReplicaDown: 'error',
      heartbeat: false,
    });
    try {
      await down.ready();
      await expect(down.query('SELECT 1')).rejects.toThrow(NoReplicaError);
      await expect(down.query('SELECT 1')).rejects.toThrow(/no replica can take reads: gone is unreachable/);
      expect((await down.query('INSERT INTO visits (item) VALUES (1) RETURNING item')).rows).toEqual([{ item: 1 }]);
    } finally {
      await down.end();
    }
  });
});

describe('the standalone lag sampler (for pgwarden serve)', () => {
  it('samples lag without a router and stops cleanly', async () => {
    const sampler = startLagSampler({ primary: db.url, replicas: [{ name: 'standby1', connection: db.standbyUrl }], heartbeat: false });
    try {
      await sampler.ready();
      await waitFor('two samples', () => sampler.history('standby1').length >= 2);
      const [lag] = sampler.latest();
      expect(lag).toMatchObject({ name: 'standby1', reachable: true, inRecovery: true });
      expect(lag?.lagMs).toBeLessThan(5000);
      expect(sampler.stats('standby1').samples).toBeGreaterThanOrEqual(2);
      expect(sampler.heartbeat()).toBeNull();
    } finally {
      await sampler.stop();
    }
  });
});

describe('what takes a replica out of rotation', () => {
  it('keeps a replica that is fine when a read fails in the client (a bad bind value), and hands the caller that error', async () => {
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    const retriesBefore = router.metrics().retries['replica-unavailable'];

    await expect(router.query('SELECT $1::jsonb AS v', [circular])).rejects.toThrow(/circular/i);

    expect(router.metrics().replicas[0]).toMatchObject({ healthy: true, reason: null });
    expect(router.metrics().retries['replica-unavailable']).toBe(retriesBefore);
    expect(await ranOn(router)).toBe('standby');
  });

  it('gives up on a replica that stops answering after the replica query timeout, and runs the read on the primary', async () => {
    const proxy = await blackholeProxy(db.standbyUrl);
    const silent = createRouter({
      primary: { connectionString: db.url, max: 2 },
      replicas: [{ name: 'standby1', connection: proxy.url }],
      replicaQueryTimeoutMs: 1000,
      readYourWritesScope: 'session',
    });
    try {
      await silent.ready();
      await waitFor('the standby to take reads', () => silent.metrics().replicas[0]?.healthy === true);
      expect(await ranOn(silent)).toBe('standby');

      proxy.blackhole();
      const t0 = Date.now();
      // Sent before the lag sampler can notice: it goes to the replica, which never answers.
      const where = await ranOn(silent);

      expect(where).toBe('primary');
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(silent.metrics().retries['replica-unavailable']).toBeGreaterThanOrEqual(1);
      expect(silent.metrics().replicas[0]?.healthy).toBe(false);
    } finally {
      await silent.end();
      await proxy.close();
    }
  });
});
