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

/** One `Blocker` from the pg_stat_activity row `a`. */
const BLOCKER_JSON = `pg_catalog.json_build_object(
                   'pid', a.pid, 'state', a.state, 'applicationName', a.application_name,
                   'transactionAgeS', EXTRACT(epoch FROM pg_catalog.now() - a.xact_start)::float8,
                   'query', pg_catalog.left(a.query, 120))`;

const PROGRESS_SQL = `
SELECT p.phase,
       CASE WHEN p.blocks_total > 0 THEN 100.0 * p.blocks_done / p.blocks_total
            WHEN p.tuples_total > 0 THEN 100.0 * p.tuples_done / p.tuples_total
            WHEN p.lockers_total > 0 THEN 100.0 * p.lockers_done / p.lockers_total END::float8 AS percent,
       COALESCE((SELECT pg_catalog.json_agg(${BLOCKER_JSON})
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

/**
 * Sessions of this database whose transaction began at least $2 milliseconds ago and that hold what a
 * concurrent build or DROP INDEX CONCURRENTLY waits for: a snapshot (backend_xmin), a transaction id,
 * or a lock on the table of index $1.
 */
const OLDER_TRANSACTIONS_SQL = `
SELECT COALESCE(pg_catalog.json_agg(${BLOCKER_JSON} ORDER BY a.xact_start), '[]') AS sessions
  FROM pg_catalog.pg_stat_activity a
 WHERE a.datid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
   AND a.pid <> pg_catalog.pg_backend_pid() AND a.backend_type = 'client backend'
   AND a.xact_start <= pg_catalog.clock_timestamp() - $2::float8 * interval '1 millisecond'
   AND (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                    WHERE l.pid = a.pid AND l.granted
                      AND l.relation = (SELECT x.indrelid FROM pg_catalog.pg_index x WHERE x.indexrelid = pg_catalog.to_regclass($1))))`;

/**
 * Who holds back a statement on index `qualifiedIndex` that failed after waiting `waitedMs`: the
 * transactions older than it. Read after the fact, when pg_blocking_pids() no longer answers.
 */
export async function olderTransactions(client: pg.Client, qualifiedIndex: string, waitedMs: number): Promise<Blocker[]> {
  const r = await client.query<{ sessions: Blocker[] }>(OLDER_TRANSACTIONS_SQL, [qualifiedIndex, Math.max(0, waitedMs)]);
  return r.rows[0]?.sessions ?? [];
}

/** `pid 123 (idle in transaction, transaction open 42 s: SELECT ...)`, as progress lines and errors print it. */
export function describeBlocker(b: Blocker): string {
  return `pid ${b.pid} (${b.state ?? '?'}, transaction open ${Math.round(b.transactionAgeS ?? 0)} s: ${b.query.replace(/\s+/g, ' ').slice(0, 60)})`;
}
