import { paint as paintText, type Color } from '../render/color.ts';
import type { PartitionLine, PlanSummary, QueryReport, StatementAnalysis, WorkloadReport } from './analysis-report.ts';
import { nodeLabel, type PlanNode } from './explain-plan.ts';
import type { BoundParameter } from './parameter-values.ts';
import { count, percent, type Finding, type Severity } from './plan-finding.ts';
import { oneLine } from './sql-statement.ts';
import type { StatementStats, StatementWindow, WindowEvictions } from './statement-stats.ts';

/** `analyze` for terminals and for pull-request comments. */

export interface AnalysisStyle {
  readonly color: boolean;
}

function paint(style: AnalysisStyle, color: Color, text: string): string {
  return paintText(style.color, color, text);
}

const SEVERITY_COLOR: Record<Severity, Color> = { high: 'red', medium: 'yellow', low: 'dim' };

export function ms(value: number): string {
  if (value >= 60_000) return `${(value / 60_000).toFixed(1)} min`;
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10_000 ? 0 : 1)} s`;
  if (value >= 10) return `${value.toFixed(0)} ms`;
  return `${value.toFixed(value >= 1 ? 1 : 2)} ms`;
}

export function methodText(plan: PlanSummary, serverVersion: number): string {
  const major = Math.floor(serverVersion / 10000);
  const what = plan.analyzed ? 'EXPLAIN ANALYZE' : 'EXPLAIN';
  switch (plan.method) {
    case 'plain':
      return `${what}`;
    case 'bound':
      return `${what} with the --param values`;
    case 'generic-plan':
      return `EXPLAIN (GENERIC_PLAN), PostgreSQL ${major}: the plan every execution of the normalised statement may get`;
    case 'prepared-generic':
      return `generic plan (PREPARE + plan_cache_mode = force_generic_plan; PostgreSQL ${major} has no GENERIC_PLAN), values sampled from pg_stats`;
    case 'sampled':
      return `${what} with values sampled from pg_stats`;
  }
}

function parameterLines(parameters: readonly BoundParameter[]): string[] {
  return parameters.map((p) => `  $${p.number} = ${p.value === null ? 'NULL' : JSON.stringify(p.value)}${p.source === 'given' ? '' : `  (${p.note})`}`);
}

function findingLines(findings: readonly Finding[], style: AnalysisStyle, indent: string): string[] {
  return findings.flatMap((f) => [
    `${indent}${paint(style, SEVERITY_COLOR[f.severity], f.severity.padEnd(6))} node ${f.node.id} ${f.node.label}: ${f.message}`,
    `${indent}       ${paint(style, 'dim', `-> ${f.hint}`)}`,
  ]);
}

/**
 * pg_stat_statements keeps one max per entry, since it was created or reset: a window of two snapshots
 * cannot subtract it, so in a window the column says it is something else.
 */
function maxHeader(kind: StatementWindow['kind']): string {
  return kind === 'delta' ? 'max*' : 'max';
}

const MAX_FOOTNOTE = '* max: the longest single call since the entry was created or pg_stat_statements was reset, not only in this window';

/** A reset inside the window (pg_stat_statements_reset(), or a Neon compute that suspended) is said as such. */
function resetNote(at: string): string {
  return `note: pg_stat_statements was reset at ${at}, inside the window: the figures count from the reset`;
}

function evictionNote(e: WindowEvictions): string {
  const parts = [
    e.evicted > 0 ? `pg_stat_statements evicted ${count(e.evicted)} entr${e.evicted === 1 ? 'y' : 'ies'} during the window (pg_stat_statements.max reached); statements evicted and not run again are missing` : '',
    e.recreated > 0 ? `${count(e.recreated)} statement(s) evicted or reset and re-created in the window count from their re-creation` : '',
    e.ambiguous ? 'before PostgreSQL 17 (no stats_since) a statement evicted and re-created with more calls than it had cannot be recognised, and is understated' : '',
  ];
  return `note: ${parts.filter((p) => p !== '').join('; ')}`;
}

function statementTable(rows: readonly StatementStats[], kind: StatementWindow['kind']): string[] {
  const header = `  ${'#'.padStart(2)}  ${'total'.padStart(8)}  ${'share'.padStart(5)}  ${'calls'.padStart(8)}  ${'mean'.padStart(9)}  ${maxHeader(kind).padStart(9)}  ${'rows/call'.padStart(9)}  ${'hit'.padStart(6)}  statement`;
  const lines = rows.map((s, i) =>
    [
      `  ${String(i + 1).padStart(2)}`,
      ms(s.totalMs).padStart(8),
      percent(s.share).padStart(5),
      count(s.calls).padStart(8),
      ms(s.meanMs).padStart(9),
      ms(s.maxMs).padStart(9),
      (s.rowsPerCall >= 10 ? count(s.rowsPerCall) : s.rowsPerCall.toFixed(1)).padStart(9),
      (s.cacheHitRatio === null ? '-' : percent(s.cacheHitRatio)).padStart(6),
      oneLine(s.query, 90),
    ].join('  '),
  );
  return [header, ...lines];
}

function windowText(report: WorkloadReport): string {
  const w = report.window;
  if (w.kind === 'delta') {
    const seconds = w.from === undefined ? 0 : (Date.parse(w.to) - Date.parse(w.from)) / 1000;
    return `the last ${seconds.toFixed(0)} s (difference of two pg_stat_statements snapshots)`;
  }
  return w.from === undefined ? 'since pg_stat_statements was last reset' : `since ${w.from} (pg_stat_statements reset)`;
}

export function renderWorkloadText(report: WorkloadReport, style: AnalysisStyle): string {
  const out: string[] = [];
  out.push(paint(style, 'bold', `Slow queries in database ${report.database}, ${windowText(report)}`));
  out.push(`${count(report.window.statementCount)} statements, ${count(report.window.calls)} calls, ${ms(report.window.totalMs)} of execution time`);
  if (report.window.resetAt !== undefined) out.push(paint(style, 'yellow', resetNote(report.window.resetAt)));
  if (report.window.evictions !== undefined) out.push(paint(style, 'yellow', evictionNote(report.window.evictions)));
  if (report.window.kind === 'delta' && report.window.statementCount > 0) out.push(paint(style, 'dim', MAX_FOOTNOTE));
  const left = report.leftOut;
  const leftText = [
    left.utility > 0 ? `${left.utility} utility` : '',
    left.catalogOnly > 0 ? `${left.catalogOnly} catalog-only` : '',
    left.hidden > 0 ? `${left.hidden} hidden (<insufficient privilege>: grant pg_read_all_stats)` : '',
  ].filter((t) => t !== '');
  if (leftText.length > 0) out.push(paint(style, 'dim', `left out: ${leftText.join(', ')} statement(s) (--all keeps them)`));
  if (report.window.statementCount === 0) {
    out.push('', 'No statements in the window.');
    return `${out.join('\n')}\n`;
  }
  const printed = new Set<string>();
  for (const [title, rows] of [
    ['by total time', report.top.total],
    ['by mean time', report.top.mean],
    ['by calls', report.top.calls],
  ] as const) {
    // A list in the same order as one already printed (a small window) says nothing new.
    const order = rows.map((r) => r.key).join('\u0000');
    if (printed.has(order)) {
      out.push('', paint(style, 'dim', `Top ${rows.length} ${title}: the same statements in the same order`));
      continue;
    }
    printed.add(order);
    out.push('', paint(style, 'bold', `Top ${rows.length} ${title}`), ...statementTable(rows, report.window.kind));
  }
  out.push('', paint(style, 'bold', `Findings for the ${report.analyses.length} statement(s) with the most total time`));
  for (const [i, a] of report.analyses.entries()) out.push('', ...analysisLines(a, i, report.serverVersion, style));
  return `${out.join('\n')}\n`;
}

function analysisLines(a: StatementAnalysis, i: number, serverVersion: number, style: AnalysisStyle): string[] {
  const head = `[${i + 1}] ${oneLine(a.statement.query, 110)}`;
  const stats = `    ${count(a.statement.calls)} calls, mean ${ms(a.statement.meanMs)}, ${percent(a.statement.share)} of the time; queryid ${a.statement.queryId}`;
  if (a.error !== undefined) return [head, stats, `    ${paint(style, 'yellow', `no plan: ${a.error}`)}`];
  const lines = [head, stats];
  if (a.plan) lines.push(paint(style, 'dim', `    plan: ${methodText(a.plan, serverVersion)}, cost ${a.plan.totalCost.toFixed(0)}`));
  if (a.findings.length === 0) lines.push(`    ${paint(style, 'green', 'no findings')}`);
  else lines.push(...findingLines(a.findings, style, '    '));
  return lines;
}

/** One plan as an indented tree, every node numbered as the findings refer to it. */
export function planTreeLines(root: PlanNode, marked: ReadonlySet<number>, style: AnalysisStyle): string[] {
  const lines: string[] = [];
  const walk = (node: PlanNode, depth: number): void => {
    const pad = depth === 0 ? '' : `${'      '.repeat(depth - 1)}  -> `;
    const est = `cost=${node.startupCost.toFixed(2)}..${node.totalCost.toFixed(2)} rows=${count(node.planRows)}`;
    const actual =
      node.actual === undefined
        ? ''
        : node.neverExecuted
          ? ' (never executed)'
          : ` (actual ${node.actual.totalMs.toFixed(3)} ms rows=${count(node.actual.rows)} loops=${count(node.actual.loops)})`;
    const mark = marked.has(node.id) ? paint(style, 'red', ' !') : '';
    lines.push(`[${String(node.id).padStart(2)}] ${pad}${nodeLabel(node)}  (${est})${actual}${mark}`);
    const detailPad = `     ${depth === 0 ? '' : `${'      '.repeat(depth - 1)}     `}`;
    for (const [label, value] of [
      ['Index Cond', node.indexCond],
      ['Recheck Cond', node.recheckCond],
      ['Hash Cond', node.hashCond],
      ['Merge Cond', node.mergeCond],
      ['Join Filter', node.joinFilter],
      ['Filter', node.filter],
    ] as const) {
      if (value !== undefined) lines.push(paint(style, 'dim', `${detailPad}${label}: ${value}`));
    }
    if (node.rowsRemovedByFilter !== undefined && node.rowsRemovedByFilter > 0) {
      lines.push(paint(style, 'dim', `${detailPad}Rows Removed by Filter: ${count(node.rowsRemovedByFilter)}`));
    }
    if (node.sortMethod !== undefined) {
      lines.push(paint(style, 'dim', `${detailPad}Sort Method: ${node.sortMethod}  ${node.sortSpaceType ?? ''}: ${node.sortSpaceKb ?? 0} kB`));
    }
    if (node.subplansRemoved !== undefined) lines.push(paint(style, 'dim', `${detailPad}Subplans Removed: ${node.subplansRemoved}`));
    for (const child of node.children) walk(child, depth + 1);
  };
  walk(root, 0);
  return lines;
}

export function partitionText(line: PartitionLine): string {
  return `${line.parent}: ${line.text}`;
}

export function renderQueryText(report: QueryReport, style: AnalysisStyle): string {
  const out: string[] = [];
  out.push(paint(style, 'bold', `Plan of the statement on database ${report.database}`));
  out.push(paint(style, 'dim', oneLine(report.statement, 400)));
  out.push(`method: ${methodText(report.plan, report.serverVersion)}`);
  if (report.plan.parameters.length > 0) out.push('parameters:', ...parameterLines(report.plan.parameters));
  out.push('');
  out.push(...planTreeLines(report.tree, new Set(report.findings.map((f) => f.node.id)), style));
  out.push('');
  for (const line of report.partitions) out.push(`partitions: ${partitionText(line)}`);
  const timing = [
    `cost ${report.plan.totalCost.toFixed(2)}`,
    report.plan.planningMs === undefined ? '' : `planning ${ms(report.plan.planningMs)}`,
    report.plan.executionMs === undefined ? '' : `execution ${ms(report.plan.executionMs)}`,
    report.plan.rolledBack ? 'executed in a transaction that was rolled back' : '',
    report.plan.sequencesAdvanced ? 'but the sequences it drew values from stay advanced (nextval is never rolled back)' : '',
  ].filter((t) => t !== '');
  out.push(timing.join(', '));
  out.push('');
  if (report.findings.length === 0) out.push(paint(style, 'green', 'No findings.'));
  else out.push(paint(style, 'bold', `Findings (${report.findings.length})`), ...findingLines(report.findings, style, '  '));
  return `${out.join('\n')}\n`;
}

/** Table cells hold neither a bare `|` nor a line break. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function markdownFindings(findings: readonly Finding[]): string[] {
  if (findings.length === 0) return ['No findings.'];
  return findings.map((f) => `- **${f.severity}** — node ${f.node.id} \`${cell(f.node.label)}\`: ${cell(f.message)}  \n  ${cell(f.hint)}`);
}

export function renderWorkloadMarkdown(report: WorkloadReport): string {
  const out: string[] = [];
  out.push('<!-- pgwarden-analyze -->', `### pgwarden analyze: ${report.database}`, '');
  out.push(`${count(report.window.statementCount)} statements, ${count(report.window.calls)} calls, ${ms(report.window.totalMs)} of execution time, ${windowText(report)}.`, '');
  if (report.window.resetAt !== undefined) out.push(`> [!NOTE]\n> ${cell(resetNote(report.window.resetAt))}`, '');
  if (report.window.evictions !== undefined) out.push(`> [!NOTE]\n> ${cell(evictionNote(report.window.evictions))}`, '');
  out.push(`| # | total | share | calls | mean | ${maxHeader(report.window.kind)} | hit | statement |`, '|---|---|---|---|---|---|---|---|');
  for (const [i, s] of report.top.total.entries()) {
    out.push(
      `| ${i + 1} | ${ms(s.totalMs)} | ${percent(s.share)} | ${count(s.calls)} | ${ms(s.meanMs)} | ${ms(s.maxMs)} | ${s.cacheHitRatio === null ? '-' : percent(s.cacheHitRatio)} | \`${cell(oneLine(s.query, 80))}\` |`,
    );
  }
  if (report.window.kind === 'delta' && report.top.total.length > 0) out.push('', `\\${MAX_FOOTNOTE}`);
  for (const [i, a] of report.analyses.entries()) {
    out.push('', `#### ${i + 1}. \`${cell(oneLine(a.statement.query, 100))}\``, '');
    if (a.error !== undefined) out.push(`No plan: ${cell(a.error)}`);
    else out.push(...markdownFindings(a.findings));
  }
  return `${out.join('\n')}\n`;
}

export function renderQueryMarkdown(report: QueryReport): string {
  const out: string[] = ['<!-- pgwarden-analyze-query -->', `### pgwarden analyze: plan on ${report.database}`, ''];
  out.push('```sql', report.statement.trim(), '```', '', `Method: ${methodText(report.plan, report.serverVersion)}.`);
  if (report.plan.parameters.length > 0) out.push('', ...parameterLines(report.plan.parameters).map((l) => `- ${l.trim()}`));
  for (const line of report.partitions) out.push('', `Partitions: ${partitionText(line)}.`);
  out.push('', '<details><summary>Plan</summary>', '', '```', ...planTreeLines(report.tree, new Set(report.findings.map((f) => f.node.id)), { color: false }), '```', '', '</details>', '');
  out.push(...markdownFindings(report.findings));
  return `${out.join('\n')}\n`;
}
