import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthCollector } from '../../engine/health/health-collector.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

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
