import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QueryReport, WorkloadReport } from '../../engine/analysis/analysis-report.ts';
import { runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let cwd: string;

beforeAll(async () => {
  db = await useTestDatabase();
  cwd = await mkdtemp(path.join(tmpdir(), 'pgwarden-analyze-'));
  await db.pool.query(`
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    CREATE TABLE public.orders (id int PRIMARY KEY, grp int NOT NULL, status text NOT NULL, note text);
    INSERT INTO public.orders SELECT g, g % 500, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'done' END, md5(g::text) FROM generate_series(1, 60000) g;
    ANALYZE public.orders;
    SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0);`);
  for (let i = 0; i < 8; i += 1) await db.pool.query('SELECT id, note FROM public.orders WHERE grp = $1', [i]);
  for (let i = 0; i < 30; i += 1) await db.pool.query('SELECT note FROM public.orders WHERE id = $1', [i + 1]);
});

afterAll(async () => {
  await db.close();
  await rm(cwd, { recursive: true, force: true });
});

/** Every row of public.orders, folded into one value: equal before and after means nothing changed. */
async function ordersChecksum(): Promise<string> {
  const r = await db.pool.query<{ sum: string }>("SELECT md5(string_agg(id || '/' || grp || '/' || status || '/' || coalesce(note, ''), ',' ORDER BY id)) AS sum FROM public.orders");
  return r.rows[0]!.sum;
}

const analyze = (...args: string[]) => runCli(['analyze', '--database-url', db.url, ...args], { cwd });

describe('pgwarden analyze (PostgreSQL 16)', () => {
  it('lists the slow statements from pg_stat_statements with the findings of their plans', async () => {
    const result = await analyze('--top', '5', '--explain', '2');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Slow queries in database ${db.name}`);
    expect(result.stdout).toContain('Top 2 by total time');
    expect(result.stdout).toMatch(/8 .* SELECT id, note FROM public\.orders WHERE grp = \$1/);
    // The statement is normalised: explained with a generic plan, the finding names its node.
    expect(result.stdout).toContain('plan: EXPLAIN (GENERIC_PLAN), PostgreSQL 16');
    expect(result.stdout).toMatch(/medium node \d+ Seq Scan on public\.orders: sequential scan of public\.orders reads an estimated 60,000 rows to keep 120 \(0\.20%\)/);
  });

  it('--json gives the report as data, --format markdown a pull-request comment', async () => {
    const json = JSON.parse((await analyze('--json')).stdout) as WorkloadReport;
    expect(json.kind).toBe('workload');
    expect(json.top.calls[0]!.query).toBe('SELECT note FROM public.orders WHERE id = $1');
    expect(json.top.calls[0]!.calls).toBe(30);
    const markdown = (await analyze('--format', 'markdown')).stdout;
    expect(markdown.startsWith('<!-- pgwarden-analyze -->\n### pgwarden analyze:')).toBe(true);
    expect(markdown).toContain('| # | total | share | calls | mean | max | hit | statement |');
  });

  it('--since measures a window between two snapshots: only what ran in it', async () => {
    const running = analyze('--since', '3s', '--json');
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < 5; i += 1) await db.pool.query('SELECT max(id) FROM public.orders WHERE status = $1', ['open']);
    const result = await running;
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as WorkloadReport;
    expect(report.window.kind).toBe('delta');
    // The statements run before the window (40 of them, in beforeAll) are not in it; this one is.
    // (Under heavy load the first snapshot may come after some of the 5 calls: at least one is inside.)
    expect(report.top.total.map((s) => s.query)).toEqual(['SELECT max(id) FROM public.orders WHERE status = $1']);
    expect(report.top.total[0]!.calls).toBeGreaterThanOrEqual(1);
    expect(report.top.total[0]!.calls).toBeLessThanOrEqual(5);
  });

  it('--since: the shares are of the listed statements, so they add up to the total printed, even with a slow catalog-only one left out', async () => {
    const running = analyze('--since', '3s', '--json', '--top', '20');
    await new Promise((r) => setTimeout(r, 1000));
    await db.pool.query('SELECT pg_sleep(0.3)');
    for (let i = 0; i < 3; i += 1) await db.pool.query('SELECT count(*) FROM public.orders WHERE grp = $1', [i]);
    const report = JSON.parse((await running).stdout) as WorkloadReport;
    expect(report.leftOut.catalogOnly).toBeGreaterThanOrEqual(1);
    const listed = report.top.total;
    expect(listed).toHaveLength(report.window.statementCount);
    expect(listed.reduce((n, s) => n + s.share, 0)).toBeCloseTo(1, 9);
    expect(listed.reduce((n, s) => n + s.totalMs, 0)).toBeCloseTo(report.window.totalMs, 6);
  });

  it('--since labels max as not of the window: pg_stat_statements keeps it since the entry began', async () => {
    const [text, markdown] = [analyze('--since', '2s', '--explain', '1'), analyze('--since', '2s', '--explain', '1', '--format', 'markdown')];
    await new Promise((r) => setTimeout(r, 700));
    await db.pool.query('SELECT note FROM public.orders WHERE id = $1', [7]);
    const [t, m] = [(await text).stdout, (await markdown).stdout];
    expect(t).toMatch(/ +max\*  rows\/call/);
    expect(t).toContain('* max: the longest single call since the entry was created or pg_stat_statements was reset, not only in this window');
    expect(m).toContain('| # | total | share | calls | mean | max* | hit | statement |');
    expect(m).toContain('\\* max: the longest single call since the entry was created');
    // Since the last reset, max is what it says.
    expect((await analyze('--explain', '1')).stdout).toMatch(/ +max  rows\/call/);
  });

  it('--query with --param explains one statement with the values bound', async () => {
    const result = await analyze('--query', 'SELECT * FROM public.orders WHERE grp = $1 AND status = $2', '--param', '7', '--param', 'open');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('method: EXPLAIN with the --param values');
    expect(result.stdout).toContain('$1 = "7"');
    expect(result.stdout).toMatch(/\[ 0\] Seq Scan on public\.orders/);
    expect(result.stdout).toContain("Filter: ((orders.grp = 7) AND (orders.status = 'open'::text))");
  });

  it('a $n statement without values gets a generic plan (PostgreSQL 16+)', async () => {
    const report = JSON.parse((await analyze('--query', 'SELECT * FROM public.orders WHERE id = $1', '--json')).stdout) as QueryReport;
    expect(report.plan.method).toBe('generic-plan');
    expect(report.tree.nodeType).toBe('Index Scan');
    expect(report.tree.indexCond).toBe('(orders.id = $1)');
  });

  it('--analyze of a write runs it in a transaction that is rolled back', async () => {
    const result = await analyze('--query', "UPDATE public.orders SET status = 'gone' WHERE grp = $1", '--param', '3', '--analyze');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('executed in a transaction that was rolled back');
    expect(result.stdout).toMatch(/\[ 0\] Update on public\.orders .*actual .* rows=0 loops=1/);
    const left = await db.pool.query("SELECT count(*)::int AS n FROM public.orders WHERE status = 'gone'");
    expect(left.rows[0].n).toBe(0);
  });

  // 90% of the rows are 'done'; ANALYZE samples 30,000 of the 60,000, so the share it sees wanders by a few tenths.
  it('--analyze with $n and no values runs with values sampled from pg_stats', async () => {
    const report = JSON.parse((await analyze('--query', 'SELECT count(*) FROM public.orders WHERE status = $1', '--analyze', '--json')).stdout) as QueryReport;
    expect(report.plan.method).toBe('sampled');
    expect(report.plan.parameters).toEqual([
      expect.objectContaining({ number: 1, value: 'done', source: 'sampled', note: expect.stringMatching(/^most common value of public\.orders\.status \((89|90)\.\d% of rows\)$/) }),
    ]);
    expect(report.plan.executionMs).toBeGreaterThan(0);
  });

  it('--analyze of a normalised INSERT binds values sampled for each target column, and leaves the table as it was', async () => {
    const before = await ordersChecksum();
    const result = await analyze('--query', 'INSERT INTO public.orders (id, grp, status) VALUES ($1, $2, $3)', '--analyze', '--json');
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as QueryReport;
    expect(report.plan.method).toBe('sampled');
    expect(report.plan.parameters).toEqual([
      // id's values are all distinct (the primary key): a sampled one would collide.
      expect.objectContaining({ number: 1, source: 'sampled', note: expect.stringMatching(/^beyond the largest value of public\.orders\.id/) }),
      expect.objectContaining({ number: 2, source: 'sampled', note: expect.stringMatching(/^most common value of public\.orders\.grp/) }),
      expect.objectContaining({ number: 3, value: 'done', source: 'sampled', note: expect.stringMatching(/^most common value of public\.orders\.status/) }),
    ]);
    expect(Number(report.plan.parameters[0]!.value)).toBeGreaterThan(60_000);
    expect(report.tree.nodeType).toBe('ModifyTable');
    expect(report.plan.sequencesAdvanced).toBe(true);
    expect(await ordersChecksum()).toEqual(before);
  });

  it('a text parameter with no statistics to sample from gets a value, not NULL; the output warns that sequences advance', async () => {
    await db.pool.query('CREATE TABLE public.tags (id serial PRIMARY KEY, label text NOT NULL, weight int NOT NULL, added timestamptz NOT NULL)');
    const result = await analyze('--query', 'INSERT INTO public.tags (label, weight, added) VALUES ($1, $2, $3)', '--analyze');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`$1 = ""`);
    expect(result.stdout).toContain('executed in a transaction that was rolled back, but the sequences it drew values from stay advanced (nextval is never rolled back)');
    const left = await db.pool.query('SELECT count(*)::int AS n FROM public.tags');
    expect(left.rows[0].n).toBe(0);
  });

  it('--analyze of a normalised UPDATE samples the SET value from its column: a NOT NULL text column gets no NULL', async () => {
    const before = await ordersChecksum();
    const result = await analyze('--query', 'UPDATE public.orders SET status = $2 WHERE id = $1', '--analyze', '--json');
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as QueryReport;
    expect(report.plan.parameters).toEqual([
      expect.objectContaining({ number: 1, source: 'sampled', note: expect.stringMatching(/^median of public\.orders\.id/) }),
      expect.objectContaining({ number: 2, value: 'done', source: 'sampled', note: expect.stringMatching(/^most common value of public\.orders\.status/) }),
    ]);
    expect(report.plan.sequencesAdvanced).toBe(false);
    expect(await ordersChecksum()).toEqual(before);
  });

  it('refuses to --analyze a write statement in a read-only session, in one line', async () => {
    const readOnly = new URL(db.url);
    readOnly.searchParams.set('options', '-c default_transaction_read_only=on');
    // libpq decodes only %XX in a URL, not '+' (URLSearchParams writes a space as '+').
    const result = await runCli(['analyze', '--database-url', readOnly.toString().replaceAll('+', '%20'), '--query', 'DELETE FROM public.orders WHERE id = 1', '--analyze'], { cwd });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const [message, ...hint] = result.stderr.trimEnd().split('\n');
    expect(message).toBe('pgwarden: refusing to EXPLAIN ANALYZE a DELETE on a read-only session (transaction_read_only is on): it would have to write');
    expect(hint).toEqual(['  hint: run it against the primary (it runs in a transaction that is rolled back), or drop --analyze for the plan alone']);
    const row = await db.pool.query('SELECT count(*)::int AS n FROM public.orders WHERE id = 1');
    expect(row.rows[0].n).toBe(1);
  });

  it('refuses to --analyze a write statement on a standby, and says why', async () => {
    const result = await runCli(['analyze', '--database-url', db.standbyUrl, '--query', "DELETE FROM public.orders WHERE id = 1", '--analyze'], { cwd });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'pgwarden: refusing to EXPLAIN ANALYZE a DELETE on a standby (the server is in recovery): it would have to write\n' +
        '  hint: run it against the primary (it runs in a transaction that is rolled back), or drop --analyze for the plan alone\n',
    );
  });

  it('a statement the parser rejects is one clear error, with its position', async () => {
    const result = await analyze('--query', 'SELECT * FORM public.orders');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('pgwarden: the statement does not parse: syntax error at or near "FORM" at character 10\n');
  });

  it('a query on a table that no longer exists: one line for --query, and "no plan" in the workload', async () => {
    await db.pool.query('CREATE TABLE public.scratch (id int); INSERT INTO public.scratch SELECT generate_series(1, 10)');
    for (let i = 0; i < 300; i += 1) await db.pool.query('SELECT count(*) FROM public.scratch WHERE id > $1', [i % 5]);
    await db.pool.query('DROP TABLE public.scratch');
    const one = await analyze('--query', 'SELECT count(*) FROM public.scratch WHERE id > 1');
    expect(one.code).toBe(1);
    expect(one.stderr).toBe('pgwarden: cannot explain the statement: relation "public.scratch" does not exist\n');

    const report = JSON.parse((await analyze('--json', '--explain', '10')).stdout) as WorkloadReport;
    const gone = report.analyses.find((a) => a.statement.query.includes('public.scratch'));
    expect(gone?.error).toBe('relation "public.scratch" does not exist');
    expect(report.analyses.some((a) => a.plan !== undefined)).toBe(true);
  });

  it('pg_stat_statements missing: the message gives the two lines that enable it', async () => {
    const bare = await useTestDatabase();
    try {
      const result = await runCli(['analyze', '--database-url', bare.url], { cwd });
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        `pgwarden: pg_stat_statements is not available in database ${bare.name}: the extension is not created\n` +
          '  hint: enable it with:\n' +
          "    shared_preload_libraries = 'pg_stat_statements'   # postgresql.conf, then restart the server\n" +
          '    CREATE EXTENSION pg_stat_statements;                -- in this database\n',
      );
    } finally {
      await bare.close();
    }
  });
});
