import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../engine/advisor/advise.ts';
import type { QueryReport } from '../../engine/analysis/analysis-report.ts';
import { loadExample } from '../../engine/example/load.ts';
import { runWorkload, type WorkloadReport } from '../../engine/example/workload.ts';
import { WORKLOAD_QUERIES } from '../../engine/example/workload-queries.ts';
import { runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import { BUNDLED_POLICIES, policiesWithout, WORKLOAD_INDEXES } from './policy-fixture.ts';

// The issue's "verifying against real data", at the small scale: the example's workload runs on
// sequential scans, `advise` finds the indexes by itself (the statistics-based estimate: the embedded
// PostgreSQL 16 has no hypopg), `--write` adds them as a minimal diff, `apply` builds them, and the same
// workload then runs on them.
let db: TestDatabase;
let project: string;
let before: WorkloadReport;

const workload = () => runWorkload(db.pool, { durationMs: 3000, ratePerSecond: 40, concurrency: 4 });
const cli = (...args: string[]) => runCli([...args, '--database-url', db.url], { cwd: project });

beforeAll(async () => {
  db = await useTestDatabase();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await loadExample(client, { scale: 'small' });
    // The advice depends on pg_stats (which columns are narrow enough to INCLUDE, which are selective):
    // one explicit ANALYZE, and no autovacuum ANALYZE resampling them between the tests below.
    await client.query(`DO $$
      DECLARE t regclass;
      BEGIN
        FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' LOOP
          EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = off)', t);
        END LOOP;
      END $$`);
    await client.query('ANALYZE');
    // The load's own statements are not the workload.
    await client.query('SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)');
  } finally {
    await client.end();
  }
  before = await workload();
  project = await policiesWithout(WORKLOAD_INDEXES);
});

afterAll(async () => {
  await db.close();
  await rm(project, { recursive: true, force: true });
});

function sqlOf(name: string): string {
  return WORKLOAD_QUERIES.find((q) => q.name === name)!.sql;
}

async function planOf(name: string): Promise<QueryReport> {
  const result = await cli('analyze', '--query', sqlOf(name), '--json');
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout) as QueryReport;
}

function scans(report: QueryReport): string[] {
  const out: string[] = [];
  const walk = (n: QueryReport['tree']): void => {
    if (n.relation !== undefined) out.push(`${n.nodeType}${n.indexName ? ` using ${n.indexName}` : ''} on ${n.relation.name}`);
    n.children.forEach(walk);
  };
  walk(report.tree);
  return out;
}

describe('advise on the example platform (PostgreSQL 16, statistics-based evidence)', () => {
  let report: AdviceReport;

  it('before advice, the hot queries are sequential scans', async () => {
    for (const name of ['tenant_recent_events', 'server_day_events', 'tenant_kind_counts_weekly']) {
      const access = scans(await planOf(name));
      expect(access.every((a) => !a.includes('using events_tenant') && !a.includes('using events_server')), `${name}: ${access.join(', ')}`).toBe(true);
    }
    expect(scans(await planOf('tenant_recent_events')).every((a) => a.startsWith('Seq Scan on events_'))).toBe(true);
  });

  it('advises the indexes that fix them, with evidence per statement', async () => {
    const result = await cli('advise', '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    report = JSON.parse(result.stdout) as AdviceReport;
    expect(report.method).toBe('statistics');
    const events = report.indexes.filter((a) => a.table === 'events');
    const keys = events.map((a) => a.keys.map((k) => k.column).join(','));
    expect(keys).toContain('tenant_id,created_at');
    expect(keys).toContain('server_id,created_at');
    const tenant = events.find((a) => a.keys[0]!.column === 'tenant_id')!;
    const recent = tenant.statements.find((s) => s.query.includes('ORDER BY created_at DESC'))!;
    expect(recent.costAfter).toBeLessThan(recent.costBefore / 3);
    expect(recent.accessBefore).toMatch(/Seq Scan on \d+ partitions of public\.events/);
    expect(recent.accessAfter).toMatch(/Index Scan using \(advised index\) on \d+ partitions of public\.events/);
    expect(tenant.netMs).toBeGreaterThan(0);
    expect(report.covered).toBeGreaterThan(0);
  });

  it('the text report shows the evidence and labels it an estimate', async () => {
    const text = (await cli('advise')).stdout;
    expect(text).toContain("evidence: estimated from pg_stats with PostgreSQL's cost formulas");
    expect(text).toMatch(/\+ events_tenant_id_created_at_idx on public\.events \(tenant_id, created_at\)/);
    expect(text).toContain('CREATE INDEX CONCURRENTLY "events_tenant_id_created_at_idx" ON "public"."events" USING btree ("tenant_id", "created_at")');
  });

  it('--write adds them to the policy files as a minimal diff: only new lines, everything else byte for byte', async () => {
    const dir = path.join(project, 'policies');
    const old = new Map<string, string>();
    for (const f of await readdir(dir)) old.set(f, await readFile(path.join(dir, f), 'utf8'));
    const result = await cli('advise', '--write');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Updated policies/events.yaml: events_tenant_id_created_at_idx');
    for (const f of await readdir(dir)) {
      const now = await readFile(path.join(dir, f), 'utf8');
      const was = old.get(f) ?? '';
      const oldLines = was.split('\n');
      const newLines = now.split('\n');
      // Removing the added lines gives back the old file exactly.
      let i = 0;
      const added: string[] = [];
      for (const line of newLines) {
        if (i < oldLines.length && line === oldLines[i]) i += 1;
        else added.push(line);
      }
      expect(i, f).toBe(oldLines.length);
      expect(added.every((l) => /^\s*(# pgwarden advise: |- name: |columns: |include: |where: |indexes:$)/.test(l)), `${f}: ${added.join('\n')}`).toBe(true);
    }
    const validate = await runCli(['validate'], { cwd: project });
    expect(validate.code).toBe(0);
    // The comments of the bundled file are all still there.
    const events = await readFile(path.join(dir, 'events.yaml'), 'utf8');
    expect(events).toContain('# The table this policy governs: "schema.table", or just "table" for the public schema.');
    expect(await readFile(path.join(BUNDLED_POLICIES, 'tenants.yaml'), 'utf8')).toBe(await readFile(path.join(dir, 'tenants.yaml'), 'utf8'));
  });

  it('apply builds them online, plan says no changes, and the same workload runs on them', async () => {
    const applied = await cli('apply', '--auto-approve');
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('CREATE INDEX CONCURRENTLY');
    const plan = await cli('plan');
    expect(plan.stdout).toContain('No changes.');

    // Every partition with rows is read through an index now (the empty default partition may be scanned whole).
    for (const name of ['tenant_recent_events', 'server_day_events', 'tenant_kind_counts_weekly']) {
      const access = scans(await planOf(name)).filter((a) => !a.endsWith('on events_default'));
      expect(access.every((a) => /^(Index|Index Only|Bitmap Heap) Scan/.test(a)), `${name}: ${access.join(', ')}`).toBe(true);
    }

    const after = await workload();
    const p50 = (r: WorkloadReport, name: string): number => r.queries.find((q) => q.name === name)!.p50Ms!;
    expect(p50(after, 'tenant_recent_events')).toBeLessThan(p50(before, 'tenant_recent_events') / 3);
  });

  // Once flaky under load: an autovacuum ANALYZE could move a column's avg_width across the covering
  // variant's limit, and the same keys with one more INCLUDE column counted as a new index. Both fixed.
  it('advising again finds the events queries covered: nothing new for them', async () => {
    const again = JSON.parse((await cli('advise', '--json')).stdout) as AdviceReport;
    expect(again.indexes.filter((a) => a.table === 'events').map((a) => a.sql)).toEqual([]);
  });
});
