import type pg from 'pg';

/**
 * One apply and one maintain at a time per database: session-level advisory locks keyed by two
 * constants ("pgwa" and the job), held until the session ends, so a crashed run never leaves one behind.
 */
export type LockedJob = 'apply' | 'maintain';

const LOCK_KEYS: Readonly<Record<LockedJob, readonly [number, number]>> = {
  apply: [1886869345, 1],
  maintain: [1886869345, 2],
};

/** Who holds a job's lock, as a user reads it: `pid 4242, "pgwarden apply (ci)" as deploy from 10.0.0.5, connected ...`. */
export type LockAttempt = { readonly held: true } | { readonly held: false; readonly holder: string };

/** Takes the job's lock without waiting; when another session has it, says who. */
export async function tryJobLock(client: pg.ClientBase, job: LockedJob): Promise<LockAttempt> {
  const key = LOCK_KEYS[job];
  const r = await client.query<{ ok: boolean }>('SELECT pg_catalog.pg_try_advisory_lock($1, $2) AS ok', [...key]);
  if (r.rows[0]?.ok) return { held: true };
  const holder = await client.query<{ pid: number; application_name: string; usename: string; client_addr: string | null; since: Date | null }>(
    `SELECT a.pid, a.application_name, a.usename, a.client_addr::text AS client_addr, a.backend_start AS since
       FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.granted AND l.database = (
            SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())`,
    [...key],
  );
  const h = holder.rows[0];
  if (h === undefined) return { held: false, holder: 'a session that just finished' };
  const from = h.client_addr ? ` from ${h.client_addr}` : '';
  const since = h.since ? `, connected ${h.since.toISOString()}` : '';
  return { held: false, holder: `pid ${h.pid}, "${h.application_name}" as ${h.usename}${from}${since}` };
}
