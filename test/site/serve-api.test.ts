import { request } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthCollector, type HealthCollector } from '../../engine/live-health/health-collector.ts';
import type { HealthSnapshot } from '../../engine/live-health/health-snapshot.ts';
import { startServeServer, type ServeServer } from '../../engine/serve/serve-server.ts';
import { CREATE_HEARTBEAT_SQL } from '../../engine/sql/routing-ddl.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let collector: HealthCollector;
let server: ServeServer;
let secretUrl: string;
let appliedOutput: string;

const POLICY = `table: public.orders
indexes:
  - name: orders_customer_idx
    columns: [customer]
`;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await db.pool.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL)');
  await db.pool.query('INSERT INTO orders SELECT g, g % 50 FROM generate_series(1, 2000) g');
  const project = await projectWith({ 'orders.yaml': POLICY });
  const applied = await runCli(['apply', '--auto-approve', '--database-url', db.url], { cwd: project });
  expect(applied.code, applied.stderr).toBe(0);
  appliedOutput = applied.stdout;
  const again = await runCli(['plan', '--detailed-exitcode', '--database-url', db.url], { cwd: project });
  expect(again.code, again.stdout).toBe(0);
  // The embedded server trusts local connections: a password in the URL is accepted and must never show.
  const u = new URL(db.url);
  u.password = 's3cr3t-pw';
  secretUrl = u.toString();
  collector = createHealthCollector({ primaryUrl: secretUrl, intervalMs: 1000, slowIntervalMs: 3_600_000 });
  collector.start();
  server = await startServeServer({ databaseUrl: secretUrl, collector, site: null, host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server?.close();
  await collector?.stop();
  await db?.close();
});

async function get(path: string, init?: RequestInit): Promise<{ status: number; body: string; type: string }> {
  const r = await fetch(`${server.url}${path}`, init);
  return { status: r.status, body: await r.text(), type: r.headers.get('content-type') ?? '' };
}

/** Reads Server-Sent Events until `count` events of `type` arrived (or the time is up). */
async function readEvents(type: string, count: number, timeoutMs: number): Promise<{ events: { event: string; data: string }[]; headers: Headers }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const r = await fetch(`${server.url}/api/stream`, { signal: controller.signal });
  const events: { event: string; data: string }[] = [];
  const reader = r.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    while (events.filter((e) => e.event === type).length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data });
      }
    }
  } catch {
    // aborted: return what arrived
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return { events, headers: r.headers };
}

describe('one duration for a run', () => {
  it('is the same in the CLI and in the history the site shows', async () => {
    const said = /Apply complete: \d+ change\(s\) in ([\d.]+) s \(history record (\d+)\)/.exec(appliedOutput);
    expect(said, appliedOutput).not.toBeNull();
    const history = JSON.parse((await get('/api/history')).body) as { runs: { id: string; durationMs: number }[] };
    const run = history.runs.find((r) => r.id === said![2]);
    expect((run!.durationMs / 1000).toFixed(1)).toBe(said![1]);
  });
});

describe('pgwarden serve: the JSON API', () => {
  it('answers /api/health with the collector state and the latest snapshot', async () => {
    await collector.pollOnce();
    const r = await get('/api/health');
    expect(r.status).toBe(200);
    expect(r.type).toContain('application/json');
    const body = JSON.parse(r.body) as { collector: { state: string }; snapshot: HealthSnapshot; thresholds: unknown[] };
    expect(body.collector.state).toBe('connected');
    expect(body.snapshot.database).toBe(db.name);
    expect(typeof body.snapshot.figures.connections).toBe('number');
    expect(body.thresholds.length).toBeGreaterThan(5);
  });

  it('serves the time series of the last minutes and refuses an unbounded window', async () => {
    const r = await get('/api/health/series?minutes=15');
    expect(r.status).toBe(200);
    const points = (JSON.parse(r.body) as { points: { t: number; f: { pollMs: number } }[] }).points;
    expect(points.length).toBeGreaterThan(0);
    expect(points.every((p, i) => i === 0 || p.t > (points[i - 1]?.t ?? 0))).toBe(true);
    expect((await get('/api/health/series?minutes=100000')).status).toBe(400);
  });

  it('serves the statements of a window and refuses a window it does not keep', async () => {
    const r = await get('/api/statements?window=1h');
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as { window: string }).window).toBe('1h');
    expect((await get('/api/statements?window=7d')).status).toBe(400);
    expect((await get('/api/statements/history?id=nope')).status).toBe(400);
    expect((await get('/api/statements/history?id=1:1')).status).toBe(404);
  });

  it('lists the history records written by apply, newest first', async () => {
    const r = await get('/api/history');
    expect(r.status).toBe(200);
    const runs = (JSON.parse(r.body) as { runs: { id: string; kind: string; outcome: string; changeCount: number; plan: unknown }[] }).runs;
    expect(runs[0]).toMatchObject({ kind: 'apply', outcome: 'succeeded', changeCount: 1, plan: null });
  });

  it('returns one record with its plan, its SQL and its locks on /api/plans/:id', async () => {
    const runs = (JSON.parse((await get('/api/history')).body) as { runs: { id: string }[] }).runs;
    const r = await get(`/api/plans/${runs[0]?.id}`);
    expect(r.status).toBe(200);
    const run = JSON.parse(r.body) as { plan: { changes: { steps: { kind: string; sql?: string }[]; lock: { mode: string } }[] } };
    const sql = run.plan.changes[0]?.steps.flatMap((s) => (s.sql ? [s.sql] : [])) ?? [];
    expect(sql.join('\n')).toContain('CREATE INDEX CONCURRENTLY "orders_customer_idx"');
    expect(run.plan.changes[0]?.lock.mode).toBe('SHARE UPDATE EXCLUSIVE');
  });

  it('says 404 for a record that does not exist and 400 for an id that is not one', async () => {
    expect((await get('/api/plans/987654321')).status).toBe(404);
    const bad = await get('/api/plans/1%3BDROP%20TABLE%20orders');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatch(/not a history id/);
    expect((await get('/api/plans/-1')).status).toBe(400);
    expect((await get('/api/nothing-here')).status).toBe(404);
  });

  it('is read-only: anything but GET and HEAD is refused', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const r = await get('/api/history', { method });
      expect(r.status).toBe(405);
    }
    expect(await db.pool.query('SELECT count(*)::int AS n FROM pgwarden.history').then((r) => r.rows[0].n)).toBe(1);
  });

  it('answers only requests addressed to localhost when bound to loopback (no DNS rebinding)', async () => {
    const r = await new Promise<number>((resolve, reject) => {
      const req = request(`${server.url}/api/health`, { headers: { host: 'attacker.example:3000' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(r).toBe(421);
  });

  it('pushes each new snapshot on /api/stream as a Server-Sent Event', async () => {
    const { events, headers } = await readEvents('snapshot', 3, 8000);
    expect(headers.get('content-type')).toContain('text/event-stream');
    expect(events[0]?.event).toBe('state');
    const seqs = events.filter((e) => e.event === 'snapshot').map((e) => (JSON.parse(e.data) as HealthSnapshot).seq);
    expect(seqs.length).toBe(3);
    expect(seqs[2]).toBeGreaterThan(seqs[0] ?? Infinity);
  });

  it('never shows the connection string or its password in any answer', async () => {
    const u = new URL(secretUrl);
    const bodies = await Promise.all(['/api/health', '/api/health/series?minutes=5', '/api/history', '/api/plans/1'].map((p) => get(p).then((r) => r.body)));
    const stream = await readEvents('snapshot', 1, 6000);
    for (const text of [...bodies, ...stream.events.map((e) => e.data)]) {
      expect(text).not.toContain('s3cr3t-pw');
      expect(text).not.toContain(`${u.hostname}:${u.port}`);
      expect(text).not.toContain('postgres://');
    }
  });

  it('never shows a password that sits in a session’s or a statement’s query text', async () => {
    // Sessions left idle in a transaction are what the snapshot names, with their last statement.
    const texts = [
      "CREATE ROLE leak_a LOGIN PASSWORD 'TopSecret123'",
      "CREATE ROLE leak_b LOGIN ENCRYPTED PASSWORD E'Esc\\'Secret42'",
      "SELECT 'host=db.example password=ConnSecret7 dbname=app' AS conninfo",
      "SELECT 'postgres://app:UrlSecret9@db.example:5432/app' AS url",
    ];
    const sessions = texts.map(() => new pg.Client({ connectionString: db.url }));
    for (const session of sessions) await session.connect();
    let running = true;
    // pg_stat_statements keeps comments: a statement whose text carries a password, run on every poll.
    const statements = (async () => {
      while (running) {
        await db.pool.query("SELECT pg_sleep(0.002), $1::int /* dblink_connect('host=db password=CommentSecret5') */", [1]);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      for (const [i, text] of texts.entries()) {
        await sessions[i]!.query('BEGIN');
        await sessions[i]!.query(text);
      }
      const stream = await readEvents('snapshot', 4, 10_000);
      const health = await get('/api/health');
      const snapshot = (JSON.parse(health.body) as { snapshot: HealthSnapshot }).snapshot;
      // The texts are there, redacted: the test saw what it means to check.
      expect(snapshot.sessions.filter((s) => s.query.includes("PASSWORD '<redacted>'")).length).toBe(2);
      expect(snapshot.sessions.map((s) => s.query)).toContain("SELECT 'host=db.example password=<redacted> dbname=app' AS conninfo");
      expect(snapshot.sessions.map((s) => s.query)).toContain("SELECT 'postgres://app:<redacted>@db.example:5432/app' AS url");
      expect(snapshot.statements.top.some((t) => t.query?.includes('password=<redacted>'))).toBe(true);
      for (const text of [health.body, ...stream.events.map((e) => e.data)]) {
        for (const secret of ['TopSecret123', 'Secret42', 'ConnSecret7', 'UrlSecret9', 'CommentSecret5']) expect(text).not.toContain(secret);
      }
    } finally {
      running = false;
      await statements;
      for (const session of sessions) await session.end();
    }
  });
});

describe('pgwarden serve: bad input', () => {
  it('refuses a port that is not a port number', async () => {
    const r = await runCli(['serve', '--port', '99999', '--database-url', db.url], { cwd: process.cwd() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--port must be a port number from 0 to 65535, got "99999"/);
  });

  it('says which port is taken instead of failing obscurely', async () => {
    const r = await runCli(['serve', '--port', String(server.port), '--no-site', '--database-url', db.url], { cwd: process.cwd() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`port ${server.port} on 127.0.0.1 is already in use`);
    expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
  });

  it('refuses a --standby that is neither NAME=URL nor a URL, without printing its password', async () => {
    const r = await runCli(['serve', '--standby', 'replica:hunter2@somewhere', '--database-url', db.url], { cwd: process.cwd() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--standby must be NAME=URL/);
    expect(r.stderr).not.toContain('hunter2');
  });

  it('refuses a --cors-origin with a path, and a too short --interval', async () => {
    expect((await runCli(['serve', '--cors-origin', 'https://docs.example.com/site', '--database-url', db.url], { cwd: process.cwd() })).stderr).toMatch(/--cors-origin must be an origin/);
    expect((await runCli(['serve', '--interval', '10ms', '--database-url', db.url], { cwd: process.cwd() })).stderr).toMatch(/--interval must be between 1s and 5m/);
  });

  it('watches the routing policy’s replicas whose URL is set, and stamps the heartbeat every 100 ms with --write-heartbeat', async (ctx) => {
    if (!db.standbyUrl) return ctx.skip();
    await db.pool.query(CREATE_HEARTBEAT_SQL);
    const project = await projectWith({
      'routing.yaml': ['routing:', '  replicas:', '    - name: standby1', '      url_env: STANDBY_ONE_URL', '    - name: standby2', '      url_env: STANDBY_TWO_URL', ''].join('\n'),
    });
    const controller = new AbortController();
    const env = { ...process.env, STANDBY_ONE_URL: db.standbyUrl, STANDBY_TWO_URL: '' };
    const running = runCli(['serve', '--port', '0', '--no-site', '--write-heartbeat', '--database-url', db.url], { cwd: project, env, signal: controller.signal });
    const stamps = new Set<string>();
    const started = Date.now();
    while (Date.now() - started < 2000) {
      const row = (await db.pool.query<{ ts: Date; writer: string }>('SELECT ts, writer FROM pgwarden.heartbeat WHERE id = 1')).rows[0];
      if (row) stamps.add(row.ts.toISOString());
      await new Promise((r) => setTimeout(r, 40));
    }
    controller.abort();
    const r = await running;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('standbys: standby1;');
    expect(r.stderr).toContain('replica standby2: STANDBY_TWO_URL is not set, so it is not watched');
    // A 1 s heartbeat would give two or three stamps in two seconds.
    expect(stamps.size).toBeGreaterThanOrEqual(8);
  });

  it('runs until stopped and stops cleanly', async () => {
    const controller = new AbortController();
    const running = runCli(['serve', '--port', '0', '--no-site', '--database-url', db.url], { cwd: process.cwd(), signal: controller.signal });
    await new Promise((r) => setTimeout(r, 1500));
    controller.abort();
    const r = await running;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/pgwarden serve: http:\/\/127\.0\.0\.1:\d+\/live\//);
    expect(r.stdout).toContain('pgwarden serve: stopped');
    expect(r.stdout).not.toContain(db.url);
  });
});
