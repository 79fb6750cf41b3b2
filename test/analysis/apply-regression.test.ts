import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRegressions, noiseBandMs, type StatementSinceApply } from '../../engine/live-health/apply-regression.ts';
import type { ApplyRegression } from '../../engine/live-health/apply-regression.ts';
import type { Finding } from '../../engine/live-health/finding.ts';
import { createHealthCollector } from '../../engine/live-health/health-collector.ts';
import { latestApplyRegressions } from '../../engine/serve/site-data.ts';
import { startServeServer } from '../../engine/serve/serve-server.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { convergeHelpers } from '../support/converge.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

describe('the noise band of a statement since an apply', () => {
  const statement = (over: Partial<StatementSinceApply>): StatementSinceApply => ({
    id: '10:1', query: 'SELECT * FROM public.items WHERE grp = $1', callsBefore: 100, meanBeforeMs: 10, stddevBeforeMs: 4, callsSince: 16, meanSinceMs: 12, ...over,
  });

  it('is three standard errors of the mean since, at least a tenth of the mean before', () => {
    expect(noiseBandMs(statement({}))).toBeCloseTo(3);
    expect(noiseBandMs(statement({ stddevBeforeMs: 0 }))).toBeCloseTo(1);
  });

  it('a statement with too few calls since is no verdict, whatever its mean', () => {
    expect(applyRegressions(null, [statement({ callsSince: 2, meanSinceMs: 100 })])).toEqual([]);
  });
});

// A real apply on the suite's PostgreSQL 16, then a statement on the table the apply changed that is
// slower since (made slower on purpose with pg_sleep: what is checked is the finding and its revert).
let db: TestDatabase;
let project: string;
const { env, applyAndConverge } = convergeHelpers(() => db);
const SLOW = 'SELECT count(*) FROM public.items WHERE grp = $1 AND pg_sleep($2) IS NOT NULL';

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    CREATE TABLE public.items (id int PRIMARY KEY, grp int NOT NULL);
    INSERT INTO public.items SELECT g, g % 50 FROM generate_series(1, 5000) g;`);
  project = await projectWith({
    'items.yaml': 'table: public.items\nindexes:\n  - name: items_grp_idx\n    columns: [grp]\n',
  });
});

afterAll(async () => {
  await db?.close();
  if (project) await rm(project, { recursive: true, force: true });
});

describe('a statement slower since an apply', () => {
  it('is a finding in pgwarden health with the policy entry to remove and the statement that reverts it now', async () => {
    for (let i = 0; i < 10; i += 1) await db.pool.query(SLOW, [i % 50, 0]);
    await applyAndConverge(project);
    for (let i = 0; i < 10; i += 1) await db.pool.query(SLOW, [i % 50, 0.02]);

    const health = await runCli(['health', '--json', '--estimate-only'], { cwd: project, env: env() });
    expect(health.stderr).toBe('');
    const found = (JSON.parse(health.stdout) as { applyRegressions: ApplyRegression[] }).applyRegressions;
    expect(found).toHaveLength(1);
    expect(found[0]!.query).toContain('pg_sleep');
    expect(found[0]!.meanSinceMs).toBeGreaterThan(found[0]!.meanBeforeMs + found[0]!.noiseMs);
    expect(found[0]!.revert).toEqual([
      { policy: { file: 'policies/items.yaml', line: 3 }, index: 'public.items_grp_idx', sql: 'DROP INDEX CONCURRENTLY "public"."items_grp_idx";' },
    ]);
    const text = await runCli(['health', '--estimate-only'], { cwd: project, env: env() });
    expect(text.stdout).toContain('revert: remove the entry at policies/items.yaml:3 (public.items_grp_idx)');
  
    // The live page's findings come from the collector's snapshot, as /api/health serves it.
    const collector = createHealthCollector({ primaryUrl: db.url, slowIntervalMs: 0, applyRegressions: (client) => latestApplyRegressions(client) });
    const server = await startServeServer({ databaseUrl: db.url, collector, site: null, host: '127.0.0.1', port: 0 });
    try {
      await collector.pollOnce();
      await collector.slowSettled();
      await collector.pollOnce();
      const body = (await (await fetch(`${server.url}/api/health`)).json()) as { snapshot: { findings: Finding[] } };
      const live = body.snapshot.findings.filter((f) => f.kind === 'apply-regression');
      expect(live).toHaveLength(1);
      expect(live[0]!.subject).toBe(`statement ${found[0]!.statementId}`);
      expect(live[0]!.message).toContain('pg_sleep');
      expect(live[0]!.fixSql).toBe('-- remove the entry at policies/items.yaml:3 (public.items_grp_idx), then apply --allow-drop; or now:\nDROP INDEX CONCURRENTLY "public"."items_grp_idx";');
    } finally {
      await server.close();
      await collector.stop();
    }
  });
});
