import { describe, expect, it } from 'vitest';
import { columnUsage, type TableShape } from '../../engine/analysis/column-usage.ts';
import { parseStatement, type ParsedStatement } from '../../engine/analysis/sql-statement.ts';
import { WORKLOAD_QUERIES } from '../../engine/example/workload-queries.ts';

const TABLES: Record<string, string[]> = {
  events: ['id', 'tenant_id', 'server_id', 'kind', 'status', 'created_at', 'payload'],
  incidents: ['id', 'tenant_id', 'server_id', 'severity', 'status', 'title', 'opened_at', 'acknowledged_at', 'resolved_at'],
  servers: ['id', 'tenant_id', 'hostname', 'retired'],
};
const resolve = (schema: string | undefined, name: string): TableShape | undefined =>
  TABLES[name] && (schema === undefined || schema === 'public') ? { schema: 'public', name, columns: TABLES[name]! } : undefined;

async function parsed(sql: string): Promise<ParsedStatement> {
  const p = await parseStatement(sql);
  if (!p.ok) throw new Error(p.message);
  return p;
}

function query(name: string): string {
  const q = WORKLOAD_QUERIES.find((w) => w.name === name);
  if (!q) throw new Error(name);
  return q.sql;
}

describe('statements read by the PostgreSQL parser', () => {
  it('classifies statements and tells reads from writes', async () => {
    expect(await parsed('SELECT 1')).toMatchObject({ kind: 'select', readOnly: true, parameterCount: 0 });
    expect(await parsed('SELECT * FROM t WHERE id = $2 FOR UPDATE')).toMatchObject({ kind: 'select', readOnly: false, parameterCount: 2 });
    expect(await parsed('WITH gone AS (DELETE FROM t RETURNING id) SELECT * FROM gone')).toMatchObject({ kind: 'select', readOnly: false });
    expect(await parsed('UPDATE t SET a = 1')).toMatchObject({ kind: 'update', readOnly: false });
    expect(await parsed('MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE')).toMatchObject({ kind: 'merge' });
    expect(await parsed('VACUUM t')).toMatchObject({ kind: 'utility' });
  });

  it('names the relations a statement reads, but not its CTEs', async () => {
    const p = await parsed('WITH recent AS (SELECT * FROM public.events) SELECT * FROM recent JOIN servers s ON s.id = recent.server_id');
    expect(p.relations).toEqual([{ schema: 'public', name: 'events' }, { name: 'servers' }]);
  });

  it('names the table a write statement writes to, as well as those it reads', async () => {
    expect((await parsed('INSERT INTO public.tags (label) VALUES ($1)')).relations).toEqual([{ schema: 'public', name: 'tags' }]);
    expect((await parsed('UPDATE orders SET status = $2 WHERE id = $1')).relations).toEqual([{ name: 'orders' }]);
    expect((await parsed('DELETE FROM orders o USING public.gone g WHERE g.id = o.id')).relations).toEqual([{ schema: 'public', name: 'gone' }, { name: 'orders' }]);
  });

  it('rejects what is not exactly one statement, with the position of a syntax error', async () => {
    expect(await parseStatement('SELEC 1')).toMatchObject({ ok: false, message: 'syntax error at or near "SELEC"', position: 0 });
    expect(await parseStatement('SELECT 1; DROP TABLE t')).toMatchObject({ ok: false, message: '2 statements in one text; give one at a time' });
    expect(await parseStatement('  -- nothing  ')).toMatchObject({ ok: false, message: 'no SQL statement in the text' });
  });

  it('rewrites the typed literals pg_stat_statements normalises into text the server accepts', async () => {
    const p = await parsed("SELECT 1 FROM events WHERE created_at < $2::timestamptz + interval $3 AND created_at > date $4 - interval $5 hour");
    expect(p.repaired).toBe(true);
    expect(p.text).toBe('SELECT 1 FROM events WHERE created_at < $2::timestamptz + CAST($3 AS interval) AND created_at > CAST($4 AS date) - CAST($5 AS interval hour)');
    expect((await parsed(p.text)).repaired).toBe(false);
  });
});

describe('how a statement uses the columns of its tables', () => {
  it('a tenant\'s latest events: equality on tenant_id, ORDER BY created_at DESC, LIMIT', async () => {
    const p = await parsed(query('tenant_recent_events'));
    const [access] = columnUsage(p.tree, p.text, resolve).accesses;
    expect(access).toMatchObject({
      table: { name: 'events' },
      equality: [{ column: 'tenant_id', operator: '=', operand: { kind: 'param', number: 1 } }],
      orderBy: [{ column: 'created_at', direction: 'desc' }],
      limit: 50,
      allColumns: false,
    });
    expect(access!.referenced).toEqual(['created_at', 'id', 'kind', 'payload', 'server_id', 'status', 'tenant_id']);
  });

  it('a server\'s day: a range on created_at from both sides', async () => {
    const p = await parsed(query('server_day_events'));
    const usage = columnUsage(p.tree, p.text, resolve);
    expect(usage.accesses[0]!.range.map((r) => [r.column, r.operator])).toEqual([
      ['created_at', '>='],
      ['created_at', '<'],
    ]);
    expect(usage.parameters.map((x) => [x.number, x.column])).toEqual([
      [1, 'server_id'],
      [2, 'created_at'],
    ]);
  });

  it('open incidents: the constant predicate a partial index can be made of, and a mixed-direction ORDER BY', async () => {
    const p = await parsed(query('tenant_open_incidents'));
    const [access] = columnUsage(p.tree, p.text, resolve).accesses;
    expect(access!.constantPredicates).toEqual([{ kind: 'compare', column: 'status', operator: '<>', value: "'resolved'", sql: "status <> 'resolved'" }]);
    expect(access!.orderBy).toEqual([
      { column: 'severity', direction: 'asc' },
      { column: 'opened_at', direction: 'desc' },
    ]);
  });

  it('resolves aliases and joins, and sees the subquery of an UPDATE as its own scope', async () => {
    const join = await parsed('SELECT e.id FROM events e JOIN servers s ON s.id = e.server_id WHERE s.tenant_id = $1 AND NOT s.retired AND e.kind IS NULL');
    const [events, servers] = columnUsage(join.tree, join.text, resolve).accesses;
    expect(events!.joins).toEqual([{ column: 'server_id', other: 'public.servers.id' }]);
    expect(events!.constantPredicates).toMatchObject([{ kind: 'null', column: 'kind', negated: false }]);
    expect(servers!.equality.map((e) => e.column)).toEqual(['tenant_id']);
    expect(servers!.constantPredicates).toMatchObject([{ kind: 'bool', column: 'retired', value: false }]);

    const update = await parsed(query('resolve_incident'));
    const [target, inner] = columnUsage(update.tree, update.text, resolve).accesses;
    expect(target).toMatchObject({ write: 'update', updatedColumns: ['status', 'acknowledged_at', 'resolved_at'] });
    expect(inner).toMatchObject({ equality: [{ column: 'tenant_id' }], orderBy: [{ column: 'opened_at', direction: 'asc' }], limit: 1 });
  });

  it('reports a table the resolver does not know', async () => {
    const p = await parsed('SELECT * FROM public.gone WHERE x = 1');
    expect(columnUsage(p.tree, p.text, resolve).unknownTables).toEqual(['public.gone']);
  });
});
