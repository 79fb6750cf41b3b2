import { rm } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../engine/advisor/advise.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

// A partitioned table's own index is never scanned: its partitions' indexes are. Whether it is used is
// the sum of theirs — on the primary and on the standby — and what it weighs is theirs too.
let db: TestDatabase;
let project: string;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    CREATE TABLE public.metrics (host int NOT NULL, taken date NOT NULL, value int NOT NULL) PARTITION BY RANGE (taken);
    CREATE TABLE public.metrics_2025 PARTITION OF public.metrics FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE public.metrics_2026 PARTITION OF public.metrics FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    INSERT INTO public.metrics SELECT g % 200, DATE '2025-01-01' + (g % 700), g FROM generate_series(1, 40000) g;
    CREATE INDEX metrics_host_idx ON public.metrics (host);
    CREATE INDEX metrics_value_idx ON public.metrics (value);
    ANALYZE public.metrics;`);
  await scan(db.url, 'SELECT count(*) FROM public.metrics WHERE host = $1', 'metrics_host_idx');
  project = await projectWith({});
});

afterAll(async () => {
  await db.close();
  await rm(project, { recursive: true, force: true });
});

/** Runs a lookup on its own session with sequential scans off, and waits until the scans are counted. */
async function scan(url: string, sql: string, parentIndex: string): Promise<void> {
  const session = new pg.Client({ connectionString: url });
  await session.connect();
  const scans = async (): Promise<number> => {
    await session.query('SELECT pg_stat_clear_snapshot()');
    const r = await session.query<{ n: string }>(
      `SELECT COALESCE(sum(pg_stat_get_numscans(t.relid)), 0) AS n FROM pg_partition_tree($1::regclass) t`,
      [`public.${parentIndex}`],
    );
    return Number(r.rows[0]!.n);
  };
  try {
    for (let i = 0; i < 100; i += 1) {
      if ((await session.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [`public.${parentIndex}`])).rows[0]!.ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const before = await scans();
    await session.query('SET enable_seqscan = off');
    await session.query('SET enable_bitmapscan = off');
    for (let i = 0; i < 5; i += 1) await session.query(sql, [i]);
    await session.query('SELECT pg_stat_force_next_flush()');
    for (let i = 0; i < 150 && (await scans()) <= before; i += 1) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await session.end();
  }
}

const advise = async (...args: string[]): Promise<{ report: AdviceReport; text: string }> => {
  const json = await runCli(['advise', '--database-url', db.url, '--json', ...args], { cwd: project });
  expect(json.stderr).toBe('');
  const text = await runCli(['advise', '--database-url', db.url, ...args], { cwd: project });
  return { report: JSON.parse(json.stdout) as AdviceReport, text: text.stdout };
};

describe('advise: unused indexes on partitioned tables', () => {
  it('an index nobody scans on any partition is reported unused, with the size of all its partitions', async () => {
    const { report } = await advise();
    const value = report.removals.find((r) => r.index === 'metrics_value_idx');
    const sizes = await db.pool.query<{ bytes: string }>(
      "SELECT sum(pg_relation_size(t.relid))::int8 AS bytes FROM pg_partition_tree('public.metrics_value_idx') t",
    );
    expect(value).toMatchObject({ kind: 'unused', table: 'metrics', scans: 0, bytes: Number(sizes.rows[0]!.bytes) });
    expect(value!.bytes).toBeGreaterThan(0);
    expect(value!.reason).toContain("nor any of its partitions' indexes");
    // The partitions' own copies are not advice of their own: they go with the parent's index.
    expect(report.removals.filter((r) => r.table.startsWith('metrics_'))).toEqual([]);
  });

  it('an index whose partitions are scanned is not unused', async () => {
    const { report } = await advise();
    expect(report.removals.some((r) => r.index === 'metrics_host_idx')).toBe(false);
  });

  it("with --standby-url, scans of the partitions' indexes on the standby count, and the standby's window is shown", async () => {
    await scan(db.standbyUrl, 'SELECT count(*) FROM public.metrics WHERE value = $1', 'metrics_value_idx');
    const { report, text } = await advise('--standby-url', db.standbyUrl);
    expect(report.standbyChecked).toBe(true);
    expect(report).toHaveProperty('standbyStatsReset');
    expect(report.removals.some((r) => r.index === 'metrics_value_idx')).toBe(false);
    expect(text).toMatch(/\(scan counters of the primary since .+ and of the standby since .+\)/);
  });
});
