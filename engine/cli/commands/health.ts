import { existsSync } from 'node:fs';
import path from 'node:path';
import { renderHealthText } from '../../health/render-health.ts';
import { StandbyError, vacuumHealthReport } from '../../health/vacuum-health-report.ts';
import type { DesiredState } from '../../policy/desired.ts';
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

/**
 * `pgwarden health`: every table's health score and bloat, worst first, with the floor of its vacuum
 * policy. `--json` for machines; `--detailed-exitcode` exits 2 when a table is below its floor.
 */
export async function healthCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, healthOptions);
  const desired = await policiesIfAny(values.policies, io);
  const connection = commandConnection(values['database-url'], io);
  const budgetMs = values['bloat-budget'] === undefined ? 10_000 : parseDuration(values['bloat-budget'], 'bloat-budget');
  const report = await withClient(connection, io, (client) =>
    vacuumHealthReport(client, desired, { exact: !values['estimate-only'], budgetMs }).catch((error: unknown) => {
      if (error instanceof StandbyError) throw new CliError(error.message, 'point --database-url at the primary');
      throw error;
    }),
  );
  if (values.json) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  else io.stdout(renderHealthText(report, { color: io.color, limit: values.all ? Infinity : DEFAULT_ROWS }));
  return values['detailed-exitcode'] && report.tables.some((t) => t.belowFloor) ? 2 : 0;
}
