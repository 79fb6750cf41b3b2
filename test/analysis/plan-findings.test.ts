import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionLines } from '../../engine/analysis/analysis-report.ts';
import { explainStatement, planRelationFacts, readServerFacts, type ServerFacts } from '../../engine/analysis/explain-statement.ts';
import { planFindings, type Finding } from '../../engine/analysis/plan-finding.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

// Every finding from a real plan of the suite's PostgreSQL 16, each provoked the way it happens in
// production (a small work_mem, correlated columns, a table autovacuum has not reached yet).
let db: TestDatabase;
let client: pg.Client;
let facts: ServerFacts;

beforeAll(async () => {
  db = await useTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(`
    CREATE TABLE public.big (id int PRIMARY KEY, grp int NOT NULL, a int NOT NULL, b int NOT NULL, pad text NOT NULL)
      WITH (autovacuum_enabled = false);
    INSERT INTO public.big SELECT g, g % 1000, g % 100, g % 100, repeat(md5(g::text), 12) FROM generate_series(1, 50000) g;
    CREATE TABLE public.small (grp int NOT NULL);
    INSERT INTO public.small SELECT g FROM generate_series(1, 200) g;
    CREATE TABLE public.mid (grp int NOT NULL, note text);
    INSERT INTO public.mid SELECT g % 5000, 'x' FROM generate_series(1, 5000) g;
    CREATE TABLE public.parts (k int NOT NULL, v int NOT NULL) PARTITION BY RANGE (k);
    CREATE TABLE public.parts_1 PARTITION OF public.parts FOR VALUES FROM (0) TO (1000);
    CREATE TABLE public.parts_2 PARTITION OF public.parts FOR VALUES FROM (1000) TO (2000);
    CREATE TABLE public.parts_3 PARTITION OF public.parts FOR VALUES FROM (2000) TO (3000);
    CREATE TABLE public.parts_4 PARTITION OF public.parts FOR VALUES FROM (3000) TO (4000);
    INSERT INTO public.parts SELECT g, g % 7 FROM generate_series(0, 3999) g;
    ANALYZE public.big, public.small, public.mid, public.parts;`);
  facts = await readServerFacts(client);
});

afterAll(async () => {
  await client.end();
  await db.close();
});

async function findings(sql: string, settings: string[] = [], analyze = true): Promise<Finding[]> {
  await client.query('RESET ALL');
  for (const s of settings) await client.query(`SET ${s}`);
  const result = await explainStatement(client, await readServerFacts(client), sql, { analyze });
  const relations = await planRelationFacts(client, [result.explain]);
  const workMem = (await client.query<{ kb: string }>(`SELECT pg_size_bytes(current_setting('work_mem')) / 1024 AS kb`)).rows[0]!.kb;
  return planFindings(result.explain, { relations, workMemKb: Number(workMem) });
}

function only(list: Finding[], kind: Finding['kind']): Finding {
  const found = list.filter((f) => f.kind === kind);
  expect(found, JSON.stringify(list.map((f) => f.kind))).toHaveLength(1);
  return found[0]!;
}

describe('plan findings, each pointing at the node that causes it', () => {
  it('a sequential scan of a large table that keeps few rows', async () => {
    const f = only(await findings('SELECT * FROM public.big WHERE grp = 7'), 'seq-scan');
    expect(f.node.label).toMatch(/Seq Scan on public\.big$/);
    expect(f).toMatchObject({ kind: 'seq-scan', table: 'public.big', rowsReturned: 50, rowsScanned: 50000, measured: true });
    expect(f.message).toContain('read 50,000 rows to keep 50 (0.10%)');
  });

  it('the same from the planner\'s estimates alone, without running the statement', async () => {
    const f = only(await findings('SELECT * FROM public.big WHERE grp = $1', [], false), 'seq-scan');
    expect(f).toMatchObject({ measured: false, tableRows: 50000 });
    expect(f.message).toContain('reads an estimated 50,000 rows');
  });

  it('a row misestimate where it starts (correlated columns), not everywhere above it', async () => {
    const list = await findings('SELECT count(*) FROM public.big WHERE a = 1 AND b = 1');
    const f = only(list, 'row-misestimate');
    expect(f).toMatchObject({ direction: 'under', actualRows: expect.any(Number) });
    expect(f.node.relation).toBe('public.big');
    expect(f.kind === 'row-misestimate' && f.factor).toBeGreaterThanOrEqual(10);
  });

  it('a sort that spills to disk, with how much memory would keep it in', async () => {
    const f = only(await findings('SELECT * FROM public.big ORDER BY pad', ["work_mem = '64kB'", 'max_parallel_workers_per_gather = 0']), 'sort-spill');
    expect(f.node.nodeType).toBe('Sort');
    expect(f.message).toMatch(/the sort spilled \d+(\.\d)? MB to disk \(external merge\)/);
    expect(f.hint).toContain('work_mem is 64 kB');
  });

  it('a hash join that spills in batches', async () => {
    const f = only(
      await findings('SELECT * FROM public.big b1 JOIN public.big b2 USING (id)', ["work_mem = '64kB'", 'enable_mergejoin = off', 'max_parallel_workers_per_gather = 0']),
      'hash-spill',
    );
    expect(f.node.nodeType).toBe('Hash');
    expect(f.kind === 'hash-spill' && f.batches).toBeGreaterThan(1);
  });

  it('a nested loop that scans its inner side again for every outer row', async () => {
    const f = only(
      await findings('SELECT * FROM public.small s JOIN public.mid m ON m.grp = s.grp', ['enable_hashjoin = off', 'enable_mergejoin = off']),
      'nested-loop-large-inner',
    );
    expect(f.node.nodeType).toBe('Nested Loop');
    expect(f.kind === 'nested-loop-large-inner' && f.innerRowsRead).toBeGreaterThanOrEqual(1_000_000);
    expect(f.hint).toMatch(/^an index on the join column of public\.(mid|small) makes each loop a lookup$/);
  });

  it('heap fetches of an index-only scan on a table vacuum has not visited', async () => {
    const f = only(
      await findings('SELECT id FROM public.big WHERE id < 20000', ['enable_seqscan = off', 'enable_bitmapscan = off', 'enable_indexscan = off']),
      'heap-fetches',
    );
    expect(f.node.nodeType).toBe('Index Only Scan');
    expect(f.hint).toContain('VACUUM public.big');
  });

  it('a bitmap that goes lossy in too small a work_mem', async () => {
    const f = only(
      await findings('SELECT count(pad) FROM public.big WHERE id < 45000', ["work_mem = '64kB'", 'enable_seqscan = off', 'enable_indexscan = off', 'max_parallel_workers_per_gather = 0']),
      'lossy-bitmap',
    );
    expect(f.node.nodeType).toBe('Bitmap Heap Scan');
  });

  it('parallel workers planned but not launched', async () => {
    const f = only(
      await findings('SELECT count(*) FROM public.big', ['max_parallel_workers = 0', 'parallel_setup_cost = 0', 'parallel_tuple_cost = 0', 'min_parallel_table_scan_size = 0']),
      'workers-not-launched',
    );
    expect(f.message).toMatch(/\d parallel workers planned, 0 launched/);
  });

  it('every partition scanned when the query does not filter on the partition key', async () => {
    const f = only(await findings('SELECT * FROM public.parts WHERE v = 3'), 'partitions-not-pruned');
    expect(f).toMatchObject({ parent: 'public.parts', scanned: 4, total: 4, partitionKey: 'RANGE (k)' });
    expect(f.node.nodeType).toBe('Append');
  });

  it('N of M partitions scanned when the key prunes, with the pruned share', async () => {
    const result = await explainStatement(client, facts, 'SELECT * FROM public.parts WHERE k BETWEEN 900 AND 1100', { analyze: false });
    const relations = await planRelationFacts(client, [result.explain]);
    expect(partitionLines(result.explain.plan, relations)).toEqual([
      { parent: 'public.parts', scanned: 2, total: 4, prunedPercent: 50, text: '2 of 4 partitions in the plan, 50% pruned (2 at plan time)' },
    ]);
    const single = await explainStatement(client, facts, 'SELECT * FROM public.parts WHERE k = 5', { analyze: true });
    expect(partitionLines(single.explain.plan, await planRelationFacts(client, [single.explain]))).toEqual([
      { parent: 'public.parts', scanned: 1, total: 4, prunedPercent: 75, text: '1 of 4 partitions scanned, 75% pruned (3 at plan time)' },
    ]);
  });

  it('an indexed lookup has no findings', async () => {
    expect(await findings('SELECT * FROM public.big WHERE id = 42')).toEqual([]);
  });
});
