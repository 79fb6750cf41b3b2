import { hostname, userInfo } from 'node:os';
import { execa } from 'execa';
import type pg from 'pg';
import type { Plan } from '../plan/plan.ts';

/**
 * `pgwarden.history`: one record per apply and per maintain run (read by the report site and the live
 * page), opened 'running' before the first statement and closed with the outcome.
 */

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

export async function startRecord(client: pg.ClientBase, kind: string, plan: Plan, who: Provenance): Promise<number> {
  const r = await client.query<{ id: string }>(
    `INSERT INTO pgwarden.history (kind, outcome, actor, git_commit, git_branch, fingerprint, summary, plan, backend_pid)
     VALUES ($1, 'running', $2, $3, $4, $5, $6, $7, pg_catalog.pg_backend_pid()) RETURNING id`,
    [kind, who.actor, who.gitCommit, who.gitBranch, plan.fingerprint, JSON.stringify(plan.summary), JSON.stringify(plan)],
  );
  return Number(r.rows[0]?.id);
}

/** Closes the record; returns the duration it records, the one figure the CLI and the history both show. */
export async function finishRecord(client: pg.ClientBase, id: number, outcome: Outcome, error: string | null): Promise<number | null> {
  const r = await client.query<{ duration_ms: string }>(
    `UPDATE pgwarden.history
        SET outcome = $2, error = $3, finished_at = now(),
            duration_ms = (EXTRACT(epoch FROM now() - started_at) * 1000)::bigint
      WHERE id = $1
     RETURNING duration_ms`,
    [id, outcome, error],
  );
  const ms = r.rows[0]?.duration_ms;
  return ms === undefined ? null : Number(ms);
}

/**
 * A `maintain` run in `pgwarden.history`, beside the applies (kind 'maintain'): `summary` holds the
 * counts, `plan` the tasks and, once finished, each table's before/after figures.
 */
export async function startMaintainRecord(client: pg.ClientBase, who: Provenance, summary: unknown, tasks: unknown): Promise<number> {
  const r = await client.query<{ id: string }>(
    `INSERT INTO pgwarden.history (kind, outcome, actor, git_commit, git_branch, summary, plan, backend_pid)
     VALUES ('maintain', 'running', $1, $2, $3, $4, $5, pg_catalog.pg_backend_pid()) RETURNING id`,
    [who.actor, who.gitCommit, who.gitBranch, JSON.stringify(summary), JSON.stringify(tasks)],
  );
  return Number(r.rows[0]?.id);
}

export async function finishMaintainRecord(
  client: pg.ClientBase,
  id: number,
  outcome: Outcome,
  error: string | null,
  summary: unknown,
  report: unknown,
): Promise<void> {
  await client.query(
    `UPDATE pgwarden.history
        SET outcome = $2, error = $3, summary = $4, plan = $5, finished_at = pg_catalog.now(),
            duration_ms = (EXTRACT(epoch FROM pg_catalog.now() - started_at) * 1000)::bigint
      WHERE id = $1`,
    [id, outcome, error, JSON.stringify(summary), JSON.stringify(report)],
  );
}
