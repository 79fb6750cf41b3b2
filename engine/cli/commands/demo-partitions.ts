import type pg from 'pg';
import { runWorkload } from '../../example/workload.ts';
import type { WorkloadReport } from '../../example/workload-report.ts';
import { apply, APPLY_DEFAULTS } from '../../apply/apply.ts';
import type { ChangeKind } from '../../diff/change.ts';
import type { DesiredState } from '../../policy/desired.ts';
import type { Io } from '../context.ts';
import { progressPrinter } from '../progress-printer.ts';
import { formatPartitionPruning, partitionPruning } from '../../analysis/partition-pruning.ts';
import { catalogSession } from '../../catalog/introspect.ts';
import { leafPartitions } from '../../catalog/partition-queries.ts';
import { addIntervals, intervalStart } from '../../diff/partition-interval.ts';

/**
 * The demo's partitioning step: the partitions pgwarden keeps on `events`, and one month's aggregate
 * explained, with the partitions it scanned counted from EXPLAIN (ANALYZE, FORMAT JSON).
 */
export async function partitionDemo(client: pg.ClientBase, now: Date): Promise<string> {
  const partitions = await leafPartitions(catalogSession(client), { schema: 'public', name: 'events' });
  const names = partitions.map((p) => p.name);
  const monthly = names.filter((n) => /_\d{4}_\d{2}$/u.test(n)).sort();
  const lastMonth = addIntervals(intervalStart(now, 'month'), 'month', -1);
  const from = lastMonth.toISOString().slice(0, 10);
  const to = intervalStart(now, 'month').toISOString().slice(0, 10);
  const sql = `SELECT kind, count(*) FROM public.events WHERE created_at >= '${from}' AND created_at < '${to}' GROUP BY kind`;
  // Bounds as bind values: the text shown above is what a user would type.
  const explained = await client.query<{ 'QUERY PLAN': unknown }>(
    `EXPLAIN (ANALYZE, FORMAT JSON) SELECT kind, count(*) FROM public.events WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz GROUP BY kind`,
    [`${from} 00:00:00+00`, `${to} 00:00:00+00`],
  );
  const plan = explained.rows[0]?.['QUERY PLAN'];
  const pruning = partitionPruning(plan, partitions);
  const ms = Array.isArray(plan) && typeof plan[0] === 'object' && plan[0] !== null ? Number((plan[0] as Record<string, unknown>)['Execution Time']) : Number.NaN;
  return [
    `  public.events: ${names.length} partitions, ${monthly[0] ?? '?'} .. ${monthly.at(-1) ?? '?'} (UTC months) + ${names.length - monthly.length} default`,
    `  ${sql}`,
    `  -> ${formatPartitionPruning(pruning)}${Number.isFinite(ms) ? `, ${ms.toFixed(1)} ms` : ''}`,
    '',
  ].join('\n');
}

export function isConversion(kind: ChangeKind): boolean {
  return kind === 'convert-table' || kind === 'drop-unpartitioned';
}

/**
 * The conversion of the plain `events` into the partitioned table its policy declares, online, with the
 * API's workload (reads and writes, events inserted among them) running the whole time; then the old
 * table is dropped, as `apply --allow-drop` would. Nothing to do when an earlier run converted it.
 */
export async function convertDemo(io: Io, options: { readonly url: string; readonly pool: pg.Pool; readonly desired: DesiredState }): Promise<void> {
  let converting = true;
  const rounds: WorkloadReport[] = [];
  const traffic = (async () => {
    while (converting) rounds.push(await runWorkload(options.pool, { durationMs: 1000, ratePerSecond: 20, concurrency: 4 }));
  })();
  try {
    const result = await apply({
      databaseUrl: options.url,
      desired: options.desired,
      ...APPLY_DEFAULTS,
      onEvent: progressPrinter(io),
      ...(io.signal ? { signal: io.signal } : {}),
      select: (c) => c.change.kind === 'convert-table',
    });
    if (result.plan.changes.length === 0) io.stdout('  public.events is partitioned already (an earlier run converted it)\n');
  } finally {
    converting = false;
    await traffic;
  }
  const statements = rounds.reduce((n, r) => n + r.count, 0);
  const errors = rounds.reduce((n, r) => n + r.errors, 0);
  const writes = rounds.flatMap((r) => r.queries.filter((q) => q.access === 'write'));
  const slowest = Math.max(0, ...writes.map((q) => q.maxMs ?? 0));
  io.stdout(`  the workload meanwhile: ${statements.toLocaleString('en-US')} statements, ${errors} failed; slowest write ${slowest.toFixed(0)} ms\n`);
  const dropped = await apply({ databaseUrl: options.url, desired: options.desired, ...APPLY_DEFAULTS, allowDrop: true, select: (c) => c.change.kind === 'drop-unpartitioned' });
  if (dropped.applied > 0) io.stdout('  dropped public.events_unpartitioned, the table before the conversion (apply --allow-drop)\n');
}
