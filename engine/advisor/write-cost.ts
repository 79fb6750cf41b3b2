import { tableKey } from '../analysis/table-statistics.ts';
import type { IndexCandidate } from './index-candidate.ts';
import type { WriteCounts } from './table-write-counters.ts';
import type { Workload } from './workload.ts';

/**
 * What an index costs the writes: every inserted row and every non-HOT update adds an entry to it,
 * and an index on a column an UPDATE sets makes that update non-HOT, so it then touches every index
 * of the table. Counted over the same window as the reads (the workload's INSERT/UPDATE statements
 * and the rows pg_stat_statements says they wrote), priced per index entry from what the table's own
 * inserts cost (their time split over the heap and the indexes they maintain). The table statistics'
 * own counters over the window are a floor under those counts: rows written by COPY, by functions and
 * triggers, or by statements pg_stat_statements evicted are in them and in no INSERT/UPDATE entry.
 */

export interface UpdateWrites {
  readonly columns: readonly string[];
  readonly rows: number;
}

export interface TableWrites {
  readonly insertedRows: number;
  readonly updates: readonly UpdateWrites[];
  readonly deletedRows: number;
  /** The table statistics over the window (table-write-counters.ts), when they could be placed in it. */
  readonly counted?: WriteCounts;
  /** Time to add one entry to one index. */
  readonly entryMs: number;
  readonly entryMsMeasured: boolean;
  /** Indexes the table has now (including constraint indexes). */
  readonly indexCount: number;
  /** Columns some existing index covers: updates setting them are non-HOT already. */
  readonly indexedColumns: ReadonlySet<string>;
}

/** Fallback price of one index entry, in ms, when the window holds no insert into the table to measure. */
export const DEFAULT_ENTRY_MS = 0.01;

export function tableWrites(
  workload: Workload,
  indexedColumns: ReadonlyMap<string, ReadonlySet<string>>,
  counted: ReadonlyMap<string, WriteCounts> = new Map(),
): Map<string, TableWrites> {
  const out = new Map<string, { inserted: number; updates: UpdateWrites[]; deleted: number; insertMs: number; insertRows: number }>();
  for (const s of workload.statements) {
    const rows = s.calls * s.rowsPerCall;
    for (const access of s.usage.accesses) {
      if (access.write === undefined) continue;
      const key = tableKey(access.table.schema, access.table.name);
      const entry = out.get(key) ?? { inserted: 0, updates: [], deleted: 0, insertMs: 0, insertRows: 0 };
      if (access.write === 'insert') {
        entry.inserted += rows;
        entry.insertMs += s.totalMs;
        entry.insertRows += rows;
      } else if (access.write === 'update') {
        entry.updates.push({ columns: access.updatedColumns, rows });
      } else if (access.write === 'delete') {
        entry.deleted += rows;
      } else {
        // MERGE: any of the three; priced as inserts, the dearest for an index.
        entry.inserted += rows;
      }
      out.set(key, entry);
    }
  }
  const result = new Map<string, TableWrites>();
  for (const [key, table] of workload.tables) {
    const w = out.get(key) ?? { inserted: 0, updates: [], deleted: 0, insertMs: 0, insertRows: 0 };
    const indexCount = table.indexCount;
    const measured = w.insertRows > 0 && w.insertMs > 0;
    const counts = counted.get(key);
    // Bounded: one bulk load or one slow insert must not price an index entry absurdly.
    const entryMs = measured ? Math.min(0.5, Math.max(0.002, w.insertMs / w.insertRows / (indexCount + 1))) : DEFAULT_ENTRY_MS;
    result.set(key, {
      insertedRows: w.inserted,
      updates: w.updates,
      deletedRows: w.deleted,
      ...(counts === undefined ? {} : { counted: counts }),
      entryMs,
      entryMsMeasured: measured,
      indexCount,
      indexedColumns: indexedColumns.get(key) ?? new Set(),
    });
  }
  return result;
}

export interface WriteCost {
  readonly ms: number;
  /** Updates that would lose HOT because the index covers a column they set. */
  readonly hotLostRows: number;
  readonly entries: number;
}

export function writeCost(candidate: IndexCandidate, writes: TableWrites | undefined): WriteCost {
  if (writes === undefined) return { ms: 0, hotLostRows: 0, entries: 0 };
  const covered = new Set([...candidate.keys.map((k) => k.column), ...candidate.include, ...predicateColumns(candidate)]);
  let nonHotRows = 0;
  let hotLostRows = 0;
  for (const update of writes.updates) {
    const alreadyNonHot = update.columns.some((c) => writes.indexedColumns.has(c));
    if (alreadyNonHot) nonHotRows += update.rows;
    else if (update.columns.some((c) => covered.has(c))) hotLostRows += update.rows;
  }
  // The counters cannot say which columns an update set, only whether it was HOT: a non-HOT update
  // adds an entry to every index, this one included. (An update the statements call HOT-eligible may
  // have been non-HOT for want of room on its page, and then counts in both: a small overestimate.)
  const counted = writes.counted;
  const inserted = Math.max(writes.insertedRows, counted?.inserted ?? 0);
  const nonHot = Math.max(nonHotRows, counted === undefined ? 0 : counted.updated - counted.hotUpdated);
  // An update that stops being HOT: a new heap tuple version and an entry in every index, this one included.
  const extra = hotLostRows * writes.indexCount;
  const entries = inserted + nonHot + hotLostRows;
  return { ms: (entries + extra) * writes.entryMs, hotLostRows, entries };
}

/** Columns a partial index's predicate names (its text is built from bare or quoted column names). */
function predicateColumns(candidate: IndexCandidate): string[] {
  if (candidate.where === undefined) return [];
  const names = candidate.where.match(/"(?:[^"]|"")+"|[a-z_][a-z0-9_]*/g) ?? [];
  return names.map((n) => (n.startsWith('"') ? n.slice(1, -1).replaceAll('""', '"') : n));
}
