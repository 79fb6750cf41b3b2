import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../engine/advisor/advise.ts';
import { renderAdviceText } from '../../engine/advisor/render-advice.ts';
import type { QueryReport } from '../../engine/analysis/analysis-report.ts';
import { explainStatement, planRelationFacts, readServerFacts } from '../../engine/analysis/explain-statement.ts';
import { planFindings } from '../../engine/analysis/plan-finding.ts';
import { loadExample } from '../../engine/example/load.ts';
import { runWorkload } from '../../engine/example/workload.ts';
import { WORKLOAD_QUERIES } from '../../engine/example/workload-queries.ts';
import { runCli } from '../support/cli.ts';
import { ORDERS_SCHEMA, ORDERS_WORKLOAD } from './orders-fixture.ts';
import { startPg15, type Pg15Cluster } from './pg15-cluster.ts';
import { policiesWithout, WORKLOAD_INDEXES } from './policy-fixture.ts';

// The other server version and the other evidence path: PostgreSQL 15 from Debian's packages with the
// hypopg extension, so the planner itself verifies every index the advisor proposes; and 15 has no
// EXPLAIN (GENERIC_PLAN), so normalised statements are planned through PREPARE instead.
let cluster: Pg15Cluster;
let url: string;
let project: string;

const cli = (...args: string[]) => runCli([...args, '--database-url', url], { cwd: project });

beforeAll(async () => {
  cluster = await startPg15();
  url = await cluster.database('pgwarden_pg15', ['pg_stat_statements', 'hypopg']);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await loadExample(client, { scale: 'small' });
    await client.query('SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)');
  } finally {
    await client.end();
  }
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  try {
    await runWorkload(pool, { durationMs: 2000, ratePerSecond: 40, concurrency: 4 });
  } finally {
    await pool.end();
  }
  project = await policiesWithout(WORKLOAD_INDEXES);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  if (project) await rm(project, { recursive: true, force: true });
});

describe('advise with hypopg on PostgreSQL 15', () => {
  let report: AdviceReport;

  it('proposes the indexes, each verified by the planner with hypothetical indexes', async () => {
    const result = await cli('advise', '--json');
    expect(result.stderr).toBe('');
    report = JSON.parse(result.stdout) as AdviceReport;
    expect(report.serverVersion).toBeGreaterThanOrEqual(150000);
    expect(report.serverVersion).toBeLessThan(160000);
    expect(report.method).toBe('hypopg');
    const events = report.indexes.filter((a) => a.table === 'events').map((a) => a.keys.map((k) => k.column).join(','));
    expect(events).toEqual(expect.arrayContaining(['tenant_id,created_at', 'server_id,created_at']));
    const tenant = report.indexes.find((a) => a.table === 'events' && a.keys[0]!.column === 'tenant_id')!;
    expect(tenant.statements.length).toBeGreaterThanOrEqual(1);
    for (const s of tenant.statements) {
      expect(s.costAfter).toBeLessThan(s.costBefore);
      expect(s.accessAfter).toContain('(advised index)');
    }
    expect(tenant.estimatedBytes).toBeGreaterThan(1_000_000);
    expect(renderAdviceText(report, { color: false })).toContain("evidence: hypothetical indexes (hypopg): the planner's own cost");
  });

  it('the statistics-based estimate chooses the same indexes for events as the planner does', async () => {
    const stats = JSON.parse((await cli('advise', '--json', '--method', 'statistics')).stdout) as AdviceReport;
    expect(stats.method).toBe('statistics');
    const keys = (r: AdviceReport): string[] => r.indexes.filter((a) => a.table === 'events').map((a) => a.keys.map((k) => k.column).join(',')).sort();
    expect(keys(stats)).toEqual(keys(report));
    // And costs the headline statement after the index close to what the planner says.
    const after = (r: AdviceReport): number =>
      r.indexes.flatMap((a) => a.statements).find((s) => s.query.includes('ORDER BY created_at DESC'))!.costAfter;
    expect(after(stats) / after(report)).toBeGreaterThan(0.5);
    expect(after(stats) / after(report)).toBeLessThan(2);
  });

  it('advising builds nothing: no index exists until apply', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const indexes = await client.query("SELECT count(*)::int AS n FROM pg_indexes WHERE tablename LIKE 'events%' AND indexname LIKE '%tenant_id%'");
      expect(indexes.rows[0].n).toBe(0);
    } finally {
      await client.end();
    }
  });

  it('--write, apply and plan: the advised indexes are built and nothing is left to change', async () => {
    const written = await cli('advise', '--write');
    expect(written.code).toBe(0);
    expect(written.stdout).toContain('Updated policies/events.yaml');
    const applied = await cli('apply', '--auto-approve');
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect((await cli('plan')).stdout).toContain('No changes.');
    const recent = WORKLOAD_QUERIES.find((q) => q.name === 'tenant_recent_events')!.sql;
    const plan = JSON.parse((await cli('analyze', '--query', recent, '--json')).stdout) as QueryReport;
    const scans: string[] = [];
    const walk = (n: QueryReport['tree']): void => {
      if (n.relation !== undefined && n.relation.name !== 'events_default') scans.push(n.nodeType);
      n.children.forEach(walk);
    };
    walk(plan.tree);
    expect(scans.length).toBeGreaterThan(0);
    expect(scans.every((t) => t.startsWith('Index'))).toBe(true);
  });
});

describe('analyze on PostgreSQL 15', () => {
  it('plans a normalised statement generically through PREPARE, with values sampled from pg_stats', async () => {
    const sql = WORKLOAD_QUERIES.find((q) => q.name === 'tenant_deployments_by_status')!.sql.replace("LIMIT 50", 'LIMIT $3');
    const report = JSON.parse((await cli('analyze', '--query', sql, '--json')).stdout) as QueryReport;
    expect(report.plan.method).toBe('prepared-generic');
    expect(report.plan.parameters.map((p) => [p.number, p.source])).toEqual([
      [1, 'sampled'],
      [2, 'sampled'],
      [3, 'default'],
    ]);
    expect(report.plan.parameters[2]!.note).toBe('LIMIT 100');
    const text = (await cli('analyze', '--query', sql)).stdout;
    expect(text).toContain('method: generic plan (PREPARE + plan_cache_mode = force_generic_plan; PostgreSQL 15 has no GENERIC_PLAN), values sampled from pg_stats');
  });

  it('finds JIT compilation dominating a short query', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // JIT for a query that needs none: what a low jit_above_cost does to short queries in production.
      await client.query('SET jit = on; SET jit_above_cost = 0');
      const result = await explainStatement(client, await readServerFacts(client), 'SELECT count(*) FROM public.tenants WHERE id > 3', { analyze: true });
      const findings = planFindings(result.explain, { relations: await planRelationFacts(client, [result.explain]) });
      const jit = findings.find((f) => f.kind === 'jit-dominates');
      expect(jit, JSON.stringify(findings)).toBeDefined();
      expect(jit!.message).toMatch(/^JIT compilation took [\d.]+ ms of [\d.]+ ms execution \(\d+%\)$/);
      expect(jit!.hint).toContain('jit_above_cost');
    } finally {
      await client.end();
    }
  });
});

describe('advise --workload on PostgreSQL 15 (PREPARE, hypopg)', () => {
  it('plans the normalised texts the server refuses as they are, through PREPARE with hypothetical indexes', async () => {
    const ordersUrl = await cluster.database('pgwarden_pg15_orders', ['hypopg']);
    const client = new pg.Client({ connectionString: ordersUrl });
    await client.connect();
    try {
      await client.query(ORDERS_SCHEMA);
    } finally {
      await client.end();
    }
    await writeFile(path.join(project, 'workload.sql'), ORDERS_WORKLOAD);
    const result = await runCli(['advise', '--workload', 'workload.sql', '--json', '--database-url', ordersUrl], { cwd: project });
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as AdviceReport;
    expect(report.method).toBe('hypopg');
    expect(report.skipped.map((s) => s.queryId)).toEqual(['workload.sql:23', 'workload.sql:21']);
    expect(report.rewritten).toHaveLength(4);
    expect(report.indexes.length).toBeGreaterThan(0);
  });
});
