import { HEALTH_MARKER } from './health-queries.ts';
import { ident } from '../sql/ident.ts';

/**
 * Amazon Aurora's readers share the writer's storage: they have no walsender, so pg_stat_replication is
 * empty and pg_last_wal_replay_lsn() says nothing about them. Aurora's own `aurora_replica_status()`
 * (documented by AWS: one row per instance, the writer's `session_id` being 'MASTER_SESSION_ID') gives
 * each reader's `replica_lag_in_msec`. Its presence is how pgwarden tells it is on Aurora.
 * Untested on Aurora itself: the suite runs it against a function of the documented signature. The
 * replication query (health-queries.ts) finds the function's schema, so no other database pays a round trip.
 */

/** Each reader and its lag; `schema`: where the function lives. */
export function auroraReplicasSql(schema: string): string {
  return `${HEALTH_MARKER}
SELECT r.server_id::text AS name, r.replica_lag_in_msec::float8 AS lag_ms
  FROM ${ident(schema)}.aurora_replica_status() r
 WHERE r.session_id IS DISTINCT FROM 'MASTER_SESSION_ID'
 ORDER BY 1`;
}

export interface AuroraReplicaRow {
  name: string;
  lag_ms: number | null;
}
