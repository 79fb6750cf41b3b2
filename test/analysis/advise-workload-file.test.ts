import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { AdviceReport } from '../../engine/advisor/advise.ts';
import { estimateIndexBytes } from '../../engine/advisor/cost-model.ts';
import { candidateId } from '../../engine/advisor/index-candidate.ts';
import { readTableStatistics } from '../../engine/analysis/table-statistics.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import { runCli } from '../support/cli.ts';
import { ORDERS_SCHEMA, ORDERS_WORKLOAD } from './orders-fixture.ts';

// The suite's PostgreSQL 16 (no hypopg: the statistics-based estimate, GENERIC_PLAN for `$n`), a
// workload from a file rather than pg_stat_statements, with texts the server refuses as they are.
let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(ORDERS_SCHEMA);
  dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-workload-'));
  await writeFile(path.join(dir, 'workload.sql'), ORDERS_WORKLOAD);
});

afterAll(async () => {
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const advise = (...args: string[]) => runCli(['advise', '--database-url', db.url, ...args], { cwd: dir });

describe('advise --workload FILE on PostgreSQL 16', () => {
  it('plans every statement the server could plan with its constants; the two it cannot are listed with why', async () => {
    const result = await advise('--workload', 'workload.sql', '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as AdviceReport;

    expect(report.skipped.map((s) => [s.queryId, s.reason])).toEqual([
      ['workload.sql:23', 'unparseable'],
      ['workload.sql:21', 'unexplainable'],
    ]);
    expect(report.skipped[1]!.message).toContain('column "l_nosuch" does not exist');
    // Six statements in all were planned: the four rewritten, the one with constants, the UPDATE.
    expect(report.window.statementCount).toBe(8);
    expect(report.rewritten.map((r) => r.queryId)).toEqual(['workload.sql:3', 'workload.sql:6', 'workload.sql:12', 'workload.sql:15']);
    expect(report.rewritten[1]!.repairs).toContain("extract's field $1 read as year");
    expect(report.rewritten[2]!.planned).toContain('GROUP BY DATE_TRUNC($1, o_orderdate)');
    // The workload's heaviest reads get their index.
    const keys = report.indexes.map((i) => `${i.table}(${i.keys.map((k) => k.column).join(',')})`);
    expect(keys.some((k) => k.startsWith('orders(o_custkey'))).toBe(true);
  });

  it('--budget keeps the advice within a share of the data size, and the size model matches the built indexes', async () => {
    const unbounded = JSON.parse((await advise('--workload', 'workload.sql', '--json')).stdout) as AdviceReport;
    const result = await advise('--workload', 'workload.sql', '--json', '--budget', '0.15x');
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as AdviceReport;
    const used = report.indexes.reduce((n, i) => n + i.estimatedBytes, 0);
    expect(report.budget!.bytes).toBe(Math.round(report.dataBytes * 0.15));
    expect(report.budget!.usedBytes).toBe(used);
    expect(used).toBeLessThanOrEqual(report.budget!.bytes);
    expect(report.indexes.at(-1)!.budgetLeftBytes).toBe(report.budget!.bytes - used);
    expect(used).toBeLessThan(unbounded.indexes.reduce((n, i) => n + i.estimatedBytes, 0));

    // Built for real (in a transaction, rolled back): each estimate within a third of the built size.
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      for (const index of unbounded.indexes) {
        await client.query(index.sql.replace(' CONCURRENTLY', ''));
        const built = await client.query<{ bytes: string }>('SELECT pg_relation_size($1::regclass)::int8 AS bytes', [`${index.schema}.${index.name}`]);
        const ratio = index.estimatedBytes / Number(built.rows[0]!.bytes);
        expect(ratio, index.sql).toBeGreaterThan(0.67);
        expect(ratio, index.sql).toBeLessThan(1.5);
      }
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('--verify builds each index in a rolled-back transaction and keeps only what it measured faster', async () => {
    const indexCount = async (): Promise<number> =>
      (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = 'public'")).rows[0]!.n;
    const before = await indexCount();
    const estimated = JSON.parse((await advise('--workload', 'workload.sql', '--json')).stdout) as AdviceReport;
    const result = await advise('--workload', 'workload.sql', '--json', '--verify');
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as AdviceReport;

    expect(report.verification!.map((v) => v.index)).toEqual(estimated.indexes.map((i) => i.name));
    for (const v of report.verification!) {
      expect(v.statements.length, v.index).toBeGreaterThan(0);
      for (const m of v.statements) expect(m.beforeMs).toBeGreaterThan(0);
      if (v.kept) {
        expect(v.measuredSavedMs).toBeGreaterThan(0);
        expect(v.statements.some((m) => m.verdict === 'slower')).toBe(false);
      }
    }
    const kept = report.verification!.filter((v) => v.kept).map((v) => v.index);
    expect(report.indexes.map((i) => i.name)).toEqual(kept);
    // The headline statement (a customer's latest orders) measured faster with its index (medians: ~0.8 -> ~0.02 ms).
    const custkey = report.verification!.find((v) => v.index.startsWith('orders_o_custkey'))!;
    const latest = custkey.statements.find((m) => m.queryId === 'workload.sql:15')!;
    expect(latest.afterMs).toBeLessThan(latest.beforeMs);
    expect(report.notAdvised.filter((n) => n.reason === 'not-measured-faster')).toHaveLength(estimated.indexes.length - kept.length);
    // Nothing was left behind.
    expect(await indexCount()).toBe(before);
  });

  it('the size model counts btree deduplication: a low-cardinality key is not priced as one entry per row', async () => {
    const tables = await readTableStatistics(db.pool as unknown as pg.ClientBase, [{ schema: 'public', name: 'lineitem' }]);
    const lineitem = tables.get('public.lineitem')!;
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      for (const keys of [['l_shipmode'], ['l_returnflag', 'l_shipmode'], ['l_partkey']]) {
        const shape = { schema: 'public', table: 'lineitem', keys: keys.map((column) => ({ column, order: 'asc' as const })), include: [] };
        const estimated = estimateIndexBytes(lineitem, { ...shape, id: candidateId(shape), sources: [] }, 1);
        await client.query(`CREATE INDEX size_check_idx ON public.lineitem (${keys.join(', ')})`);
        const built = Number((await client.query<{ b: string }>("SELECT pg_relation_size('size_check_idx')::int8 AS b")).rows[0]!.b);
        await client.query('DROP INDEX size_check_idx');
        expect(estimated / built, keys.join(',')).toBeGreaterThan(0.67);
        expect(estimated / built, keys.join(',')).toBeLessThan(1.5);
      }
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('a budget that is not a size is a one-line error', async () => {
    const result = await advise('--workload', 'workload.sql', '--budget', 'lots');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('pgwarden: --budget must be a size such as 500MB or 2GB, or a share of the data size such as 0.25x, got "lots"\n');
  });

  it('a malformed annotation is an error naming file:line:col', async () => {
    await writeFile(path.join(dir, 'bad.sql'), 'select 1;\n  -- calls: many\nselect * from orders;\n');
    const result = await advise('--workload', 'bad.sql');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('pgwarden: bad.sql:2:3: calls must be a whole number, got "many"\n');
  });
});
