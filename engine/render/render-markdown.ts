import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import type { Plan } from '../plan/plan.ts';
import { describeChange, formatBytes } from './describe.ts';
import { replicaLockText, replicaStepSql } from './describe-routing.ts';
import { codeFence, codeLine, markdownCell, markdownCellCode, markdownCode, markdownText } from './markdown-escape.ts';

export const DEFAULT_PLAN_TEMPLATE = fileURLToPath(new URL('./templates/plan.md.hbs', import.meta.url));

function risk(planned: Plan['changes'][number]): string {
  if (planned.destructive) return 'destructive';
  if (!planned.online) return 'brief write block';
  return planned.steps.some((s) => s.kind === 'sql' && s.build) ? 'online build' : 'low';
}

/**
 * The view a template sees: plain strings, so user templates need no helpers. Every string is already
 * Markdown for the place the bundled template puts it — table cells escaped, code spans complete with
 * their backticks (`where`, `database`, a replica's `name`), SQL lines bare for a block opened and
 * closed with `sqlFence` — because names and policy strings are the user's and may hold anything.
 * The raw values are under `plan`.
 */
export function planView(plan: Plan): Record<string, unknown> {
  const changes = plan.changes.map((c) => ({
    glyph: c.glyph,
    summary: markdownCell(describeChange(c)),
    reason: markdownCell(c.change.reason),
    comment: codeLine(`${c.glyph} ${describeChange(c)}: ${c.change.reason}`),
    lock: markdownCell(replicaLockText(c) ?? `${c.lock.mode}${c.online ? '' : ' (blocks writes)'}`),
    risk: risk(c),
    size: 'table' in c.change ? formatBytes(c.change.table.bytes) : '',
    where: c.change.source ? markdownCellCode(`${c.change.source.file}:${c.change.source.line}`) : '',
    sql: [...c.steps.flatMap((s) => (s.kind === 'sql' ? [s.sql] : [])), ...replicaStepSql(c)],
  }));
  return {
    plan,
    database: markdownCode(plan.database),
    noChanges: plan.changes.length === 0,
    changes,
    destructive: plan.changes.filter((c) => c.destructive),
    warnings: plan.warnings.map((w) => ({ message: markdownText(w.message), where: w.source ? markdownCode(`${w.source.file}:${w.source.line}`) : '' })),
    statementCount: changes.reduce((n, c) => n + c.sql.length, 0),
    sqlFence: codeFence(changes.flatMap((c) => [c.comment, ...c.sql])),
    shortFingerprint: plan.fingerprint.slice(0, 12),
    replicas: (plan.routing?.replicas ?? []).map((r) => ({ name: markdownCellCode(r.name), status: markdownCell(r.status), detail: markdownCell(r.detail) })),
  };
}

/** Markdown for a pull-request comment; `templateFile` overrides the bundled Handlebars template. */
export async function renderPlanMarkdown(plan: Plan, templateFile = DEFAULT_PLAN_TEMPLATE): Promise<string> {
  const template = Handlebars.compile(await readFile(templateFile, 'utf8'), { noEscape: true });
  return template(planView(plan));
}
