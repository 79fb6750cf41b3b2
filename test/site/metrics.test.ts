import { readFile } from 'node:fs/promises';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthCollector, type HealthCollector } from '../../engine/live-health/health-collector.ts';
import { createRouter, type RoutingPool } from '../../engine/routing/index.ts';
import { snapshotFamilies } from '../../engine/serve/open-metrics.ts';
import { startServeServer, type ServeServer } from '../../engine/serve/serve-server.ts';
import { CREATE_HEARTBEAT_SQL, CREATE_ROUTER_METRICS_SQL } from '../../engine/sql/routing-ddl.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

// /metrics from a real collector's snapshot: the primary and the run's standby, a router publishing its
// counters, a workload; read back with a Prometheus text-format parser from npm.
let db: TestDatabase;
let collector: HealthCollector;
let server: ServeServer;
let router: RoutingPool;

const until = async (condition: () => Promise<boolean>): Promise<void> => {
  while (!(await condition())) await new Promise((r) => setTimeout(r, 100));
};

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await db.pool.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL)');
  await db.pool.query('INSERT INTO orders SELECT g, g % 50 FROM generate_series(1, 5000) g');
  await db.pool.query(CREATE_HEARTBEAT_SQL);
  await db.pool.query(CREATE_ROUTER_METRICS_SQL);
  router = createRouter({
    primary: db.url,
    replicas: db.standbyUrl ? [{ name: 'standby1', connection: db.standbyUrl }] : [],
    application: 'orders-api',
    metricsIntervalMs: 200,
  });
  router.on('error', () => undefined);
  collector = createHealthCollector({
    primaryUrl: db.url,
    standbys: db.standbyUrl ? [{ name: 'standby1', url: db.standbyUrl }] : [],
    slowIntervalMs: 0,
  });
  server = await startServeServer({ databaseUrl: db.url, collector, site: null, host: '127.0.0.1', port: 0 });
  await collector.pollOnce();
  // The primary's share on one session that then flushes its counters: a backend holds them back for
  // up to a second after its last flush (PostgreSQL 15+), and the next poll must see them.
  const session = await db.pool.connect();
  try {
    for (let i = 0; i < 40; i++) {
      await router.query('SELECT id FROM orders WHERE customer = $1 LIMIT 5', [i % 50]);
      await session.query('SELECT count(*) FROM orders WHERE customer = $1', [i % 50]);
      await session.query('SELECT customer FROM orders WHERE id = $1', [i + 1]);
    }
    await session.query('SELECT pg_catalog.pg_stat_force_next_flush()');
  } finally {
    session.release();
  }
  await until(async () => (await db.pool.query("SELECT 1 FROM pgwarden.router_metrics WHERE counters->'reads' IS NOT NULL AND (counters->'reads'->>'primary')::int + coalesce((SELECT sum(value::int) FROM jsonb_each_text(counters->'reads'->'replicas')), 0) >= 40")).rowCount === 1);
  // The second poll has a window: rates, latency, and the router's row.
  await collector.pollOnce();
});

afterAll(async () => {
  await router?.end();
  await server?.close();
  await collector?.stop();
  await db?.close();
});

const scrape = async (accept?: string): Promise<{ type: string; text: string }> => {
  const r = await fetch(`${server.url}/metrics`, { headers: accept ? { accept } : {} });
  expect(r.status).toBe(200);
  return { type: r.headers.get('content-type') ?? '', text: await r.text() };
};

describe('/metrics', () => {
  it('parses as the Prometheus text format, every family with HELP and TYPE, named with its unit', async () => {
    const { type, text } = await scrape();
    expect(type).toBe('text/plain; version=0.0.4; charset=utf-8');
    const families = parsePrometheusTextFormat(text);
    const byName = new Map(families.map((f) => [f.name, f]));
    for (const f of families) {
      expect(f.name).toMatch(/^pgwarden_[a-z_]+$/);
      expect(f.help.length, f.name).toBeGreaterThan(10);
      expect(['GAUGE', 'COUNTER']).toContain(f.type);
      if (f.type === 'COUNTER') expect(f.name).toMatch(/_total$/);
      expect(f.name, 'milliseconds are not a base unit').not.toMatch(/_ms$|milliseconds/);
    }
    expect(byName.get('pgwarden_up')?.metrics[0]?.value).toBe('1');
    const latency = byName.get('pgwarden_statement_latency_seconds')!;
    expect(latency.metrics.map((m) => m.labels?.['percentile'])).toEqual(['50', '95', '99']);
    for (const m of latency.metrics) expect(Number(m.value)).toBeGreaterThan(0);
    expect(Number(latency.metrics[1]!.value)).toBeLessThan(5);
    for (const name of ['pgwarden_cache_hit_ratio', 'pgwarden_index_hit_ratio']) {
      const v = Number(byName.get(name)?.metrics[0]?.value);
      expect(v, name).toBeGreaterThan(0);
      expect(v, name).toBeLessThanOrEqual(1);
    }
    expect(byName.get('pgwarden_table_dead_tuples')?.metrics.find((m) => m.labels?.['table'] === 'orders')).toBeDefined();
    expect(byName.get('pgwarden_table_health_ratio')?.metrics.find((m) => m.labels?.['table'] === 'orders')).toBeDefined();
    expect(Number(byName.get('pgwarden_poll_duration_seconds')?.metrics[0]?.value)).toBeGreaterThan(0);
    expect(Number(byName.get('pgwarden_poll_queries')?.metrics[0]?.value)).toBeGreaterThan(3);
    // The router's counters, by target, since it started.
    const reads = byName.get('pgwarden_router_reads_total')!;
    const total = reads.metrics.reduce((n, m) => n + Number(m.value), 0);
    expect(total).toBeGreaterThanOrEqual(40);
    expect(reads.metrics.every((m) => m.labels?.['application'] === 'orders-api')).toBe(true);
    if (db.standbyUrl) {
      const lag = byName.get('pgwarden_replica_lag_seconds')?.metrics.find((m) => m.labels?.['replica'] === 'standby1');
      expect(Number(lag?.value)).toBeGreaterThanOrEqual(0);
      expect(Number(lag?.value)).toBeLessThan(60);
      expect(byName.get('pgwarden_replica_lag_bytes')?.metrics.find((m) => m.labels?.['replica'] === 'standby1')).toBeDefined();
      expect(byName.get('pgwarden_replica_up')?.metrics[0]?.value).toBe('1');
    }
  });

  it('answers in OpenMetrics when the scraper asks for it: UNIT lines, counters named without _total, # EOF', async () => {
    const { type, text } = await scrape('application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5');
    expect(type).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(text.endsWith('# EOF\n')).toBe(true);
    expect(text).toContain('# UNIT pgwarden_statement_latency_seconds seconds\n');
    expect(text).toContain('# UNIT pgwarden_cache_hit_ratio ratio\n');
    expect(text).toContain('# TYPE pgwarden_router_reads counter\n');
    expect(text).toMatch(/^pgwarden_router_reads_total\{router="[^"]+",application="orders-api",target="[a-z0-9]+"\} \d+$/m);
    // Every UNIT is the suffix of its family's name, as the specification requires.
    for (const [, name, unit] of text.matchAll(/^# UNIT (\S+) (\S+)$/gm)) expect(name!.endsWith(`_${unit}`)).toBe(true);
    // The same families as the classic format (the parser skips the UNIT and EOF lines as comments).
    const names = parsePrometheusTextFormat(text).map((f) => f.name);
    expect(names).toContain('pgwarden_statement_latency_seconds');
  });

  it('says only pgwarden_up 0 before the first poll answers', async () => {
    const cold = createHealthCollector({ primaryUrl: 'postgres://nobody@127.0.0.1:1/none', intervalMs: 60_000 });
    const s = await startServeServer({ databaseUrl: undefined, collector: cold, site: null, host: '127.0.0.1', port: 0 });
    try {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      const families = parsePrometheusTextFormat(text);
      expect(families.map((f) => [f.name, f.metrics[0]?.value])).toEqual([['pgwarden_up', '0']]);
    } finally {
      await s.close();
      await cold.stop();
    }
  });

  it('has every metric the example Grafana dashboard queries', async () => {
    const dashboard = JSON.parse(await readFile(new URL('../../examples/grafana/pgwarden-dashboard.json', import.meta.url), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    const snapshot = collector.latest();
    const exposed = new Set(snapshotFamilies(snapshot, collector.state()).map((f) => f.name));
    const queried = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/pgwarden_[a-z_]+/g)].map((m) => m[0]))));
    expect(queried.size).toBeGreaterThan(15);
    expect([...queried].filter((name) => !exposed.has(name))).toEqual([]);
  });
});
