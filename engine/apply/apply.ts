import type pg from 'pg';
import { settingsOf, type ConnectionTarget } from '../connection/connection-settings.ts';
import { connect as openClient } from '../connection/open-connection.ts';
import type { DesiredState } from '../policy/desired.ts';
import { makePlan } from '../plan/make-plan.ts';
import type { Plan, PlannedChange } from '../plan/plan.ts';
import type { SqlStep } from '../plan/step.ts';
import { dropIndexSql, setLockTimeoutSql, setStatementTimeoutSql } from '../sql/ddl.ts';
import { qualified } from '../sql/ident.ts';
import { runSettingRegistryStep } from '../store/setting-registry.ts';
import { writeIndexRegistry } from '../store/index-registry.ts';
import { tryJobLock } from '../store/advisory-lock.ts';
import { ensurePgwardenSchema } from '../store/schema.ts';
import { recordRetiredPartition } from '../store/retired-partitions.ts';
import { replicaStepRunner, restartRefusal } from './replica-steps.ts';
import type { Environment } from '../routing/router-options.ts';
import { finishRecord, provenance, startRecord, type Provenance } from '../store/history.ts';
import { detachOf, type DetachInfo } from '../plan/partition-steps.ts';
import { isDetachPending } from '../catalog/partition-queries.ts';
import { startApplyDetails, type ApplyDetails } from '../live-health/apply-details.ts';
import { describeBlocker, olderTransactions, watchBuild, type BuildProgress } from './progress.ts';
import { ConversionError, runConversion, type ConversionOptions } from './convert/run-conversion.ts';

export interface ApplyOptions {
  /** The database: resolved settings, or a URL resolved with libpq's rules against the process's environment. */
  readonly databaseUrl: ConnectionTarget;
  readonly desired: DesiredState;
  /** A plan saved by `plan --out`: applied only if the catalog still has its fingerprint. */
  readonly savedPlan?: Plan;
  readonly allowDrop: boolean;
  /** Per try: the longest any writer can queue behind a pgwarden statement. */
  readonly lockTimeoutMs: number;
  /** statement_timeout of an index build (`--build-timeout`), which legitimately takes long; 0 = no limit. */
  readonly buildTimeoutMs: number;
  readonly retries: number;
  readonly backoffMs: number;
  readonly now: () => Date;
  readonly onEvent?: (event: ApplyEvent) => void;
  /** Asks for a plan review before anything runs (a TTY prompt); false aborts. */
  readonly confirm?: (plan: Plan) => Promise<boolean>;
  readonly signal?: AbortSignal;
  readonly who?: Provenance;
  /** Applies only the changes it accepts (`maintain` keeps partitions ahead this way); the rest wait for `apply`. */
  readonly select?: (change: PlannedChange) => boolean;
  /** Where replica URLs are read from (the routing policy names the variables). */
  readonly env?: Environment;
  /** Write standby settings that only take effect at a restart (the user restarts the standby). */
  readonly allowRestart?: boolean;
  /** A conversion's batch sizing (engine/apply/convert/), and a hook between its batches (tests). */
  readonly conversion?: Pick<ConversionOptions, 'initialBatchRows' | 'targetBatchMs' | 'afterBatch' | 'maxReplicaWaitMs'>;
}

/**
 * The safety settings DESIGN.md promises unless a caller says otherwise: a writer waits at most 5 s behind
 * any one try, 5 retries with backoff from 0.5 s, a build cancelled after 6 h, nothing dropped.
 */
export const APPLY_DEFAULTS = {
  allowDrop: false,
  lockTimeoutMs: 5000,
  buildTimeoutMs: 6 * 3_600_000,
  retries: 5,
  backoffMs: 500,
  now: (): Date => new Date(),
} as const;

export type ApplyEvent =
  | { readonly type: 'plan'; readonly plan: Plan }
  | { readonly type: 'change-start'; readonly change: PlannedChange; readonly index: number; readonly total: number }
  | { readonly type: 'step'; readonly sql: string }
  | { readonly type: 'retry'; readonly sql: string; readonly attempt: number; readonly waitMs: number; readonly reason: string }
  | { readonly type: 'progress'; readonly progress: BuildProgress }
  | { readonly type: 'cleanup'; readonly message: string }
  | { readonly type: 'notice'; readonly message: string }
  | { readonly type: 'change-done'; readonly change: PlannedChange; readonly ms: number };

export interface ApplyResult {
  readonly plan: Plan;
  readonly applied: number;
  readonly historyId: number | null;
  readonly ms: number;
}

/** A failure a user acts on: one sentence, plus the step's SQL when a statement failed. */
export class ApplyError extends Error {
  constructor(
    message: string,
    readonly sql?: string,
    readonly hint?: string,
    /** The saved plan was made against another catalog state: CI plans again and asks for a review (exit 3). */
    readonly stalePlan = false,
  ) {
    super(message);
  }
}

async function connect(target: ConnectionTarget, applicationName: string): Promise<pg.Client> {
  // A server going away mid-apply surfaces as a failed query: the client ignores its 'error' event.
  const client = await openClient(settingsOf(target), { application_name: applicationName, connectionTimeoutMillis: 10_000 });
  // Statements carrying policy SQL were checked by libpg_query, which lexes strings this way.
  await client.query('SET standard_conforming_strings = on');
  return client;
}

async function holdApplyLock(client: pg.Client): Promise<void> {
  const lock = await tryJobLock(client, 'apply');
  if (lock.held) return;
  throw new ApplyError(`another pgwarden apply is running on this database (${lock.holder})`, undefined, 'wait for it to finish; only one apply runs at a time');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface PgError {
  code?: string;
  message: string;
  detail?: string;
}

// lock_not_available (lock_timeout), deadlock_detected, and the serialization failure a concurrent
// DDL can cause: another try later may well succeed.
const RETRYABLE = new Set(['55P03', '40P01', '40001']);

/**
 * Every change about to run is one the saved plan holds, statement for statement. A saved change the
 * fresh plan no longer has (a table only the defaults covered was dropped since) is simply not needed.
 */
function reviewedIn(saved: Plan, fresh: Plan): boolean {
  const statements = (c: PlannedChange): string => JSON.stringify([c.change.address, c.destructive, c.steps]);
  const reviewed = new Set(saved.changes.map(statements));
  return fresh.changes.every((c) => reviewed.has(statements(c)));
}

/** Runs a plan's steps under the safety rules of DESIGN.md. */
export async function apply(options: ApplyOptions): Promise<ApplyResult> {
  const started = Date.now();
  const who = options.who ?? (await provenance());
  const main = await connect(options.databaseUrl, `pgwarden apply (${who.actor})`.slice(0, 63));
  let historyId: number | null = null;
  let details: ApplyDetails | null = null;
  let current: string | null = null;
  let applied = 0;
  try {
    await holdApplyLock(main);
    // The plan is made (or the saved one checked) under the lock, so nobody changes it underneath us.
    const outcome = await makePlan(main, options.desired, options.now(), {
      env: options.env ?? {},
      connect: () => connect(options.databaseUrl, 'pgwarden apply (plan)'),
    });
    if (!outcome.ok) throw new ApplyError(`the policies do not match the database: ${outcome.errors[0]?.message ?? ''}`);
    let plan = outcome.plan;
    if (options.savedPlan) {
      if (options.savedPlan.fingerprint !== plan.fingerprint) {
        throw new ApplyError(
          'the saved plan is stale: the catalog changed since it was made (its fingerprint no longer matches)',
          undefined,
          'run `pgwarden plan` again and review the new plan',
          true,
        );
      }
      // The fresh plan's statements are the ones run: a saved file is the record of what was reviewed,
      // never a source of SQL (it travels between CI jobs as an artifact and could have been edited).
      if (!reviewedIn(options.savedPlan, plan)) {
        throw new ApplyError(
          'the saved plan differs from the plan these policies give for this catalog: it lacks statements that would run (edited, or made by another pgwarden version); nothing was applied',
          undefined,
          'run `pgwarden plan` again and review the new plan',
        );
      }
    }
    if (options.select) {
      const changes = plan.changes.filter(options.select);
      const count = (glyphs: string[]): number => changes.filter((c) => glyphs.includes(c.glyph)).length;
      plan = { ...plan, changes, summary: { add: count(['+']), change: count(['~', '±']), destroy: count(['-']) } };
    }
    options.onEvent?.({ type: 'plan', plan });
    const destructive = plan.changes.filter((c) => c.destructive);
    if (destructive.length > 0 && !options.allowDrop) {
      throw new ApplyError(
        `the plan drops or detaches ${destructive.length} object(s) (${destructive.map((c) => c.change.address).join(', ')}); nothing was applied`,
        undefined,
        're-run with --allow-drop to allow it',
      );
    }
    const refusal = restartRefusal(plan, options.allowRestart ?? false);
    if (refusal !== null) throw new ApplyError(refusal.message, undefined, refusal.hint);
    if (plan.changes.length > 0 && options.confirm && !(await options.confirm(plan))) {
      throw new ApplyError('apply cancelled; nothing was changed');
    }
    // A selection with nothing in it (`maintain` with every partition in place) is not an apply: no record.
    if (options.select && plan.changes.length === 0) return { plan, applied: 0, historyId: null, ms: Date.now() - started };
    await ensurePgwardenSchema(main);
    historyId = await startRecord(main, 'apply', plan, who);
    details = await startApplyDetails(main, plan);
    // The second connection watches builds and is how an interrupt cancels whatever statement runs.
    const monitor = plan.changes.some((c) => c.steps.some((s) => s.kind === 'sql')) ? await connect(options.databaseUrl, 'pgwarden monitor') : null;
    // Replica steps run on each replica's own connection, opened on first use.
    const replicas = replicaStepRunner(main, options.env ?? {});
    try {
      for (let i = 0; i < plan.changes.length; i += 1) {
        if (options.signal?.aborted) throw new ApplyError('interrupted; the current change was finished or rolled back, later ones were not started');
        // Changes that only write the registry (adoptions), however many in a row, are one statement.
        const run = registryRun(plan.changes, i);
        if (run.length > 0) {
          const t0 = Date.now();
          current = run[0]?.change.address ?? null;
          await writeIndexRegistry(main, run.flatMap((c) => c.steps.flatMap((s) => (s.kind === 'registry' ? [s] : []))));
          for (const [k, change] of run.entries()) {
            options.onEvent?.({ type: 'change-start', change, index: i + k, total: plan.changes.length });
            applied += 1;
            options.onEvent?.({ type: 'change-done', change, ms: k === 0 ? Date.now() - t0 : 0 });
            details.changeDone(change.change.address, k === 0 ? Date.now() - t0 : 0);
          }
          i += run.length - 1;
          continue;
        }
        const change = plan.changes[i]!;
        const t0 = Date.now();
        options.onEvent?.({ type: 'change-start', change, index: i, total: plan.changes.length });
        current = change.change.address;
        for (const step of change.steps) {
          if (step.kind === 'registry') await writeIndexRegistry(main, [step]);
          else if (step.kind === 'setting-registry') await runSettingRegistryStep(main, step);
          else if (step.kind === 'replica') await replicas.run(step, (sql) => options.onEvent?.({ type: 'step', sql }), (message) => options.onEvent?.({ type: 'notice', message }));
          else if (step.kind === 'convert') {
            if (change.change.kind !== 'convert-table') throw new ApplyError(`a conversion step belongs to a convert-table change, not ${change.change.kind}`);
            await runConversion(main, change.change, step, {
              lockTimeoutMs: options.lockTimeoutMs,
              retries: options.retries,
              backoffMs: options.backoffMs,
              ...(options.signal ? { signal: options.signal } : {}),
              onProgress: (progress) => options.onEvent?.({ type: 'progress', progress }),
              onNotice: (message) => options.onEvent?.({ type: 'notice', message }),
              onRetry: (sql, attempt, waitMs, reason) => options.onEvent?.({ type: 'retry', sql, attempt, waitMs, reason }),
              openSession: () => connect(options.databaseUrl, 'pgwarden apply (verify)'),
              ...options.conversion,
            }).catch((error: unknown) => {
              if (error instanceof ConversionError) throw new ApplyError(error.message, error.sql, error.hint);
              throw error;
            });
          } else {
            const detach = detachOf(step);
            await (detach ? runDetachStep(main, monitor, step, detach, options) : runSqlStep(main, monitor, step, options));
          }
        }
        applied += 1;
        options.onEvent?.({ type: 'change-done', change, ms: Date.now() - t0 });
        details.changeDone(change.change.address, Date.now() - t0);
      }
    } finally {
      await monitor?.end().catch(() => undefined);
      await replicas.close();
    }
    await main.query('RESET lock_timeout; RESET statement_timeout');
    const recordedMs = await finishRecord(main, historyId, 'succeeded', null);
    await details.save(main, historyId, null);
    // The history's duration (from the record's start), so the CLI and the History page say the same.
    return { plan, applied, historyId, ms: recordedMs ?? Date.now() - started };
  } catch (error) {
    if (historyId !== null) {
      const outcome = options.signal?.aborted ? 'interrupted' : 'failed';
      await main.query('RESET statement_timeout').catch(() => undefined);
      await finishRecord(main, historyId, outcome, (error as Error).message).catch(() => undefined);
      await details?.save(main, historyId, current);
    }
    throw error;
  } finally {
    await main.end().catch(() => undefined);
  }
}

/** The changes from `start` on whose steps are all registry writes (none when the change at `start` runs SQL). */
function registryRun(changes: readonly PlannedChange[], start: number): PlannedChange[] {
  const run: PlannedChange[] = [];
  for (const change of changes.slice(start)) {
    if (change.steps.length === 0 || !change.steps.every((s) => s.kind === 'registry')) break;
    run.push(change);
  }
  return run;
}

async function invalidLeftover(client: pg.Client, schema: string, name: string): Promise<boolean> {
  const r = await client.query<{ valid: boolean }>(
    `SELECT x.indisvalid AS valid FROM pg_catalog.pg_index x WHERE x.indexrelid = pg_catalog.to_regclass($1)`,
    [qualified(schema, name)],
  );
  return r.rows[0]?.valid === false;
}

/** What became of the INVALID index a failed build left: none was left, it was dropped, or it is still there. */
type Leftover =
  | { readonly kind: 'none' }
  | { readonly kind: 'dropped'; readonly note: string }
  | { readonly kind: 'stuck'; readonly note: string; readonly hint: string };

const NO_LEFTOVER: Leftover = { kind: 'none' };

/**
 * A failed CONCURRENTLY build leaves an INVALID index behind; drop it so nothing half-done remains.
 * DROP INDEX CONCURRENTLY waits for old transactions just like the build did, so when that wait is what
 * failed (or the user interrupted), one short try is made and the leftover is otherwise reported with the
 * transactions it waits for: the next plan shows it as INVALID and rebuilds it.
 */
async function dropLeftover(client: pg.Client, step: SqlStep, options: ApplyOptions): Promise<Leftover> {
  if (!step.creates || !(await invalidLeftover(client, step.creates.schema, step.creates.name))) return NO_LEFTOVER;
  const name = `${step.creates.schema}.${step.creates.name}`;
  const sql = dropIndexSql(step.creates.schema, step.creates.name, { concurrently: !step.transactional });
  options.onEvent?.({ type: 'cleanup', message: `dropping the INVALID leftover ${name}` });
  await client.query(`${setLockTimeoutSql(Math.min(options.lockTimeoutMs, 2000))}; ${setStatementTimeoutSql(0)}`);
  const started = Date.now();
  try {
    await client.query(sql);
    return { kind: 'dropped', note: `the INVALID leftover ${name} was dropped` };
  } catch (error) {
    const holders = await olderTransactions(client, qualified(step.creates.schema, step.creates.name), Date.now() - started).catch(() => []);
    const waits = holders.length > 0 ? `; DROP INDEX CONCURRENTLY waits for these older transactions: ${holders.map(describeBlocker).join(', ')}` : '';
    const note = `the INVALID leftover ${name} could not be dropped now (${(error as Error).message})${waits}; not retried, since a new build would collide with it: the next plan rebuilds it`;
    options.onEvent?.({ type: 'cleanup', message: note });
    const hint = holders.length > 0
      ? `end those sessions or let them finish (pg_terminate_backend(pid) ends one), then apply again`
      : 'apply again once long-running transactions on this database have finished';
    return { kind: 'stuck', note, hint };
  }
}

/** The sentence for a statement that failed for good. */
function failure(e: PgError, step: SqlStep, options: ApplyOptions, attempt: number, statementTimeoutMs: number): string {
  if (e.code === '55P03') return `could not take its lock within lock_timeout (${options.lockTimeoutMs} ms) after ${attempt} tries: ${e.message}`;
  // 57014 is also a cancel on interrupt ("due to user request"), which says so itself.
  if (e.code === '57014' && /statement timeout/.test(e.message)) {
    return step.build
      ? `the build ran longer than the build timeout (--build-timeout, ${statementTimeoutMs} ms) and was cancelled`
      : `the statement ran longer than its statement_timeout (${statementTimeoutMs} ms) and was cancelled`;
  }
  return e.message;
}

async function withRetries(
  step: SqlStep,
  statementTimeoutMs: number,
  options: ApplyOptions,
  run: () => Promise<void>,
  cleanUp: () => Promise<Leftover>,
): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    // An interrupt during the backoff: the next try never starts.
    if (options.signal?.aborted) throw new ApplyError('interrupted; the current step was not started', step.sql);
    try {
      await run();
      return;
    } catch (error) {
      const e = error as PgError;
      const leftover = await cleanUp().catch((c: Error): Leftover => ({ kind: 'stuck', note: `checking for an INVALID leftover failed: ${c.message}`, hint: 'run `pgwarden plan` to see what is left' }));
      const retry = RETRYABLE.has(e.code ?? '') && leftover.kind !== 'stuck' && attempt <= options.retries && !options.signal?.aborted;
      if (!retry) {
        const note = leftover.kind === 'none' ? '' : `; ${leftover.note}`;
        throw new ApplyError(`${failure(e, step, options, attempt, statementTimeoutMs)}${e.detail ? ` — ${e.detail}` : ''}${note}`, step.sql, leftover.kind === 'stuck' ? leftover.hint : undefined);
      }
      const waitMs = Math.min(options.backoffMs * 2 ** (attempt - 1), 30_000);
      options.onEvent?.({ type: 'retry', sql: step.sql, attempt, waitMs, reason: e.message });
      await sleep(waitMs);
    }
  }
}

async function backendPid(client: pg.Client): Promise<number> {
  const r = await client.query<{ pid: number }>('SELECT pg_catalog.pg_backend_pid() AS pid');
  return r.rows[0]?.pid ?? 0;
}

/**
 * A step that detaches a partition in its own transactions. With `then: drop` the partition is recorded
 * first, so a DROP that fails after the detach is still planned next time. A DETACH ... CONCURRENTLY whose
 * second phase fails (its wait for transactions that used the parent ran into lock_timeout, or was
 * cancelled) leaves the partition pending, and repeating it then fails for good ("already pending
 * detach"): it is finished with DETACH ... FINALIZE instead, retried with backoff like any step.
 */
async function runDetachStep(client: pg.Client, monitor: pg.Client | null, step: SqlStep, detach: DetachInfo, options: ApplyOptions): Promise<void> {
  const { parent, partition } = detach;
  if (detach.thenDrop) await recordRetiredPartition(client, parent, partition);
  try {
    await runSqlStep(client, monitor, step, options);
  } catch (error) {
    if (detach.mode === 'finalize' || !(await isDetachPending(client, partition.schema, partition.name))) throw error;
    options.onEvent?.({ type: 'notice', message: `${partition.schema}.${partition.name} was left detach-pending (${(error as Error).message}); finishing it with DETACH ... FINALIZE` });
    await runSqlStep(client, monitor, { ...step, sql: detach.finalizeSql, transactional: true }, options);
  }
}

async function runSqlStep(client: pg.Client, monitor: pg.Client | null, step: SqlStep, options: ApplyOptions): Promise<void> {
  options.onEvent?.({ type: 'step', sql: step.sql });
  const statementTimeout = step.build ? options.buildTimeoutMs : Math.max(options.lockTimeoutMs * 4, 60_000);
  const pid = await backendPid(client);
  await withRetries(
    step,
    statementTimeout,
    options,
    async () => {
      await client.query(`${setLockTimeoutSql(options.lockTimeoutMs)}; ${setStatementTimeoutSql(statementTimeout)}`);
      const watcher = step.build && monitor ? watchBuild(monitor, pid, (progress) => options.onEvent?.({ type: 'progress', progress })) : null;
      const onAbort = (): void => {
        void monitor?.query('SELECT pg_catalog.pg_cancel_backend($1)', [pid]).catch(() => undefined);
      };
      options.signal?.addEventListener('abort', onAbort);
      try {
        await client.query(step.sql);
      } finally {
        options.signal?.removeEventListener('abort', onAbort);
        await watcher?.stop();
      }
      // pgroll's rule: a build that "succeeded" is checked, and an INVALID result is dropped and redone.
      if (step.creates && (await invalidLeftover(client, step.creates.schema, step.creates.name))) {
        throw Object.assign(new Error(`the build of ${step.creates.name} finished INVALID`), { code: '55P03' });
      }
    },
    () => (step.creates ? dropLeftover(client, step, options) : Promise.resolve(NO_LEFTOVER)),
  );
}
