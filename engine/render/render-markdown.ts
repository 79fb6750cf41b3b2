import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import type { Plan } from '../plan/plan.ts';
import { describeChange, formatBytes } from './describe.ts';
import { replicaLockText, replicaStepSql } from './describe-routing.ts';

export const DEFAULT_PLAN_TEMPLATE = fileURLToPath(new URL('./templates/plan.md.hbs', import.meta.url));

/** Table cells cannot hold a bare `|` or a line break; names are the user's and may contain both. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function risk(planned: Plan['changes'][number]): string {
  if (planned.destructive) return 'destructive';
  if (!planned.online) return 'brief write block';
  return planned.steps.some((s) => s.kind === 'sql' && s.build) ? 'online build' : 'low';
}

/** The view a template sees: plain strings, so user templates need no helpers. */
export function planView(plan: Plan): Record<string, unknown> {
  const changes = plan.changes.map((c) => ({
    glyph: c.glyph,
    summary: cell(describeChange(c)),
    reason: c.change.reason,
    lock: replicaLockText(c) ?? `${c.lock.mode}${c.online ? '' : ' (blocks writes)'}`,
    risk: risk(c),
    size: 'table' in c.change ? formatBytes(c.change.table.bytes) : '',
    where: c.change.source ? cell(`${c.change.source.file}:${c.change.source.line}`) : '',
    sql: [...c.steps.flatMap((s) => (s.kind === 'sql' ? [s.sql] : [])), ...replicaStepSql(c)],
  }));
  return {
    plan,
    noChanges: plan.changes.length === 0,
    changes,
    destructive: plan.changes.filter((c) => c.destructive),
    warnings: plan.warnings.map((w) => ({ message: w.message, where: w.source ? `${w.source.file}:${w.source.line}` : '' })),
    statementCount: changes.reduce((n, c) => n + c.sql.length, 0),
    shortFingerprint: plan.fingerprint.slice(0, 12),
    replicas: (plan.routing?.replicas ?? []).map((r) => ({ name: cell(r.name), status: r.status, detail: cell(r.detail) })),
  };
}

/** Markdown for a pull-request comment; `templateFile` overrides the bundled Handlebars template. */
export async function renderPlanMarkdown(plan: Plan, templateFile = DEFAULT_PLAN_TEMPLATE): Promise<string> {
  const template = Handlebars.compile(await readFile(templateFile, 'utf8'), { noEscape: true });
  return template(planView(plan));
}
