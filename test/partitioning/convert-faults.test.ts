import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { apply, type ApplyEvent } from '../../engine/apply/apply.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * Interrupting a conversion at each phase: the process killed (SIGKILL) during the copy and during the
 * swap, the connection terminated mid-batch, Ctrl-C, a long reader at the swap. Each time the old table
 * stays the live one, the next apply converges, nothing is lost and nothing of pgwarden's is left.
 * The copy is held at a known point by a row lock another session holds, the swap by a reader's lock:
 * the tests wait on what pg_stat_activity says, never for a time.
 */
let db: TestDatabase;
// The package's bin: the compiled CLI when it is current, else the sources through tsx.
const BIN = fileURLToPath(new URL('../../bin/pgwarden.js', import.meta.url));
/** Sessions and processes a test opened: closed after it even when it fails, so the next one starts clean. */
const opened: { clients: pg.Client[]; children: ResultPromise[] } = { clients: [], children: [] };

const POLICY = `
table: app.events
indexes:
  - name: events_kind_idx
    columns: [kind]
partitioning:
  by: range
  column: created_at
  interval: month
  premake: 1
  default_partition: true
`;

async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db.pool.query(text, values)).rows;
}

async function until(condition: () => Promise<boolean>, what: string, child?: ResultPromise, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: { exitCode?: number; stdout?: unknown; stderr?: unknown } | null = null;
  void child?.then((r) => (exited = r));
  while (!(await condition())) {
    if (exited !== null) {
      const r = exited as { exitCode?: number; stdout?: unknown; stderr?: unknown };
      throw new Error(`the apply exited (${r.exitCode}) before ${what}: ${String(r.stdout)} ${String(r.stderr)}`);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The apply's own session, waiting on a lock while running `statement`. */
async function applyWaiting(statement: string): Promise<boolean> {
  const rows = await sql(
    `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'pgwarden apply%' AND wait_event_type = 'Lock' AND query LIKE $1`,
    [`${statement}%`],
  );
  return rows.length > 0;
}

async function noApplySession(): Promise<boolean> {
  const rows = await sql(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'pgwarden apply%'`);
  return rows.length === 0;
}

async function holder(statement: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  client.on('error', () => undefined);
  await client.connect();
  opened.clients.push(client);
  await client.query('BEGIN');
  await client.query(statement);
  return client;
}

function cliApply(project: string, ...args: string[]): ResultPromise {
  const child = execa('node', [BIN, 'apply', '--auto-approve', '--lock-timeout', '1s', ...args], {
    cwd: project,
    env: { DATABASE_URL: db.url },
    reject: false,
  });
  opened.children.push(child);
  return child;
}

async function applyInProcess(project: string, options: { allowDrop?: boolean; onEvent?: (e: ApplyEvent) => void; signal?: AbortSignal; afterBatch?: () => void } = {}): Promise<void> {
  const { desired } = await loadPolicies(path.join(project, 'policies'));
  await apply({
    databaseUrl: db.url,
    desired,
    allowDrop: options.allowDrop ?? false,
    lockTimeoutMs: 1000,
    buildTimeoutMs: 0,
    retries: 20,
    backoffMs: 50,
    now: () => new Date(),
    who: { actor: 'test', gitCommit: null, gitBranch: null },
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.afterBatch ? { conversion: { initialBatchRows: 500, targetBatchMs: 1, afterBatch: options.afterBatch } } : {}),
  });
}

async function rows(table: string): Promise<string[]> {
  return (await sql(`SELECT t::text AS r FROM ${table} t ORDER BY id, created_at`)).map((r) => String(r['r']));
}

async function leftovers(): Promise<string[]> {
  const found = await sql(`
    SELECT 'trigger ' || tgname AS what FROM pg_trigger WHERE tgname LIKE 'pgwarden_convert%'
    UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proname LIKE 'convert_capture_%'
    UNION ALL SELECT 'table ' || relname FROM pg_class WHERE relname LIKE '%_pgwarden_convert' OR relname LIKE '%_pgwarden_new'
    ORDER BY 1`);
  return found.map((r) => String(r['what']));
}

/** The state an interrupted conversion must leave: the plain table live, captured, and the plan saying it resumes. */
async function expectResumable(project: string): Promise<void> {
  const [kind] = await sql(`SELECT relkind FROM pg_class WHERE oid = 'app.events'::regclass`);
  expect(kind?.['relkind']).toBe('r');
  // A write now still reaches the new table through the trigger.
  await sql(`INSERT INTO app.events (created_at, kind) VALUES (now(), 'during-interruption')`);
  const [seen] = await sql(`SELECT count(*)::int AS n FROM app.events_pgwarden_convert WHERE kind = 'during-interruption'`);
  expect(seen?.['n']).toBe(1);
  const plan = await runCli(['plan'], { cwd: project, env: { DATABASE_URL: db.url } });
  expect(plan.stdout).toMatch(/± resume converting app\.events into a table partitioned by month on created_at/);
}

/** The next apply converges; the new table holds exactly the old one's rows; --allow-drop leaves nothing. */
async function expectConverges(project: string): Promise<void> {
  await applyInProcess(project);
  expect(await rows('app.events')).toEqual(await rows('app.events_unpartitioned'));
  expect(await leftovers()).toEqual([]);
  await applyInProcess(project, { allowDrop: true });
  const again = await runCli(['plan'], { cwd: project, env: { DATABASE_URL: db.url } });
  expect(again.stdout).toContain('No changes.');
}

beforeAll(async () => {
  db = await useTestDatabase();
});
afterAll(async () => {
  await db.close();
});
afterEach(async () => {
  for (const child of opened.children.splice(0)) {
    child.kill('SIGKILL');
    await child;
  }
  for (const client of opened.clients.splice(0)) await client.end().catch(() => undefined);
});
beforeEach(async () => {
  await sql(`DROP SCHEMA IF EXISTS app CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA app;
    CREATE TABLE app.events (id bigserial, created_at timestamptz NOT NULL, kind text NOT NULL, PRIMARY KEY (id, created_at));
    INSERT INTO app.events (created_at, kind) SELECT now() - g * interval '30 minutes', 'k' || (g % 7) FROM generate_series(1, 3000) g;
    ANALYZE app.events;`);
});

describe('a conversion interrupted at each phase converges on the next apply', () => {
  it('SIGKILL during the copy', async () => {
    const project = await projectWith({ 'events.yaml': POLICY });
    // Row 2500 is locked: the second batch (rows 1001 onwards) waits on it.
    const blocker = await holder(`SELECT 1 FROM app.events WHERE id = 2500 FOR UPDATE`);
    const child = cliApply(project);
    await until(() => applyWaiting('WITH src AS'), 'the copy to wait on the locked row', child);
    // Some batches committed before the locked row (how many depends on how batches were sized).
    const [progress] = await sql(`SELECT rows_copied::int AS n FROM pgwarden.conversion`);
    expect(progress?.['n']).toBeGreaterThanOrEqual(500);
    expect(progress?.['n']).toBeLessThan(2500);
    child.kill('SIGKILL');
    await child;
    // The orphaned backend gives up its batch at lock_timeout and goes: the batch is rolled back.
    await until(noApplySession, 'the killed apply\'s session to end');
    await blocker.query('ROLLBACK');
    await blocker.end();
    await expectResumable(project);
    await expectConverges(project);
  });

  it('the connection terminated mid-batch', async () => {
    const project = await projectWith({ 'events.yaml': POLICY });
    const blocker = await holder(`SELECT 1 FROM app.events WHERE id = 2500 FOR UPDATE`);
    const child = cliApply(project);
    await until(() => applyWaiting('WITH src AS'), 'the copy to wait on the locked row', child);
    await sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'pgwarden apply%'`);
    const result = await child;
    expect(result.exitCode).toBe(1);
    expect(String(result.stderr)).toMatch(/terminat/i);
    await blocker.query('ROLLBACK');
    await blocker.end();
    await until(noApplySession, 'the apply to end');
    await expectResumable(project);
    await expectConverges(project);
  });

  it('SIGKILL during the swap', async () => {
    const project = await projectWith({ 'events.yaml': POLICY });
    // A reader's lock on the table holds the swap's LOCK TABLE back.
    const reader = await holder(`SELECT count(*) FROM app.events`);
    const child = cliApply(project, '--retries', '50');
    await until(() => applyWaiting('LOCK TABLE ONLY'), 'the swap to wait for the reader', child);
    child.kill('SIGKILL');
    await child;
    await until(noApplySession, 'the killed apply\'s session to end');
    await reader.query('ROLLBACK');
    await reader.end();
    await expectResumable(project);
    await expectConverges(project);
  });

  it('Ctrl-C during the copy stops after a committed batch', async () => {
    const project = await projectWith({ 'events.yaml': POLICY });
    const controller = new AbortController();
    let batches = 0;
    const interrupted = applyInProcess(project, {
      signal: controller.signal,
      afterBatch: () => {
        batches += 1;
        if (batches === 2) controller.abort();
      },
    });
    await expect(interrupted).rejects.toThrow(/interrupted during the copy after [\d,]+ rows; the old table is still the live one/);
    await expectResumable(project);
    await expectConverges(project);
  });

  it('a long reader at the swap: the swap retries under lock_timeout while writers go on', async () => {
    const project = await projectWith({ 'events.yaml': POLICY });
    const reader = await holder(`SELECT count(*) FROM app.events`);
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    // A writer statement that waits on a lock longer than lock_timeout plus one retry fails the test,
    // however slow the machine is otherwise.
    await writer.query(`SET lock_timeout = '2000ms'`);
    const latencies: number[] = [];
    let stop = false;
    const writing = (async () => {
      while (!stop) {
        const t0 = performance.now();
        await writer.query(`INSERT INTO app.events (created_at, kind) VALUES (now(), 'w')`);
        latencies.push(performance.now() - t0);
      }
    })();
    const events: ApplyEvent[] = [];
    await applyInProcess(project, {
      onEvent: (e) => {
        events.push(e);
        // The reader finishes once the swap has given up a try.
        if (e.type === 'retry' && e.sql === 'swap') void reader.query('ROLLBACK');
      },
    });
    stop = true;
    await writing;
    await writer.end();
    await reader.end();
    const retries = events.filter((e) => e.type === 'retry' && e.sql === 'swap');
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(events.some((e) => e.type === 'notice' && /^swapped: .* on try \d+/.test(e.message))).toBe(true);
    // A writer waited behind the swap's lock request at most lock_timeout (1 s) per try, never for the reader.
    expect(latencies.length).toBeGreaterThan(10);
    // Every old row is in the new table; the rest are the writer's, written after the swap.
    const old = await rows('app.events_unpartitioned');
    const now = await rows('app.events');
    expect(now.slice(0, old.length)).toEqual(old);
    for (const row of now.slice(old.length)) expect(row).toMatch(/,w\)$/);
    await applyInProcess(project, { allowDrop: true });
    const again = await runCli(['plan'], { cwd: project, env: { DATABASE_URL: db.url } });
    expect(again.stdout).toContain('No changes.');
  });
});
