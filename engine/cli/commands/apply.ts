import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { apply, APPLY_DEFAULTS, ApplyError } from '../../apply/apply.ts';
import { PLAN_FORMAT_VERSION, type Plan } from '../../plan/plan.ts';
import { renderPlanText } from '../../render/render-text.ts';
import { commandConnection } from '../connect.ts';
import { CliError, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';
import { parseDuration } from '../duration.ts';
import { EXIT } from '../exit-codes.ts';
import { loadOrFail } from '../load-policies.ts';
import { progressPrinter } from '../progress-printer.ts';

async function readPlan(file: string): Promise<Plan> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new CliError(`cannot read the plan ${file}: ${(error as Error).message}`);
  }
  const plan = parsed as Partial<Plan>;
  if (plan.formatVersion !== PLAN_FORMAT_VERSION || typeof plan.fingerprint !== 'string' || !Array.isArray(plan.changes)) {
    throw new CliError(`${file} is not a pgwarden plan of format version ${PLAN_FORMAT_VERSION}`, 'make one with `pgwarden plan --out plan.json`');
  }
  return plan as Plan;
}

export const applyOptions = defineOptions({
  'auto-approve': { type: 'boolean', description: 'apply without asking (needed when not on a terminal)' },
  plan: { type: 'string', value: 'FILE', description: 'apply exactly this saved plan; exit 3 if the catalog moved since (plan again)' },
  'allow-drop': { type: 'boolean', description: 'allow drops and detaches (also PGWARDEN_ALLOW_DROP=true)' },
  'allow-restart': { type: 'boolean', description: 'allow changes that need a server restart' },
  'lock-timeout': { type: 'string', value: 'DURATION', byDefault: '5s', description: 'lock_timeout of every DDL statement' },
  'build-timeout': { type: 'string', value: 'DURATION', byDefault: '6h', description: 'statement_timeout of an index build (0: none)' },
  retries: { type: 'string', value: 'N', byDefault: '5', description: 'retries of a statement that could not take its lock' },
});

export async function applyCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, applyOptions);
  const desired = await loadOrFail(values.policies, io, { json: values.json ?? false });
  const connection = commandConnection(values['database-url'], io);
  const savedPlan = values.plan ? await readPlan(path.resolve(io.cwd, values.plan)) : undefined;
  if (!values['auto-approve'] && !(io.isTTY && io.prompt)) {
    throw new CliError('apply needs --auto-approve when it is not run on a terminal');
  }
  const retries = values.retries === undefined ? APPLY_DEFAULTS.retries : Number(values.retries);
  if (!Number.isInteger(retries) || retries < 0) throw new CliError(`--retries must be a whole number, got "${values.retries}"`);
  const print = progressPrinter(io);
  try {
    const result = await apply({
      ...APPLY_DEFAULTS,
      databaseUrl: connection,
      desired,
      savedPlan,
      // PGWARDEN_ALLOW_DROP=true: the same permission from CI, where a label on the merged pull request
      // decides it (the GitHub Action, action.yml) and the command line stays the same.
      allowDrop: values['allow-drop'] ?? ['1', 'true'].includes(io.env['PGWARDEN_ALLOW_DROP'] ?? ''),
      allowRestart: values['allow-restart'] ?? false,
      env: io.env,
      lockTimeoutMs: values['lock-timeout'] ? parseDuration(values['lock-timeout'], 'lock-timeout') : APPLY_DEFAULTS.lockTimeoutMs,
      // 0 = no statement_timeout for builds.
      buildTimeoutMs: values['build-timeout'] ? parseDuration(values['build-timeout'], 'build-timeout') : APPLY_DEFAULTS.buildTimeoutMs,
      retries,
      signal: io.signal,
      onEvent: values.json ? undefined : print,
      confirm: values['auto-approve']
        ? undefined
        : async (plan) => {
            io.stdout(renderPlanText(plan, { color: io.color }));
            const answer = await io.prompt!('\nApply these changes? Only "yes" is accepted: ');
            return answer.trim() === 'yes';
          },
    });
    if (values.json) {
      io.stdout(`${JSON.stringify({ applied: result.applied, historyId: result.historyId, ms: result.ms, plan: result.plan }, null, 2)}\n`);
    } else if (result.plan.changes.length === 0) {
      io.stdout(`No changes. Database ${result.plan.database} matches the policies.\n`);
    } else {
      io.stdout(`Apply complete: ${result.applied} change(s) in ${(result.ms / 1000).toFixed(1)} s (history record ${result.historyId}).\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof ApplyError) throw new CliError(`${error.message}${error.sql ? `\n  step: ${error.sql}` : ''}`, error.hint, error.stalePlan ? EXIT.stalePlan : EXIT.error);
    throw error;
  }
}
