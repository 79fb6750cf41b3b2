import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advise, type AdviceReport } from '../../engine/advisor/advise.ts';
import { writeCountersSinceReset } from '../../engine/advisor/table-write-counters.ts';
import { quietStatements, readServerFacts } from '../../engine/analysis/explain-statement.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

// Rows a function writes never show in pg_stat_statements as an INSERT (track = top sees only the
// `SELECT load_readings($1)` that called it), yet every one of them adds an entry to every index of
// the table. The table statistics count them; the advisor must too.
let db: TestDatabase;
let client: pg.Client;

const READ = 'SELECT reading FROM public.readings WHERE sensor = $1';
const LOADED = 300_000;

beforeAll(async () => {
  db = await useTestDatabase();
  // On a session of its own that then exits: a backend's table statistics are flushed when it is idle
  // for a while or exits, and the 100,000 rows loaded here must not land inside a test's window.
  const setup = new pg.Client({ connectionString: db.url });
  await setup.connect();
  await setup.query(`
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    CREATE TABLE public.readings (id bigserial PRIMARY KEY, sensor int NOT NULL, reading int NOT NULL, note text)
      WITH (autovacuum_enabled = off);
    INSERT INTO public.readings (sensor, reading, note) SELECT g % 1000, g, md5(g::text) FROM generate_series(1, 100000) g;
    ANALYZE public.readings;
    CREATE FUNCTION public.load_readings(n int) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO public.readings (sensor, reading, note) SELECT g % 1000, g, 'loaded' FROM generate_series(1, n) g;
    END $$;`);
  await setup.end();
  for (let i = 0; i < 150; i += 1) {
    const r = await db.pool.query<{ n: string }>("SELECT pg_stat_get_tuples_inserted('public.readings'::regclass) AS n");
    if (Number(r.rows[0]!.n) >= 100_000) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await quietStatements(client);
});

afterAll(async () => {
  await client?.end();
  await db.close();
});

async function readings(): Promise<void> {
  for (let i = 0; i < 20; i += 1) await db.pool.query(READ, [i]);
}

/** Rows written by a function, on a session of its own; waits until the table statistics show them. */
async function loadThroughFunction(rows: number): Promise<void> {
  const inserted = async (): Promise<number> => {
    const r = await db.pool.query<{ n: string }>("SELECT pg_stat_get_tuples_inserted('public.readings'::regclass) AS n");
    return Number(r.rows[0]!.n);
  };
  const before = await inserted();
  const writer = new pg.Client({ connectionString: db.url });
  await writer.connect();
  try {
    await writer.query('SELECT public.load_readings($1)', [rows]);
  } finally {
    await writer.end();
  }
  // A backend flushes its statistics when it exits; the exit is not synchronous with the socket closing.
  for (let i = 0; i < 150 && (await inserted()) < before + rows; i += 1) await new Promise((r) => setTimeout(r, 100));
}

/** advise over a window (`--since`) in which `during` runs. */
async function adviseOver(during: () => Promise<void>): Promise<AdviceReport> {
  const facts = await readServerFacts(client);
  return advise(client, facts, { maxIndexes: 5, sinceMs: 1, now: () => new Date(), wait: during });
}

const onReadings = (a: { table: string; keys: readonly { column: string }[] }) => a.table === 'readings' && a.keys[0]?.column === 'sensor';

describe('advise: the write cost counts the table statistics, not only the INSERT statements', () => {
  it('without writes, an index on the filtered column is advised', async () => {
    const report = await adviseOver(readings);
    expect(report.writeCounters.source).toBe('delta');
    expect(report.indexes.filter(onReadings)).toHaveLength(1);
    expect(report.indexes.find(onReadings)!.writeMs).toBe(0);
  });

  it('with rows written through a function in the same window, the same candidate is rejected for its write cost', async () => {
    const report = await adviseOver(async () => {
      await readings();
      await loadThroughFunction(LOADED);
    });
    // pg_stat_statements saw no INSERT into the table: the statements alone would price the writes at zero.
    expect(report.window.statementCount).toBeGreaterThanOrEqual(1);
    expect(report.indexes.filter(onReadings)).toEqual([]);
    const rejected = report.notAdvised.filter(onReadings);
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) {
      expect(r.reason).toBe('write-cost');
      expect(r.writeMs).toBeGreaterThan(r.savedMs);
    }
  });
});

describe('placing the table counters in a cumulative workload window', () => {
  const snapshot = { takenAt: '2026-01-01T12:00:00.000Z', tables: new Map([['public.t', { inserted: 1000, updated: 100, hotUpdated: 40, deleted: 0 }]]) };

  it('counters that began before the window are scaled to its length', () => {
    const placed = writeCountersSinceReset(snapshot, '2026-01-01T02:00:00.000Z', '2026-01-01T11:00:00.000Z');
    expect(placed.source).toBe('prorated');
    expect(placed.tables.get('public.t')).toEqual({ inserted: 100, updated: 10, hotUpdated: 4, deleted: 0 });
  });

  it('counters reset inside the window count as they are', () => {
    const placed = writeCountersSinceReset(snapshot, '2026-01-01T11:30:00.000Z', '2026-01-01T11:00:00.000Z');
    expect(placed.source).toBe('since-reset');
    expect(placed.tables.get('public.t')?.inserted).toBe(1000);
  });

  it('counters never reset have no known start: left out, and the report says so', () => {
    const placed = writeCountersSinceReset(snapshot, null, '2026-01-01T11:00:00.000Z');
    expect(placed.source).toBe('unused');
    expect(placed.tables.size).toBe(0);
    expect(placed.note).toContain('--since');
  });
});
