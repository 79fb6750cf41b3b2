import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../engine/advisor/advise.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import { runCli } from '../support/cli.ts';

// An index that makes a statement genuinely slower, by construction rather than by luck (PostgreSQL 16,
// statistics method). Each tenant's 2,000 events are consecutive in time; a tenant's first events by time
// (`WHERE tenant = 99 ORDER BY created_at LIMIT 10`) are read through the tenant index and sorted: about
// 2,000 rows. With an index on created_at alone, the planner assumes tenant 99's rows are spread evenly
// (1% of them) and walks created_at expecting ten matches within ~1,000 rows; tenant 99's are the last
// 2,000 of 200,000, so it reads 198,000 rows. The advisor proposes created_at for another statement;
// --verify must measure the first statement slower, measure both states again, and drop the index.
let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`
    CREATE TABLE public.events (id bigint PRIMARY KEY, tenant int NOT NULL, created_at timestamptz NOT NULL, body text NOT NULL);
    INSERT INTO public.events SELECT g, (g - 1) / 2000, '2026-01-01'::timestamptz + g * interval '1 second', 'x'
      FROM generate_series(1, 200000) g;
    CREATE INDEX events_tenant_idx ON public.events (tenant);
    ANALYZE public.events;`);
  dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-verify-'));
  await writeFile(path.join(dir, 'workload.sql'), `-- calls: 1000
SELECT id, body FROM events WHERE created_at = $1;

-- calls: 10
SELECT id FROM events WHERE tenant = 99 ORDER BY created_at LIMIT 10;
`);
});

afterAll(async () => {
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('advise --verify when an index makes another statement slower', () => {
  it('measures the statement slower, measures both states again, and does not keep the index', async () => {
    const plan = async (q: { query: (sql: string) => Promise<{ rows: { 'QUERY PLAN': string }[] }> }): Promise<string> =>
      (await q.query('EXPLAIN SELECT id FROM events WHERE tenant = 99 ORDER BY created_at LIMIT 10')).rows.map((r) => r['QUERY PLAN']).join('\n');
    // The trap is the planner's, as built: with created_at indexed it walks that index.
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('CREATE INDEX events_created_at_probe ON public.events (created_at)');
      expect(await plan(client)).toContain('Index Scan using events_created_at_probe');
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    expect(await plan(db.pool)).toContain('events_tenant_idx');

    const result = await runCli(['advise', '--database-url', db.url, '--workload', 'workload.sql', '--json', '--verify'], { cwd: dir });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as AdviceReport;
    const onCreatedAt = report.verification!.find((v) => v.index === 'events_created_at_idx');
    expect(onCreatedAt, JSON.stringify(report.verification)).toBeDefined();
    const trap = onCreatedAt!.statements.find((m) => m.queryId === 'workload.sql:5')!;
    expect(trap.verdict).toBe('slower');
    expect(trap.remeasured).toBe(true);
    // ~0.2 ms before, 12-32 ms after here: far apart whatever the load (the spread of one state's runs may not be).
    expect(trap.afterMs).toBeGreaterThan(trap.beforeMs * 5);
    expect(onCreatedAt!.kept).toBe(false);
    expect(onCreatedAt!.note).toContain('slower with it: workload.sql:5');
    expect(report.indexes.map((i) => i.name)).not.toContain('events_created_at_idx');
    // Nothing was left behind.
    expect((await db.pool.query("SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 'events'")).rows[0]!.n).toBe(2);
  });
});
