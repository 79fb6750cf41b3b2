import { writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
const env = (): NodeJS.ProcessEnv => ({ DATABASE_URL: db.url });

async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db.pool.query(text, values)).rows;
}

async function holder(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url, application_name: 'test lock holder' });
  await client.connect();
  return client;
}

const TENANT_INDEX = `table: app.accounts\nindexes:\n  - name: accounts_tenant_idx\n    columns: [tenant_id]\n`;

beforeAll(async () => {
  db = await useTestDatabase();
});
afterAll(async () => {
  await db.close();
});
beforeEach(async () => {
  await sql(`DROP SCHEMA IF EXISTS app CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA app`);
  await sql(`CREATE TABLE app.accounts (id int PRIMARY KEY, tenant_id int, email text)`);
  await sql(`INSERT INTO app.accounts SELECT g, g % 10, 'user' || g || '@example.com' FROM generate_series(1, 5000) g`);
});

describe('apply under faults', () => {
  it('waits at most lock_timeout per try on a locked table, retries, reports, and never blocks writers', async () => {
    const lock = await holder();
    await lock.query(`BEGIN; LOCK TABLE app.accounts IN SHARE UPDATE EXCLUSIVE MODE`);
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    const started = Date.now();
    const applying = runCli(['apply', '--auto-approve', '--lock-timeout', '300ms', '--retries', '2'], { cwd: project, env: env() });
    // A writer arriving while pgwarden waits for its lock is not queued behind it.
    await new Promise((r) => setTimeout(r, 150));
    const writeStarted = Date.now();
    await sql(`INSERT INTO app.accounts VALUES (900001, 1, 'w@x')`);
    const writeMs = Date.now() - writeStarted;
    const result = await applying;
    const elapsed = Date.now() - started;
    await lock.query('ROLLBACK');
    await lock.end();

    expect(writeMs).toBeLessThan(300);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('could not take its lock within lock_timeout (300 ms) after 3 tries');
    expect(result.stderr).toContain('step: CREATE INDEX CONCURRENTLY "accounts_tenant_idx"');
    expect(result.stdout).toMatch(/retry 1 in 500 ms[\s\S]*retry 2 in 1000 ms/);
    // Three tries of 300 ms plus 1.5 s of backoff: bounded, not hung.
    expect(elapsed).toBeLessThan(10_000);
    const leftovers = await sql(`SELECT count(*)::int AS n FROM pg_index WHERE indrelid = 'app.accounts'::regclass AND NOT indisvalid`);
    expect(leftovers[0]?.['n']).toBe(0);
    const history = await sql(`SELECT outcome, error FROM pgwarden.history ORDER BY id DESC LIMIT 1`);
    expect(history[0]?.['outcome']).toBe('failed');

    const retried = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    expect(retried.code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
  });

  it('reports the duplicate key when a unique build fails, and leaves no INVALID index behind', async () => {
    await sql(`INSERT INTO app.accounts VALUES (6001, 1, 'twice@example.com'), (6002, 2, 'twice@example.com')`);
    const project = await projectWith({
      'accounts.yaml': `table: app.accounts\nindexes:\n  - name: accounts_email_key\n    columns: [email]\n    unique: true\n`,
    });
    const result = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Key (email)=(twice@example.com) is duplicated');
    expect(result.stdout).toContain('dropping the INVALID leftover app.accounts_email_key');
    const rows = await sql(`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'accounts_email_key'`);
    expect(rows[0]?.['n']).toBe(0);
  });

  it('lets only one apply run at a time, and the second names the holder', async () => {
    const other = await holder();
    await other.query(`SELECT pg_advisory_lock(1886869345, 1)`);
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    const result = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    await other.end();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/another pgwarden apply is running on this database \(pid \d+, "test lock holder"/);
    const built = await sql(`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'accounts_tenant_idx'`);
    expect(built[0]?.['n']).toBe(0);
  });

  it('refuses a saved plan once the catalog has moved, with the stale-plan exit code 3', async () => {
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    const saved = await runCli(['plan', '--out', 'plan.json'], { cwd: project, env: env() });
    expect(saved.code).toBe(0);
    const plan = JSON.parse(await readFile(path.join(project, 'plan.json'), 'utf8')) as { fingerprint: string; formatVersion: number };
    expect(plan.formatVersion).toBe(1);
    await sql(`CREATE INDEX meanwhile_idx ON app.accounts (email)`);
    const stale = await runCli(['apply', '--auto-approve', '--plan', 'plan.json'], { cwd: project, env: env() });
    expect(stale.code).toBe(3);
    expect(stale.stderr).toContain('the saved plan is stale');
    expect((await sql(`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'accounts_tenant_idx'`))[0]?.['n']).toBe(0);
  });

  it('applies a saved plan whose fingerprint still matches', async () => {
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    expect((await runCli(['plan', '--out', 'plan.json'], { cwd: project, env: env() })).code).toBe(0);
    const applied = await runCli(['apply', '--auto-approve', '--plan', 'plan.json'], { cwd: project, env: env() });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
  });

  it('runs the statements it plans itself, never ones edited into a saved plan', async () => {
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    expect((await runCli(['plan', '--out', 'plan.json'], { cwd: project, env: env() })).code).toBe(0);
    const file = path.join(project, 'plan.json');
    const plan = JSON.parse(await readFile(file, 'utf8')) as { changes: { steps: { sql?: string }[] }[] };
    const step = plan.changes[0]!.steps.find((s) => s.sql !== undefined)!;
    step.sql = `CREATE TABLE app.smuggled (); ${step.sql!}`;
    await writeFile(file, JSON.stringify(plan));

    const result = await runCli(['apply', '--auto-approve', '--plan', 'plan.json'], { cwd: project, env: env() });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('the saved plan differs from the plan these policies give for this catalog');
    expect((await sql(`SELECT to_regclass('app.smuggled') IS NULL AS absent, to_regclass('app.accounts_tenant_idx') IS NULL AS unbuilt`))[0]).toEqual({ absent: true, unbuilt: true });
  });

  it('lets a second apply started while the first is still working exit 1 naming the first', async () => {
    const lock = await holder();
    await lock.query(`BEGIN; LOCK TABLE app.accounts IN SHARE UPDATE EXCLUSIVE MODE`);
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    const first = runCli(['apply', '--auto-approve', '--lock-timeout', '4s', '--retries', '0'], { cwd: project, env: env() });
    // The first apply holds the apply lock while its build waits for the table lock.
    for (let i = 0; i < 50; i += 1) {
      const waiting = await sql(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'CREATE INDEX CONCURRENTLY%'`);
      if (waiting[0]?.['n'] === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const second = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    await lock.query('ROLLBACK');
    await lock.end();
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/another pgwarden apply is running on this database \(pid \d+, "pgwarden apply/);
    expect((await first).code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
  });

  it('keeps a writer queued behind a blocking step for at most lock_timeout', async () => {
    await sql(`CREATE TABLE app.metrics (at timestamptz NOT NULL, host text) PARTITION BY RANGE (at)`);
    await sql(`CREATE TABLE app.metrics_2026 PARTITION OF app.metrics FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`);
    // An open write transaction: CREATE INDEX ... ON ONLY the parent needs SHARE, which waits for it,
    // and every writer arriving meanwhile queues behind pgwarden's request.
    const writer = await holder();
    await writer.query(`BEGIN; INSERT INTO app.metrics VALUES ('2026-06-01', 'a')`);
    const project = await projectWith({ 'metrics.yaml': `table: app.metrics\nindexes:\n  - name: metrics_host_idx\n    columns: [host]\n` });
    const applying = runCli(['apply', '--auto-approve', '--lock-timeout', '400ms', '--retries', '0'], { cwd: project, env: env() });
    for (let i = 0; i < 50; i += 1) {
      const waiting = await sql(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%ON ONLY%'`);
      if (waiting[0]?.['n'] === 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const t0 = Date.now();
    await sql(`INSERT INTO app.metrics VALUES ('2026-06-02', 'b')`);
    const queuedMs = Date.now() - t0;
    const result = await applying;
    await writer.query('ROLLBACK');
    await writer.end();

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('lock_timeout (400 ms)');
    expect(queuedMs).toBeLessThan(1500);
    expect((await runCli(['apply', '--auto-approve'], { cwd: project, env: env() })).code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
  });

  it('plans with a clear error, not a hang, while a declared table is locked', async () => {
    const lock = await holder();
    await lock.query(`BEGIN; LOCK TABLE app.accounts IN ACCESS EXCLUSIVE MODE`);
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    const t0 = Date.now();
    const result = await runCli(['plan'], { cwd: project, env: env() });
    const ms = Date.now() - t0;
    await lock.query('ROLLBACK');
    await lock.end();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('another session holds a lock on a declared table');
    expect(ms).toBeLessThan(15_000);
  });

  it('rejects a file that is not a plan', async () => {
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    await writeFile(path.join(project, 'plan.json'), '{"changes": []}');
    const result = await runCli(['apply', '--auto-approve', '--plan', 'plan.json'], { cwd: project, env: env() });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is not a pgwarden plan');
  });

  it('cancels a running build on interrupt, reports what is left, and the next apply finishes the job', async () => {
    await sql(`INSERT INTO app.accounts SELECT g, g % 10, 'bulk' || g FROM generate_series(10001, 400000) g`);
    const lock = await holder();
    // An old transaction makes the concurrent build wait in its snapshot phase, where we interrupt it.
    await lock.query(`BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM app.accounts`);
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    const controller = new AbortController();
    const applying = runCli(['apply', '--auto-approve', '--lock-timeout', '20s'], { cwd: project, env: env(), signal: controller.signal });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      // The view is cluster-wide, and apply itself builds indexes first (its pgwarden schema's keys):
      // only the concurrent build on this table counts.
      const building = await sql(
        `SELECT count(*)::int AS n FROM pg_stat_progress_create_index WHERE relid = 'app.accounts'::regclass AND command = 'CREATE INDEX CONCURRENTLY'`,
      );
      if (Number(building[0]?.['n']) > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    controller.abort();
    const result = await applying;
    await lock.query('ROLLBACK');
    await lock.end();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('canceling statement due to user request');
    // The old transaction that held the build up also holds up DROP INDEX CONCURRENTLY: reported, not hung on.
    expect(result.stderr).toContain('the INVALID leftover app.accounts_tenant_idx could not be dropped now');
    expect((await sql(`SELECT outcome FROM pgwarden.history ORDER BY id DESC LIMIT 1`))[0]?.['outcome']).toBe('interrupted');
    const next = await runCli(['plan'], { cwd: project, env: env() });
    expect(next.stdout).toContain('± rebuild INVALID index accounts_tenant_idx');
    expect((await runCli(['apply', '--auto-approve'], { cwd: project, env: env() })).code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
  });

  it('stops retrying when the old snapshot that failed a build also blocks dropping its leftover, and names that session', async () => {
    const old = await holder();
    const oldPid = Number((await old.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
    await old.query(`BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM app.accounts`);
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    const result = await runCli(['apply', '--auto-approve', '--lock-timeout', '500ms', '--retries', '3'], { cwd: project, env: env() });
    await old.query('ROLLBACK');
    await old.end();

    expect(result.code).toBe(1);
    expect(result.stdout).not.toContain('retry 1');
    expect(result.stderr).not.toContain('already exists');
    expect(result.stderr).toContain('could not take its lock within lock_timeout (500 ms) after 1 tries');
    expect(result.stderr).toContain('the INVALID leftover app.accounts_tenant_idx could not be dropped now');
    expect(result.stderr).toMatch(
      new RegExp(`waits for these older transactions: pid ${oldPid} \\(idle in transaction, transaction open \\d+ s: .*SELECT count\\(\\*\\) FROM`),
    );
    expect(result.stderr).toContain('hint: end those sessions or let them finish');
    const next = await runCli(['plan'], { cwd: project, env: env() });
    expect(next.stdout).toContain('± rebuild INVALID index accounts_tenant_idx');
    expect((await runCli(['apply', '--auto-approve'], { cwd: project, env: env() })).code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
  });

  it('resumes a partitioned build whose partition index an old snapshot left INVALID and undroppable', async () => {
    await sql(`CREATE TABLE app.metrics (at timestamptz NOT NULL, host text) PARTITION BY RANGE (at)`);
    await sql(`CREATE TABLE app.metrics_2026 PARTITION OF app.metrics FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`);
    await sql(`CREATE TABLE app.metrics_2027 PARTITION OF app.metrics FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')`);
    await sql(`INSERT INTO app.metrics SELECT '2026-01-01'::timestamptz + g * interval '1 hour', 'h' || (g % 7) FROM generate_series(1, 10000) g`);
    const old = await holder();
    await old.query(`BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM app.metrics`);
    const project = await projectWith({ 'metrics.yaml': `table: app.metrics\nindexes:\n  - name: metrics_host_idx\n    columns: [host]\n` });
    const failed = await runCli(['apply', '--auto-approve', '--lock-timeout', '500ms'], { cwd: project, env: env() });
    await old.query('ROLLBACK');
    await old.end();
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('the INVALID leftover app.metrics_2026_metrics_host_idx could not be dropped now');

    const next = await runCli(['plan'], { cwd: project, env: env() });
    expect(next.stdout).toContain('DROP INDEX CONCURRENTLY IF EXISTS "app"."metrics_2026_metrics_host_idx"');
    expect(next.stdout).not.toContain('DROP INDEX IF EXISTS "app"."metrics_host_idx"');
    expect((await runCli(['apply', '--auto-approve'], { cwd: project, env: env() })).code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
    const valid = await sql(`SELECT bool_and(indisvalid) AS ok, count(*)::int AS n FROM pg_index WHERE indexrelid::regclass::text LIKE 'app.metrics%host_idx'`);
    expect(valid[0]).toEqual({ ok: true, n: 3 });
  });

  it('cancels a build that runs longer than --build-timeout, drops its INVALID leftover and says so', async () => {
    await sql(`INSERT INTO app.accounts SELECT g, g % 10, md5(g::text) || '@example.com' FROM generate_series(10001, 600000) g`);
    const project = await projectWith({ 'accounts.yaml': `table: app.accounts\nindexes:\n  - name: accounts_email_idx\n    columns: [email]\n` });
    const result = await runCli(['apply', '--auto-approve', '--build-timeout', '150ms'], { cwd: project, env: env() });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('the build ran longer than the build timeout (--build-timeout, 150 ms) and was cancelled');
    expect(result.stderr).toContain('the INVALID leftover app.accounts_email_idx was dropped');
    expect(result.stdout).toContain('dropping the INVALID leftover app.accounts_email_idx');
    expect((await sql(`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'accounts_email_idx'`))[0]?.['n']).toBe(0);
    expect((await runCli(['apply', '--auto-approve'], { cwd: project, env: env() })).code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
  });

  it('cancels a running statement that is not a build on interrupt', async () => {
    const lock = await holder();
    await lock.query(`BEGIN; LOCK TABLE app.accounts IN SHARE UPDATE EXCLUSIVE MODE`);
    // A plan with no index build at all: one ALTER TABLE ... SET (...), which waits for the lock.
    const project = await projectWith({ 'accounts.yaml': `table: app.accounts\nvacuum:\n  autovacuum: { vacuum_scale_factor: 0.02 }\n` });
    const controller = new AbortController();
    const started = Date.now();
    const applying = runCli(['apply', '--auto-approve', '--lock-timeout', '60s', '--retries', '0'], { cwd: project, env: env(), signal: controller.signal });
    for (let i = 0; i < 100; i += 1) {
      const waiting = await sql(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE%'`,
      );
      if (waiting[0]?.['n'] === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    controller.abort();
    const result = await applying;
    const ms = Date.now() - started;
    await lock.query('ROLLBACK');
    await lock.end();

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('canceling statement due to user request');
    expect(ms).toBeLessThan(20_000);
    expect((await sql(`SELECT outcome FROM pgwarden.history ORDER BY id DESC LIMIT 1`))[0]?.['outcome']).toBe('interrupted');
    expect((await sql(`SELECT reloptions FROM pg_class WHERE oid = 'app.accounts'::regclass`))[0]?.['reloptions']).toBeNull();
    expect((await runCli(['apply', '--auto-approve'], { cwd: project, env: env() })).code).toBe(0);
    expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() })).code).toBe(0);
  });

  it('says which sessions a concurrent build is waiting for', async () => {
    const lock = await holder();
    await lock.query(`BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM app.accounts`);
    const project = await projectWith({ 'accounts.yaml': TENANT_INDEX });
    const applying = runCli(['apply', '--auto-approve', '--lock-timeout', '2s', '--retries', '0'], { cwd: project, env: env() });
    const result = await applying;
    await lock.query('ROLLBACK');
    await lock.end();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/waiting for pid \d+ \(idle in transaction, transaction open \d+ s: .*SELECT count\(\*\) FROM/);
  });
});
