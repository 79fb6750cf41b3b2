import { ident, literal } from './ident.ts';

/**
 * The SQL text of routing's plan steps. Setting names are identifiers (quoted, each part of an
 * `extension.name`); values are literals, because ALTER SYSTEM takes no bind parameters.
 */

/**
 * Routing's tables live in the `pgwarden` schema, which apply creates first, with store/'s check
 * (engine/store/schema.ts: ensurePgwardenSchema): a schema an administrator created for a role without
 * CREATE on the database is used as is, and a missing grant is one line naming it. So the steps' statements
 * (HEARTBEAT_TABLE_SQL, ROUTER_METRICS_TABLE_SQL) do not create the schema: CREATE SCHEMA IF NOT EXISTS needs
 * that privilege even when the schema exists. CREATE_HEARTBEAT_SQL and CREATE_ROUTER_METRICS_SQL add it, for
 * setups that run outside apply as a superuser (tests, benches).
 */

/**
 * One row, stamped by every router and `pgwarden serve` (engine/replica-lag/heartbeat.ts). `id = 1` keeps it
 * one row whatever the number of writers; an UPDATE that changes no indexed column is a HOT update,
 * so the table stays one page.
 */
export const HEARTBEAT_TABLE_SQL = [
  `CREATE TABLE IF NOT EXISTS pgwarden.heartbeat (
     id int PRIMARY KEY CHECK (id = 1),
     ts timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
     writer text)`,
  `INSERT INTO pgwarden.heartbeat (id, ts, writer) VALUES (1, pg_catalog.clock_timestamp(), 'pgwarden apply') ON CONFLICT (id) DO NOTHING`,
].join(';\n');

/**
 * One row per running router (engine/routing/metrics-publisher.ts), upserted every few seconds with its
 * counters since it started; `pgwarden serve` reads the fresh rows for the live page's routing panel.
 * Routers delete their row when they end and sweep rows an hour old. The `counters` format is
 * PublishedRouterMetrics (engine/routing/router-metrics.ts), versioned inside the value.
 */
export const ROUTER_METRICS_TABLE_SQL = `CREATE TABLE IF NOT EXISTS pgwarden.router_metrics (
     instance text PRIMARY KEY,
     application text NOT NULL,
     host text NOT NULL,
     pid int NOT NULL,
     started_at timestamptz NOT NULL,
     updated_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
     counters jsonb NOT NULL)`;

const CREATE_SCHEMA_SQL = 'CREATE SCHEMA IF NOT EXISTS pgwarden';
export const CREATE_HEARTBEAT_SQL = `${CREATE_SCHEMA_SQL};\n${HEARTBEAT_TABLE_SQL}`;
export const CREATE_ROUTER_METRICS_SQL = `${CREATE_SCHEMA_SQL};\n${ROUTER_METRICS_TABLE_SQL}`;

/** `work_mem` -> "work_mem"; `auto_explain.log_min_duration` -> "auto_explain"."log_min_duration". */
export function settingName(name: string): string {
  return name.split('.').map(ident).join('.');
}

/** @example alterSystemSetSql('hot_standby_feedback', 'on') // ALTER SYSTEM SET "hot_standby_feedback" = 'on' */
export function alterSystemSetSql(name: string, value: string): string {
  return `ALTER SYSTEM SET ${settingName(name)} = ${literal(value)}`;
}

export function alterSystemResetSql(name: string): string {
  return `ALTER SYSTEM RESET ${settingName(name)}`;
}

export const RELOAD_CONF_SQL = 'SELECT pg_catalog.pg_reload_conf()';
