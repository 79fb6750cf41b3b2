import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { apply, APPLY_DEFAULTS, ApplyError, type ApplyEvent } from '../../apply/apply.ts';
import { describeBlocker } from '../../apply/progress.ts';
import { PLAN_FORMAT_VERSION, type Plan } from '../../plan/plan.ts';
import { describeChange } from '../../render/describe.ts';
import { renderPlanText } from '../../render/render-text.ts';
import { CliError, databaseUrl, parse, type Io } from '../context.ts';
import { loadOrFail } from './plan.ts';

/** "5s", "500ms", "2m" or plain milliseconds. */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new CliError(`--${flag} must be a duration like 5s, 500ms or 2m, got "${value}"`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms'] ?? 1;
  return Number(m[1]) * factor;
}

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

/** Progress for people: a live bar on a terminal, plain lines in CI logs. */
export function progressPrinter(io: Io): (event: ApplyEvent) => void {
  let lastLine = '';
  let lastAt = 0;
  const line = (text: string): void => {
    if (io.isTTY && lastLine.startsWith('\r')) io.stdout('\n');
    lastLine = '';
    io.stdout(`${text}\n`);
  };
  return (event) => {
    switch (event.type) {
      case 'change-start':
        line(`[${event.index + 1}/${event.total}] ${event.change.glyph} ${describeChange(event.change)}`);
        return;
      case 'step':
        // A multi-statement step (one transaction) keeps its statements aligned.
        line(event.sql.replace(/^/gmu, '      '));
        return;
      case 'retry':
        line(`      lock not available (${event.reason}); retry ${event.attempt} in ${event.waitMs} ms`);
        return;
      case 'notice':
      case 'cleanup':
        line(`      ${event.message}`);
        return;
      case 'change-done':
        line(`      done in ${(event.ms / 1000).toFixed(1)} s`);
        return;
      case 'progress': {
        const p = event.progress;
        const pct = p.percent === null ? '' : ` ${p.percent.toFixed(0).padStart(3)}%`;
        const waiting = p.waitingFor.length > 0
          ? ` — waiting for ${p.waitingFor.map(describeBlocker).join(', ')}`
          : '';
        if (io.isTTY) {
          const width = 20;
          const filled = p.percent === null ? 0 : Math.round((p.percent / 100) * width);
          lastLine = `\r      [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${pct} ${p.phase}${waiting}`;
          io.stdout(`${lastLine}\u001b[K`);
        } else if (Date.now() - lastAt > 5000 || waiting !== '') {
          lastAt = Date.now();
          io.stdout(`      ${p.phase}${pct}${waiting}\n`);
        }
        return;
      }
      case 'plan':
        return;
    }
  };
}

export async function applyCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    'auto-approve': { type: 'boolean' },
    'allow-drop': { type: 'boolean' },
    'allow-restart': { type: 'boolean' },
    plan: { type: 'string' },
    'lock-timeout': { type: 'string' },
    'build-timeout': { type: 'string' },
    retries: { type: 'string' },
  });
  const desired = await loadOrFail(values.policies, io);
  const url = databaseUrl(values['database-url'], io.env);
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
      databaseUrl: url ?? '',
      desired,
      savedPlan,
      // PGWARDEN_ALLOW_DROP=true: the same permission from CI, where a label on the merged pull request
      // decides it (examples/github/pgwarden.yml) and the command line stays the same.
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
    if (error instanceof ApplyError) throw new CliError(`${error.message}${error.sql ? `\n  step: ${error.sql}` : ''}`, error.hint);
    throw error;
  }
}
