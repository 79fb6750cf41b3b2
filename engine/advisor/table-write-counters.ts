import type pg from 'pg';
import { tableKey } from '../analysis/table-statistics.ts';
import { TABLE_WRITE_COUNTERS_SQL } from '../catalog/analysis-queries.ts';

/**
 * The table statistics' own count of the rows written (pg_stat_get_tuples_*), as a floor under what the
 * workload's INSERT and UPDATE statements say: COPY, writes made by functions and triggers and entries
 * pg_stat_statements evicted are only seen here. Counted over the same window as the reads.
 */

export interface WriteCounts {
  readonly inserted: number;
  readonly updated: number;
  readonly hotUpdated: number;
  readonly deleted: number;
}

export interface WriteCounterSnapshot {
  readonly takenAt: string;
  /** `schema.table` -> counts since the statistics were reset. */
  readonly tables: ReadonlyMap<string, WriteCounts>;
}

/**
 * How the counters were placed in the workload's window:
 * - `delta`: the difference of two reads taken with the two pg_stat_statements snapshots;
 * - `since-reset`: the counters since the database's statistics were reset, which began inside the window;
 * - `prorated`: those counters began before the window, scaled to its length (an even rate assumed);
 * - `unused`: they cannot be placed in the window (never reset, or the window was measured elsewhere).
 */
export interface WriteCounterWindow {
  readonly source: 'delta' | 'since-reset' | 'prorated' | 'unused';
  readonly note: string;
  readonly tables: ReadonlyMap<string, WriteCounts>;
}

interface CounterRow {
  schema: string;
  name: string;
  inserted: string;
  updated: string;
  hot_updated: string;
  deleted: string;
}

export async function readWriteCounters(client: pg.ClientBase, now: () => Date): Promise<WriteCounterSnapshot> {
  const rows = (await client.query<CounterRow>(TABLE_WRITE_COUNTERS_SQL)).rows;
  return {
    takenAt: now().toISOString(),
    tables: new Map(
      rows.map((r): [string, WriteCounts] => [
        tableKey(r.schema, r.name),
        { inserted: Number(r.inserted), updated: Number(r.updated), hotUpdated: Number(r.hot_updated), deleted: Number(r.deleted) },
      ]),
    ),
  };
}

/** What was written between two reads; a table whose counters went down was reset in between: all of `after` counts. */
export function writeCounterDelta(before: WriteCounterSnapshot, after: WriteCounterSnapshot): WriteCounterWindow {
  const tables = new Map<string, WriteCounts>();
  for (const [key, now] of after.tables) {
    const old = before.tables.get(key);
    const reset = old !== undefined && (now.inserted < old.inserted || now.updated < old.updated || now.deleted < old.deleted);
    tables.set(key, old === undefined || reset ? now : subtract(now, old));
  }
  return { source: 'delta', note: 'table counters over the same window', tables };
}

/**
 * The counters since the database's statistics were reset, placed in a cumulative workload window that
 * starts at `windowFrom` (pg_stat_statements' own reset). Counters that began before the window are
 * scaled down to its length; counters never reset have no known start and are left out rather than
 * charging a bulk load of long ago to today's workload.
 */
export function writeCountersSinceReset(snapshot: WriteCounterSnapshot, countersFrom: string | null, windowFrom: string | undefined): WriteCounterWindow {
  if (countersFrom === null) {
    return unusedWriteCounters("the database's statistics were never reset, so their window is unknown (--since measures both over one window)");
  }
  const end = Date.parse(snapshot.takenAt);
  const counters = end - Date.parse(countersFrom);
  const window = windowFrom === undefined ? counters : end - Date.parse(windowFrom);
  if (!(counters > window) || window <= 0) {
    return { source: 'since-reset', note: `table counters since ${countersFrom}`, tables: snapshot.tables };
  }
  const share = window / counters;
  const tables = new Map([...snapshot.tables].map(([key, c]): [string, WriteCounts] => [key, scale(c, share)]));
  return { source: 'prorated', note: `table counters since ${countersFrom}, scaled to the workload's window (${(share * 100).toFixed(1)}% of their span)`, tables };
}

export function unusedWriteCounters(reason: string): WriteCounterWindow {
  return { source: 'unused', note: `table counters not used: ${reason}`, tables: new Map() };
}

function subtract(a: WriteCounts, b: WriteCounts): WriteCounts {
  return {
    inserted: a.inserted - b.inserted,
    updated: Math.max(0, a.updated - b.updated),
    hotUpdated: Math.max(0, a.hotUpdated - b.hotUpdated),
    deleted: Math.max(0, a.deleted - b.deleted),
  };
}

function scale(c: WriteCounts, share: number): WriteCounts {
  return { inserted: c.inserted * share, updated: c.updated * share, hotUpdated: c.hotUpdated * share, deleted: c.deleted * share };
}
