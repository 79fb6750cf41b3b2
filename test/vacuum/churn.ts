import type pg from 'pg';
import { qualified } from '../../engine/sql/ident.ts';

/**
 * Real bloat: a table with autovacuum off, filled, analyzed, then 40% of its rows updated and 10%
 * deleted. Returns once PostgreSQL's counters show the dead tuples (a backend flushes its table
 * statistics when idle, at most once a second, since PostgreSQL 15).
 */
export async function churnedTable(pool: pg.Pool, schema: string, name: string, rows = 20_000): Promise<void> {
  const table = qualified(schema, name);
  const client = await pool.connect();
  try {
    await client.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, state text NOT NULL, payload text NOT NULL) WITH (autovacuum_enabled = false)`);
    await client.query(`INSERT INTO ${table} SELECT g, 'queued', repeat('x', 80) FROM generate_series(1, $1::int) g`, [rows]);
    // Flushed first: ANALYZE sets the live count outright, and an insert still pending in this backend
    // would be added on top of it afterwards (PostgreSQL 15+).
    await client.query('SELECT pg_stat_force_next_flush()');
    await client.query(`ANALYZE ${table}`);
    await client.query(`UPDATE ${table} SET state = 'done' WHERE id % 10 < 4`);
    await client.query(`DELETE FROM ${table} WHERE id % 10 = 9`);
    await client.query('SELECT pg_stat_force_next_flush()');
  } finally {
    client.release();
  }
  await waitFor(async () => (await deadTuples(pool, schema, name)) > rows / 10, `dead tuples of ${schema}.${name} to show`);
}

export async function deadTuples(pool: pg.Pool, schema: string, name: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT pg_stat_get_dead_tuples($1::regclass)::float8 AS n', [qualified(schema, name)]);
  return rows[0]?.n ?? 0;
}

export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
