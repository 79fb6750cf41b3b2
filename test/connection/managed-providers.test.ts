import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSnapshot, statementDelta } from '../../engine/analysis/statement-stats.ts';
import { binariesFor } from '../../engine/cluster/binaries.ts';
import { resolveConnection } from '../../engine/connection/connection-settings.ts';
import { connect } from '../../engine/connection/open-connection.ts';
import { createHealthCollector } from '../../engine/live-health/health-collector.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import { startServer, type ThrowawayServer } from '../support/throwaway-server.ts';

/**
 * What managed providers do differently. Aurora cannot run here: its replica status is read from a
 * function of the signature AWS documents for `aurora_replica_status()`, standing in on a real PostgreSQL.
 */
let db: TestDatabase;

beforeAll(async () => {
  db = await useTestDatabase();
});

afterAll(async () => {
  await db.close();
});

describe('Amazon Aurora (untested on Aurora itself)', () => {
  it('reads each Aurora reader’s lag from replica_lag_in_msec, on a stand-in aurora_replica_status() of the documented signature', async () => {
    await db.pool.query(`
      CREATE FUNCTION public.aurora_replica_status()
      RETURNS TABLE (server_id text, session_id text, durable_lsn bigint, highest_lsn_rcvd bigint, current_read_lsn bigint,
                     cur_replay_latency_in_usec bigint, active_txns integer, is_current boolean, last_transport_error integer,
                     last_error_timestamp timestamptz, last_update_timestamp timestamptz, feedback_xmin bigint, feedback_epoch integer,
                     replica_lag_in_msec real, log_stream_speed_in_kib_per_second real, log_buffer_sequence_number bigint,
                     oldest_read_view_trx_id bigint, oldest_read_view_lsn bigint, pending_read_ios integer, read_ios bigint,
                     iops integer, cpu real)
      LANGUAGE sql AS $$
        VALUES ('app-writer', 'MASTER_SESSION_ID', 100::bigint, NULL::bigint, NULL::bigint, NULL::bigint, 3, true, NULL::integer,
                NULL::timestamptz, now(), NULL::bigint, NULL::integer, NULL::real, NULL::real, NULL::bigint, NULL::bigint, NULL::bigint,
                NULL::integer, NULL::bigint, NULL::integer, 1.5::real),
               ('app-reader-1', '5f3c0a9e-0000-4000-8000-000000000001', 100, 100, 99, 250, 1, true, NULL,
                NULL, now(), 733, 0, 42.5, 12.0, 7, NULL, 99, 0, 1000, NULL, 2.0),
               ('app-reader-2', '5f3c0a9e-0000-4000-8000-000000000002', 100, 98, 97, 900, 0, true, NULL,
                NULL, now(), 731, 0, 1234, 8.0, 7, NULL, 97, 2, 800, NULL, 2.5)
      $$`);
    const collector = createHealthCollector({ primaryUrl: db.url, slowIntervalMs: 3_600_000 });
    try {
      const snapshot = await collector.pollOnce();
      const aurora = (snapshot?.standbys ?? []).filter((s) => s.name.startsWith('app-'));
      expect(aurora.map((s) => ({ name: s.name, state: s.state, lagMs: s.lagMs, lagSource: s.lagSource }))).toEqual([
        { name: 'app-reader-1', state: 'streaming', lagMs: 42.5, lagSource: 'aurora_replica_status' },
        { name: 'app-reader-2', state: 'streaming', lagMs: 1234, lagSource: 'aurora_replica_status' },
      ]);
    } finally {
      await collector.stop();
    }
  });
});

/**
 * A reset of pg_stat_statements (Neon resets it when a compute suspends; pg_stat_statements_reset() does
 * it anywhere) is instance-wide, so these tests have a server of their own.
 */
describe('pg_stat_statements reset inside a window', () => {
  let server: ThrowawayServer;
  let url: string;

  beforeAll(async () => {
    server = await startServer({ bin: path.dirname((await binariesFor(process.getuid?.() === 0 ? 'postgres' : undefined)).pgCtl), installHint: 'npm install' });
    url = `${await server.database('app', ['pg_stat_statements'])}?sslmode=disable`;
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  async function session() {
    return connect(resolveConnection({ connectionString: url, env: {} }));
  }

  async function runQueries(times: number): Promise<void> {
    const client = await session();
    try {
      for (let i = 0; i < times; i += 1) await client.query('SELECT pg_catalog.pg_sleep(0.001), $1::int AS n', [i]);
    } finally {
      await client.end();
    }
  }

  async function reset(): Promise<void> {
    const client = await session();
    try {
      await client.query('SELECT public.pg_stat_statements_reset()');
    } finally {
      await client.end();
    }
  }

  it('analyze --since reports the reset, and counts every statement from it instead of subtracting', async () => {
    await runQueries(20);
    const client = await session();
    try {
      const before = await readSnapshot(client, 'public', () => new Date());
      await reset();
      await runQueries(5);
      const after = await readSnapshot(client, 'public', () => new Date());
      const window = statementDelta(before, after);
      expect(window.resetAt).toBe(after.statsReset);
      const sleeper = window.statements.find((s) => s.query.includes('pg_sleep'));
      expect(sleeper?.calls).toBe(5);
      expect(window.statements.every((s) => s.totalMs >= 0 && s.calls > 0)).toBe(true);
    } finally {
      await client.end();
    }
  });

  it('the live page counts the window from the reset and says it was reset, rather than losing the statements', async () => {
    const collector = createHealthCollector({ primaryUrl: url, slowIntervalMs: 3_600_000 });
    try {
      await runQueries(20);
      await collector.pollOnce();
      await reset();
      await runQueries(5);
      const snapshot = await collector.pollOnce();
      expect(snapshot?.statements.resetAt).toMatch(/^\d{4}-\d{2}-\d{2}T/u);
      const sleeper = snapshot?.statements.top.find((t) => (t.query ?? '').includes('pg_sleep'));
      expect(sleeper?.calls).toBe(5);
      expect(snapshot?.statements.timeInWindowMs).toBeGreaterThan(0);
      const quiet = await collector.pollOnce();
      expect(quiet?.statements.resetAt).toBeUndefined();
    } finally {
      await collector.stop();
    }
  });
});
