import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTableSizes } from '../../engine/serve/table-sizes.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`
    CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, payload text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
    CREATE TABLE events_2026_01 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
    CREATE TABLE events_2026_02 PARTITION OF events FOR VALUES FROM ('2026-02-01') TO ('2026-03-01') PARTITION BY HASH (id);
    CREATE TABLE events_2026_02_h0 PARTITION OF events_2026_02 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
    CREATE TABLE events_2026_02_h1 PARTITION OF events_2026_02 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
    INSERT INTO events SELECT g, DATE '2026-01-01' + (g % 59), repeat('x', 50) FROM generate_series(1, 12000) g;
    CREATE TABLE small (id int PRIMARY KEY);
    INSERT INTO small SELECT generate_series(1, 10);
    ANALYZE events, small;`);
  // Read the partitioned table whole three times, on a session that then ends so its counters are flushed.
  const reader = new pg.Client({ connectionString: db.url });
  await reader.connect();
  for (let i = 0; i < 3; i++) await reader.query("SELECT count(*) FROM events WHERE payload = 'y'");
  await reader.end();
  for (let i = 0; i < 200; i++) {
    const r = await db.pool.query<{ n: string }>("SELECT COALESCE(sum(seq_scan), 0) AS n FROM pg_stat_user_tables WHERE relname LIKE 'events_2026_%'");
    if (Number(r.rows[0]?.n) >= 9) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

afterAll(async () => {
  await db?.close();
});

describe('table sizes for the report', () => {
  it('rolls partitions (sub-partitions too) into their partitioned table, as one row with its leaves', async () => {
    const sizes = await readTableSizes(db.pool as unknown as pg.ClientBase);
    const events = sizes.find((t) => t.name === 'events');
    expect(events?.kind).toBe('partitioned');
    expect(events?.partitions.map((p) => p.name).sort()).toEqual(['events_2026_01', 'events_2026_02_h0', 'events_2026_02_h1']);
    // No partition, and not the intermediate partitioned table, is a row of its own.
    expect(sizes.map((t) => t.name).filter((n) => n.startsWith('events_'))).toEqual([]);
    const sum = events!.partitions.reduce((n, p) => n + p.totalBytes, 0);
    expect(events!.totalBytes).toBeGreaterThanOrEqual(sum);
    expect(events!.rows).toBe(12000);
    expect(events!.indexBytes).toBeGreaterThan(0);
    expect(events!.bloatBytes).not.toBeNull();
    // Largest first.
    expect(sizes.map((t) => t.totalBytes)).toEqual([...sizes.map((t) => t.totalBytes)].sort((a, b) => b - a));
  });

  it('flags the tables read whole (partitions counted together), not the small ones', async () => {
    const sizes = await readTableSizes(db.pool as unknown as pg.ClientBase);
    const events = sizes.find((t) => t.name === 'events')!;
    expect(events.seqScans).toBeGreaterThanOrEqual(9);
    expect(events.seqRows).toBeGreaterThanOrEqual(3 * 12000);
    expect(events.seqScanHeavy).toBe(true);
    expect(sizes.find((t) => t.name === 'small')?.seqScanHeavy).toBe(false);
  });

  it('asks the same three queries whatever the number of tables', async () => {
    const client = await db.pool.connect();
    const queriesOf = async (): Promise<number> => {
      let n = 0;
      const query = client.query.bind(client);
      (client as { query: unknown }).query = (...args: unknown[]) => {
        n += 1;
        return (query as (...a: unknown[]) => unknown)(...args);
      };
      try {
        await readTableSizes(client);
      } finally {
        (client as { query: unknown }).query = query;
      }
      return n;
    };
    try {
      expect(await queriesOf()).toBe(3);
      await client.query('CREATE TABLE more_1 (id int); CREATE TABLE more_2 (id int); CREATE TABLE more_3 (id int)');
      expect(await queriesOf()).toBe(3);
    } finally {
      client.release();
    }
  });
});
