import type pg from 'pg';

/** What a running CREATE INDEX [CONCURRENTLY] is doing, from pg_stat_progress_create_index. */
export interface BuildProgress {
  readonly phase: string;
  /** 0–100 within the phase, when the phase reports a total. */
  readonly percent: number | null;
  /** Sessions the build is waiting for (old snapshots, conflicting locks). */
  readonly waitingFor: readonly Blocker[];
}

export interface Blocker {
  readonly pid: number;
  readonly state: string | null;
  readonly applicationName: string;
  readonly transactionAgeS: number | null;
  readonly query: string;
}

const PROGRESS_SQL = `
SELECT p.phase,
       CASE WHEN p.blocks_total > 0 THEN 100.0 * p.blocks_done / p.blocks_total
            WHEN p.tuples_total > 0 THEN 100.0 * p.tuples_done / p.tuples_total
            WHEN p.lockers_total > 0 THEN 100.0 * p.lockers_done / p.lockers_total END::float8 AS percent,
       COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                   'pid', a.pid, 'state', a.state, 'applicationName', a.application_name,
                   'transactionAgeS', EXTRACT(epoch FROM pg_catalog.now() - a.xact_start)::float8,
                   'query', pg_catalog.left(a.query, 120)))
                   FROM pg_catalog.pg_stat_activity a
                  WHERE a.pid = ANY (pg_catalog.pg_blocking_pids(p.pid))
                     OR a.pid = NULLIF(p.current_locker_pid, 0)), '[]') AS waiting_for
  FROM pg_catalog.pg_stat_progress_create_index p
 WHERE p.pid = $1`;

/** Polls the build's progress on a second connection until stopped. */
export function watchBuild(monitor: pg.Client, pid: number, report: (p: BuildProgress) => void, everyMs = 500): { stop(): Promise<void> } {
  let stopped = false;
  let inFlight: Promise<unknown> = Promise.resolve();
  const tick = (): void => {
    if (stopped) return;
    inFlight = monitor
      .query<{ phase: string; percent: number | null; waiting_for: Blocker[] }>(PROGRESS_SQL, [pid])
      .then((r) => {
        const row = r.rows[0];
        if (row && !stopped) report({ phase: row.phase, percent: row.percent, waitingFor: row.waiting_for });
      })
      .catch(() => undefined);
  };
  const timer = setInterval(tick, everyMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
    },
  };
}
