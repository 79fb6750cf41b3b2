import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthCollector } from '../../engine/live-health/health-collector.ts';
import type { Figures } from '../../engine/live-health/health-snapshot.ts';
import { SeriesStore } from '../../engine/live-health/series-store.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let dir: string;
const T = Date.parse('2026-12-07T08:00:00Z');
const MIN = 60_000;

beforeAll(async () => {
  db = await useTestDatabase();
  dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-series-'));
});

afterAll(async () => {
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the charts' day of history", () => {
  it('survives a restart of the collector: the next one charts the points the first kept, a point a minute', async () => {
    const file = path.join(dir, 'series', 'db.jsonl');
    let clock = T;
    const first = createHealthCollector({ primaryUrl: db.url, slowIntervalMs: 3_600_000, seriesFile: file, now: () => new Date(clock) });
    // Polls at 08:00, 08:00:05 (not kept: within the minute), 08:02 and 08:04.
    for (const at of [0, 5000, 2 * MIN, 4 * MIN]) {
      clock = T + at;
      expect(await first.pollOnce()).not.toBeNull();
    }
    await first.stop();
    clock = T + 5 * MIN;
    const second = createHealthCollector({ primaryUrl: db.url, slowIntervalMs: 3_600_000, seriesFile: file, now: () => new Date(clock) });
    try {
      expect(await second.pollOnce()).not.toBeNull();
      const points = second.series(24 * 60 * MIN);
      expect(points.map((p) => (p.t - T) / MIN)).toEqual([0, 2, 4, 5]);
      expect(typeof points[0]?.f.connections).toBe('number');
      // A range shorter than the restart's gap leaves the older points out.
      expect(second.series(2.5 * MIN).map((p) => (p.t - T) / MIN)).toEqual([4, 5]);
    } finally {
      await second.stop();
    }
  });

  it('stays bounded over three days, and skips a line cut short by a crash', async () => {
    const file = path.join(dir, 'bounded.jsonl');
    const store = new SeriesStore(file);
    const f = { connections: 1 } as unknown as Figures;
    for (let t = T; t <= T + 3 * 24 * 60 * MIN; t += MIN) store.add({ t, f });
    expect(store.size()).toBeLessThanOrEqual(24 * 60 + 1);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    expect(lines.length).toBeLessThanOrEqual(2 * 24 * 60);
    await import('node:fs/promises').then((fs) => fs.appendFile(file, '{"t": 17'));
    const again = new SeriesStore(file);
    expect(again.size()).toBeGreaterThan(24 * 60 - 5);
    expect(again.since(T + 3 * 24 * 60 * MIN - 10 * MIN).length).toBe(11);
  });
});
