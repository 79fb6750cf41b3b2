import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`CREATE SCHEMA app;
    CREATE TABLE app.events (id bigint, tenant_id int NOT NULL, created_at timestamptz NOT NULL) PARTITION BY RANGE (created_at);
    CREATE TABLE app.by_tenant (id bigint, tenant_id int NOT NULL, created_at timestamptz NOT NULL) PARTITION BY LIST (tenant_id);
    CREATE TABLE app.plain (id bigint, created_at timestamptz NOT NULL);
    INSERT INTO app.plain SELECT g, now() FROM generate_series(1, 1000) g;
    ANALYZE app.plain;`);
});
afterAll(async () => {
  await db.close();
});

/** `plan` on one policy file; returns stderr's error lines, `events.yaml:line:col: message`. */
async function planErrors(policy: string): Promise<{ code: number; lines: string[] }> {
  const project = await projectWith({ 'events.yaml': policy });
  const result = await runCli(['plan'], { cwd: project, env: { DATABASE_URL: db.url } });
  const lines = result.stderr.split('\n').filter((l) => l.startsWith('policies/')).map((l) => l.replace(/^policies\//, ''));
  return { code: result.code, lines };
}

const policy = (table: string, ...lines: string[]): string => [`table: ${table}`, 'partitioning:', ...lines.map((l) => `  ${l}`), ''].join('\n');

describe('partition policy errors, before anything touches the database', () => {
  it('rejects a negative premake at its value', async () => {
    const { code, lines } = await planErrors(policy('app.events', 'by: range', 'column: created_at', 'interval: month', 'premake: -1'));
    expect(code).toBe(1);
    expect(lines).toEqual(['events.yaml:6:12: "premake" must be at least 0, got -1']);
  });

  it('rejects an interval that is not a calendar one, suggesting the closest', async () => {
    const { lines } = await planErrors(policy('app.events', 'by: range', 'column: created_at', 'interval: months'));
    expect(lines).toEqual(['events.yaml:5:13: "interval" must be one of day, week, month, quarter, year, got "months" (did you mean "month"?)']);
  });

  it('rejects an unknown key and a retention without keep', async () => {
    const { lines } = await planErrors(policy('app.events', 'by: range', 'column: created_at', 'interval: month', 'premade: 3', 'retention: { then: drop }'));
    expect(lines).toEqual([
      'events.yaml:6:3: unknown key "premade" in partitioning (expected one of: by, column, interval, premake, retention, default_partition, naming) (did you mean "premake"?)',
      'events.yaml:7:14: retention is missing "keep"',
    ]);
  });

  it('rejects a naming pattern that would give two partitions the same name', async () => {
    const { lines } = await planErrors(policy('app.events', 'by: range', 'column: created_at', 'interval: day', 'naming: "{table}_{YYYY}_{MM}"'));
    expect(lines).toEqual(['events.yaml:6:11: naming pattern "{table}_{YYYY}_{MM}" would give two daily partitions the same name (use {YYYY}{MM}{DD})']);
  });

  it('rejects partition names longer than PostgreSQL keeps', async () => {
    const { lines } = await planErrors(policy('app.events', 'by: range', 'column: created_at', 'interval: month', `naming: "{table}_${'x'.repeat(60)}_{YYYY}_{MM}"`));
    expect(lines[0]).toMatch(/^events\.yaml:6:11: partition name "events_x+_2000_00" would be 75 bytes; PostgreSQL allows at most 63/);
  });
});

describe('partition policy errors only the catalog reveals', () => {
  it('names a column the table lacks', async () => {
    const { code, lines } = await planErrors(policy('app.events', 'by: range', 'column: created', 'interval: month'));
    expect(code).toBe(1);
    expect(lines).toEqual(['events.yaml:4:11: partitioning: column "created" does not exist in app.events']);
  });

  it('refuses a time interval on a column that holds no time, retention included', async () => {
    const { lines } = await planErrors(policy('app.events', 'by: range', 'column: tenant_id', 'interval: month', 'retention: { keep: 3 }'));
    expect(lines).toEqual([
      'events.yaml:4:11: partitioning: column tenant_id of app.events is integer; a monthly range needs a date, timestamp or timestamptz column (retention needs a time column too)',
    ]);
  });

  it('refuses to convert a plain table without a primary key, saying which key it needs', async () => {
    const { lines } = await planErrors(policy('app.plain', 'by: range', 'column: created_at', 'interval: month'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^events\.yaml:2:1: partitioning: cannot convert app\.plain online: it has no primary key; .* \(add one that includes created_at, e\.g\. ALTER TABLE app\.plain ADD PRIMARY KEY \(id, created_at\)/);
  });

  it('refuses a table partitioned another way', async () => {
    const { lines } = await planErrors(policy('app.by_tenant', 'by: range', 'column: created_at', 'interval: month'));
    expect(lines).toEqual([
      'events.yaml:2:1: partitioning: app.by_tenant is partitioned by LIST (tenant_id), the policy says RANGE (created_at) (a partition key cannot be changed in place; fix the policy or migrate the table)',
    ]);
  });
});

describe('retention through the CLI', () => {
  it('refuses to detach without --allow-drop, says what leaves, and converges with it', async () => {
    await db.pool.query(`CREATE TABLE app.events_2020_01 PARTITION OF app.events FOR VALUES FROM ('2020-01-01 00:00:00+00') TO ('2020-02-01 00:00:00+00');
      INSERT INTO app.events SELECT g, 1, '2020-01-10 00:00:00+00' FROM generate_series(1, 2000) g; ANALYZE app.events_2020_01;`);
    const project = await projectWith({
      'events.yaml': policy('app.events', 'by: range', 'column: created_at', 'interval: month', 'premake: 1', 'retention: { keep: 12, then: drop }'),
    });
    const env = { DATABASE_URL: db.url };
    const plan = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env });
    expect(plan.code).toBe(2);
    expect(plan.stdout).toMatch(/- detach and drop partition events_2020_01 of app\.events \(concurrently\): ~2,000 rows, [\d.]+ kB leave the table/);
    // The strongest lock is the DROP's, on the table once it is detached; the detach itself is CONCURRENTLY.
    const markdown = await runCli(['plan', '--format', 'markdown'], { cwd: project, env });
    expect(markdown.stdout).toContain('This plan drops or detaches 1 object(s); `apply` needs `--allow-drop`.');
    expect(markdown.stdout).toMatch(/\| `-` \| detach and drop partition events_2020_01 of app\.events \(concurrently\): ~2,000 rows, .* \| ACCESS EXCLUSIVE \| destructive \|/);
    const refused = await runCli(['apply', '--auto-approve'], { cwd: project, env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--allow-drop');
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM app.events`)).rows).toEqual([{ n: 2000 }]);
    const applied = await runCli(['apply', '--auto-approve', '--allow-drop'], { cwd: project, env });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const again = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env });
    expect(again.stdout).toContain('No changes.');
    expect(again.code).toBe(0);
    expect((await db.pool.query(`SELECT to_regclass('app.events_2020_01') AS r`)).rows).toEqual([{ r: null }]);
  });
});
