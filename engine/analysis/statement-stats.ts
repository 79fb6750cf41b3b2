import type pg from 'pg';
import { statementsInfoExistsSql, statementsInfoSql, statementsSql } from '../catalog/analysis-queries.ts';
import { qualified } from '../sql/ident.ts';

/**
 * pg_stat_statements as numbers: one cumulative snapshot, the difference of two ("right now" rather
 * than "since the last reset"), and the top-N lists `analyze` prints. The arithmetic is pure, so the
 * live page can feed it snapshots taken at its own interval.
 */

export interface StatementCounters {
  readonly calls: number;
  readonly totalMs: number;
  readonly rows: number;
  readonly sharedHit: number;
  readonly sharedRead: number;
  readonly tempWritten: number;
  readonly planMs: number;
}

export interface StatementEntry extends StatementCounters {
  /** userid/queryid: the identity of an entry (a queryid is per user). */
  readonly key: string;
  readonly queryId: string;
  readonly user: string;
  /** Normalised text: constants replaced by $1, $2, ... */
  readonly query: string;
  /** Max and min are since the entry was created: a window cannot subtract them. */
  readonly maxMs: number;
  readonly minMs: number;
  readonly stddevMs: number;
  /** When the entry's counters started (pg_stat_statements 1.11, PostgreSQL 17+): a change means it was evicted or reset and re-created. */
  readonly statsSince?: string;
}

export interface StatementSnapshot {
  readonly takenAt: string;
  /** When pg_stat_statements was last reset (PostgreSQL 14+), if known. */
  readonly statsReset?: string;
  /** Entries evicted since the last reset to make room (pg_stat_statements_info.dealloc, PostgreSQL 14+), if known. */
  readonly dealloc?: number;
  readonly entries: readonly StatementEntry[];
}

/** A statement over a window: counters of the window, means derived from them. */
export interface StatementStats extends StatementEntry {
  readonly meanMs: number;
  /** Share of the total execution time of the statements listed with it (sharesOver()), 0..1. */
  readonly share: number;
  /** shared_blks_hit / (hit + read), or null when the statement read no blocks. */
  readonly cacheHitRatio: number | null;
  readonly rowsPerCall: number;
}

export interface StatementWindow {
  /** 'cumulative': since the last reset; 'delta': between two snapshots. */
  readonly kind: 'cumulative' | 'delta';
  readonly from?: string;
  readonly to: string;
  readonly statements: readonly StatementStats[];
  readonly totalMs: number;
  readonly calls: number;
  /** Set when entries were evicted or re-created between the two snapshots (delta windows only). */
  readonly evictions?: WindowEvictions;
  /** pg_stat_statements was reset between the two snapshots, at this time: every entry counts from the reset. */
  readonly resetAt?: string;
}

/**
 * pg_stat_statements evicts the least-used entries when it holds pg_stat_statements.max of them. An
 * evicted statement that runs again starts from zero, so subtracting its earlier counters is wrong.
 */
export interface WindowEvictions {
  /** Entries evicted between the snapshots (growth of pg_stat_statements_info.dealloc). */
  readonly evicted: number;
  /** Entries known to be re-created in the window (stats_since changed, or calls went down): counted from their re-creation. */
  readonly recreated: number;
  /**
   * true when entries were evicted and the server has no stats_since (before PostgreSQL 17): one
   * evicted and re-created with more calls than before cannot be told apart, and is understated.
   */
  readonly ambiguous: boolean;
}

/** pg_stat_statements is not there; the message carries the two lines that enable it. */
export class StatementsUnavailable extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

export const ENABLE_PG_STAT_STATEMENTS = [
  "shared_preload_libraries = 'pg_stat_statements'   # postgresql.conf, then restart the server",
  'CREATE EXTENSION pg_stat_statements;                -- in this database',
] as const;

/**
 * Where pg_stat_statements lives and whether it works. It needs both the library preloaded and the
 * extension created in the database; either missing gives the same two lines.
 */
export function requireStatements(facts: { pgssSchema: string | null; preload: string | null; database: string }): string {
  // Unknown (the role may not read the setting): reading pg_stat_statements will tell, with its own error.
  const preloaded = facts.preload === null || facts.preload.split(',').some((lib) => lib.trim().replace(/^"|"$/g, '') === 'pg_stat_statements');
  const lines = ENABLE_PG_STAT_STATEMENTS.join('\n    ');
  if (facts.pgssSchema === null) {
    const missing = preloaded ? 'the extension is not created' : 'the library is not preloaded and the extension is not created';
    throw new StatementsUnavailable(`pg_stat_statements is not available in database ${facts.database}: ${missing}`, `enable it with:\n    ${lines}`);
  }
  if (!preloaded) {
    throw new StatementsUnavailable(
      `pg_stat_statements is created in database ${facts.database} but its library is not in shared_preload_libraries`,
      `enable it with:\n    ${lines}`,
    );
  }
  return facts.pgssSchema;
}

interface StatementRow {
  queryid: string;
  userid: string;
  username: string | null;
  query: string;
  calls: string;
  total_ms: number;
  min_ms: number;
  max_ms: number;
  stddev_ms: number;
  plan_ms: number | null;
  rows: string;
  shared_hit: string;
  shared_read: string;
  temp_written: string;
  stats_since: string | null;
}

export async function readSnapshot(client: pg.ClientBase, pgssSchema: string, now: () => Date): Promise<StatementSnapshot> {
  let rows: StatementRow[];
  try {
    rows = (await client.query<StatementRow>(statementsSql(pgssSchema))).rows;
  } catch (error) {
    // The extension exists but the library was not loaded at server start.
    const message = (error as Error).message;
    if (/must be loaded via "?shared_preload_libraries"?/i.test(message)) {
      throw new StatementsUnavailable(
        'pg_stat_statements is created but its library is not loaded (shared_preload_libraries)',
        `enable it with:\n    ${ENABLE_PG_STAT_STATEMENTS.join('\n    ')}`,
      );
    }
    throw error;
  }
  const exists = await client.query<{ present: boolean }>(statementsInfoExistsSql(), [qualified(pgssSchema, 'pg_stat_statements_info')]);
  const info = exists.rows[0]?.present
    ? (await client.query<{ stats_reset: Date | null; dealloc: string }>(statementsInfoSql(pgssSchema))).rows[0]
    : undefined;
  const reset = info?.stats_reset;
  const merged = new Map<string, StatementEntry>();
  for (const row of rows) {
    const entry = entryOf(row);
    const before = merged.get(entry.key);
    merged.set(entry.key, before === undefined ? entry : mergeEntries(before, entry));
  }
  return {
    takenAt: now().toISOString(),
    ...(reset ? { statsReset: reset.toISOString() } : {}),
    ...(info === undefined ? {} : { dealloc: Number(info.dealloc) }),
    entries: [...merged.values()],
  };
}

function entryOf(row: StatementRow): StatementEntry {
  return {
    key: `${row.userid}/${row.queryid}`,
    queryId: row.queryid,
    user: row.username ?? row.userid,
    query: row.query,
    calls: Number(row.calls),
    totalMs: row.total_ms,
    rows: Number(row.rows),
    sharedHit: Number(row.shared_hit),
    sharedRead: Number(row.shared_read),
    tempWritten: Number(row.temp_written),
    planMs: row.plan_ms ?? 0,
    maxMs: row.max_ms,
    minMs: row.min_ms,
    stddevMs: row.stddev_ms,
    ...(row.stats_since === null ? {} : { statsSince: row.stats_since }),
  };
}

/** track = all keeps a queryid twice (top level and nested): one statement here. */
function mergeEntries(a: StatementEntry, b: StatementEntry): StatementEntry {
  return {
    ...a,
    calls: a.calls + b.calls,
    totalMs: a.totalMs + b.totalMs,
    rows: a.rows + b.rows,
    sharedHit: a.sharedHit + b.sharedHit,
    sharedRead: a.sharedRead + b.sharedRead,
    tempWritten: a.tempWritten + b.tempWritten,
    planMs: a.planMs + b.planMs,
    maxMs: Math.max(a.maxMs, b.maxMs),
    minMs: Math.min(a.minMs, b.minMs),
    // The later start: either row re-created means the statement's counters restarted.
    ...(a.statsSince !== undefined && b.statsSince !== undefined ? { statsSince: a.statsSince > b.statsSince ? a.statsSince : b.statsSince } : {}),
  };
}

/**
 * What happened between two snapshots. An entry absent from `before` is new in the window; one whose
 * stats_since moved (PostgreSQL 17+) or whose calls went down was evicted or reset and re-created in
 * between, so all of `after` counts. Entries without calls in the window are left out. Evictions
 * (dealloc grew) are reported with the window: before PostgreSQL 17 a statement evicted and re-created
 * with more calls than it had cannot be recognised.
 */
export function statementDelta(before: StatementSnapshot, after: StatementSnapshot): StatementWindow {
  const earlier = new Map(before.entries.map((e) => [e.key, e]));
  const reset = after.statsReset !== undefined && after.statsReset !== before.statsReset;
  let recreated = 0;
  const entries = after.entries.flatMap((entry): StatementEntry[] => {
    const old = reset ? undefined : earlier.get(entry.key);
    if (old !== undefined && restarted(old, entry)) recreated += 1;
    if (old === undefined || restarted(old, entry)) return entry.calls > 0 ? [entry] : [];
    const calls = entry.calls - old.calls;
    if (calls === 0) return [];
    return [
      {
        ...entry,
        calls,
        totalMs: Math.max(0, entry.totalMs - old.totalMs),
        rows: Math.max(0, entry.rows - old.rows),
        sharedHit: Math.max(0, entry.sharedHit - old.sharedHit),
        sharedRead: Math.max(0, entry.sharedRead - old.sharedRead),
        tempWritten: Math.max(0, entry.tempWritten - old.tempWritten),
        planMs: Math.max(0, entry.planMs - old.planMs),
      },
    ];
  });
  const evictions = windowEvictions(before, after, reset, recreated);
  return {
    ...windowOf('delta', entries, after.takenAt, before.takenAt),
    ...(evictions === undefined ? {} : { evictions }),
    ...(reset && after.statsReset !== undefined ? { resetAt: after.statsReset } : {}),
  };
}

function restarted(old: StatementEntry, entry: StatementEntry): boolean {
  if (old.statsSince !== undefined && entry.statsSince !== undefined && old.statsSince !== entry.statsSince) return true;
  return entry.calls < old.calls;
}

function windowEvictions(before: StatementSnapshot, after: StatementSnapshot, reset: boolean, recreated: number): WindowEvictions | undefined {
  // After a reset dealloc starts again from zero, and nothing was subtracted.
  const evicted = reset || before.dealloc === undefined || after.dealloc === undefined ? 0 : Math.max(0, after.dealloc - before.dealloc);
  if (evicted === 0 && recreated === 0) return undefined;
  const sinceKnown = after.entries.length > 0 && after.entries.every((e) => e.statsSince !== undefined);
  return { evicted, recreated, ambiguous: evicted > 0 && !sinceKnown };
}

/** Everything since the last reset, as one window. */
export function cumulativeWindow(snapshot: StatementSnapshot): StatementWindow {
  return windowOf('cumulative', snapshot.entries.filter((e) => e.calls > 0), snapshot.takenAt, snapshot.statsReset);
}

function windowOf(kind: StatementWindow['kind'], entries: readonly StatementEntry[], to: string, from?: string): StatementWindow {
  const statements = sharesOver(
    entries.map((e): StatementStats => {
      const blocks = e.sharedHit + e.sharedRead;
      return {
        ...e,
        meanMs: e.calls > 0 ? e.totalMs / e.calls : 0,
        share: 0,
        cacheHitRatio: blocks > 0 ? e.sharedHit / blocks : null,
        rowsPerCall: e.calls > 0 ? e.rows / e.calls : 0,
      };
    }),
  );
  const totalMs = statements.reduce((sum, e) => sum + e.totalMs, 0);
  const calls = statements.reduce((sum, e) => sum + e.calls, 0);
  return { kind, ...(from === undefined ? {} : { from }), to, statements, totalMs, calls };
}

/**
 * Each statement's share of the total time of exactly these statements: once some are left out of a
 * report (utility statements, texts the user may not see), the shares it prints must add up to its total.
 */
export function sharesOver(statements: readonly StatementStats[]): StatementStats[] {
  const totalMs = statements.reduce((sum, s) => sum + s.totalMs, 0);
  return statements.map((s) => ({ ...s, share: totalMs > 0 ? s.totalMs / totalMs : 0 }));
}

export type Ranking = 'total' | 'mean' | 'calls';

/** The top `n` by total time, mean time or calls; ties broken by total time, then queryid, so runs agree. */
export function topStatements(statements: readonly StatementStats[], by: Ranking, n: number): StatementStats[] {
  const value = (s: StatementStats): number => (by === 'total' ? s.totalMs : by === 'mean' ? s.meanMs : s.calls);
  return [...statements]
    .sort((a, b) => value(b) - value(a) || b.totalMs - a.totalMs || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, n);
}
