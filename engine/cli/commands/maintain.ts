import { MaintainError, MAX_PARALLEL, planMaintenance, runMaintenance, type MaintainResult, type MaintenancePlan } from '../../maintain/maintain.ts';
import { maintainProgressPrinter, renderMaintainSummary, renderMaintenancePlan } from '../../maintain/render-maintain.ts';
import type { DesiredState } from '../../policy/desired.ts';
import type { ConnectionSettings } from '../../connection/connection-settings.ts';
import { commandConnection, withClient } from '../connect.ts';
import { CliError, redact, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';
import { apply, APPLY_DEFAULTS } from '../../apply/apply.ts';
import { parseDuration } from '../duration.ts';
import { progressPrinter } from '../progress-printer.ts';
import { loadOrFail } from '../load-policies.ts';
import type { PlannedChange } from '../../plan/plan.ts';

interface Settings {
  readonly connection: ConnectionSettings;
  readonly desired: DesiredState;
  readonly parallel: number;
  readonly lockTimeoutMs: number;
  readonly budgetMs: number | undefined;
  readonly json: boolean;
}

function parallelOf(text: string | undefined): number {
  if (text === undefined) return 1;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PARALLEL) {
    throw new CliError(`--parallel must be a whole number from 1 to ${MAX_PARALLEL}, got "${text}"`, 'each VACUUM may use maintenance_work_mem and competes for I/O');
  }
  return n;
}

async function plan(settings: Settings, io: Io): Promise<MaintenancePlan> {
  return withClient(settings.connection, io, (client) => planMaintenance(client, settings.desired, new Date()));
}

/**
 * Partitions ahead of time are maintenance too (pg_partman's run_maintenance): a table whose policy says
 * `premake: 3` must not wait for the next merge to get next month's partition. Only creations and
 * finishing an interrupted detach that drops nothing run here; retention, a finalize that then drops
 * (`then: drop`), and everything else wait for `apply` and its `--allow-drop`.
 */
const hasPartitioning = (desired: DesiredState): boolean => desired.tables.some((t) => t.partitioning !== undefined);
const hasVacuumPolicies = (desired: DesiredState): boolean =>
  desired.vacuumDefaults !== undefined || desired.tables.some((t) => t.vacuum !== undefined);

const isUpkeep = (c: PlannedChange): boolean => (c.change.kind === 'create-partition' || c.change.kind === 'finalize-detach') && !c.destructive;

/**
 * Partition upkeep never stands in the way of vacuuming: any failure (a policy the database does not
 * match yet, a lock not granted, another apply running) is reported in one line and the vacuum work goes
 * on. Returns false when it failed, so the exit code can say so.
 */
async function keepPartitionsAhead(settings: Settings, io: Io): Promise<boolean> {
  if (!hasPartitioning(settings.desired)) return true;
  try {
    const result = await apply({
      ...APPLY_DEFAULTS,
      databaseUrl: settings.connection,
      desired: settings.desired,
      lockTimeoutMs: settings.lockTimeoutMs,
      retries: 3,
      select: isUpkeep,
      ...(io.signal === undefined ? {} : { signal: io.signal }),
      ...(settings.json ? {} : { onEvent: progressPrinter(io) }),
    });
    if (!settings.json && result.applied > 0) io.stdout(`partitions: ${result.applied} partition change(s) applied ahead of time\n`);
    return true;
  } catch (error) {
    const message = redact(error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ');
    io.stderr(`partitions: upkeep failed, vacuum work goes on: ${message}\n`);
    return false;
  }
}

async function runOnce(settings: Settings, maintenancePlan: MaintenancePlan, io: Io): Promise<MaintainResult> {
  return runMaintenance(maintenancePlan, {
    databaseUrl: settings.connection,
    parallel: settings.parallel,
    lockTimeoutMs: settings.lockTimeoutMs,
    ...(settings.budgetMs === undefined ? {} : { budgetMs: settings.budgetMs }),
    ...(io.signal === undefined ? {} : { signal: io.signal }),
    ...(settings.json ? {} : { onEvent: maintainProgressPrinter(io) }),
  });
}

function report(result: MaintainResult, settings: Settings, io: Io): void {
  if (settings.json) io.stdout(`${JSON.stringify(result)}\n`);
  else io.stdout(`\n${renderMaintainSummary(result)}`);
}

/** Waits `ms`, or less when the signal fires; true when it fired. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(true);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export const maintainOptions = defineOptions({
  'dry-run': { type: 'boolean', description: 'print what is due, run nothing' },
  parallel: { type: 'string', value: 'N', byDefault: '1', description: 'tables vacuumed at the same time' },
  budget: { type: 'string', value: 'DURATION', description: 'start no new VACUUM after this long' },
  every: { type: 'string', value: 'DURATION', description: 'keep running, once per interval (at least 1s)' },
  'lock-timeout': { type: 'string', value: 'DURATION', byDefault: '5s', description: 'lock_timeout of each statement; a locked table is skipped' },
});

/**
 * `pgwarden maintain`: VACUUM (ANALYZE) / ANALYZE the tables the vacuum policies say are due, worst
 * first. Exit 0 when every due table was done (or dropped meanwhile) and partition upkeep succeeded, 1
 * when a table was skipped for its lock, failed, the run was interrupted, or partition upkeep failed (the
 * vacuum work is done all the same). With `--every`, runs until SIGINT/SIGTERM and exits 0.
 */
export async function maintainCommand(args: readonly string[], io: Io): Promise<number> {
  try {
    return await maintain(args, io);
  } catch (error) {
    throw error instanceof MaintainError ? new CliError(error.message, error.hint) : error;
  }
}

async function maintain(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, maintainOptions);
  const settings: Settings = {
    connection: commandConnection(values['database-url'], io),
    desired: await loadOrFail(values.policies, io, { json: values.json ?? false }),
    parallel: parallelOf(values.parallel),
    lockTimeoutMs: values['lock-timeout'] === undefined ? 5000 : parseDuration(values['lock-timeout'], 'lock-timeout'),
    budgetMs: values.budget === undefined ? undefined : parseDuration(values.budget, 'budget'),
    json: values.json ?? false,
  };
  const everyMs = values.every === undefined ? undefined : parseDuration(values.every, 'every');
  if (everyMs !== undefined && everyMs < 1000) throw new CliError(`--every must be at least 1s, got "${values.every}"`);
  if (everyMs !== undefined && values['dry-run']) throw new CliError('--dry-run runs once; leave out --every');

  if (values['dry-run']) {
    const maintenancePlan = await plan(settings, io);
    io.stdout(settings.json ? `${JSON.stringify(maintenancePlan, null, 2)}\n` : renderMaintenancePlan(maintenancePlan));
    return 0;
  }
  if (everyMs === undefined) {
    const upkept = await keepPartitionsAhead(settings, io);
    // Partition upkeep alone is a complete maintenance run for policies that declare no vacuum rules.
    if (hasPartitioning(settings.desired) && !hasVacuumPolicies(settings.desired)) return upkept ? 0 : 1;
    const maintenancePlan = await plan(settings, io);
    if (maintenancePlan.tasks.length === 0 && !settings.json) io.stdout(renderMaintenancePlan(maintenancePlan));
    const result = await runOnce(settings, maintenancePlan, io);
    if (maintenancePlan.tasks.length > 0 || settings.json) report(result, settings, io);
    return result.outcome === 'succeeded' && upkept ? 0 : 1;
  }
  return keepMaintaining(settings, everyMs, io);
}

/**
 * `--every`: the same rules every interval until SIGINT/SIGTERM. A signal during a VACUUM cancels it
 * cleanly (recorded as interrupted); between runs it just stops. A failed run (the database restarting,
 * another maintain holding the lock) is reported and the next one tries again; a standby or missing
 * vacuum policies stop it at once.
 */
async function keepMaintaining(settings: Settings, everyMs: number, io: Io): Promise<number> {
  if (!settings.json) io.stdout(`maintain: every ${everyMs / 1000} s until interrupted (Ctrl-C or SIGTERM stops it cleanly)\n`);
  for (let run = 1; ; run += 1) {
    if (io.signal?.aborted) break;
    const at = new Date().toISOString().slice(0, 19).replace('T', ' ');
    try {
      await keepPartitionsAhead(settings, io);
      if (hasPartitioning(settings.desired) && !hasVacuumPolicies(settings.desired)) {
        if (await pause(everyMs, io.signal)) break;
        continue;
      }
      const maintenancePlan = await plan(settings, io);
      if (maintenancePlan.tasks.length === 0) {
        if (!settings.json) io.stdout(`[${at}] run ${run}: nothing due (${maintenancePlan.governed} governed tables)\n`);
      } else {
        if (!settings.json) io.stdout(`[${at}] run ${run}: ${maintenancePlan.tasks.length} table(s) due\n`);
        report(await runOnce(settings, maintenancePlan, io), settings, io);
      }
    } catch (error) {
      if (error instanceof MaintainError && error.fatal) throw error;
      io.stderr(`[${at}] run ${run} failed: ${redact(error instanceof Error ? error.message : String(error))}; trying again in ${everyMs / 1000} s\n`);
    }
    if (await pause(everyMs, io.signal)) break;
  }
  if (!settings.json) io.stdout('maintain: stopped.\n');
  return 0;
}
