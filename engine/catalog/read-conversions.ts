import type { DesiredState } from '../policy/desired.ts';
import { conversionNames } from '../diff/convert-change.ts';
import { timeKeyType } from '../diff/partition-interval.ts';
import {
  existingRelations,
  keptTables,
  readConversionFacts,
  readKeyRange,
  withViewDefinitions,
  type ConversionFacts,
  type KeptTable,
  type KeyRange,
} from './conversion-queries.ts';
import { serverVersionOf, type CatalogSession } from './introspect.ts';

/** A plain table a `partitioning:` policy names, with what converting it needs read. */
export interface PlainTableFacts {
  readonly facts: ConversionFacts;
  readonly range: KeyRange;
  /** Of the names the conversion would create, those a relation already holds. */
  readonly taken: readonly string[];
}

export interface ActualConversions {
  readonly plain: readonly PlainTableFacts[];
  /** Old tables finished conversions kept (`<table>_unpartitioned`). */
  readonly kept: readonly KeptTable[];
  readonly serverVersion: number;
}

export const NO_CONVERSIONS: ActualConversions = { plain: [], kept: [], serverVersion: 0 };

/**
 * The conversion part of the actual state. One round trip for the structure of every table a
 * `partitioning:` policy names (which says which are still plain) and pgwarden's conversion record;
 * then, for each plain one only, its views' definitions, one scan for its key range and row count, a
 * timed sample copy, and one look-up of the names it would create. A conversion is rare: these read
 * rows, which no catalog query can.
 */
export async function readConversions(session: CatalogSession, desired: DesiredState, now: Date): Promise<ActualConversions> {
  const declared = desired.tables.filter((t) => t.partitioning !== undefined);
  if (declared.length === 0) return NO_CONVERSIONS;
  const facts = await readConversionFacts(session, declared.map((t) => ({ schema: t.schema, name: t.name })));
  const finished = facts.filter((f) => f.relkind === 'p' && f.record?.phase === 'swapped');
  const kept = finished.length > 0 ? await keptTables(session, finished) : [];
  const plain: PlainTableFacts[] = [];
  for (const found of facts.filter((x) => x.relkind === 'r')) {
    const table = declared.find((t) => t.schema === found.schema && t.name === found.name)!;
    const policy = table.partitioning!;
    const column = found.columns.find((c) => c.name === policy.column);
    // A missing or non-time column is the partition diff's error, reported once.
    if (column === undefined || timeKeyType(column.type) === null) continue;
    const f = await withViewDefinitions(session, found);
    const pk = f.keys.find((k) => k.type === 'p')?.columns ?? [];
    const range = await readKeyRange(session, f, { column: column.name, notNull: column.notNull }, pk);
    const taken = await existingRelations(session, f.schema, conversionNames(table, policy, range, now));
    plain.push({ facts: f, range, taken });
  }
  return { plain, kept, serverVersion: plain.length > 0 ? await serverVersionOf(session) : 0 };
}
