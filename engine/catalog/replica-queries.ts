/**
 * Catalog SQL of read-replica routing: who is whom (system identifier, recovery), where replication
 * stands (pg_stat_replication on the primary, pg_stat_wal_receiver and the replay positions on a
 * standby), the standby settings pgwarden manages, and what the statement router must know about
 * functions and relations. Every query is one round trip; none is ever run on a query's path.
 *
 * Visibility: without superuser or pg_monitor (pg_read_all_stats), pg_stat_replication and
 * pg_stat_wal_receiver show their rows with most columns NULL; callers treat NULL as "unknown", never
 * as "caught up".
 *
 * Every statement that runs in the background (the lag sampler, the heartbeat, the router's catalog
 * refresh) starts with HEALTH_MARKER: pg_stat_statements keeps the first text it sees per queryid and
 * the queryid ignores comments, so the marker must lead the text for the health collector to keep
 * pgwarden's own statements out of the application's workload.
 */

import { HEALTH_MARKER } from './health-queries.ts';

/** Which server this is. pg_control_system() exists since PostgreSQL 9.6. */
export const SERVER_IDENTITY_SQL = `
SELECT pg_catalog.pg_is_in_recovery() AS in_recovery,
       (SELECT c.system_identifier::text FROM pg_catalog.pg_control_system() c) AS system_identifier,
       pg_catalog.current_database() AS database,
       pg_catalog.current_setting('server_version_num')::int AS server_version`;

export interface ServerIdentityRow {
  in_recovery: boolean;
  system_identifier: string | null;
  database: string;
  server_version: number;
}

/**
 * The primary's side, sampled once per tick: its clock and WAL position (so that standby positions can
 * be turned into time without trusting the standby's clock), and every walsender.
 * `write/flush/replay_lag` are NULL once a standby has caught up and nothing is in flight (PG 10+),
 * and the row is missing altogether while the standby is disconnected.
 */
export const PRIMARY_REPLICATION_SQL = `${HEALTH_MARKER}
SELECT (EXTRACT(epoch FROM pg_catalog.clock_timestamp()) * 1000)::float8 AS now_ms,
       pg_catalog.pg_current_wal_lsn()::text AS current_lsn,
       COALESCE((
         SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                  'pid', r.pid,
                  'application_name', r.application_name,
                  'client_addr', r.client_addr::text,
                  'state', r.state,
                  'sync_state', r.sync_state,
                  'slot_name', s.slot_name,
                  'sent_lsn', r.sent_lsn::text,
                  'write_lsn', r.write_lsn::text,
                  'flush_lsn', r.flush_lsn::text,
                  'replay_lsn', r.replay_lsn::text,
                  'write_lag_ms', EXTRACT(epoch FROM r.write_lag) * 1000,
                  'flush_lag_ms', EXTRACT(epoch FROM r.flush_lag) * 1000,
                  'replay_lag_ms', EXTRACT(epoch FROM r.replay_lag) * 1000,
                  'sent_replay_bytes', pg_catalog.pg_wal_lsn_diff(r.sent_lsn, r.replay_lsn),
                  'behind_bytes', pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.replay_lsn))
                ORDER BY r.pid)
           FROM pg_catalog.pg_stat_replication r
           LEFT JOIN pg_catalog.pg_replication_slots s ON s.active_pid = r.pid
       ), '[]'::json) AS standbys`;

export interface WalSenderRow {
  pid: number;
  application_name: string | null;
  client_addr: string | null;
  state: string | null;
  sync_state: string | null;
  slot_name: string | null;
  sent_lsn: string | null;
  write_lsn: string | null;
  flush_lsn: string | null;
  replay_lsn: string | null;
  write_lag_ms: number | null;
  flush_lag_ms: number | null;
  replay_lag_ms: number | null;
  sent_replay_bytes: number | string | null;
  behind_bytes: number | string | null;
}

export interface PrimaryReplicationRow {
  now_ms: number;
  current_lsn: string;
  standbys: WalSenderRow[];
}

const REPLICA_COLUMNS = `${HEALTH_MARKER}
SELECT (EXTRACT(epoch FROM pg_catalog.clock_timestamp()) * 1000)::float8 AS now_ms,
       pg_catalog.pg_is_in_recovery() AS in_recovery,
       pg_catalog.pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_catalog.pg_last_wal_replay_lsn()::text AS replay_lsn,
       (EXTRACT(epoch FROM pg_catalog.pg_last_xact_replay_timestamp()) * 1000)::float8 AS last_replay_ms,
       -- pg_is_wal_replay_paused() raises an error outside recovery; CASE evaluates it only inside.
       CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_is_wal_replay_paused() END AS replay_paused,
       w.pid AS receiver_pid,
       w.status AS receiver_status,
       w.slot_name AS receiver_slot,
       w.sender_host,
       w.sender_port,
       w.conninfo,
       pg_catalog.to_regclass('pgwarden.heartbeat') IS NOT NULL AS heartbeat_table`;

/**
 * A standby's side: its replay position and time, whether its WAL receiver is streaming, and (when the
 * table exists) the replayed heartbeat. Two variants, because a query naming a missing table fails
 * to parse: the sampler switches when `heartbeat_table` says the table has appeared.
 */
export const REPLICA_STATE_SQL = `${REPLICA_COLUMNS},
       NULL::float8 AS heartbeat_ms
  FROM (SELECT 1) AS one
  LEFT JOIN pg_catalog.pg_stat_wal_receiver w ON true`;

export const REPLICA_STATE_WITH_HEARTBEAT_SQL = `${REPLICA_COLUMNS},
       (SELECT (EXTRACT(epoch FROM h.ts) * 1000)::float8 FROM pgwarden.heartbeat h WHERE h.id = 1) AS heartbeat_ms
  FROM (SELECT 1) AS one
  LEFT JOIN pg_catalog.pg_stat_wal_receiver w ON true`;

/** Whether the replica has replayed the heartbeat table yet: decides which REPLICA_STATE_* to run. */
export const HEARTBEAT_TABLE_EXISTS_SQL = `${HEALTH_MARKER}
SELECT pg_catalog.to_regclass('pgwarden.heartbeat') IS NOT NULL AS t`;

export interface ReplicaStateRow {
  now_ms: number;
  in_recovery: boolean;
  receive_lsn: string | null;
  replay_lsn: string | null;
  last_replay_ms: number | null;
  replay_paused: boolean | null;
  /** Without pg_read_all_stats only the pid is visible: a pid with a NULL status means "running, status unknown". */
  receiver_pid: number | null;
  receiver_status: string | null;
  receiver_slot: string | null;
  sender_host: string | null;
  sender_port: number | null;
  conninfo: string | null;
  heartbeat_table: boolean;
  heartbeat_ms: number | null;
}

/**
 * What the router must know to keep statements off a standby: whether every overload of a function
 * name is read-only (IMMUTABLE or STABLE: PostgreSQL refuses writes inside those), and the relations a
 * standby cannot serve or that are session state (temporary, unlogged, sequences).
 */
export const FUNCTION_VOLATILITY_SQL = `${HEALTH_MARKER}
SELECT n.nspname AS schema, p.proname AS name, pg_catalog.bool_and(p.provolatile <> 'v') AS read_only
  FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
 GROUP BY n.nspname, p.proname`;

export interface FunctionVolatilityRow {
  schema: string;
  name: string;
  read_only: boolean;
}

export const PRIMARY_ONLY_RELATIONS_SQL = `${HEALTH_MARKER}
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.relpersistence::text AS persistence
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'S' OR c.relpersistence IN ('t', 'u')`;

export interface PrimaryOnlyRelationRow {
  schema: string;
  name: string;
  kind: string;
  persistence: string;
}

/** Every setting with what is needed to compare values PostgreSQL's way (units, types, bounds). */
export const STANDBY_SETTINGS_SQL = `
SELECT s.name, s.setting, s.unit, s.vartype, s.context, s.enumvals, s.min_val, s.max_val, s.pending_restart
  FROM pg_catalog.pg_settings s`;

export interface SettingRow {
  name: string;
  setting: string | null;
  unit: string | null;
  vartype: 'bool' | 'enum' | 'integer' | 'real' | 'string';
  context: string;
  enumvals: string[] | null;
  min_val: string | null;
  max_val: string | null;
  pending_restart: boolean;
}

/**
 * What the configuration files say, applied or not: shows a value ALTER SYSTEM wrote that waits for a
 * restart. Readable by superusers only by default; callers treat "permission denied" as "unknown".
 */
export const FILE_SETTINGS_SQL = `
SELECT f.name, f.setting, f.applied, f.error, f.sourcefile
  FROM pg_catalog.pg_file_settings f
 WHERE f.name = ANY($1::text[])
 ORDER BY f.seqno`;

export interface FileSettingRow {
  name: string;
  setting: string | null;
  applied: boolean;
  error: string | null;
  sourcefile: string | null;
}

const columnsOf = (table: string): string => `COALESCE((SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum)
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = pg_catalog.to_regclass('${table}') AND a.attnum > 0 AND NOT a.attisdropped),
                '{}')`;

/**
 * The primary side of a routing plan: the shapes of the tables routers write (the heartbeat, the
 * router metrics) and pgwarden's settings registry.
 */
export const ROUTING_OBJECTS_SQL = `
SELECT pg_catalog.to_regclass('pgwarden.heartbeat') IS NOT NULL AS heartbeat_exists,
       ${columnsOf('pgwarden.heartbeat')} AS heartbeat_columns,
       pg_catalog.to_regclass('pgwarden.router_metrics') IS NOT NULL AS router_metrics_exists,
       ${columnsOf('pgwarden.router_metrics')} AS router_metrics_columns,
       pg_catalog.to_regclass('pgwarden.managed_replica_setting') IS NOT NULL AS registry_exists`;

export interface RoutingObjectsRow {
  heartbeat_exists: boolean;
  heartbeat_columns: string[];
  router_metrics_exists: boolean;
  router_metrics_columns: string[];
  registry_exists: boolean;
}

export const MANAGED_REPLICA_SETTINGS_SQL = `
SELECT r.replica_name, r.setting_name, r.value, r.policy_file
  FROM pgwarden.managed_replica_setting r
 ORDER BY r.replica_name, r.setting_name`;

export interface ManagedReplicaSettingRow {
  replica_name: string;
  setting_name: string;
  value: string;
  policy_file: string | null;
}
