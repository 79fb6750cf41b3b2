import { hostname, userInfo } from 'node:os';
import { execa } from 'execa';
import type pg from 'pg';
import type { Plan } from '../plan/plan.ts';
import { qualified } from '../sql/ident.ts';

/**
 * pgwarden's own objects in the target database: the registry of indexes it manages and the history of
 * every apply (read by the report site). Created on first apply; each statement is idempotent.
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

export type Outcome = 'running' | 'succeeded' | 'failed' | 'interrupted';

export interface Provenance {
  readonly actor: string;
  readonly gitCommit: string | null;
  readonly gitBranch: string | null;
}

/** Who applies and from which commit: the CI's variables when present, else the local git checkout. */
export async function provenance(env: NodeJS.ProcessEnv = process.env): Promise<Provenance> {
  const git = async (args: string[]): Promise<string | null> => {
    const r = await execa('git', args, { reject: false, stdin: 'ignore', timeout: 2000 });
    return r.exitCode === 0 && typeof r.stdout === 'string' && r.stdout.trim() !== '' ? r.stdout.trim() : null;
  };
  const actor = env['GITHUB_ACTOR'] ?? env['GITLAB_USER_LOGIN'] ?? `${userInfo().username}@${hostname()}`;
  const gitCommit = env['GITHUB_SHA'] ?? env['CI_COMMIT_SHA'] ?? (await git(['rev-parse', 'HEAD']));
  const gitBranch = env['GITHUB_REF_NAME'] ?? env['CI_COMMIT_REF_NAME'] ?? (await git(['rev-parse', '--abbrev-ref', 'HEAD']));
  return { actor, gitCommit, gitBranch };
}

export async function ensurePgwardenSchema(client: pg.ClientBase): Promise<void> {
  for (const sql of PGWARDEN_SCHEMA_SQL) await client.query(sql);
  // A process killed mid-apply leaves its record 'running'; its backend is gone, so say what happened.
  await client.query(
    `UPDATE pgwarden.history SET outcome = 'interrupted', finished_at = COALESCE(finished_at, now())
      WHERE outcome = 'running'
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid = history.backend_pid)`,
  );
}

export async function startRecord(client: pg.ClientBase, kind: string, plan: Plan, who: Provenance): Promise<number> {
  const r = await client.query<{ id: string }>(
    `INSERT INTO pgwarden.history (kind, outcome, actor, git_commit, git_branch, fingerprint, summary, plan, backend_pid)
     VALUES ($1, 'running', $2, $3, $4, $5, $6, $7, pg_catalog.pg_backend_pid()) RETURNING id`,
    [kind, who.actor, who.gitCommit, who.gitBranch, plan.fingerprint, JSON.stringify(plan.summary), JSON.stringify(plan)],
  );
  return Number(r.rows[0]?.id);
}

export async function finishRecord(client: pg.ClientBase, id: number, outcome: Outcome, error: string | null): Promise<void> {
  await client.query(
    `UPDATE pgwarden.history
        SET outcome = $2, error = $3, finished_at = now(),
            duration_ms = (EXTRACT(epoch FROM now() - started_at) * 1000)::bigint
      WHERE id = $1`,
    [id, outcome, error],
  );
}

/** A partition retention is about to detach and then drop; records of relations gone since are cleared. */
export async function recordRetiredPartition(client: pg.ClientBase, parent: { schema: string; name: string }, partition: { schema: string; name: string }): Promise<void> {
  await client.query(
    `DELETE FROM pgwarden.retired_partition r
      WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = r.relid AND c.relname = r.table_name AND n.nspname = r.schema_name)`,
  );
  await client.query(
    `INSERT INTO pgwarden.retired_partition (relid, schema_name, table_name, parent_schema, parent_name)
     SELECT c.oid, $1, $2, $3, $4 FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($5)
     ON CONFLICT (relid) DO UPDATE
       SET schema_name = EXCLUDED.schema_name, table_name = EXCLUDED.table_name, parent_schema = EXCLUDED.parent_schema,
           parent_name = EXCLUDED.parent_name, recorded_at = now()`,
    [partition.schema, partition.name, parent.schema, parent.name, qualified(partition.schema, partition.name)],
  );
}
