import type pg from 'pg';
import type { Outcome, Provenance } from '../apply/history.ts';

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
