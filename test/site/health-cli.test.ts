import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

// `pgwarden health`: the table health it always printed, then the live snapshot, with each replica's lag.
let db: TestDatabase;
let project: string;

const ROUTING = 'routing:\n  replicas:\n    - name: standby1\n      url_env: REPLICA_URL\n  max_lag_ms: 2000\n';

interface Live {
  readonly live: {
    readonly latency: { readonly p95Ms: number | null };
    readonly replicas: readonly { name: string; state: string; lagMs: number | null; lagBytes: number | null }[];
    readonly statuses: readonly { figure: string; level: string }[];
    readonly level: string;
  };
}

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await db.pool.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL)');
  await db.pool.query('INSERT INTO orders SELECT g, g % 50 FROM generate_series(1, 5000) g');
  await db.pool.query('VACUUM ANALYZE orders');
  project = await projectWith({ 'routing.yaml': ROUTING });
});

afterAll(async () => {
  await db?.close();
});

describe('pgwarden health, live', () => {
  it("reads the routing policy's replica and prints its lag in ms and bytes", async (ctx) => {
    if (!db.standbyUrl) return ctx.skip();
    const result = await runCli(['health', '--estimate-only', '--database-url', db.url], { cwd: project, env: { REPLICA_URL: db.standbyUrl } });
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Live snapshot over \d\.\d s \(rates over the window; latency estimated from pg_stat_statements\)$/m);
    expect(result.stdout).toMatch(/^ {2}latency \(est\.\) +p50 .*, p95 .*, p99 .*; mean /m);
    expect(result.stdout).toMatch(/^ {2}cache hit +(\d+\.\d\d%|no data)$/m);
    expect(result.stdout).toMatch(/^ {2}connections +\d+ of \d+ \(\d+ active, \d+ idle in a transaction\)$/m);
    expect(result.stdout).toMatch(/^ {2}replica standby1 +streaming, lag [\d.]+ m?s, [\d.]+ k?B behind/m);
    expect(result.code).toBe(0);
  });

  it('gives the snapshot in --json next to the tables, each replica with its lag', async (ctx) => {
    if (!db.standbyUrl) return ctx.skip();
    const result = await runCli(['health', '--json', '--estimate-only', '--database-url', db.url, '--standby', `standby1=${db.standbyUrl}`], { cwd: project, env: {} });
    const report = JSON.parse(result.stdout) as Live & { tables: unknown[] };
    expect(report.tables.length).toBeGreaterThan(0);
    const standby = report.live.replicas.find((r) => r.name === 'standby1');
    expect(standby?.state).toBe('streaming');
    expect(standby?.lagMs).toBeGreaterThanOrEqual(0);
    expect(standby?.lagBytes).toBeGreaterThanOrEqual(0);
    expect(report.live.statuses.map((s) => s.figure)).toContain('replicaLagMs');
  });

  it('says the lag of a replica it cannot reach is unknown, and exits 1: a red status', async () => {
    const result = await runCli(['health', '--estimate-only', '--database-url', db.url, '--standby', 'ghost=postgres://postgres@127.0.0.1:1/none'], { cwd: project, env: {} });
    expect(result.stdout).toMatch(/^ {2}replica ghost +down, lag unknown$/m);
    expect(result.stdout).toMatch(/^ {2}RED {4}replica lag: a replica is down or not streaming$/m);
    expect(result.code).toBe(1);
    const json = JSON.parse((await runCli(['health', '--json', '--estimate-only', '--database-url', db.url, '--standby', 'ghost=postgres://postgres@127.0.0.1:1/none'], { cwd: project, env: {} })).stdout) as Live;
    expect(json.live.replicas).toEqual([{ name: 'ghost', state: 'down', lagMs: null, lagBytes: null, lagSource: null }]);
    expect(json.live.level).toBe('critical');
  });
});
