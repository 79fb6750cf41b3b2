import type pg from 'pg';
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
