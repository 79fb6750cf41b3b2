import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRouter, startLagSampler, type RoutingPool } from '../../engine/routing/index.ts';
import { sampleLagOnce } from '../../engine/replica-lag/lag-sampler.ts';
import { CREATE_HEARTBEAT_SQL } from '../../engine/sql/routing-ddl.ts';
import { ownCluster, sql, waitFor, type OwnCluster } from './own-cluster.ts';

let cluster: OwnCluster;

interface Read {
  readonly at: number;
  readonly on: 'standby' | 'primary' | 'failed';
  readonly error?: string;
}

/**
 * An application's reads, four at a time, through the router, with a writer on the side (so the
 * standby has WAL to replay), until stopped. Every read records where it ran, or that it failed.
 */
function workload(router: RoutingPool): { reads: Read[]; since(at: number): Read[]; stop(): Promise<void> } {
  const reads: Read[] = [];
  let running = true;
  const reader = async (): Promise<void> => {
    while (running) {
      try {
        const r = await router.query<{ standby: boolean; n: number }>('SELECT pg_is_in_recovery() AS standby, count(*)::int AS n FROM items');
        reads.push({ at: Date.now(), on: r.rows[0]?.standby ? 'standby' : 'primary' });
      } catch (error) {
        reads.push({ at: Date.now(), on: 'failed', error: (error as Error).message });
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const writer = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: cluster.primaryUrl });
    await client.connect();
    try {
      for (let i = 0; running; i += 1) {
        await client.query('INSERT INTO items (note) VALUES ($1)', [`w${i}`]);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await client.end();
    }
  };
  const all = Promise.all([reader(), reader(), reader(), reader(), writer()]);
  return {
    reads,
    since: (at) => reads.filter((r) => r.at >= at),
    async stop() {
      running = false;
      await all;
    },
  };
}

function routerFor(maxLagMs: number): RoutingPool {
  return createRouter({
    primary: { connectionString: cluster.primaryUrl, max: 6 },
    replicas: [{ name: 'standby1', connection: cluster.standbyUrl }],
    maxLagMs,
    recoverAfterMs: 500,
    // The workload's reads are not its writer's: they may go to the standby throughout.
    readYourWritesScope: 'session',
  });
}

const count = (reads: readonly Read[], on: Read['on']): number => reads.filter((r) => r.on === on).length;

beforeAll(async () => {
  cluster = await ownCluster();
  await sql(cluster.primaryUrl, CREATE_HEARTBEAT_SQL);
  await sql(cluster.primaryUrl, 'CREATE TABLE items (id serial PRIMARY KEY, note text); INSERT INTO items (note) SELECT g::text FROM generate_series(1, 1000) g');
  await waitFor('the table on the standby', async () => (await sql(cluster.standbyUrl, `SELECT to_regclass('items') IS NOT NULL AS here`))[0]?.['here'] === true);
});
afterAll(async () => {
  await cluster?.destroy();
});

describe('faults on a real standby, under a read workload', () => {
  it('loses no read when the standby stops: reads move to the primary, and come back when it returns', async () => {
    const router = routerFor(500);
    const load = workload(router);
    try {
      await waitFor('reads on the standby', () => count(load.reads, 'standby') >= 20);

      await cluster.stopStandby();
      const stopped = Date.now();
      await waitFor('reads on the primary after the stop', () => count(load.since(stopped), 'primary') >= 20);
      expect(count(load.since(stopped + 200), 'standby')).toBe(0);
      expect(router.metrics().replicas[0]).toMatchObject({ healthy: false, reason: 'unreachable' });

      await cluster.startStandby();
      const restarted = Date.now();
      await waitFor('reads back on the standby', () => count(load.since(restarted), 'standby') >= 20, 20_000);
    } finally {
      await load.stop();
      await router.end();
    }
    const failed = load.reads.filter((r) => r.on === 'failed');
    expect(failed.map((r) => r.error)).toEqual([]);
    expect(load.reads.length).toBeGreaterThan(100);
    const m = router.metrics();
    expect(m.failedReads).toBe(0);
    expect(m.fallbacks.unreachable).toBeGreaterThan(0);
  });

  it('moves reads to the primary while replay is paused past max_lag_ms, and back after it resumes', async () => {
    const router = routerFor(300);
    const load = workload(router);
    try {
      await waitFor('reads on the standby', () => count(load.reads, 'standby') >= 20);

      await sql(cluster.standbyUrl, 'SELECT pg_wal_replay_pause()');
      await waitFor('the lag to pass max_lag_ms', () => router.metrics().replicas[0]?.reason === 'lag', 10_000);
      const lagging = Date.now();
      expect(router.metrics().replicas[0]?.lag?.lagMs).toBeGreaterThan(300);
      expect(router.metrics().replicas[0]?.lag?.replayPaused).toBe(true);
      await waitFor('reads on the primary', () => count(load.since(lagging), 'primary') >= 20);
      expect(count(load.since(lagging + 50), 'standby')).toBe(0);

      await sql(cluster.standbyUrl, 'SELECT pg_wal_replay_resume()');
      const resumed = Date.now();
      await waitFor('reads back on the standby', () => count(load.since(resumed), 'standby') >= 20, 10_000);
      expect(router.metrics().replicas[0]?.lag?.lagMs).toBeLessThan(300);
    } finally {
      await sql(cluster.standbyUrl, 'SELECT pg_wal_replay_resume()').catch(() => undefined);
      await load.stop();
      await router.end();
    }
    expect(load.reads.filter((r) => r.on === 'failed').map((r) => r.error)).toEqual([]);
    expect(router.metrics().fallbacks.lag).toBeGreaterThan(0);
  });

  it('never reports a standby whose WAL receiver stopped as 0 ms behind, even on an idle primary', async () => {
    // No heartbeat and no writes: the standby's replay position equals the primary's, so only the
    // receiver's state tells that it would not see the next write.
    const sampler = startLagSampler({ primary: cluster.primaryUrl, replicas: [{ name: 'standby1', connection: cluster.standbyUrl }], heartbeat: false });
    try {
      await waitFor('a streaming sample', () => sampler.latest()[0]?.streaming === true);
      await sql(cluster.standbyUrl, `ALTER SYSTEM SET primary_conninfo = ''`);
      await sql(cluster.standbyUrl, 'SELECT pg_reload_conf()');
      await waitFor('the receiver to stop', () => sampler.latest()[0]?.streaming === false);

      await waitFor('the silence to count as lag', () => (sampler.latest()[0]?.lagMs ?? 0) >= 1000, 5000);
      expect(sampler.latest()[0]).toMatchObject({ streaming: false, lagSource: 'not-receiving', reachable: true });
    } finally {
      await sql(cluster.standbyUrl, 'ALTER SYSTEM RESET primary_conninfo');
      await sql(cluster.standbyUrl, 'SELECT pg_reload_conf()');
      await waitFor('streaming again', () => sampler.latest()[0]?.streaming === true, 20_000).finally(() => sampler.stop());
    }
  });

  it('never reports a standby whose WAL receiver is stopped as 0 ms behind in a single sample (what plan uses), nor from a sampler started after it stopped', async () => {
    const primary = new pg.Client({ connectionString: cluster.primaryUrl });
    const standby = new pg.Client({ connectionString: cluster.standbyUrl });
    await Promise.all([primary.connect(), standby.connect()]);
    let sampler: ReturnType<typeof startLagSampler> | null = null;
    try {
      await sql(cluster.standbyUrl, `ALTER SYSTEM SET primary_conninfo = ''`);
      await sql(cluster.standbyUrl, 'SELECT pg_reload_conf()');
      await waitFor('the receiver to stop', async () => (await sql(cluster.standbyUrl, 'SELECT count(*)::int AS n FROM pg_stat_wal_receiver'))[0]?.['n'] === 0);

      const [once] = await sampleLagOnce(primary, [{ name: 'standby1', client: standby }]);
      expect(once?.streaming).toBe(false);
      expect(once?.lagSource).not.toBe('caught-up');
      expect(once?.lagMs).not.toBe(0);

      sampler = startLagSampler({ primary: cluster.primaryUrl, replicas: [{ name: 'standby1', connection: cluster.standbyUrl }], heartbeat: false });
      await sampler.ready();
      const first = sampler.latest()[0];
      expect(first?.streaming).toBe(false);
      expect(first?.lagSource).not.toBe('caught-up');
      expect(first?.lagMs).not.toBe(0);
    } finally {
      await sampler?.stop();
      await sql(cluster.standbyUrl, 'ALTER SYSTEM RESET primary_conninfo');
      await sql(cluster.standbyUrl, 'SELECT pg_reload_conf()');
      await waitFor('streaming again', async () => (await sql(cluster.standbyUrl, `SELECT count(*)::int AS n FROM pg_stat_wal_receiver WHERE status = 'streaming'`))[0]?.['n'] === 1, 20_000);
      await Promise.all([primary.end(), standby.end()]);
    }
  });
});
