import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdviceReport } from '../../engine/advisor/advise.ts';
import { renderAdviceText } from '../../engine/advisor/render-advice.ts';
import type { QueryReport } from '../../engine/analysis/analysis-report.ts';
import type { Plan } from '../../engine/plan/plan.ts';
import { createHealthCollector } from '../../engine/live-health/health-collector.ts';
import { loadExample } from '../../engine/example/load.ts';
import { runWorkload } from '../../engine/example/workload.ts';
import { runCli } from '../support/cli.ts';
import { startServerVersion, type ServerVersion } from '../support/server-versions.ts';
import type { ThrowawayServer } from '../support/throwaway-server.ts';

// DESIGN promises PostgreSQL 14 to 17; the rest of the suite runs on the embedded 16 and Debian's 15.
// Here the whole user path — validate, plan, apply, analyze, advise, health, maintain and the live
// page's collector — runs against the example at small scale on 14 and on 17, with the bundled policies.
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe.each<[ServerVersion, number]>([
  ['14', 140000],
  ['17', 170000],
])('pgwarden on PostgreSQL %s', (version, versionNum) => {
  let server: ThrowawayServer;
  let url: string;
  const cli = (...args: string[]) => runCli([...args, '--database-url', url], { cwd: REPO_ROOT });

  beforeAll(async () => {
    server = await startServerVersion(version);
    url = await server.database(`pgwarden_pg${version}`, ['pg_stat_statements', 'pgstattuple']);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await loadExample(client, { scale: 'small' });
      // The load's own statements are not the workload the advisor reads.
      await client.query('SELECT pg_stat_statements_reset()');
    } finally {
      await client.end();
    }
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    try {
      await runWorkload(pool, { durationMs: 1500, ratePerSecond: 40, concurrency: 4 });
    } finally {
      await pool.end();
    }
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs the server version it is named after', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: number }>("SELECT current_setting('server_version_num')::int AS n");
      expect(Math.floor(rows[0]!.n / 10000) * 10000).toBe(versionNum);
    } finally {
      await client.end();
    }
  });

  it('validates the bundled policies against the database', async () => {
    const result = await cli('validate');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('plans, applies, then plans again with no changes', async () => {
    const first = await cli('plan', '--detailed-exitcode');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(2);
    expect(first.stdout).toMatch(/\+ create index events_tenant_created_idx on public\.events \(\d+ partitions\)/);
    expect(first.stdout).toMatch(/\+ create partition events_\d{4}_\d{2} of public\.events/);
    expect(first.stdout).toMatch(/Plan: \d+ to add, 2 to change, 0 to destroy\./);

    const applied = await cli('apply', '--auto-approve');
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);

    const again = await cli('plan', '--detailed-exitcode');
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('No changes');
  });

  it('import writes policies whose first plan holds no DDL, and apply leaves no changes', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pgwarden-import-compat-'));
    try {
      const imported = await cli('import', '--policies', dir);
      expect(imported.stderr).toBe('');
      expect(imported.code).toBe(0);
      const plan = await cli('plan', '--policies', dir, '--json');
      expect(plan.stderr).toBe('');
      const ddl = (JSON.parse(plan.stdout) as Plan).changes.filter((c) => c.steps.some((s) => s.kind === 'sql'));
      expect(ddl.map((c) => c.change.address)).toEqual([]);
      expect((await cli('apply', '--policies', dir, '--auto-approve')).code).toBe(0);
      const again = await cli('plan', '--policies', dir, '--detailed-exitcode');
      expect(again.stdout).toContain('No changes');
      expect(again.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('analyze --analyze reports the partitions pruned for a recent range of events', async () => {
    const result = await cli('analyze', '--query', "SELECT count(*) FROM public.events WHERE created_at >= now() - interval '3 days' AND created_at < now()", '--analyze', '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as QueryReport;
    expect(Math.floor(report.serverVersion / 10000) * 10000).toBe(versionNum);
    expect(report.plan.analyzed).toBe(true);
    const events = report.partitions.find((p) => p.parent === 'public.events');
    expect(events).toBeDefined();
    expect(events!.total).toBeGreaterThan(10);
    expect(events!.scanned).toBeLessThanOrEqual(3);
    expect(events!.prunedPercent).toBeGreaterThan(70);
  });

  it(`analyze plans a normalised statement ${version === '14' ? 'through PREPARE (no EXPLAIN (GENERIC_PLAN) before 16)' : 'with EXPLAIN (GENERIC_PLAN)'}`, async () => {
    const result = await cli('analyze', '--query', 'SELECT id, kind FROM public.events WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT 50', '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as QueryReport;
    expect(report.plan.method).toBe(version === '14' ? 'prepared-generic' : 'generic-plan');
    expect(report.plan.analyzed).toBe(false);
  });

  it('advise reads the workload and plans its statements with statistics evidence', async () => {
    const result = await cli('advise', '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as AdviceReport;
    expect(report.method).toBe('statistics');
    expect(report.window.statementCount).toBeGreaterThan(0);
    expect(report.skipped).toEqual([]);
    // The workload ran before apply; the bundled policies declare every index it needs, so the
    // advisor's candidates are covered and it advises nothing new.
    expect(report.candidates).toBeGreaterThan(0);
    expect(report.covered).toBeGreaterThan(0);
    expect(report.evaluations).toBeGreaterThan(0);
    expect(report.indexes).toEqual([]);
    expect(renderAdviceText(report, { color: false })).toContain('evidence: estimated from pg_stats');
  });

  it('health --json gives every example table a health figure', async () => {
    const result = await cli('health', '--json');
    expect(result.stderr).toBe('');
    // 1 when a figure is red (the load leaves servers with many dead tuples): what is checked here is the report.
    expect([0, 1]).toContain(result.code);
    const report = JSON.parse(result.stdout) as { tables: { schema: string; name: string; health: number }[] };
    const names = report.tables.map((t) => `${t.schema}.${t.name}`);
    expect(names).toEqual(expect.arrayContaining(['public.tenants', 'public.servers', 'public.deployments', 'public.incidents']));
    for (const t of report.tables) {
      expect(t.health).toBeGreaterThanOrEqual(0);
      expect(t.health).toBeLessThanOrEqual(1);
    }
    const health = (name: string): number => report.tables.find((t) => t.schema === 'public' && t.name === name)!.health;
    // The load churns servers (about 40% dead tuples) and leaves tenants alone.
    expect(health('servers')).toBeLessThan(0.9);
    expect(health('tenants')).toBeGreaterThan(0.9);
  });

  it('maintain --dry-run lists the two churned tables as due, with the VACUUM options of the version', async () => {
    const result = await cli('maintain', '--dry-run');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`2 of \\d+ governed table\\(s\\) on pgwarden_pg${version} are due, worst first \\(dry run: nothing was run\\)`));
    expect(result.stdout).toContain('VACUUM (ANALYZE) public.servers');
    expect(result.stdout).toContain('VACUUM (ANALYZE) public.deployments');
    // SKIP_DATABASE_STATS is a VACUUM option from PostgreSQL 16 on: 14 would reject it.
    expect(result.stdout.includes('SKIP_DATABASE_STATS')).toBe(version !== '14');
  });

  it('maintain vacuums the due tables and reports their dead tuples gone', async () => {
    const result = await cli('maintain');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('2 table(s) due, 2 done');
    // Before 15 the statistics collector hears of a VACUUM by message: maintain waits for it rather
    // than reporting the removed dead tuples as still there.
    expect(result.stdout).toMatch(/public\.servers\s+VACUUM \(ANALYZE\)\s+[\d,]+ -> 0\s+0\.\d+ -> 1\.00/);
    expect(result.stdout).toMatch(/public\.deployments\s+VACUUM \(ANALYZE\)\s+[\d,]+ -> 0\s+0\.\d+ -> 1\.00/);
    expect(result.stdout).not.toContain('dead tuples remain');
    const again = await cli('plan', '--detailed-exitcode');
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain('below its floor');
  });

  it("the live page's collector polls it and comes back connected with figures", async () => {
    const collector = createHealthCollector({ primaryUrl: url, slowIntervalMs: 3_600_000 });
    // A client session of its own: the collector does not count its own connection.
    const session = new pg.Client({ connectionString: url });
    await session.connect();
    try {
      await collector.pollOnce();
      // The first poll also starts the slow cadence (sizes, table health) on a connection of its own.
      await collector.slowSettled();
      for (let i = 0; i < 20; i++) await session.query('SELECT count(*) FROM public.tenants WHERE id = $1', [i]);
      const snapshot = await collector.pollOnce();
      expect(collector.state()).toMatchObject({ state: 'connected', error: null });
      expect(Math.floor(snapshot!.serverVersion / 10000) * 10000).toBe(versionNum);
      expect(snapshot!.windowMs).toBeGreaterThan(0);
      expect(snapshot!.figures.maxConnections).toBe(100);
      // The test's session, and the slow cadence's connection when it has not quite gone yet.
      expect(snapshot!.figures.connections).toBeGreaterThanOrEqual(1);
      expect(snapshot!.figures.tableHealth).toBeGreaterThan(0);
      expect(snapshot!.figures.tableHealth).toBeLessThanOrEqual(1);
      expect(snapshot!.slow?.errors).toEqual([]);
      expect(snapshot!.slow?.databaseBytes).toBeGreaterThan(10_000_000);
      expect(snapshot!.statements.available).toBe(true);
      expect(snapshot!.figures.callsPerSecond).toBeGreaterThan(0);
      expect(snapshot!.figures.xidAgeShare).toBeGreaterThan(0);
    } finally {
      await session.end();
      await collector.stop();
    }
  });
});
