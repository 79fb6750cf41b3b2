import { describe, expect, it } from 'vitest';
import {
  cumulativeWindow,
  requireStatements,
  statementDelta,
  StatementsUnavailable,
  topStatements,
  type StatementEntry,
  type StatementSnapshot,
} from '../../engine/analysis/statement-stats.ts';

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

function snapshot(takenAt: string, entries: StatementEntry[], statsReset = '2026-01-01T00:00:00.000Z'): StatementSnapshot {
  return { takenAt, statsReset, entries };
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
    expect(statementDelta(before, after).statements[0]).toMatchObject({ calls: 7, totalMs: 70 });
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
