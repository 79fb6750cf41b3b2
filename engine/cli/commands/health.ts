import { existsSync } from 'node:fs';
import path from 'node:path';
import { oneLine } from '../../analysis/sql-statement.ts';
import type { ApplyRegression } from '../../live-health/apply-regression.ts';
import { liveHealthReport, renderLiveHealthText } from '../../live-health/live-health-report.ts';
import { renderHealthText } from '../../vacuum-health/render-health.ts';
import { StandbyError, vacuumHealthReport } from '../../vacuum-health/vacuum-health-report.ts';
import type { DesiredState } from '../../policy/desired.ts';
import { latestApplyRegressions } from '../../serve/site-data.ts';
import { commandConnection, withClient } from '../connect.ts';
import { CliError, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';
import { parseDuration } from '../duration.ts';
import { loadOrFail } from '../load-policies.ts';
import { policyStandbys, standbyTargets } from '../standby-targets.ts';

/** Without --policies, ./policies is used when it exists; health works without any policy (no floors). */
export async function policiesIfAny(dir: string | undefined, io: Io): Promise<DesiredState | undefined> {
  if (dir === undefined && !existsSync(path.resolve(io.cwd, 'policies'))) return undefined;
  return loadOrFail(dir, io);
}

const DEFAULT_ROWS = 50;

export const healthOptions = defineOptions({
  all: { type: 'boolean', description: 'list every table, not only the worst' },
  'estimate-only': { type: 'boolean', description: 'estimate bloat from statistics instead of measuring it' },
  'bloat-budget': { type: 'string', value: 'DURATION', byDefault: '10s', description: 'time allowed for measuring bloat exactly' },
  'detailed-exitcode': { type: 'boolean', description: 'exit 2 when a table is below its health floor' },
  standby: { type: 'string', multiple: true, value: 'NAME=URL', byDefault: "the routing policy's replicas, else $REPLICA_URL", description: 'a standby whose lag the live snapshot shows' },
  window: { type: 'string', value: 'DURATION', byDefault: '1s', description: "the live snapshot's window: rates and latency over two polls this far apart" },
});

/** The latest apply's statements slower since it, each with its revert. */
function renderApplyRegressions(runId: string, regressions: readonly ApplyRegression[]): string {
  const lines = ['', `Slower since apply #${runId} (beyond the noise band):`];
  for (const r of regressions) {
    lines.push(`  ! ${oneLine(r.query, 80)}: ${r.meanBeforeMs.toFixed(2)} ms -> ${r.meanSinceMs.toFixed(2)} ms over ${r.callsSince} calls (noise ±${r.noiseMs.toFixed(2)} ms)`);
    for (const step of r.revert) lines.push(`      revert: ${step.policy ? `remove the entry at ${step.policy.file}:${step.policy.line} (${step.index}), then apply --allow-drop; or now: ` : ''}${step.sql}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `pgwarden health`: every table's health score and bloat, worst first, with the floor of its vacuum
 * policy; then the live snapshot the live page shows (latency, hit rates, connections, each replica's
 * lag in ms and bytes) over a short window (`--window`, 1 s). Replicas: `--standby NAME=URL`, else the
 * routing policy's replicas whose URL variable is set, else REPLICA_URL. `--json` for machines. Exit 1
 * when a figure is red; with `--detailed-exitcode`, 2 when a table is below its floor (first).
 */
export async function healthCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, healthOptions);
  const windowMs = values.window === undefined ? 1000 : parseDuration(values.window, 'window');
  if (windowMs < 200 || windowMs > 60_000) throw new CliError(`--window must be between 200ms and 1m, got "${values.window}"`);
  const desired = await policiesIfAny(values.policies, io);
  const connection = commandConnection(values['database-url'], io);
  const budgetMs = values['bloat-budget'] === undefined ? 10_000 : parseDuration(values['bloat-budget'], 'bloat-budget');
  const { report, slower } = await withClient(connection, io, async (client) => {
    const report = await vacuumHealthReport(client, desired, { exact: !values['estimate-only'], budgetMs }).catch((error: unknown) => {
      if (error instanceof StandbyError) throw new CliError(error.message, 'point --database-url at the primary');
      throw error;
    });
    // Best effort, like the run page it comes from: no history or no pg_stat_statements, no finding.
    return { report, slower: await latestApplyRegressions(client).catch(() => null) };
  });
  const applyRegressions = slower?.regressions ?? [];
  const fromPolicy = values.standby && values.standby.length > 0 ? null : await policyStandbys(values.policies, io);
  for (const note of fromPolicy?.notes ?? []) io.stderr(`pgwarden health: ${note}\n`);
  const standbys = fromPolicy && fromPolicy.targets.length > 0 ? fromPolicy.targets : standbyTargets(values.standby, io.env);
  const live = await liveHealthReport({ primaryUrl: connection, standbys, windowMs });
  if (values.json) io.stdout(`${JSON.stringify({ ...report, applyRegressions, live }, null, 2)}\n`);
  else {
    io.stdout(renderHealthText(report, { color: io.color, limit: values.all ? Infinity : DEFAULT_ROWS }));
    if (applyRegressions.length > 0) io.stdout(renderApplyRegressions(slower?.runId ?? '', applyRegressions));
    io.stdout(`\n${renderLiveHealthText(live, { color: io.color })}`);
  }
  // --detailed-exitcode asks the tables' question first (2: one is below its floor); otherwise a red
  // figure, a table's included, exits 1.
  if (values['detailed-exitcode'] && report.tables.some((t) => t.belowFloor)) return 2;
  return live.level === 'critical' ? 1 : 0;
}
