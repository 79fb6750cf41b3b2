import { count, percent } from '../analysis/plan-finding.ts';
import { ms } from '../analysis/render-analysis.ts';
import { oneLine } from '../analysis/sql-statement.ts';
import { paint as paintText, type Color } from '../render/color.ts';
import type { AdviceReport, IndexAdvice } from './advise.ts';
import type { CandidateKey } from './index-candidate.ts';
import type { RemovalAdvice } from './index-removal.ts';

/** `advise` for terminals and for pull-request comments. */

export interface AdviceStyle {
  readonly color: boolean;
  /** `--write` was given: the "Next" line says what follows the write instead. */
  readonly writing?: boolean;
}

function paint(style: AdviceStyle, color: Color, text: string): string {
  return paintText(style.color, color, text);
}

export function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  if (n >= 1024) return `${Math.round(n / 1024)} kB`;
  return `${n} B`;
}

export function keysText(keys: readonly CandidateKey[]): string {
  return keys.map((k) => `${k.column}${k.order === 'desc' ? ' DESC' : ''}`).join(', ');
}

function shape(a: { schema: string; table: string; keys: readonly CandidateKey[]; include: readonly string[]; where?: string }): string {
  return `${a.schema}.${a.table} (${keysText(a.keys)})${a.include.length > 0 ? ` INCLUDE (${a.include.join(', ')})` : ''}${a.where ? ` WHERE ${a.where}` : ''}`;
}

export function methodLine(report: AdviceReport): string {
  return report.method === 'hypopg'
    ? 'evidence: hypothetical indexes (hypopg): the planner\'s own cost of each statement\'s generic plan with and without them'
    : 'evidence: estimated from pg_stats with PostgreSQL\'s cost formulas (hypopg is not installed here; with it, the planner verifies every figure)';
}

function windowLine(report: AdviceReport): string {
  const w = report.window;
  const span =
    w.kind === 'delta' && w.from !== undefined
      ? `the last ${((Date.parse(w.to) - Date.parse(w.from)) / 1000).toFixed(0)} s`
      : w.from === undefined
        ? 'since pg_stat_statements was last reset'
        : `since ${w.from}`;
  return `workload: ${count(w.statementCount)} statements, ${count(w.calls)} calls, ${ms(w.totalMs)} of execution time, ${span}`;
}

function since(reset: string | null): string {
  return reset === null ? 'since its statistics were created (never reset)' : `since ${reset}`;
}

function writesLine(report: AdviceReport): string {
  const w = report.writeCounters;
  const base = 'writes: the rows of the INSERT/UPDATE statements in the window';
  return w.source === 'unused' ? `${base}; ${w.note}` : `${base}, at least the ${w.note} (COPY, functions and triggers included)`;
}

function indexLines(a: IndexAdvice, style: AdviceStyle): string[] {
  const out = [
    paint(style, 'green', `+ ${a.name} on ${shape(a)}`) +
      paint(style, 'dim', `  ~${bytes(a.estimatedBytes)}${a.budgetLeftBytes === undefined ? '' : `, ${bytes(Math.max(0, a.budgetLeftBytes))} of the budget left`}`),
    `    saves ~${ms(a.savedMs)} in the window${a.writeMs > 0 ? `, costs ~${ms(a.writeMs)} of writes` : ''}: net ~${ms(a.netMs)}${a.method === 'statistics' ? ' (estimate)' : ''}`,
  ];
  if (a.hotLostRows > 0) out.push(paint(style, 'yellow', `    ${count(a.hotLostRows)} updated rows would no longer be HOT updates (the index covers a column they set)`));
  for (const s of a.statements) {
    out.push(`    ${count(s.calls).padStart(7)} calls  ${ms(s.meanMs).padStart(8)} -> ~${ms(s.estimatedMeanMs).padEnd(8)} ${oneLine(s.query, 90)}`);
    out.push(paint(style, 'dim', `                    cost ${s.costBefore.toFixed(0)} -> ${s.costAfter.toFixed(0)}: ${s.accessBefore} -> ${s.accessAfter}`));
  }
  out.push(paint(style, 'cyan', `    ${a.sql}`));
  return out;
}

function removalLine(r: RemovalAdvice): string {
  const standby = r.standbyScans === undefined ? '' : `, ${count(r.standbyScans)} on the standby`;
  const where = r.declaredAt ? `; declared at ${r.declaredAt.file}:${r.declaredAt.line} (remove it there)` : '';
  return `  - ${r.kind.padEnd(9)} ${r.schema}.${r.index} on ${r.table}, ${bytes(r.bytes)}, ${count(r.scans)} scans${standby}: ${r.reason}${where}`;
}

export function renderAdviceText(report: AdviceReport, style: AdviceStyle): string {
  const out: string[] = [];
  out.push(paint(style, 'bold', `Index advice for database ${report.database}`));
  out.push(windowLine(report));
  out.push(paint(style, 'dim', methodLine(report)));
  out.push(paint(style, 'dim', writesLine(report)));
  out.push(paint(style, 'dim', `${report.candidates} candidate(s) from the workload, ${report.covered} already covered by an existing or declared index, ${report.evaluations} plan(s) costed in ${ms(report.adviseMs)}`));
  if (report.budget !== undefined) {
    out.push(paint(style, 'dim', `storage budget ${bytes(report.budget.bytes)} (the workload's tables: ${bytes(report.dataBytes)}); the advice takes ~${bytes(report.budget.usedBytes)}`));
  }
  out.push('');
  if (report.indexes.length === 0) out.push(paint(style, 'green', 'No new index advised: nothing would save time over the window net of its write cost.'));
  for (const a of report.indexes) out.push(...indexLines(a, style), '');
  if (report.notAdvised.length > 0) {
    out.push(paint(style, 'bold', 'Considered, not advised'));
    for (const n of report.notAdvised) {
      const why =
        n.reason === 'write-cost'
          ? `saves ~${ms(n.savedMs)} but costs ~${ms(n.writeMs)} of writes`
          : n.reason === 'budget'
            ? `saves ~${ms(n.savedMs)}, but its ~${bytes(n.estimatedBytes)} do not fit the budget left`
            : n.reason === 'not-measured-faster'
              ? `estimated to save ~${ms(n.savedMs)}, but --verify measured no gain (see Verified)`
              : `saves ~${ms(n.savedMs)}, beyond --max-indexes`;
      out.push(`  - ${shape(n)}: ${why}`);
    }
    out.push('');
  }
  out.push(paint(style, 'bold', 'Indexes that could go'));
  if (report.removals.length === 0) out.push('  none');
  else out.push(...report.removals.map(removalLine));
  if (!report.standbyChecked) out.push(paint(style, 'dim', '  (scan counters of the primary only: pass --standby-url to count reads served by a standby too)'));
  else out.push(paint(style, 'dim', `  (scan counters of the primary ${since(report.statsReset)} and of the standby ${since(report.standbyStatsReset ?? null)})`));
  if (report.verification !== undefined) {
    out.push('', paint(style, 'bold', 'Verified (each index built in a transaction that was rolled back; medians of 3 EXPLAIN ANALYZE runs, sampled values)'));
    for (const v of report.verification) {
      out.push(paint(style, v.kept ? 'green' : 'red', `  ${v.kept ? 'kept' : 'dropped'} ${v.index}: measured ${v.measuredSavedMs >= 0 ? 'saving' : 'loss'} ~${ms(Math.abs(v.measuredSavedMs))} over the window${v.note === undefined ? '' : ` (${v.note})`}`));
      const estimated = new Map(report.indexes.flatMap((a) => (a.name === v.index ? a.statements : [])).map((e) => [e.queryId, e]));
      for (const m of v.statements) {
        const e = estimated.get(m.queryId);
        const est = e === undefined ? '' : `, estimated ${ms(e.meanMs)} -> ~${ms(e.estimatedMeanMs)}`;
        out.push(`    ${m.verdict.padEnd(6)} ${ms(m.beforeMs).padStart(8)} -> ${ms(m.afterMs).padEnd(8)} (noise ${ms(m.noiseMs)}${est}) ${oneLine(m.query, 70)}`);
      }
    }
  }
  if (report.rewritten.length > 0) {
    out.push('', paint(style, 'bold', `Statements planned as rewritten (${report.rewritten.length}): the server refuses their normalised text as it is`));
    for (const s of report.rewritten) out.push(`  - ${oneLine(s.query, 70)}: ${s.repairs.join('; ')}`);
  }
  if (report.skipped.length > 0) {
    out.push('', paint(style, 'bold', `Statements left out (${report.skipped.length})`));
    for (const s of report.skipped) out.push(`  - ${oneLine(s.query, 70)} (${count(s.calls)} calls): ${s.message}`);
  }
  if (report.indexes.length > 0 && style.writing !== true) {
    out.push('', `Next: \`pgwarden advise --write\` adds ${report.indexes.length === 1 ? 'this index' : `these ${report.indexes.length} indexes`} to the policy files; review the diff, then \`pgwarden plan\` and \`pgwarden apply\`.`);
  }
  return `${out.join('\n')}\n`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function renderAdviceMarkdown(report: AdviceReport): string {
  const out: string[] = ['<!-- pgwarden-advise -->', `### pgwarden advise: ${report.indexes.length} index(es) for ${report.database}`, ''];
  out.push(`${windowLine(report)}.  `, `${methodLine(report)}.`, '');
  if (report.indexes.length > 0) {
    out.push('| Index | Table | Keys | Saves (net) | Size | Statements |', '|---|---|---|---|---|---|');
    for (const a of report.indexes) {
      const keys = `${keysText(a.keys)}${a.include.length > 0 ? ` INCLUDE ${a.include.join(', ')}` : ''}${a.where ? ` WHERE ${a.where}` : ''}`;
      out.push(`| \`${cell(a.name)}\` | ${cell(`${a.schema}.${a.table}`)} | \`${cell(keys)}\` | ${ms(a.netMs)} | ${bytes(a.estimatedBytes)} | ${a.statements.length} |`);
    }
    for (const a of report.indexes) {
      out.push('', `<details><summary><code>${a.name}</code>: evidence</summary>`, '');
      for (const s of a.statements) {
        out.push(`- \`${cell(oneLine(s.query, 100))}\` — ${count(s.calls)} calls, ${ms(s.meanMs)} → ~${ms(s.estimatedMeanMs)} (cost ${s.costBefore.toFixed(0)} → ${s.costAfter.toFixed(0)}, ${percent(1 - s.costAfter / s.costBefore)} less)`);
      }
      out.push('', '```sql', `${a.sql};`, '```', '', '</details>');
    }
  } else {
    out.push('No new index advised.');
  }
  if (report.removals.length > 0) {
    out.push('', '#### Indexes that could go', '');
    for (const r of report.removals) out.push(`- **${r.kind}** \`${cell(`${r.schema}.${r.index}`)}\` (${bytes(r.bytes)}): ${cell(r.reason)}`);
  }
  return `${out.join('\n')}\n`;
}
