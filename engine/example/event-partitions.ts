import { addIntervals, boundLiteral, intervalStart, partitionName } from '../diff/partition-interval.ts';
import { defaultNaming, defaultPartitionName } from '../policy/partitioning-policy.ts';
import { literal, qualified } from '../sql/ident.ts';
import { EXAMPLE_SCHEMA } from './example-schema.ts';

/** The generated history spans this long before its end (see data-steps.ts: 31536000 s). */
const HISTORY_MS = 365 * 86_400_000;

/**
 * `events` is range-partitioned by month on created_at, as a platform that outgrew one table migrates
 * it: one partition per UTC month the generated history covers, plus a DEFAULT partition, named as
 * `policies/events.yaml` names them (`events_2026_11`), so pgwarden manages them from the first plan
 * (premake ahead, retention behind). The loader creates them, before the bulk insert routes rows in.
 *
 * A partition retention detached earlier is a plain table of the same name: it is dropped first, like
 * the example's other tables.
 */
export function eventPartitionsSql(endAt: Date): string[] {
  const parent = qualified(EXAMPLE_SCHEMA, 'events');
  const statements: string[] = [];
  const last = intervalStart(endAt, 'month');
  for (let start = intervalStart(new Date(endAt.getTime() - HISTORY_MS), 'month'); start <= last; start = addIntervals(start, 'month', 1)) {
    const name = qualified(EXAMPLE_SCHEMA, partitionName(defaultNaming.month, 'events', start));
    const from = literal(boundLiteral(start, 'timestamptz'));
    const to = literal(boundLiteral(addIntervals(start, 'month', 1), 'timestamptz'));
    statements.push(`DROP TABLE IF EXISTS ${name}`, `CREATE TABLE ${name} PARTITION OF ${parent} FOR VALUES FROM (${from}) TO (${to})`);
  }
  const fallback = qualified(EXAMPLE_SCHEMA, defaultPartitionName('events'));
  statements.push(`DROP TABLE IF EXISTS ${fallback}`, `CREATE TABLE ${fallback} PARTITION OF ${parent} DEFAULT`);
  return statements;
}
