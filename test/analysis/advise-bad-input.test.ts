import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../engine/advisor/advise.ts';
import { buildWorkload } from '../../engine/advisor/workload.ts';
import { readServerFacts } from '../../engine/analysis/explain-statement.ts';
import { cumulativeWindow, type StatementEntry } from '../../engine/analysis/statement-stats.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let project: string;

const ORDERS_FLOW = `# Written by hand, all on one line.
table: public.orders
indexes: [{name: orders_status_grp_idx, columns: [status, grp]}]
`;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    CREATE TABLE public.orders (id int PRIMARY KEY, grp int NOT NULL, status text NOT NULL, note text NOT NULL);
    INSERT INTO public.orders SELECT g, g % 500, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'done' END, md5(g::text) FROM generate_series(1, 60000) g;
    CREATE TABLE public.tickets (id int PRIMARY KEY, owner int NOT NULL, closed_at timestamptz);
    INSERT INTO public.tickets SELECT g, g % 400, CASE WHEN g % 40 = 0 THEN NULL ELSE now() END FROM generate_series(1, 50000) g;
    CREATE TABLE public.scratch (x int NOT NULL, y text);
    INSERT INTO public.scratch SELECT g, 'y' FROM generate_series(1, 20000) g;
    CREATE INDEX orders_note_idx ON public.orders (note);
    CREATE INDEX orders_note_copy_idx ON public.orders (note);
    CREATE INDEX orders_status_idx ON public.orders (status);
    CREATE INDEX orders_status_grp_idx ON public.orders (status, grp);
    ANALYZE public.orders, public.tickets, public.scratch;
    SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0);`);
  for (let i = 0; i < 40; i += 1) await db.pool.query('SELECT id, note FROM public.orders WHERE grp = $1', [i]);
  for (let i = 0; i < 40; i += 1) await db.pool.query('SELECT y FROM public.scratch WHERE x = $1', [i]);
  // Open tickets of one owner: 2.5% of the rows are open, and the IS NULL survives normalisation.
  for (let i = 0; i < 40; i += 1) await db.pool.query('SELECT id FROM public.tickets WHERE owner = $1 AND closed_at IS NULL', [i]);
  await db.pool.query('DROP TABLE public.scratch');
  project = await projectWith({ 'orders.yaml': ORDERS_FLOW });
});

afterAll(async () => {
  await db.close();
  await rm(project, { recursive: true, force: true });
});

const advise = (...args: string[]) => runCli(['advise', '--database-url', db.url, ...args], { cwd: project });

function entry(key: string, query: string): StatementEntry {
  return { key, queryId: key, user: 'app', query, calls: 10, totalMs: 100, rows: 10, sharedHit: 0, sharedRead: 0, tempWritten: 0, planMs: 0, maxMs: 20, minMs: 5, stddevMs: 1 };
}

describe('advise: bad input', () => {
  it('a statement the parser rejects is reported with its position; the rest go on', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const window = cumulativeWindow({
        takenAt: new Date().toISOString(),
        entries: [entry('1/1', 'SELECT id FROM public.orders WHERE grp = $1'), entry('1/2', 'SELECT id FROM public.orders WHER grp = $1')],
      });
      const workload = await buildWorkload(client, window.statements, (await readServerFacts(client)).searchPath);
      expect(workload.statements.map((s) => s.key)).toEqual(['1/1']);
      expect(workload.skipped).toEqual([
        expect.objectContaining({ key: '1/2', reason: 'unparseable', message: 'the parser rejects it: syntax error at or near "grp" at character 35' }),
      ]);
    } finally {
      await client.end();
    }
  });

  it('a query on a table that no longer exists is left out with the reason; the others still get advice', async () => {
    const result = await advise('--json');
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as AdviceReport;
    expect(report.skipped).toEqual([
      expect.objectContaining({ query: 'SELECT y FROM public.scratch WHERE x = $1', reason: 'missing-table', message: 'table public.scratch does not exist (any more)' }),
    ]);
    expect(report.indexes.map((a) => `${a.table}(${a.keys.map((k) => k.column).join(',')})`)).toContain('orders(grp)');
  });

  it('a constant predicate that keeps few rows makes a partial index, covering what the query reads', async () => {
    const report = JSON.parse((await advise('--json')).stdout) as AdviceReport;
    const tickets = report.indexes.find((a) => a.table === 'tickets');
    expect(tickets).toMatchObject({ keys: [{ column: 'owner', order: 'asc' }], include: ['id'], where: 'closed_at IS NULL' });
    expect(tickets!.sql).toBe('CREATE INDEX CONCURRENTLY "tickets_owner_partial_idx" ON "public"."tickets" USING btree ("owner") INCLUDE ("id") WHERE (closed_at IS NULL)');
    expect(tickets!.statements[0]!.accessAfter).toBe('Index Only Scan using (advised index) on public.tickets');
  });

  it('a policy file that cannot be rewritten safely is left alone; the entry to paste is printed', async () => {
    const result = await advise('--write');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'pgwarden: not writing policies/orders.yaml: its `indexes:` is a flow sequence ([...]); pgwarden adds to block-style lists only\n',
    );
    expect(result.stdout).toContain('Paste into policies/orders.yaml yourself:\n# under `indexes:` of the `table: public.orders` policy document\n');
    expect(result.stdout).toMatch(/- name: orders_grp_idx\n {2}columns: \[grp\]\n/);
    expect(await readFile(path.join(project, 'policies', 'orders.yaml'), 'utf8')).toBe(ORDERS_FLOW);
  });

  it('pg_stat_statements missing: the message gives the two lines that enable it', async () => {
    const bare = await useTestDatabase();
    try {
      const result = await runCli(['advise', '--database-url', bare.url], { cwd: project });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`pgwarden: pg_stat_statements is not available in database ${bare.name}: the extension is not created`);
      expect(result.stderr).toContain("shared_preload_libraries = 'pg_stat_statements'");
      expect(result.stderr).toContain('CREATE EXTENSION pg_stat_statements;');
    } finally {
      await bare.close();
    }
  });
});

describe('advise: indexes that could go', () => {
  it('reports duplicates, prefixes of other indexes and unused ones, with sizes; never a primary key', async () => {
    const report = JSON.parse((await advise('--json')).stdout) as AdviceReport;
    const removals = report.removals.map((r) => [r.kind, r.index, r.coveredBy ?? null]);
    expect(removals).toEqual(
      expect.arrayContaining([
        ['duplicate', 'orders_note_idx', 'orders_note_copy_idx'],
        ['redundant', 'orders_status_idx', 'orders_status_grp_idx'],
        ['unused', 'orders_note_copy_idx', null],
      ]),
    );
    expect(report.removals.every((r) => r.index !== 'orders_pkey' && r.bytes > 0)).toBe(true);
    expect(report.standbyChecked).toBe(false);
  });

  it('an index idle on the primary but read on the standby is not unused', async () => {
    const standby = new pg.Client({ connectionString: db.standbyUrl });
    await standby.connect();
    try {
      for (let i = 0; i < 100; i += 1) {
        const seen = await standby.query("SELECT to_regclass('public.orders_note_copy_idx') IS NOT NULL AS ok");
        if (seen.rows[0].ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await standby.query('SET enable_seqscan = off');
      for (let i = 0; i < 5; i += 1) await standby.query('SELECT id FROM public.orders WHERE note = $1', [`n${i}`]);
    } finally {
      await standby.end();
    }
    const report = JSON.parse((await advise('--json', '--standby-url', db.standbyUrl)).stdout) as AdviceReport;
    expect(report.standbyChecked).toBe(true);
    const note = report.removals.filter((r) => r.index.startsWith('orders_note'));
    // One of the two copies serves the standby's reads: it stays; the other is still a duplicate of it.
    expect(note).toHaveLength(1);
    expect(note[0]).toMatchObject({ kind: 'duplicate' });
    expect(report.removals.some((r) => r.kind === 'unused' && r.index.startsWith('orders_note'))).toBe(false);
  });
});
