import { HEALTH_MARKER } from '../catalog/health-queries.ts';
import { errorLine, isSqlError, monitorConnection, type ConnectionSpec } from './monitor-connection.ts';

/**
 * The heartbeat: one row in `pgwarden.heartbeat` on the primary, stamped with the primary's clock every
 * `intervalMs`; the standby replays it, and its age on the primary's clock is a lag that stays true
 * while the application is idle (where `now() - pg_last_xact_replay_timestamp()` just grows).
 *
 * Several writers (every application process's router, `pgwarden serve`) may run at once: an update is
 * skipped when the row was stamped less than half an interval ago, so the row is written about once
 * per interval whatever the number of writers, and a skipped UPDATE writes no WAL.
 */
export interface HeartbeatStatus {
  readonly state: 'starting' | 'writing' | 'missing-table' | 'failing' | 'stopped';
  readonly intervalMs: number;
  readonly writes: number;
  /** This process's clock, epoch ms. */
  readonly lastWriteAt: number | null;
  readonly error: string | null;
}

export interface HeartbeatWriter {
  status(): HeartbeatStatus;
  stop(): Promise<void>;
}

export const HEARTBEAT_UPDATE_SQL = `${HEALTH_MARKER}
UPDATE pgwarden.heartbeat
   SET ts = pg_catalog.clock_timestamp(), writer = $1
 WHERE id = 1 AND ts < pg_catalog.clock_timestamp() - $2::float8 * interval '1 millisecond'`;

// The row is created with the table; this puts it back if someone deleted it.
export const HEARTBEAT_INSERT_SQL = `${HEALTH_MARKER}
INSERT INTO pgwarden.heartbeat (id, ts, writer) VALUES (1, pg_catalog.clock_timestamp(), $1)
ON CONFLICT (id) DO NOTHING`;

// While the table is missing (routing not applied yet), look again this often rather than every tick.
const MISSING_RETRY_MS = 10_000;

export function startHeartbeat(options: {
  readonly primary: ConnectionSpec;
  readonly intervalMs?: number;
  /** Recorded in the row, to tell who writes it. */
  readonly writer?: string;
}): HeartbeatWriter {
  const intervalMs = options.intervalMs ?? 100;
  const writer = options.writer ?? `pgwarden router pid ${process.pid}`;
  // synchronous_commit = local: a heartbeat must not wait for a synchronous standby that is down (it
  // would stop the heartbeat exactly when lag matters), but it must be flushed, or the walsender
  // would not send it and the standby would look a WAL-writer delay staler than it is.
  const connection = monitorConnection(options.primary, {
    applicationName: 'pgwarden heartbeat',
    timeoutMs: Math.max(1000, intervalMs * 5),
    setup: `${HEALTH_MARKER} SET synchronous_commit = local`,
  });
  let status: HeartbeatStatus = { state: 'starting', intervalMs, writes: 0, lastWriteAt: null, error: null };
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let emptySince: number | null = null;

  const beat = async (): Promise<number> => {
    try {
      const result = await connection.query(HEARTBEAT_UPDATE_SQL, [writer, intervalMs / 2]);
      if ((result.rowCount ?? 0) > 0) {
        emptySince = null;
        status = { ...status, state: 'writing', writes: status.writes + 1, lastWriteAt: Date.now(), error: null };
      } else {
        // Another writer stamped it just now, or the row is gone: put it back after a few quiet intervals.
        emptySince ??= Date.now();
        if (Date.now() - emptySince > intervalMs * 5) {
          await connection.query(HEARTBEAT_INSERT_SQL, [writer]);
          emptySince = null;
        }
        status = { ...status, state: 'writing', error: null };
      }
      return intervalMs;
    } catch (error) {
      if (isSqlError(error) && (error.code === '42P01' || error.code === '3F000')) {
        status = { ...status, state: 'missing-table', error: 'pgwarden.heartbeat does not exist: run `pgwarden apply` with the routing policy' };
        return MISSING_RETRY_MS;
      }
      status = { ...status, state: 'failing', error: errorLine(error) };
      return intervalMs;
    }
  };

  const loop = async (): Promise<void> => {
    const started = Date.now();
    const next = await beat();
    if (stopped) return;
    timer = setTimeout(() => void loop(), Math.max(0, next - (Date.now() - started)));
    // The heartbeat keeps no process alive on its own: the application's own work does.
    timer.unref();
  };
  void loop();

  return {
    status: () => status,
    async stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      await connection.close();
      status = { ...status, state: 'stopped' };
    },
  };
}
