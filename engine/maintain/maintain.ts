import type pg from 'pg';
import { settingsOf, type ConnectionTarget } from '../connection/connection-settings.ts';
import { connect as openClient } from '../connection/open-connection.ts';
import { tryJobLock } from '../store/advisory-lock.ts';
import { finishMaintainRecord, provenance, startMaintainRecord, type Outcome, type Provenance } from '../store/history.ts';
import { ensurePgwardenSchema } from '../store/schema.ts';
import type { Blocker } from '../apply/progress.ts';
import { COLLECTOR_PENDING_SQL, LOCK_HOLDERS_SQL, MAINTAIN_PROGRESS_SQL, XMIN_HORIZON_SQL } from '../catalog/vacuum-queries.ts';
import { governance, hasVacuumPolicies, readTableHealth, type TableHealth, type VacuumSettings } from '../vacuum-health/table-health.ts';
import type { DesiredState } from '../policy/desired.ts';
import { qualified } from '../sql/ident.ts';
import { setLockTimeoutSql, setStatementTimeoutSql } from '../sql/ddl.ts';
import { dueTasks } from './due.ts';
import { maintenanceSql, type MaintenanceTask } from './maintenance-task.ts';

/** What `maintain` would do now: the due tables, worst first. A value, like a plan: `--dry-run` prints it. */
export interface MaintenancePlan {
  readonly database: string;
  readonly serverVersion: number;
  readonly takenAt: string;
  /** Relations a vacuum policy governs (tables and partitions). */
  readonly governed: number;
  readonly tasks: readonly MaintenanceTask[];
  readonly settings: VacuumSettings;
}

/** A failure the user acts on: one sentence and a hint. */
export class MaintainError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    /** Trying again cannot help (a standby, no policies): `--every` stops instead of retrying. */
    readonly fatal = false,
  ) {
    super(message);
  }
}

/** At most this many VACUUMs at once: each may use maintenance_work_mem and competes for I/O. */
export const MAX_PARALLEL = 8;

export const STANDBY_REFUSAL =
  'this server is a read-only standby (in recovery): VACUUM and ANALYZE run only on the primary, and a standby keeps its own, nearly empty activity statistics';

/** Reads health in a fixed number of round trips and picks the due tables. */
export async function planMaintenance(client: pg.ClientBase, desired: DesiredState, now: Date): Promise<MaintenancePlan> {
  if (!hasVacuumPolicies(desired)) {
    throw new MaintainError(
      'no vacuum policies: maintain looks after the tables a `vacuum:` policy or the `defaults:` document governs, and there are none',
      'add `vacuum: { max_dead_ratio: 0.1 }` to a table policy, or a `defaults:` document for every table',
      true,
    );
  }
  const report = await readTableHealth(client);
  if (report.settings.inRecovery) throw new MaintainError(STANDBY_REFUSAL, 'point --database-url at the primary', true);
  if (!report.settings.trackCounts) {
    throw new MaintainError('track_counts is off: PostgreSQL keeps no dead-tuple counts, so nothing can be judged due', 'turn track_counts on (autovacuum needs it too)', true);
  }
  const governed = governance(desired, report.stats);
  return {
    database: report.settings.database,
    serverVersion: report.settings.serverVersion,
    takenAt: report.takenAt,
    governed: governed.size,
    tasks: dueTasks(report.tables, report.stats, governed, report.settings, now),
    settings: report.settings,
  };
}

/**
 * `locked`: skipped after lock_timeout; `denied`: PostgreSQL skipped it for want of privilege; `dropped`:
 * the table went away after it was picked.
 */
export type TaskOutcome = 'done' | 'locked' | 'denied' | 'dropped' | 'failed' | 'cancelled' | 'not-started';

/**
 * VACUUM and ANALYZE do not fail on a table the role may not maintain: they skip it with a WARNING and
 * succeed. PostgreSQL 14-15: `skipping "t" --- only table or database owner can vacuum it` (or "only
 * superuser ..."); 16+: `permission denied to vacuum "t", skipping it`. The warning carries no SQLSTATE
 * of its own (01000), so the English text is matched (a server with a translated lc_messages is not).
 */
const PERMISSION_SKIP = /^(skipping ".*" --- only .* can (vacuum|analyze) it|permission denied to (vacuum|analyze) ".*", skipping it)$/u;

/** The fields of a server notice (pg's 'notice' event) this reads. */
interface ServerNotice {
  readonly severity?: string | undefined;
  readonly message?: string | undefined;
}

function permissionSkip(notice: ServerNotice): string | null {
  return notice.severity === 'WARNING' && PERMISSION_SKIP.test(notice.message ?? '') ? (notice.message ?? null) : null;
}

export interface TableFigures {
  readonly health: number;
  readonly liveTuples: number;
  readonly deadTuples: number;
  readonly deadRatio: number;
  readonly changedSinceAnalyze: number;
}

export interface TaskResult {
  readonly task: MaintenanceTask;
  readonly sql: string;
  readonly outcome: TaskOutcome;
  readonly ms: number;
  /** Why it was skipped, failed or not started; or what still holds dead tuples back. */
  readonly message?: string;
  readonly before: TableFigures | null;
  readonly after: TableFigures | null;
}

export interface MaintainResult {
  readonly plan: MaintenancePlan;
  readonly results: readonly TaskResult[];
  readonly outcome: Outcome;
  readonly historyId: number | null;
  readonly ms: number;
  readonly budgetReached: boolean;
}

export interface VacuumProgress {
  readonly command: 'vacuum' | 'analyze' | null;
  readonly phase: string | null;
  readonly percent: number | null;
  readonly indexPasses: number;
  readonly waitingFor: readonly Blocker[];
}

export type MaintainEvent =
  | { readonly type: 'task-start'; readonly task: MaintenanceTask; readonly sql: string; readonly index: number; readonly total: number }
  | { readonly type: 'progress'; readonly task: MaintenanceTask; readonly progress: VacuumProgress }
  | { readonly type: 'task-done'; readonly result: TaskResult; readonly index: number; readonly total: number }
  | { readonly type: 'note'; readonly message: string };

export interface MaintainOptions {
  /** The database: resolved settings, or a URL resolved with libpq's rules against the process's environment. */
  readonly databaseUrl: ConnectionTarget;
  /** Sessions running VACUUM at once, 1..MAX_PARALLEL. */
  readonly parallel: number;
  /** How long a VACUUM waits for its table's lock before the table is skipped. */
  readonly lockTimeoutMs: number;
  /** After this long no new table is started (running ones finish). */
  readonly budgetMs?: number;
  /** Aborting cancels the running VACUUMs (PostgreSQL keeps the pages already cleaned) and starts nothing new. */
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: MaintainEvent) => void;
  readonly who?: Provenance;
  readonly progressEveryMs?: number;
}

async function connect(target: ConnectionTarget, applicationName: string): Promise<pg.Client> {
  return openClient(settingsOf(target), { application_name: applicationName, connectionTimeoutMillis: 10_000 });
}

async function holdMaintainLock(client: pg.Client): Promise<void> {
  const lock = await tryJobLock(client, 'maintain');
  if (lock.held) return;
  throw new MaintainError(`another pgwarden maintain is running on this database (${lock.holder})`, 'only one maintain runs at a time per database');
}

function figures(h: TableHealth): TableFigures {
  return { health: h.health, liveTuples: h.liveTuples, deadTuples: h.deadTuples, deadRatio: h.deadRatio, changedSinceAnalyze: h.changedSinceAnalyze };
}

interface PgError {
  code?: string;
  message: string;
}

interface LockHolder {
  pid: number;
  state: string | null;
  application_name: string;
  mode: string;
  transaction_age_s: number | null;
  query: string;
}

function describeHolders(rows: readonly LockHolder[]): string {
  if (rows.length === 0) return 'the session holding it has gone';
  return rows
    .map((h) => `pid ${h.pid} (${h.mode}, ${h.state ?? '?'}${h.transaction_age_s === null ? '' : `, transaction open ${Math.round(h.transaction_age_s)} s`}: ${h.query.replace(/\s+/g, ' ').slice(0, 60)})`)
    .join(', ');
}

/**
 * Runs the plan's tasks, worst first, on up to `parallel` sessions. Each statement runs under
 * lock_timeout and without statement_timeout (a VACUUM legitimately takes long). A table whose lock
 * is not granted in time is skipped and named with who holds it; a dropped table is skipped; the rest
 * go on. Writes a history record; reads every maintained table's figures again at the end (one query).
 */
export async function runMaintenance(plan: MaintenancePlan, options: MaintainOptions): Promise<MaintainResult> {
  const started = performance.now();
  const parallel = Math.max(1, Math.min(options.parallel, MAX_PARALLEL, Math.max(1, plan.tasks.length)));
  const who = options.who ?? (await provenance());
  const main = await connect(options.databaseUrl, `pgwarden maintain (${who.actor})`.slice(0, 63));
  let historyId: number | null = null;
  const sessions: pg.Client[] = [];
  const results: (TaskResult | undefined)[] = plan.tasks.map(() => undefined);
  const skipDatabaseStats = plan.serverVersion >= 160_000 && plan.tasks.filter((t) => t.action !== 'analyze').length > 1;
  let budgetReached = false;
  try {
    const [recovery] = (await main.query<{ r: boolean }>('SELECT pg_catalog.pg_is_in_recovery() AS r')).rows;
    if (recovery?.r) throw new MaintainError(STANDBY_REFUSAL, 'point --database-url at the primary', true);
    await holdMaintainLock(main);
    await ensurePgwardenSchema(main);
    historyId = await startMaintainRecord(main, who, counts(plan, []), plan.tasks.map(taskRecord));
    // Before 15 the statistics collector lags behind VACUUM: the run's start, to know when it caught up.
    const collectorSince = plan.serverVersion < 150_000 ? ((await main.query<{ t: Date }>('SELECT pg_catalog.clock_timestamp() AS t')).rows[0]?.t ?? null) : null;
    for (let i = 0; i < parallel; i += 1) sessions.push(await connect(options.databaseUrl, 'pgwarden maintain worker'));
    const monitor = await connect(options.databaseUrl, 'pgwarden maintain monitor');
    sessions.push(monitor);
    const workers = sessions.slice(0, parallel);
    const pids = await Promise.all(workers.map(async (w) => (await w.query<{ pid: number }>('SELECT pg_catalog.pg_backend_pid() AS pid')).rows[0]?.pid ?? 0));
    const running = new Map<number, MaintenanceTask>();

    const cancelRunning = (): void => {
      for (const pid of running.keys()) void monitor.query('SELECT pg_catalog.pg_cancel_backend($1)', [pid]).catch(() => undefined);
    };
    options.signal?.addEventListener('abort', cancelRunning);
    const watcher = watchProgress(monitor, running, options);
    let next = 0;
    const work = async (client: pg.Client, pid: number): Promise<void> => {
      for (;;) {
        const index = next;
        next += 1;
        const task = plan.tasks[index];
        if (task === undefined) return;
        const sql = maintenanceSql(task, { skipDatabaseStats: skipDatabaseStats && task.action !== 'analyze' });
        const before = task.before === null ? null : figures(task.before);
        if (options.signal?.aborted) {
          results[index] = { task, sql, outcome: 'not-started', ms: 0, message: 'interrupted before it started', before, after: null };
          continue;
        }
        if (options.budgetMs !== undefined && performance.now() - started >= options.budgetMs) {
          budgetReached = true;
          results[index] = { task, sql, outcome: 'not-started', ms: 0, message: 'the --budget was used up', before, after: null };
          continue;
        }
        options.onEvent?.({ type: 'task-start', task, sql, index, total: plan.tasks.length });
        const t0 = performance.now();
        let result: TaskResult;
        const skipped: string[] = [];
        const onNotice = (notice: ServerNotice): void => {
          const message = permissionSkip(notice);
          if (message !== null) skipped.push(message);
        };
        client.on('notice', onNotice);
        try {
          await client.query(`${setLockTimeoutSql(options.lockTimeoutMs)}; ${setStatementTimeoutSql(0)}`);
          running.set(pid, task);
          await client.query(sql);
          result =
            skipped.length === 0
              ? { task, sql, outcome: 'done', ms: performance.now() - t0, before, after: null }
              : { task, sql, outcome: 'denied', ms: performance.now() - t0, message: `skipped by PostgreSQL, which only warns: ${skipped.join('; ')}`, before, after: null };
        } catch (error) {
          const e = error as PgError;
          const ms = performance.now() - t0;
          if (e.code === '55P03') {
            const holders = await monitor
              .query<LockHolder>(LOCK_HOLDERS_SQL, [qualified(task.schema, task.name), pids])
              .then((r) => describeHolders(r.rows))
              .catch(() => 'the holder could not be read');
            const message = `skipped: its lock was not granted within lock_timeout (${options.lockTimeoutMs} ms); held by ${holders}`;
            result = { task, sql, outcome: 'locked', ms, message, before, after: null };
          } else if (e.code === '42P01') {
            result = { task, sql, outcome: 'dropped', ms, message: 'skipped: the table was dropped after maintain picked it', before, after: null };
          } else if (e.code === '57014' && options.signal?.aborted) {
            result = { task, sql, outcome: 'cancelled', ms, message: 'cancelled on interrupt (the pages it already cleaned stay clean)', before, after: null };
          } else {
            result = { task, sql, outcome: 'failed', ms, message: e.message, before, after: null };
          }
        } finally {
          running.delete(pid);
          client.off('notice', onNotice);
        }
        results[index] = result;
        options.onEvent?.({ type: 'task-done', result, index, total: plan.tasks.length });
      }
    };
    try {
      await Promise.all(workers.map((w, i) => work(w, pids[i] ?? 0)));
    } finally {
      options.signal?.removeEventListener('abort', cancelRunning);
      await watcher.stop();
    }

    const finished = results.filter((r): r is TaskResult => r !== undefined);
    const vacuumed = finished.some((r) => r.outcome === 'done' && r.task.action !== 'analyze');
    if (skipDatabaseStats && vacuumed && !options.signal?.aborted) {
      // The datfrozenxid update each VACUUM skipped, done once (PostgreSQL 16+).
      await main.query('VACUUM (ONLY_DATABASE_STATS)').catch(() => undefined);
    }
    const monitorPid = (await monitor.query<{ pid: number }>('SELECT pg_catalog.pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
    if (collectorSince !== null) await awaitCollector(main, finished, collectorSince);
    const withAfter = await afterFigures(main, finished, [...pids, monitorPid]);
    const outcome: Outcome = options.signal?.aborted
      ? 'interrupted'
      : withAfter.some((r) => r.outcome === 'failed' || r.outcome === 'locked' || r.outcome === 'denied')
        ? 'failed'
        : 'succeeded';
    const problems = withAfter.filter((r) => r.outcome === 'failed' || r.outcome === 'locked' || r.outcome === 'denied' || r.outcome === 'cancelled');
    const error = problems.length === 0 ? null : problems.map((r) => `${r.task.schema}.${r.task.name}: ${r.message ?? r.outcome}`).join('; ');
    await finishMaintainRecord(main, historyId, outcome, error, counts(plan, withAfter), withAfter.map(resultRecord));
    return { plan, results: withAfter, outcome, historyId, ms: performance.now() - started, budgetReached };
  } catch (error) {
    if (historyId !== null) {
      const outcome = options.signal?.aborted ? 'interrupted' : 'failed';
      const done = results.filter((r): r is TaskResult => r !== undefined);
      await finishMaintainRecord(main, historyId, outcome, (error as Error).message, counts(plan, done), done.map(resultRecord)).catch(() => undefined);
    }
    throw error;
  } finally {
    await Promise.all([main, ...sessions].map((c) => c.end().catch(() => undefined)));
  }
}

/** How long to wait for the statistics collector (PostgreSQL 14 and older) to show the run. */
const COLLECTOR_WAIT_MS = 2_000;

/**
 * Before PostgreSQL 15, a VACUUM reports its counts to the statistics collector by message, and a session
 * reads the collector's file, which may be up to 500 ms old: read at once, the tables would still show the
 * dead tuples the run just removed, and the run would blame a snapshot that does not exist. Waits (a
 * bounded while) until every table maintained shows its run; each autocommit query reads a fresh file.
 */
async function awaitCollector(client: pg.Client, results: readonly TaskResult[], since: Date): Promise<void> {
  const done = results.filter((r) => r.outcome === 'done' && r.task.kind === 'table');
  const vacuumed = done.filter((r) => r.task.action !== 'analyze').map((r) => r.task.oid);
  const analyzed = done.filter((r) => r.task.action === 'analyze').map((r) => r.task.oid);
  if (done.length === 0) return;
  const deadline = performance.now() + COLLECTOR_WAIT_MS;
  for (;;) {
    const pending = (await client.query<{ pending: number }>(COLLECTOR_PENDING_SQL, [vacuumed, analyzed, since])).rows[0]?.pending ?? 0;
    if (pending === 0 || performance.now() >= deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every maintained table's figures after the run, in one query; and what held dead tuples back, if anything did. */
async function afterFigures(client: pg.Client, results: readonly TaskResult[], ownPids: readonly number[]): Promise<TaskResult[]> {
  const done = results.filter((r) => r.outcome === 'done' && r.task.kind === 'table');
  if (done.length === 0) return [...results];
  const report = await readTableHealth(client, { oids: done.map((r) => r.task.oid) });
  const byOid = new Map(report.tables.map((h) => [h.oid, h]));
  const stuck = done.filter((r) => {
    const h = byOid.get(r.task.oid);
    return r.task.action !== 'analyze' && h !== undefined && h.deadTuples > 0 && h.deadRatio > r.task.maxDeadRatio;
  });
  let horizon: string | null = null;
  if (stuck.length > 0) {
    const rows = (await client.query<{ kind: string; holder: string; age: number; seconds: number | null; detail: string }>(XMIN_HORIZON_SQL, [ownPids])).rows;
    const h = rows[0];
    horizon = h
      ? `dead tuples newer than the oldest snapshot cannot be removed yet: ${h.kind} ${h.holder} (${h.detail}${h.seconds === null ? '' : `, open ${Math.round(h.seconds)} s`}) still sees them`
      : 'dead tuples remain (no snapshot holds them back now: the next run removes them)';
  }
  return results.map((r) => {
    const h = r.outcome === 'done' ? byOid.get(r.task.oid) : undefined;
    if (h === undefined) return r;
    const held = stuck.includes(r) && horizon !== null ? { message: horizon } : {};
    return { ...r, after: figures(h), ...held };
  });
}

/** Polls pg_stat_progress_vacuum/analyze for the running sessions until stopped. */
function watchProgress(monitor: pg.Client, running: ReadonlyMap<number, MaintenanceTask>, options: MaintainOptions): { stop(): Promise<void> } {
  let stopped = false;
  let inFlight: Promise<unknown> = Promise.resolve();
  const tick = (): void => {
    if (stopped || running.size === 0 || options.onEvent === undefined) return;
    const pids = [...running.keys()];
    inFlight = monitor
      .query<{ pid: number; command: 'vacuum' | 'analyze' | null; phase: string | null; percent: number | null; index_passes: number | null; waiting_for: Blocker[] }>(
        MAINTAIN_PROGRESS_SQL,
        [pids],
      )
      .then((r) => {
        for (const row of r.rows) {
          const task = running.get(row.pid);
          if (!task || stopped) continue;
          options.onEvent?.({
            type: 'progress',
            task,
            progress: { command: row.command, phase: row.phase, percent: row.percent, indexPasses: row.index_passes ?? 0, waitingFor: row.waiting_for },
          });
        }
      })
      .catch(() => undefined);
  };
  const timer = setInterval(tick, options.progressEveryMs ?? 500);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await inFlight;
    },
  };
}

function counts(plan: MaintenancePlan, results: readonly TaskResult[]): Record<string, number> {
  const by = (outcome: TaskOutcome): number => results.filter((r) => r.outcome === outcome).length;
  return {
    due: plan.tasks.length,
    vacuum: plan.tasks.filter((t) => t.action === 'vacuum').length,
    freeze: plan.tasks.filter((t) => t.action === 'freeze').length,
    analyze: plan.tasks.filter((t) => t.action === 'analyze').length,
    done: by('done'),
    locked: by('locked'),
    denied: by('denied'),
    dropped: by('dropped'),
    failed: by('failed'),
    cancelled: by('cancelled'),
    notStarted: by('not-started'),
  };
}

function taskRecord(task: MaintenanceTask): Record<string, unknown> {
  return { table: `${task.schema}.${task.name}`, action: task.action, reasons: task.reasons, health: task.before?.health ?? null, deadTuples: task.before?.deadTuples ?? null };
}

function resultRecord(result: TaskResult): Record<string, unknown> {
  return {
    table: `${result.task.schema}.${result.task.name}`,
    action: result.task.action,
    sql: result.sql,
    outcome: result.outcome,
    ms: Math.round(result.ms),
    message: result.message ?? null,
    reasons: result.task.reasons,
    before: result.before,
    after: result.after,
  };
}
