import { describe, expect, it } from 'vitest';
import { estimateTableWaste, exactTableWaste, tableRemedy } from '../../engine/vacuum-health/bloat.ts';
import { computeTableHealth, type Governance, type TableStats, type VacuumSettings } from '../../engine/vacuum-health/table-health.ts';
import { dueTasks } from '../../engine/maintain/due.ts';
import { maintenanceSql } from '../../engine/maintain/maintenance-task.ts';

const settings: VacuumSettings = {
  database: 'app',
  serverVersion: 160004,
  serverVersionText: '16.4',
  inRecovery: false,
  autovacuum: true,
  trackCounts: true,
  vacuumThreshold: 50,
  vacuumScaleFactor: 0.2,
  analyzeThreshold: 50,
  analyzeScaleFactor: 0.1,
  freezeMaxAge: 200_000_000,
  multixactFreezeMaxAge: 400_000_000,
  freezeTableAge: 150_000_000,
  multixactFreezeTableAge: 150_000_000,
  blockSize: 8192,
  pgstattupleSchema: null,
};

const analyzed = new Date('2026-01-01T00:00:00Z');

function stats(overrides: Partial<TableStats> = {}): TableStats {
  return {
    oid: 1,
    schema: 'public',
    name: 'jobs',
    kind: 'table',
    parentOid: null,
    live: 10_000,
    dead: 0,
    changed: 0,
    inserted: 0,
    lastVacuum: analyzed,
    lastAnalyze: analyzed,
    vacuums: 1,
    analyzes: 1,
    xidAge: 1_000,
    mxidAge: 0,
    reltuples: 10_000,
    heapBytes: 1_000_000,
    toastBytes: 0,
    indexBytes: 0,
    reloptions: [],
    toastReloptions: [],
    ...overrides,
  };
}

describe('the table health score', () => {
  it('is 1 for a table VACUUM and ANALYZE have nothing to do on', () => {
    const h = computeTableHealth(stats(), settings);
    expect(h.health).toBe(1);
    expect(h.limitedBy).toBeNull();
  });

  it('is the live-tuple share when dead tuples are the worst of it', () => {
    const h = computeTableHealth(stats({ live: 7_000, dead: 3_000 }), settings);
    expect(h.health).toBeCloseTo(0.7, 10);
    expect(h.deadRatio).toBeCloseTo(0.3, 10);
    expect(h.limitedBy).toBe('dead tuples');
  });

  it('loses at most a fifth for stale statistics: 0.8 when never analyzed, 0.9 with half the rows changed', () => {
    expect(computeTableHealth(stats({ lastAnalyze: null, analyzes: 0 }), settings).health).toBeCloseTo(0.8, 10);
    const half = computeTableHealth(stats({ changed: 5_000 }), settings);
    expect(half.health).toBeCloseTo(0.9, 10);
    expect(half.limitedBy).toBe('statistics');
    // An empty table has no statistics to be stale.
    expect(computeTableHealth(stats({ live: 0, lastAnalyze: null, analyzes: 0 }), settings).health).toBe(1);
  });

  it('falls from 1 at autovacuum_freeze_max_age to 0 at wraparound', () => {
    expect(computeTableHealth(stats({ xidAge: 200_000_000 }), settings).components.wraparound).toBe(1);
    const halfway = 200_000_000 + (2 ** 31 - 200_000_000) / 2;
    const h = computeTableHealth(stats({ xidAge: halfway }), settings);
    expect(h.health).toBeCloseTo(0.5, 10);
    expect(h.limitedBy).toBe('transaction ID age');
    expect(computeTableHealth(stats({ xidAge: 2 ** 31 }), settings).health).toBe(0);
  });

  it('takes a table\'s own autovacuum_freeze_max_age when it is lower than the server\'s, never when higher', () => {
    expect(computeTableHealth(stats({ reloptions: ['autovacuum_freeze_max_age=100000'] }), settings).freezeMaxAge).toBe(100_000);
    expect(computeTableHealth(stats({ reloptions: ['autovacuum_freeze_max_age=900000000'] }), settings).freezeMaxAge).toBe(200_000_000);
  });

  it('says when autovacuum would act on the table, with its own settings', () => {
    const h = computeTableHealth(stats({ reloptions: ['autovacuum_vacuum_scale_factor=0.01', 'autovacuum_enabled=false'] }), settings);
    expect(h.autovacuum).toEqual({ enabled: false, vacuumAt: 150, analyzeAt: 1_050 });
  });
});

describe('bloat figures', () => {
  it('estimate the pages live rows need from their width and compare them with the file', () => {
    // 10,000 rows of 100 bytes: 24 + 104 = 128 + 4 per row, 61 rows a page, 164 pages needed.
    const inputs = { live: 10_000, columns: 3, analyzed: 3, hasNulls: false, dataWidth: 100, fillfactor: 100 };
    expect(estimateTableWaste({ ...inputs, bytes: 164 * 8192 }, 8192)).toBe(0);
    expect(estimateTableWaste({ ...inputs, bytes: 400 * 8192 }, 8192)).toBe(236 * 8192);
    expect(estimateTableWaste({ ...inputs, bytes: 400 * 8192, analyzed: 2 }, 8192)).toBeNull();
  });

  it('count what fillfactor keeps free on purpose as no waste', () => {
    expect(exactTableWaste({ bytes: 1_000_000, deadBytes: 0, freeBytes: 100_000 }, 90)).toBe(0);
    expect(exactTableWaste({ bytes: 1_000_000, deadBytes: 200_000, freeBytes: 100_000 }, 90)).toBe(200_000);
  });

  it('suggest a rewrite only when a quarter and at least 1 MiB would come back', () => {
    expect(tableRemedy({ schema: 'public', name: 't', ratio: 0.5, wastedBytes: 2 * 1024 * 1024 })).toMatch(/^pg_repack \(online\), or VACUUM FULL in a maintenance window/);
    expect(tableRemedy({ schema: 'public', name: 't', ratio: 0.5, wastedBytes: 1000 })).toBeNull();
    expect(tableRemedy({ schema: 'public', name: 't', ratio: 0.1, wastedBytes: 50 * 1024 * 1024 })).toBeNull();
  });
});

describe('what maintain finds due', () => {
  const governed = (vacuum: Partial<Governance['vacuum']> = {}): Map<number, Governance> =>
    new Map([[1, { vacuum: { settings: [], source: { file: 'p.yaml', line: 2, col: 1 }, ...vacuum }, root: { schema: 'public', name: 'jobs' } }]]);
  const now = new Date('2026-01-02T12:00:00Z');
  const due = (s: TableStats, g = governed()): ReturnType<typeof dueTasks> => dueTasks([computeTableHealth(s, settings)], [s], g, settings, now);

  it('vacuums above max_dead_ratio, with the figures in the reason', () => {
    const [task] = due(stats({ live: 8_000, dead: 2_000 }), governed({ maxDeadRatio: 0.1 }));
    expect(task?.action).toBe('vacuum');
    expect(task?.reasons).toContain('20% dead tuples (2,000), above max_dead_ratio 10%');
    expect(task && maintenanceSql(task, { skipDatabaseStats: false })).toBe('VACUUM (ANALYZE) "public"."jobs"');
  });

  it('leaves a table within its thresholds alone, and tables no policy governs', () => {
    expect(due(stats({ live: 9_500, dead: 500 }), governed({ maxDeadRatio: 0.1, minHealth: 0.9 }))).toEqual([]);
    expect(due(stats({ live: 5_000, dead: 5_000 }), new Map())).toEqual([]);
  });

  it('only analyzes when only the statistics are stale', () => {
    const [task] = due(stats({ changed: 20_000 }), governed({ analyzeAfterRows: 10_000 }));
    expect(task?.action).toBe('analyze');
    expect(task?.reasons).toEqual(['health 0.80 below min_health 0.90 (statistics)', '20,000 rows changed since the last ANALYZE (analyze_after_rows 10,000)']);
    const [old] = due(stats({ changed: 10 }), governed({ analyzeAfterMs: 86_400_000 }));
    expect(old?.reasons).toEqual(['statistics 36 h old and 10 rows changed since (analyze_after 24 h)']);
  });

  it('freezes once a manual VACUUM would be aggressive, before autovacuum is forced to', () => {
    const [task] = due(stats({ xidAge: 150_000_000 }));
    expect(task?.action).toBe('freeze');
    expect(task?.reasons).toEqual(['transaction ID age 150,000,000 reached 150,000,000 (autovacuum forces a vacuum at 200,000,000)']);
    expect(task && maintenanceSql(task, { skipDatabaseStats: true })).toBe('VACUUM (FREEZE, ANALYZE, SKIP_DATABASE_STATS) "public"."jobs"');
    // A table whose freeze_max_age is lowered freezes at 95% of it.
    const [low] = due(stats({ xidAge: 96_000, reloptions: ['autovacuum_freeze_max_age=100000'] }));
    expect(low?.action).toBe('freeze');
  });

  it('orders the work worst health first', () => {
    const a = stats({ oid: 1, name: 'a', live: 9_000, dead: 1_500 });
    const b = stats({ oid: 2, name: 'b', live: 5_000, dead: 5_000 });
    const g = new Map([...governed(), [2, governed().get(1)!]]);
    const tasks = dueTasks([a, b].map((s) => computeTableHealth(s, settings)), [a, b], g, settings, now);
    expect(tasks.map((t) => t.name)).toEqual(['b', 'a']);
  });

  it('analyzes a partitioned table that never was analyzed, since autovacuum never does', () => {
    const parent = stats({ oid: 10, name: 'events', kind: 'partitioned', live: 0, lastAnalyze: null, analyzes: 0, xidAge: null });
    const part = stats({ oid: 11, name: 'events_p1', parentOid: 10 });
    const g = new Map([10, 11].map((oid) => [oid, governed().get(1)!]));
    const tasks = dueTasks([computeTableHealth(part, settings)], [parent, part], g, settings, now);
    expect(tasks.map((t) => [t.name, t.action, t.kind])).toEqual([['events', 'analyze', 'partitioned']]);
  });
});
