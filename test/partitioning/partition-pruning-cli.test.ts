import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let cwd: string;

beforeAll(async () => {
  db = await useTestDatabase();
  cwd = await mkdtemp(path.join(tmpdir(), 'pgwarden-pruning-'));
  const months = Array.from({ length: 12 }, (_, m) => {
    const from = `2026-${String(m + 1).padStart(2, '0')}-01`;
    const to = m === 11 ? '2027-01-01' : `2026-${String(m + 2).padStart(2, '0')}-01`;
    return `CREATE TABLE events_2026_${String(m + 1).padStart(2, '0')} PARTITION OF events FOR VALUES FROM ('${from}') TO ('${to}');`;
  });
  await db.pool.query(`
    SET TimeZone = 'UTC';
    CREATE TABLE events (id bigint, created_at timestamptz NOT NULL, kind text) PARTITION BY RANGE (created_at);
    ${months.join('\n')}
    CREATE TABLE events_default PARTITION OF events DEFAULT;
    INSERT INTO events SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour', 'k' || (g % 7) FROM generate_series(0, 8759) g;
    ANALYZE events;`);
});

afterAll(async () => {
  await db.close();
  await rm(cwd, { recursive: true, force: true });
});

const analyze = (...args: string[]) => runCli(['analyze', '--database-url', db.url, ...args], { cwd });

describe('pgwarden analyze --query on a table partitioned by month (13 partitions with the default)', () => {
  it('a range of constants is pruned by the planner: one partition scanned', async () => {
    const result = await analyze('--query', "SELECT count(*) FROM events WHERE created_at >= '2026-11-01' AND created_at < '2026-12-01'", '--analyze');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('partitions: public.events: 1 of 13 partitions scanned, 92% pruned (12 at plan time)');
    expect(result.stdout).toContain('on public.events_2026_11');
    expect(result.stdout).not.toContain('events_2026_10');
  });

  it('a --param the planner cannot fold (a date compared with timestamptz is only stable) is pruned at executor startup: Subplans Removed', async () => {
    const result = await analyze('--query', 'SELECT count(*) FROM events WHERE created_at >= $1::date AND created_at < $2::date', '--param', '2026-06-10', '--param', '2026-07-20', '--analyze');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('method: EXPLAIN ANALYZE with the --param values');
    expect(result.stdout).toMatch(/Subplans Removed: 11/);
    expect(result.stdout).toContain('partitions: public.events: 2 of 13 partitions scanned, 84% pruned (11 at executor startup)');
  });

  it('a generic plan ($n, no values) cannot prune: it says PostgreSQL prunes at executor startup, and raises no "none pruned" finding', async () => {
    const result = await analyze('--query', 'SELECT count(*) FROM events WHERE created_at >= $1 AND created_at < $2');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('method: EXPLAIN (GENERIC_PLAN)');
    expect(result.stdout).toContain(
      'partitions: public.events: 13 of 13 partitions in the plan, 0% pruned in this generic plan; the partition key is compared with $n, so each execution prunes at executor startup once it has values (--param shows it)',
    );
    expect(result.stdout).not.toContain('none pruned');
  });

  it('a generic plan that filters on another column still gets the "none pruned" finding', async () => {
    const result = await analyze('--query', 'SELECT count(*) FROM events WHERE kind = $1');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('partitions: public.events: 13 of 13 partitions in the plan, 0% pruned\n');
    expect(result.stdout).toContain('scans all 13 partitions of public.events: none pruned');
  });
});

