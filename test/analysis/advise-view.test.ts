import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../engine/advisor/advise.ts';
import { parseStatement } from '../../engine/analysis/sql-statement.ts';
import { viewMapping } from '../../engine/analysis/view-mapping.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import { runCli } from '../support/cli.ts';

// The suite's PostgreSQL 16: statements that read a table only through views. A view over one table
// (renamed columns, its own WHERE) is the table to the advisor; a view over a join is read as it is.
let db: TestDatabase;
let dir: string;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`
    CREATE TABLE public.events (id bigint PRIMARY KEY, tenant int NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL, body text);
    INSERT INTO public.events SELECT g, g % 500, CASE WHEN g % 10 = 0 THEN 'open' ELSE 'closed' END, '2026-01-01'::timestamptz + g * interval '1 minute', repeat('x', 40)
      FROM generate_series(1, 100000) g;
    CREATE TABLE public.tenants (id int PRIMARY KEY, name text NOT NULL);
    INSERT INTO public.tenants SELECT g, 't' || g FROM generate_series(0, 499) g;
    ANALYZE public.events, public.tenants;
    CREATE VIEW public.open_events (event_id, account, at) AS SELECT id, tenant, created_at FROM public.events WHERE status = 'open';
    CREATE VIEW public.named_events AS SELECT e.id, t.name, e.created_at FROM public.events e JOIN public.tenants t ON t.id = e.tenant;`);
  dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-view-'));
  await writeFile(path.join(dir, 'workload.sql'), `-- calls: 500
SELECT event_id, at FROM open_events WHERE account = $1 ORDER BY at DESC LIMIT 20;

-- calls: 10
SELECT count(*) FROM named_events WHERE name = $1;
`);
});

afterAll(async () => {
  await db?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('advise on statements that read a table through a view', () => {
  it('advises the base table on the columns the view renames, with the view\'s own predicate', async () => {
    const result = await runCli(['advise', '--database-url', db.url, '--workload', 'workload.sql', '--json'], { cwd: dir });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as AdviceReport;
    expect(report.skipped).toEqual([]);
    const onEvents = report.indexes.filter((i) => i.table === 'events');
    expect(onEvents.length).toBeGreaterThan(0);
    const first = onEvents[0]!;
    expect(first.keys[0]!.column).toBe('tenant');
    expect(first.statements.map((s) => s.queryId)).toContain('workload.sql:2');
    expect(first.statements[0]!.accessBefore).toBe('Seq Scan on public.events');
    // Nothing is advised on a view, and no candidate names a view's column.
    expect(report.indexes.every((i) => i.table === 'events' || i.table === 'tenants')).toBe(true);
    expect(report.indexes.flatMap((i) => i.keys.map((k) => k.column))).not.toContain('account');
    // The view over a join is read as it is: its statement is planned, with nothing to index through it.
    expect(report.ignored).toBe(1);
  });

  it('maps a view\'s columns to its table\'s from the definition the server prints, with the view\'s constant predicate', async () => {
    const definition = (await db.pool.query<{ d: string }>("SELECT pg_get_viewdef('public.open_events'::regclass) AS d")).rows[0]!.d;
    const parsed = await parseStatement(definition);
    if (!parsed.ok) throw new Error(parsed.message);
    const events = { schema: 'public', name: 'events', columns: ['id', 'tenant', 'status', 'created_at', 'body'] };
    const view = { schema: 'public', name: 'open_events', columns: ['event_id', 'account', 'at'] };
    const m = viewMapping(view, parsed.tree, parsed.text, (_schema, name) => (name === 'events' ? events : undefined));
    expect(m?.base).toBe(events);
    expect([...(m?.columns ?? [])]).toEqual([['event_id', 'id'], ['account', 'tenant'], ['at', 'created_at']]);
    expect(m?.constantPredicates.map((p) => (p.kind === 'compare' ? [p.column, p.operator, p.value] : p.kind))).toEqual([['status', '=', "'open'::text"]]);
  });
});
