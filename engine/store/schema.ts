import type pg from 'pg';

/**
 * pgwarden's own objects in the target database, all in the `pgwarden` schema and all owned here: the
 * registry of indexes it manages, the partitions retention retired, and the history of every apply and
 * maintain run (read by the report site). Created on first apply; each statement is idempotent.
 * The standby-settings registry is created on first use (replica-setting-registry.ts); the router's
 * heartbeat and metrics tables are the router's (engine/sql/routing-ddl.ts), created by routing steps.
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

/**
 * Creates what is missing, in one round trip (no parameters: the simple protocol takes several statements).
 * A role that may not create the schema (no CREATE on the database, as managed providers often give) or
 * write to it (someone else created it) gets one line saying which grant fixes it.
 */
export async function ensurePgwardenSchema(client: pg.ClientBase): Promise<void> {
  try {
    await createPgwardenSchema(client);
  } catch (error) {
    if ((error as { code?: unknown }).code !== '42501') throw error;
    const who = await client
      .query<{ role: string; database: string; owner: string | null }>(
        `SELECT current_user AS role, pg_catalog.current_database() AS database,
                (SELECT pg_catalog.pg_get_userbyid(n.nspowner) FROM pg_catalog.pg_namespace n WHERE n.nspname = 'pgwarden') AS owner`,
      )
      .then((r) => r.rows[0])
      .catch(() => undefined);
    const role = who?.role ?? '<your role>';
    const database = who?.database ?? '<database>';
    const cause = (error as Error).message;
    // The schema has one owner: another role's first apply created it, so that role (or a member of it) runs pgwarden.
    if (who?.owner != null && who.owner !== role) {
      throw new Error(
        `pgwarden keeps its history and registries in the schema "pgwarden", which belongs to role "${who.owner}"; role "${role}" may not write it (${cause}): ` +
          `run pgwarden as "${who.owner}", or GRANT "${who.owner}" TO "${role}"`,
      );
    }
    throw new Error(
      `pgwarden keeps its history and registries in the schema "pgwarden", which role "${role}" may not create (${cause}): ` +
        `GRANT CREATE ON DATABASE "${database}" TO "${role}", or have an administrator run CREATE SCHEMA pgwarden AUTHORIZATION "${role}"`,
    );
  }
}

async function createPgwardenSchema(client: pg.ClientBase): Promise<void> {
  // CREATE SCHEMA IF NOT EXISTS checks CREATE on the database before it looks for the schema: a schema an
  // administrator created for a role without that privilege (CREATE SCHEMA pgwarden AUTHORIZATION app) is
  // only usable when the statement is left out.
  const exists = (await client.query<{ e: boolean }>(`SELECT pg_catalog.to_regnamespace('pgwarden') IS NOT NULL AS e`)).rows[0]?.e === true;
  await client.query(
    [
      ...PGWARDEN_SCHEMA_SQL.filter((statement) => !(exists && statement.startsWith('CREATE SCHEMA'))),
      // A process killed mid-apply leaves its record 'running'; its backend is gone, so say what happened.
      `UPDATE pgwarden.history SET outcome = 'interrupted', finished_at = COALESCE(finished_at, now())
        WHERE outcome = 'running'
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = history.backend_pid)`,
    ].join(';\n'),
  );
}

/**
 * What to grant when a role may read the database but not pgwarden's schema (a read-only CI role after
 * another role's first apply created it): plan, report and the live page read the registries and history.
 */
export function pgwardenSchemaHint(error: unknown): string | undefined {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (e?.code !== '42501' || typeof e.message !== 'string') return undefined;
  if (!/\bschema pgwarden\b|\b(managed_index|managed_setting|retired_partition|history)\b/u.test(e.message)) return undefined;
  return 'pgwarden reads its registries and history in the schema "pgwarden": GRANT USAGE ON SCHEMA pgwarden TO <role>; GRANT SELECT ON ALL TABLES IN SCHEMA pgwarden TO <role>';
}
