import { existsSync } from 'node:fs';
import path from 'node:path';
import { oneLine } from '../../analysis/sql-statement.ts';
import type { ApplyRegression } from '../../health/apply-regression.ts';
import { renderHealthText } from '../../health/render-health.ts';
import { StandbyError, vacuumHealthReport } from '../../health/vacuum-health-report.ts';
import type { DesiredState } from '../../policy/desired.ts';
import { latestApplyRegressions } from '../../serve/site-data.ts';
import { commandConnection, withClient } from '../connect.ts';
import { CliError, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';
import { parseDuration } from '../duration.ts';
import { loadOrFail } from '../load-policies.ts';

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
 * policy. `--json` for machines; `--detailed-exitcode` exits 2 when a table is below its floor.
 */
export async function healthCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, healthOptions);
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
  if (values.json) io.stdout(`${JSON.stringify({ ...report, applyRegressions }, null, 2)}\n`);
  else {
    io.stdout(renderHealthText(report, { color: io.color, limit: values.all ? Infinity : DEFAULT_ROWS }));
    if (applyRegressions.length > 0) io.stdout(renderApplyRegressions(slower?.runId ?? '', applyRegressions));
  }
  return values['detailed-exitcode'] && report.tables.some((t) => t.belowFloor) ? 2 : 0;
}
