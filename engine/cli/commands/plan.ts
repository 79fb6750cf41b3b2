import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { connect } from '../../connection/open-connection.ts';
import { makePlan } from '../../plan/make-plan.ts';
import type { Plan } from '../../plan/plan.ts';
import { renderPlanMarkdown } from '../../render/render-markdown.ts';
import { renderPlanText } from '../../render/render-text.ts';
import { commandConnection, withClient } from '../connect.ts';
import { CliError, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';
import { loadOrFail } from '../load-policies.ts';
import { reportPolicyErrors } from '../policy-errors.ts';

export const planOptions = defineOptions({
  out: { type: 'string', value: 'FILE', description: 'also save the plan as JSON (for `apply --plan FILE`)' },
  format: { type: 'string', value: 'FORMAT', byDefault: 'text', description: 'text, json or markdown (--json is --format json)' },
  template: { type: 'string', value: 'FILE', description: 'a Handlebars template for --format markdown' },
  'detailed-exitcode': { type: 'boolean', description: 'exit 0 with no changes, 2 with changes, 1 on error' },
});

export async function planCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, planOptions);
  const format = values.json ? 'json' : (values.format ?? 'text');
  if (!['text', 'json', 'markdown'].includes(format)) throw new CliError(`--format must be text, json or markdown, got "${format}"`);
  const desired = await loadOrFail(values.policies, io, { json: format === 'json' });
  const connection = commandConnection(values['database-url'], io);
  // A second connection lets the catalog reads run side by side.
  const second = (): Promise<pg.Client> => connect(connection, { application_name: 'pgwarden', connectionTimeoutMillis: 10_000 });
  const outcome = await withClient(connection, io, (client) => makePlan(client, desired, new Date(), { env: io.env, connect: second }));
  if (!outcome.ok) {
    reportPolicyErrors(outcome.errors, io, { json: format === 'json', stage: 'planning' });
    throw new CliError('policies do not match the database', undefined, 1, true);
  }
  const plan: Plan = outcome.plan;
  if (values.out) await writeFile(path.resolve(io.cwd, values.out), `${JSON.stringify(plan, null, 2)}\n`);
  if (format === 'json') io.stdout(`${JSON.stringify(plan, null, 2)}\n`);
  else if (format === 'markdown') io.stdout(await renderPlanMarkdown(plan, values.template ? path.resolve(io.cwd, values.template) : undefined));
  else io.stdout(renderPlanText(plan, { color: io.color }));
  return values['detailed-exitcode'] && plan.changes.length > 0 ? 2 : 0;
}
