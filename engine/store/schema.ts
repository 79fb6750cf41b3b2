import type pg from 'pg';

/**
 * pgwarden's own objects in the target database, all in the `pgwarden` schema and all owned here: the
 * registry of indexes it manages, the partitions retention retired, and the history of every apply and
 * maintain run (read by the report site). Created on first apply; each statement is idempotent.
 * (The router's heartbeat and metrics tables and the standby-settings registry are created by the
 * routing steps, engine/sql/routing-ddl.ts, only when a routing policy asks for them.)
 */
export const PGWARDEN_SCHEMA_SQL = [
  `CREATE SCHEMA IF NOT EXISTS pgwarden`,
  `CREATE TABLE IF NOT EXISTS pgwarden.managed_index (
     schema_name text NOT NULL,
     index_name text NOT NULL,
     table_name text NOT NULL,
     policy_file text,
     -- What the policy said and what PostgreSQL made of it: while both still hold, the next plan
     -- knows the index matches without canonicalising the policy again.
     spec_hash text,
     signature text,
     recorded_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (schema_name, index_name))`,
  // Partitions detached for retention's `then: drop`, recorded before the detach: the DROP is a later
  // step, and a table that failed to drop is no longer in pg_inherits, so only this record finds it again.
  `CREATE TABLE IF NOT EXISTS pgwarden.retired_partition (
     relid oid PRIMARY KEY,
     schema_name text NOT NULL,
     table_name text NOT NULL,
     parent_schema text NOT NULL,
     parent_name text NOT NULL,
     recorded_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE IF NOT EXISTS pgwarden.history (
     id bigserial PRIMARY KEY,
     kind text NOT NULL,
     started_at timestamptz NOT NULL DEFAULT now(),
     finished_at timestamptz,
     duration_ms bigint,
     outcome text NOT NULL,
     actor text,
     git_commit text,
     git_branch text,
     fingerprint text,
     summary jsonb,
     plan jsonb,
     error text,
     backend_pid int)`,
];

/**
 * `pgwarden.managed_setting`: the storage parameters pgwarden set on each table it governs (a
 * partitioned table's entry covers all its partitions). A parameter leaves the policy: it is reset
 * only if it is recorded here, so a value someone set by hand is never silently undone.
 * Created on first use, so databases without vacuum policies never get it (nor its catalog query).
 */
export const MANAGED_SETTING_SQL = `CREATE TABLE IF NOT EXISTS pgwarden.managed_setting (
  schema_name text NOT NULL,
  table_name text NOT NULL,
  parameter text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (schema_name, table_name, parameter))`;

/** Creates what is missing, in one round trip (no parameters: the simple protocol takes several statements). */
export async function ensurePgwardenSchema(client: pg.ClientBase): Promise<void> {
  await client.query(
    [
      ...PGWARDEN_SCHEMA_SQL,
      // A process killed mid-apply leaves its record 'running'; its backend is gone, so say what happened.
      `UPDATE pgwarden.history SET outcome = 'interrupted', finished_at = COALESCE(finished_at, now())
        WHERE outcome = 'running'
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = history.backend_pid)`,
    ].join(';\n'),
  );
}
