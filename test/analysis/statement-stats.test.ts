import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cumulativeWindow,
  readSnapshot,
  requireStatements,
  sharesOver,
  statementDelta,
  StatementsUnavailable,
  topStatements,
  type StatementEntry,
  type StatementSnapshot,
} from '../../engine/analysis/statement-stats.ts';
import type { WorkloadReport } from '../../engine/analysis/analysis-report.ts';
import { renderWorkloadMarkdown, renderWorkloadText } from '../../engine/analysis/render-analysis.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

function entry(key: string, calls: number, totalMs: number, extra: Partial<StatementEntry> = {}): StatementEntry {
  return {
    key,
    queryId: key,
    user: 'app',
    query: `SELECT ${key}`,
    calls,
    totalMs,
    rows: calls,
    sharedHit: 90 * calls,
    sharedRead: 10 * calls,
    tempWritten: 0,
    planMs: 0,
    maxMs: 100,
    minMs: 1,
    stddevMs: 1,
    ...extra,
  };
}

function snapshot(takenAt: string, entries: StatementEntry[], statsReset = '2026-01-01T00:00:00.000Z', dealloc?: number): StatementSnapshot {
  return { takenAt, statsReset, ...(dealloc === undefined ? {} : { dealloc }), entries };
}

describe('pg_stat_statements windows', () => {
  it('a delta counts only what happened between the two snapshots', () => {
    const before = snapshot('2026-01-01T10:00:00.000Z', [entry('a', 100, 1000), entry('b', 10, 10)]);
    const after = snapshot('2026-01-01T10:05:00.000Z', [entry('a', 150, 1600), entry('b', 10, 10), entry('c', 4, 40)]);
    const window = statementDelta(before, after);
    expect(window.kind).toBe('delta');
    expect(window.from).toBe('2026-01-01T10:00:00.000Z');
    const byKey = new Map(window.statements.map((s) => [s.key, s]));
    expect(byKey.get('a')).toMatchObject({ calls: 50, totalMs: 600, meanMs: 12 });
    // Idle in the window: not in it at all.
    expect(byKey.has('b')).toBe(false);
    // New in the window: all of it counts.
    expect(byKey.get('c')).toMatchObject({ calls: 4, totalMs: 40 });
    expect(window.totalMs).toBe(640);
    expect(byKey.get('a')!.share).toBeCloseTo(600 / 640);
    expect(byKey.get('a')!.cacheHitRatio).toBeCloseTo(0.9);
  });

  it('an entry evicted and re-created in the window counts from zero', () => {
    const before = snapshot('t1', [entry('a', 100, 1000)]);
    const after = snapshot('t2', [entry('a', 7, 70)]);
    const window = statementDelta(before, after);
    expect(window.statements[0]).toMatchObject({ calls: 7, totalMs: 70 });
    expect(window.evictions).toEqual({ evicted: 0, recreated: 1, ambiguous: false });
  });

  it('an entry whose stats_since moved (PostgreSQL 17+) counts from zero, even with more calls than before', () => {
    const before = snapshot('t1', [entry('a', 10, 100, { statsSince: '2026-01-01T09:00:00+00:00' })], undefined, 40);
    const after = snapshot('t2', [entry('a', 25, 250, { statsSince: '2026-01-01T10:02:00+00:00' })], undefined, 41);
    const window = statementDelta(before, after);
    expect(window.statements[0]).toMatchObject({ calls: 25, totalMs: 250 });
    expect(window.evictions).toEqual({ evicted: 1, recreated: 1, ambiguous: false });
  });

  it('evictions without stats_since (before PostgreSQL 17) are reported as ambiguous, not silently subtracted', () => {
    const before = snapshot('t1', [entry('a', 10, 100), entry('b', 5, 50)], undefined, 100);
    const after = snapshot('t2', [entry('a', 30, 300), entry('b', 6, 60)], undefined, 103);
    const window = statementDelta(before, after);
    expect(window.statements.map((s) => [s.key, s.calls])).toEqual([['a', 20], ['b', 1]]);
    expect(window.evictions).toEqual({ evicted: 3, recreated: 0, ambiguous: true });
  });

  it('the report notes evictions in the window, in text and Markdown', () => {
    const before = snapshot('2026-01-01T10:00:00.000Z', [entry('a', 10, 100)], undefined, 100);
    const window = statementDelta(before, snapshot('2026-01-01T10:00:30.000Z', [entry('a', 30, 300)], undefined, 103));
    const { statements, ...rest } = window;
    const report: WorkloadReport = {
      kind: 'workload',
      database: 'app',
      serverVersion: 160000,
      window: { ...rest, statementCount: statements.length },
      top: { total: statements, mean: statements, calls: statements },
      analyses: [],
      leftOut: { utility: 0, catalogOnly: 0, hidden: 0 },
    };
    const note =
      'note: pg_stat_statements evicted 3 entries during the window (pg_stat_statements.max reached); statements evicted and not run again are missing; ' +
      'before PostgreSQL 17 (no stats_since) a statement evicted and re-created with more calls than it had cannot be recognised, and is understated';
    expect(renderWorkloadText(report, { color: false }).split('\n')[2]).toBe(note);
    expect(renderWorkloadMarkdown(report)).toContain(`> [!NOTE]\n> ${note}\n`);
  });

  it('no eviction and no re-creation: the window carries no note', () => {
    const before = snapshot('t1', [entry('a', 10, 100)], undefined, 7);
    expect(statementDelta(before, snapshot('t2', [entry('a', 12, 120)], undefined, 7)).evictions).toBeUndefined();
  });

  it('shares are over the statements listed: with some left out, they still add up to the total', () => {
    const window = cumulativeWindow(snapshot('t', [entry('a', 1, 300), entry('b', 1, 100), entry('sleep', 1, 600)]));
    const listed = sharesOver(window.statements.filter((s) => s.key !== 'sleep'));
    expect(listed.map((s) => s.share)).toEqual([0.75, 0.25]);
  });

  it('a reset between the snapshots makes the later snapshot the window', () => {
    const before = snapshot('t1', [entry('a', 100, 1000)], '2026-01-01T00:00:00.000Z');
    const after = snapshot('t2', [entry('a', 120, 1100)], '2026-01-01T10:01:00.000Z');
    expect(statementDelta(before, after).statements[0]).toMatchObject({ calls: 120, totalMs: 1100 });
  });

  it('ranks by total time, mean time and calls, ties broken the same way every run', () => {
    const window = cumulativeWindow(snapshot('t', [entry('a', 1000, 500), entry('b', 2, 400), entry('c', 50, 500)]));
    expect(topStatements(window.statements, 'total', 2).map((s) => s.key)).toEqual(['a', 'c']);
    expect(topStatements(window.statements, 'mean', 1).map((s) => s.key)).toEqual(['b']);
    expect(topStatements(window.statements, 'calls', 3).map((s) => s.key)).toEqual(['a', 'c', 'b']);
  });

  it('pg_stat_statements missing: the message carries the two lines that enable it', () => {
    const missing = (): string => requireStatements({ pgssSchema: null, preload: '', database: 'app' });
    expect(missing).toThrow(StatementsUnavailable);
    try {
      missing();
    } catch (error) {
      const e = error as StatementsUnavailable;
      expect(e.message).toBe('pg_stat_statements is not available in database app: the library is not preloaded and the extension is not created');
      expect(e.hint).toContain("shared_preload_libraries = 'pg_stat_statements'");
      expect(e.hint).toContain('CREATE EXTENSION pg_stat_statements;');
    }
    expect(() => requireStatements({ pgssSchema: 'public', preload: 'auto_explain', database: 'app' })).toThrow(/not in shared_preload_libraries/);
    expect(requireStatements({ pgssSchema: 'ext', preload: 'auto_explain, "pg_stat_statements"', database: 'app' })).toBe('ext');
  });
});

describe('a snapshot read from the server', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await useTestDatabase();
    await db.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  });
  afterAll(async () => {
    await db.close();
  });

  it('carries the eviction counter (pg_stat_statements_info.dealloc) and, on PostgreSQL 16, no stats_since', async () => {
    const schema = (await db.pool.query<{ nspname: string }>(
      `SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'`,
    )).rows[0]!.nspname;
    const client = await db.pool.connect();
    try {
      await client.query('SELECT 1 AS snapshot_probe');
      const snap = await readSnapshot(client, schema, () => new Date());
      expect(snap.dealloc).toBeGreaterThanOrEqual(0);
      expect(snap.entries.length).toBeGreaterThan(0);
      expect(snap.entries.every((e) => e.statsSince === undefined)).toBe(true);
    } finally {
      client.release();
    }
  });
});

