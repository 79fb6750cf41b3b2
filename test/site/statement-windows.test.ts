import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthCollector, type HealthCollector } from '../../engine/live-health/health-collector.ts';
import { StatementHistory } from '../../engine/live-health/statement-history.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let collector: HealthCollector;
const T = Date.parse('2026-12-07T08:00:00Z');
let clock = T;
const MIN = 60_000;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await db.pool.query('CREATE TABLE w_x (id int); CREATE TABLE w_y (id int); CREATE TABLE w_z (id int)');
  collector = createHealthCollector({ primaryUrl: db.url, slowIntervalMs: 3_600_000, now: () => new Date(clock) });
});

afterAll(async () => {
  await collector?.stop();
  await db?.close();
});

const callsOf = (rows: readonly { query: string | null; calls: number }[], table: string): number => rows.find((r) => r.query?.includes(table))?.calls ?? 0;

describe('top statements over 5 s, 1 h and 24 h', () => {
  it('subtracts the poll nearest each window back: the hour leaves out what ran before it, the day keeps what serve saw', async () => {
    // Polls at (made-up) 08:00, 08:30, 09:30 and 09:31, with a different statement run between each.
    expect(await collector.pollOnce()).not.toBeNull();
    for (let i = 0; i < 5; i++) await db.pool.query('SELECT count(*) FROM w_x');
    clock = T + 30 * MIN;
    expect(await collector.pollOnce()).not.toBeNull();
    for (let i = 0; i < 3; i++) await db.pool.query('SELECT count(*) FROM w_y');
    clock = T + 90 * MIN;
    expect(await collector.pollOnce()).not.toBeNull();
    for (let i = 0; i < 2; i++) await db.pool.query('SELECT count(*) FROM w_z');
    clock = T + 91 * MIN;
    expect(await collector.pollOnce()).not.toBeNull();

    const last = collector.statements('5s');
    expect([callsOf(last.statements, 'w_x'), callsOf(last.statements, 'w_y'), callsOf(last.statements, 'w_z')]).toEqual([0, 0, 2]);
    expect(last.coveredMs).toBe(MIN);

    const hour = collector.statements('1h');
    expect([callsOf(hour.statements, 'w_x'), callsOf(hour.statements, 'w_y'), callsOf(hour.statements, 'w_z')]).toEqual([0, 3, 2]);
    expect(hour.from).toBe(new Date(T + 30 * MIN).toISOString());

    // Serve has seen 91 minutes of the day: the window says so rather than pretending to a day.
    const day = collector.statements('24h');
    expect([callsOf(day.statements, 'w_x'), callsOf(day.statements, 'w_y'), callsOf(day.statements, 'w_z')]).toEqual([5, 3, 2]);
    expect(day.coveredMs).toBe(91 * MIN);
    // pgwarden's own polls are not the workload's.
    expect(day.statements.some((s) => s.query?.includes('pgwarden:health'))).toBe(false);
    expect(day.statements.map((s) => s.totalMs)).toEqual([...day.statements.map((s) => s.totalMs)].sort((a, b) => b - a));
    const share = day.statements.reduce((n, s) => n + s.timeShare, 0);
    expect(share).toBeGreaterThan(0.99);
    expect(share).toBeLessThan(1.01);

    // The drill-down: a statement's calls and mean latency between checkpoints, oldest first.
    const x = day.statements.find((st) => st.query?.includes('w_x'))!;
    const history = collector.statementHistory(x.id);
    expect(history?.query).toContain('w_x');
    expect(history?.points.map((p) => [p.from, p.calls])).toEqual([[new Date(T).toISOString(), 5]]);
    expect(history?.points[0]?.meanMs).toBeCloseTo(x.meanMs, 6);
    expect(collector.statementHistory('1:1')).toBeNull();
  });

  it('keeps a bounded number of checkpoints over two days of 5-second polls, and still covers a day', () => {
    const history = new StatementHistory();
    const start = T;
    for (let t = start; t <= start + 48 * 60 * MIN; t += 5000) history.record(t, null, [{ key: 'k', calls: (t - start) / 5000 + 1, totalMs: (t - start) / 5000 + 1, sumSqMs: 0, rows: 0, blksHit: 0, blksRead: 0 }]);
    expect(history.size()).toBeLessThanOrEqual(160);
    const day = history.window('24h', new Map(), new Set());
    expect(day.coveredMs).toBeGreaterThanOrEqual(24 * 60 * MIN);
    expect(day.coveredMs).toBeLessThanOrEqual(24 * 60 * MIN + 15 * MIN);
    const hour = history.window('1h', new Map(), new Set());
    expect(hour.coveredMs).toBeGreaterThanOrEqual(60 * MIN);
    expect(hour.coveredMs).toBeLessThanOrEqual(61 * MIN);
  });
});
