import type { Plan, PlannedChange } from '../plan/plan.ts';
import { formatPolicyError, type PolicyError } from '../policy/desired.ts';
import { paint as paintText, type Color } from './color.ts';
import { describeChange, formatBytes } from './describe.ts';
import { replicaStepLines, routingDetailLines, routingReportLines } from './describe-routing.ts';
import { convertDetailLines } from './describe-convert.ts';

export interface TextStyle {
  readonly color: boolean;
}

function paint(style: TextStyle, color: Color, text: string): string {
  return paintText(style.color, color, text);
}

const GLYPH_COLOR: Record<PlannedChange['glyph'], Color> = { '+': 'green', '~': 'yellow', '±': 'yellow', '-': 'red' };

/** The plan for a terminal, in the manner of `terraform plan`. */
export function renderPlanText(plan: Plan, style: TextStyle): string {
  const out: string[] = [];
  for (const w of plan.warnings) out.push(paint(style, 'yellow', `warning: ${w.source ? `${w.source.file}:${w.source.line}:${w.source.col}: ` : ''}${w.message}`));
  if (plan.warnings.length > 0) out.push('');
  out.push(...routingReportLines(plan.routing));
  if (plan.changes.length === 0) {
    out.push(paint(style, 'green', `No changes. Database ${plan.database} matches the policies.`));
    return `${out.join('\n')}\n`;
  }
  out.push(`pgwarden will make these changes to database ${plan.database}:`, '');
  for (const c of plan.changes) {
    const color = GLYPH_COLOR[c.glyph];
    out.push(`  ${paint(style, color, `${c.glyph} ${describeChange(c)}`)}`);
    out.push(paint(style, 'dim', `      why:   ${c.change.reason}`));
    if ('table' in c.change) {
      out.push(paint(style, 'dim', `      lock:  ${c.lock.mode} on ${c.lock.on} — ${c.online ? 'online, reads and writes continue' : 'blocks writes briefly (under lock_timeout)'}`));
      out.push(paint(style, 'dim', `      table: ${formatBytes(c.change.table.bytes)}, ~${Math.round(c.change.table.rowEstimate).toLocaleString('en-US')} rows`));
    } else {
      out.push(...routingDetailLines(c).map((line) => paint(style, 'dim', `      ${line}`)));
    }
    out.push(...convertDetailLines(c).map((line) => paint(style, 'dim', `      ${line}`)));
    if (c.change.source) out.push(paint(style, 'dim', `      from:  ${c.change.source.file}:${c.change.source.line}`));
    // A multi-statement step (one transaction) keeps its statements aligned.
    for (const step of c.steps) if (step.kind === 'sql') out.push(...step.sql.split('\n').map((line) => `      ${paint(style, 'cyan', line)}`));
    out.push(...replicaStepLines(c).map((line) => `      ${paint(style, 'cyan', line)}`));
    if (c.destructive) out.push(paint(style, 'red', '      destructive: needs --allow-drop'));
    out.push('');
  }
  const s = plan.summary;
  out.push(paint(style, 'bold', `Plan: ${s.add} to add, ${s.change} to change, ${s.destroy} to destroy.`));
  return `${out.join('\n')}\n`;
}

/** `found`: 'loading' (nothing reached the database) or 'planning' (the catalog was read, nothing changed). */
export function renderPolicyErrors(errors: readonly PolicyError[], found: 'loading' | 'planning' = 'loading'): string {
  const outcome = found === 'loading' ? 'nothing was sent to the database' : 'nothing was changed';
  return `${errors.map(formatPolicyError).join('\n')}\n${errors.length} error${errors.length === 1 ? '' : 's'} in the policies; ${outcome}.\n`;
}
