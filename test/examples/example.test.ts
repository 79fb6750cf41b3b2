import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checksumExample, type ExampleChecksums } from '../../engine/example/checksum.ts';
import { type ExampleSummary, loadExample } from '../../engine/example/load.ts';
import { runWorkload } from '../../engine/example/workload.ts';
import { WORKLOAD_QUERIES } from '../../engine/example/workload-queries.ts';
import { type TestDatabase, useTestDatabase } from '../support/database.ts';

// A fixed end of history, so that two loads with the same seed can be compared byte for byte.
const END_AT = new Date('2025-06-01T12:00:00Z');
const YEAR_MS = 365 * 86_400_000;

let database: TestDatabase;
let summary: ExampleSummary;
let checksums: ExampleChecksums;

async function withClient<T>(run: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await database.pool.connect();
  try {
    return await run(client);
  } finally {
    client.release();
  }
}

async function queryRow<T extends pg.QueryResultRow>(sql: string): Promise<T> {
  const result = await database.pool.query<T>(sql);
  const row = result.rows[0];
  if (row === undefined) throw new Error(`no row from: ${sql}`);
  return row;
}

beforeAll(async () => {
  database = await useTestDatabase();
  summary = await withClient((client) => loadExample(client, { scale: 'small', seed: 42, endAt: END_AT }));
  checksums = await withClient(checksumExample);
});

afterAll(async () => {
  await database?.close();
});

describe('the example platform at small scale', () => {
  it('loads the five tables with plausible row counts in a few seconds', () => {
    expect(summary.rows.tenants).toBe(50);
    expect(summary.rows.events).toBe(200_000);
    expect(summary.rows.incidents).toBe(1_500);
    // Churn deleted a few servers and a share of old deployments.
    expect(summary.rows.servers).toBeGreaterThan(300);
    expect(summary.rows.servers).toBeLessThan(500);
    expect(summary.rows.deployments).toBeGreaterThan(3_000);
    expect(summary.rows.deployments).toBeLessThan(5_000);
    expect(summary.seconds).toBeLessThan(30);
    expect(summary.endAt).toBe(END_AT.toISOString());
  });

  it('puts more than half of the events in the largest tenth of the tenants', async () => {
    const { share } = await queryRow<{ share: number }>(`
      WITH per_tenant AS (SELECT tenant_id, count(*) AS events FROM public.events GROUP BY tenant_id),
           ranked AS (SELECT events, row_number() OVER (ORDER BY events DESC) AS rank, count(*) OVER () AS tenants
                      FROM per_tenant)
      SELECT (sum(events) FILTER (WHERE rank <= tenants / 10))::float8 / sum(events) AS share FROM ranked`);
    expect(share).toBeGreaterThan(0.5);
  });

  it('spreads events over the year before the end of history, with bursts', async () => {
    const span = await queryRow<{ first: Date; last: Date }>(
      'SELECT min(created_at) AS first, max(created_at) AS last FROM public.events',
    );
    expect(span.first.getTime()).toBeGreaterThanOrEqual(END_AT.getTime() - YEAR_MS);
    expect(span.last.getTime()).toBeLessThanOrEqual(END_AT.getTime());
    // An hour of the biggest tenant's busiest burst holds far more than its average hour.
    const { busiest, average } = await queryRow<{ busiest: number; average: number }>(`
      SELECT max(events)::float8 AS busiest, (sum(events) / (365 * 24))::float8 AS average
      FROM (SELECT count(*) AS events FROM public.events WHERE tenant_id = 1
            GROUP BY date_trunc('hour', created_at)) AS hours`);
    expect(busiest).toBeGreaterThan(20 * average);
  });

  it('creates primary keys only, leaving the workload indexes to pgwarden', async () => {
    const result = await database.pool.query<{ index: string; primary: boolean }>(`
      SELECT i.indexrelid::regclass::text AS index, i.indisprimary AS primary
      FROM pg_catalog.pg_index AS i
      JOIN pg_catalog.pg_class AS c ON c.oid = i.indrelid
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relname IN ('tenants', 'servers', 'deployments', 'incidents', 'events')
      ORDER BY 1`);
    expect(result.rows).toEqual([
      { index: 'deployments_pkey', primary: true },
      { index: 'events_pkey', primary: true },
      { index: 'incidents_pkey', primary: true },
      { index: 'servers_pkey', primary: true },
      { index: 'tenants_pkey', primary: true },
    ]);
  });

  it('leaves dead tuples in servers and deployments for vacuum to clean', async () => {
    const result = await database.pool.query<{ table: string; dead: string; vacuums: string }>(`
      SELECT relname AS table, n_dead_tup AS dead, autovacuum_count AS vacuums
      FROM pg_catalog.pg_stat_user_tables
      WHERE schemaname = 'public' AND relname IN ('servers', 'deployments')
      ORDER BY 1`);
    expect(result.rows.map((row) => row.table)).toEqual(['deployments', 'servers']);
    for (const row of result.rows) {
      // The load's ANALYZE records the dead tuples it sampled. Should autovacuum have visited in the
      // meantime, it found that work: either way the churn left some.
      expect(Number(row.dead) > 0 || Number(row.vacuums) > 0, `${row.table}: dead ${row.dead}`).toBe(true);
    }
  });

  it('runs a two-second workload that measures every query without errors and stops on time', async () => {
    const started = performance.now();
    const report = await runWorkload(database.pool, { durationMs: 2_000, ratePerSecond: 30, concurrency: 4, seed: 7 });
    const elapsedMs = performance.now() - started;

    expect(elapsedMs).toBeLessThan(2_000 + 1_500);
    expect(report.errors).toBe(0);
    expect(report.queries.map((query) => query.name)).toEqual(WORKLOAD_QUERIES.map((query) => query.name));
    for (const query of report.queries) {
      expect(query.errors, `${query.name}: ${query.firstError ?? ''}`).toBe(0);
      expect(query.count, query.name).toBeGreaterThan(0);
      const { p50Ms, p95Ms, p99Ms, maxMs } = query;
      if (p50Ms === null || p95Ms === null || p99Ms === null || maxMs === null) {
        throw new Error(`${query.name} has no percentiles`);
      }
      expect(p50Ms).toBeLessThanOrEqual(p95Ms);
      expect(p95Ms).toBeLessThanOrEqual(p99Ms);
      expect(p99Ms).toBeLessThanOrEqual(maxMs);
    }
  });

  // The two reloads come last: they replace the data the tests above look at.
  it('reproduces identical data when loaded again with the same seed', async () => {
    await withClient((client) => loadExample(client, { scale: 'small', seed: 42, endAt: END_AT }));
    expect(await withClient(checksumExample)).toEqual(checksums);
  });

  it('generates different data for a different seed', async () => {
    await withClient((client) => loadExample(client, { scale: 'small', seed: 43, endAt: END_AT }));
    const other = await withClient(checksumExample);
    expect(other.events).not.toBe(checksums.events);
    expect(other.servers).not.toBe(checksums.servers);
  });
});
