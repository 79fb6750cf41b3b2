import { paint } from '../render/color.ts';
import { formatBytes } from '../render/describe.ts';
import { healthReason } from './table-health.ts';
import type { VacuumHealthReport, VacuumHealthRow } from './vacuum-health-report.ts';

export interface HealthTextOptions {
  readonly color: boolean;
  /** Rows to print; the rest are counted. */
  readonly limit: number;
}


export function percent(share: number): string {
  return `${(share * 100).toFixed(share < 0.1 && share > 0 ? 1 : 0)}%`;
}

function compact(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  return String(Math.round(n));
}

function bloatCell(row: VacuumHealthRow): string {
  const b = row.bloat;
  if (b.method === null || b.wastedBytes === null || b.ratio === null) return `- (${b.note ?? 'not measured'})`;
  return `${formatBytes(b.wastedBytes)} ${percent(b.ratio)} (${b.method})`;
}

/** `pgwarden health` for a terminal: tables worst first, then what is below its floor and what bloat is worth a rewrite. */
export function renderHealthText(report: VacuumHealthReport, options: HealthTextOptions): string {
  const out: string[] = [];
  const { tables } = report;
  out.push(`Table health of ${report.database} (PostgreSQL ${report.serverVersion}): ${tables.length} table${tables.length === 1 ? '' : 's'}, worst first`, '');
  const shown = tables.slice(0, options.limit);
  const header = ['health', 'floor', 'table', 'dead', 'changed', 'xid age', 'size', 'bloat (method)'];
  const rows = shown.map((t) => [
    `${t.health.toFixed(2)}${t.belowFloor ? ' !' : '  '}`,
    t.floor === null ? '-' : t.floor.toFixed(2),
    `${t.schema}.${t.name}`,
    percent(t.deadRatio),
    percent(t.changedShare),
    compact(t.xidAge),
    formatBytes(t.heapBytes + t.toastBytes),
    bloatCell(t),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `  ${cells.map((c, i) => (i === 0 || i === 1 || i === 2 || i === cells.length - 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')}`.trimEnd();
  out.push(paint(options.color, 'bold', line(header)));
  for (const [i, r] of rows.entries()) {
    const t = shown[i];
    out.push(t?.belowFloor ? paint(options.color, 'red', line(r)) : line(r));
  }
  if (tables.length > shown.length) out.push(`  ... ${tables.length - shown.length} more (--all lists every table, --json gives them all)`);

  const below = tables.filter((t) => t.belowFloor);
  out.push('');
  if (below.length > 0) {
    out.push(paint(options.color, 'red', `Below their health floor (${below.length}): \`pgwarden maintain\` restores them (--dry-run shows how)`));
    for (const t of below.slice(0, options.limit)) out.push(`  ${t.schema}.${t.name}: ${t.health.toFixed(2)} < ${t.floor?.toFixed(2)}: ${healthReason(t)}`);
  } else if (tables.some((t) => t.floor !== null)) {
    out.push(paint(options.color, 'green', 'Every table a vacuum policy governs is above its health floor.'));
  } else {
    out.push('No vacuum policy governs these tables (add `vacuum:` to a table policy, or a `defaults:` document): no floors to check.');
  }

  const remedies = tables.flatMap((t) => [
    ...(t.bloat.remedy === null || t.bloat.wastedBytes === null || t.bloat.ratio === null
      ? []
      : [`  ${t.schema}.${t.name}: ${formatBytes(t.bloat.wastedBytes)} (${percent(t.bloat.ratio)}, ${t.bloat.method}): ${t.bloat.remedy}`]),
    ...t.indexes.flatMap((i) =>
      i.remedy === null || i.wastedBytes === null || i.ratio === null ? [] : [`  index ${t.schema}.${i.name}: ${formatBytes(i.wastedBytes)} (${percent(i.ratio)}, ${i.method}): ${i.remedy}`],
    ),
  ]);
  if (remedies.length > 0) {
    out.push('', 'Bloat worth a rewrite (VACUUM makes the space reusable but never gives it back):', ...remedies);
  }

  out.push('', methodsLine(report));
  out.push('Health: the lowest of live-tuple share, statistics freshness and transaction-ID wraparound margin (docs/vacuum.md).');
  return `${out.join('\n')}\n`;
}

function methodsLine(report: VacuumHealthReport): string {
  const byMethod = new Map<string, number>();
  for (const t of report.tables) {
    const m = t.bloat.method ?? 'none';
    byMethod.set(m, (byMethod.get(m) ?? 0) + 1);
  }
  const parts = [...byMethod].map(([m, n]) => `${m} ${n}`).join(', ');
  const exact = report.bloat;
  const why =
    exact.extensionSchema === null
      ? 'pgstattuple is not installed: CREATE EXTENSION pgstattuple for exact figures'
      : exact.note ?? (exact.budgetExhausted ? 'the time budget for exact measurement ran out (--bloat-budget)' : `exact figures from pgstattuple in ${Math.round(exact.ms)} ms`);
  return `Bloat by method: ${parts || 'no tables'} (${why}).`;
}
