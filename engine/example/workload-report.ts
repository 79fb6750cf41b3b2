/** Latency figures of one named query over a workload run; null when it never succeeded. */
export interface QueryStats {
  readonly name: string;
  readonly access: 'read' | 'write';
  /** Successful executions. */
  readonly count: number;
  readonly errors: number;
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** The first error's message, to say why without flooding the report. */
  readonly firstError?: string;
}

export interface WorkloadReport {
  readonly seed: number;
  readonly ratePerSecond: number;
  readonly concurrency: number;
  readonly writes: boolean;
  /** Wall time from the first request to the last answer. */
  readonly durationMs: number;
  readonly achievedRatePerSecond: number;
  readonly count: number;
  readonly errors: number;
  /** In the mix's order: reads first, then writes. */
  readonly queries: readonly QueryStats[];
}

/** What the workload records for one query while it runs. */
export interface QuerySamples {
  readonly name: string;
  readonly access: 'read' | 'write';
  readonly latenciesMs: number[];
  errors: number;
  firstError?: string;
}

/** Nearest-rank percentile of ascending values: the smallest value with at least p% at or below it. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? null;
}

export function summariseQuery(samples: QuerySamples): QueryStats {
  const sorted = [...samples.latenciesMs].sort((a, b) => a - b);
  return {
    name: samples.name,
    access: samples.access,
    count: sorted.length,
    errors: samples.errors,
    p50Ms: percentile(sorted, 50),
    p95Ms: percentile(sorted, 95),
    p99Ms: percentile(sorted, 99),
    maxMs: percentile(sorted, 100),
    ...(samples.firstError === undefined ? {} : { firstError: samples.firstError }),
  };
}

/**
 * An aligned table for terminals.
 *
 * @example
 *   query                  access  count  errors  p50 ms  p95 ms  p99 ms  max ms
 *   tenant_recent_events   read       31       0   41.20   88.02   93.11   93.11
 */
export function formatWorkloadReport(report: WorkloadReport): string {
  const header = ['query', 'access', 'count', 'errors', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'];
  const rows = report.queries.map((query) => [
    query.name,
    query.access,
    String(query.count),
    String(query.errors),
    milliseconds(query.p50Ms),
    milliseconds(query.p95Ms),
    milliseconds(query.p99Ms),
    milliseconds(query.maxMs),
  ]);
  rows.push(['total', '', String(report.count), String(report.errors), '', '', '', '']);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  // Names and access read left to right; numbers line up on their last digit.
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (column < 2 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  const errors = report.queries
    .filter((query) => query.firstError !== undefined)
    .map((query) => `  ${query.name}: ${query.firstError}`);
  return [
    line(header),
    ...rows.map(line),
    '',
    `${(report.durationMs / 1000).toFixed(1)} s at ${report.ratePerSecond}/s asked, ` +
      `${report.achievedRatePerSecond.toFixed(1)}/s done, concurrency ${report.concurrency}, seed ${report.seed}` +
      (report.writes ? '' : ', reads only'),
    ...(errors.length === 0 ? [] : ['first errors:', ...errors]),
    '',
  ].join('\n');
}

function milliseconds(value: number | null): string {
  return value === null ? '-' : value.toFixed(2);
}
