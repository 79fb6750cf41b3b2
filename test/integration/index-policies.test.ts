import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { apply, APPLY_DEFAULTS } from '../../engine/apply/apply.ts';
import { makePlan } from '../../engine/plan/make-plan.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { projectWith, runCli, writePolicy } from '../support/cli.ts';
import { convergeHelpers } from '../support/converge.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
const { env, sql, plan, applyAndConverge, leaveInvalidIndex } = convergeHelpers(() => db);

async function indexNames(table: string): Promise<string[]> {
  const rows = await sql(`SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = $1::regclass ORDER BY 1`, [table]);
  return rows.map((r) => String(r['name']));
}

beforeAll(async () => {
  db = await useTestDatabase();
});
afterAll(async () => {
  await db.close();
});

beforeEach(async () => {
  await sql(`DROP SCHEMA IF EXISTS app CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA app`);
  await sql(`CREATE TABLE app.events (id bigint PRIMARY KEY, tenant_id int NOT NULL, created_at timestamptz NOT NULL, kind text, status text, email text)`);
  await sql(`INSERT INTO app.events SELECT g, g % 50, now() - g * interval '1 minute', 'k' || (g % 7), CASE WHEN g % 10 = 0 THEN 'archived' ELSE 'open' END, 'u' || g || '@x'
               FROM generate_series(1, 20000) g`);
  await sql(`ANALYZE app.events`);
});

const EVENTS = `
table: app.events
indexes:
  - name: events_tenant_created_idx
    columns: [tenant_id, created_at desc]
    include: [kind]
    where: "status <> 'archived'"
  - name: events_lower_email_idx
    columns:
      - expression: lower(email)
`;

describe('index policies, planned and applied online', () => {
  it('creates missing indexes concurrently and then plans no changes', async () => {
    const project = await projectWith({ 'events.yaml': EVENTS });
    const first = await plan(project);
    expect(first.code).toBe(2);
    expect(first.stdout).toContain('+ create index events_tenant_created_idx on app.events');
    expect(first.stdout).toContain('CREATE INDEX CONCURRENTLY "events_tenant_created_idx" ON "app"."events"');
    expect(first.stdout).toContain('Plan: 2 to add, 0 to change, 0 to destroy.');
    await applyAndConverge(project);
    expect(await indexNames('app.events')).toEqual(['app.events_lower_email_idx', 'app.events_pkey', 'app.events_tenant_created_idx']);
    const valid = await sql(`SELECT bool_and(indisvalid) AS ok FROM pg_index WHERE indrelid = 'app.events'::regclass`);
    expect(valid[0]?.['ok']).toBe(true);
  });

  it('treats an equivalent index under another name as a rename, not a rebuild', async () => {
    // Written differently from the policy (explicit ASC, NULLS LAST spelled out): PostgreSQL decides equality.
    await sql(`CREATE INDEX legacy_idx ON app.events (tenant_id ASC NULLS LAST, created_at DESC NULLS FIRST) INCLUDE (kind) WHERE status <> 'archived'::text`);
    const project = await projectWith({ 'events.yaml': EVENTS });
    const first = await plan(project);
    expect(first.stdout).toContain('~ rename index legacy_idx to events_tenant_created_idx');
    expect(first.stdout).not.toContain('CREATE INDEX CONCURRENTLY "events_tenant_created_idx"');
    await applyAndConverge(project);
    expect(await indexNames('app.events')).toContain('app.events_tenant_created_idx');
    expect(await indexNames('app.events')).not.toContain('app.legacy_idx');
  });

  it('builds the new definition before dropping the old one when a definition changes', async () => {
    const project = await projectWith({ 'events.yaml': EVENTS });
    await applyAndConverge(project);
    await writePolicy(project, 'events.yaml', EVENTS.replace('include: [kind]', 'include: [kind, status]'));
    const changed = await plan(project);
    expect(changed.code).toBe(2);
    expect(changed.stdout).toContain('± replace index events_tenant_created_idx');
    const order = changed.stdout.indexOf('CREATE INDEX CONCURRENTLY "events_tenant_created_idx_pgwarden_new"');
    expect(order).toBeGreaterThan(0);
    expect(changed.stdout.indexOf('DROP INDEX CONCURRENTLY IF EXISTS "app"."events_tenant_created_idx"')).toBeGreaterThan(order);
    await applyAndConverge(project);
    const def = await sql(`SELECT pg_get_indexdef('app.events_tenant_created_idx'::regclass) AS d`);
    expect(String(def[0]?.['d'])).toContain('INCLUDE (kind, status)');
  });

  it('drops the new index a replace interrupted before its swap left behind, then replaces again', async () => {
    const project = await projectWith({ 'events.yaml': EVENTS });
    await applyAndConverge(project);
    await writePolicy(project, 'events.yaml', EVENTS.replace('include: [kind]', 'include: [kind, status]'));
    const { desired } = await loadPolicies(path.join(project, 'policies'));
    const controller = new AbortController();
    // Interrupted once the replacement is built, before the old index is dropped and the new one renamed.
    const interrupted = apply({
      ...APPLY_DEFAULTS,
      databaseUrl: db.url,
      desired,
      who: { actor: 'test', gitCommit: null, gitBranch: null },
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'step' && event.sql.startsWith('DROP INDEX CONCURRENTLY')) controller.abort();
      },
    });
    await expect(interrupted).rejects.toThrow('interrupted');
    expect(await indexNames('app.events')).toContain('app.events_tenant_created_idx_pgwarden_new');

    const p = await plan(project);
    const dropLeftover = p.stdout.indexOf('DROP INDEX CONCURRENTLY IF EXISTS "app"."events_tenant_created_idx_pgwarden_new"');
    expect(dropLeftover).toBeGreaterThan(0);
    expect(p.stdout.indexOf('CREATE INDEX CONCURRENTLY "events_tenant_created_idx_pgwarden_new"')).toBeGreaterThan(dropLeftover);
    await applyAndConverge(project);
    expect(await indexNames('app.events')).toEqual(['app.events_lower_email_idx', 'app.events_pkey', 'app.events_tenant_created_idx']);
    const def = await sql(`SELECT pg_get_indexdef('app.events_tenant_created_idx'::regclass) AS d`);
    expect(String(def[0]?.['d'])).toContain('INCLUDE (kind, status)');
  });

  it('adopts an identical index it did not create, and reports indexes nobody declared without dropping them', async () => {
    await sql(`CREATE INDEX events_lower_email_idx ON app.events (lower(email))`);
    await sql(`CREATE INDEX someone_elses_idx ON app.events (kind)`);
    const project = await projectWith({ 'events.yaml': EVENTS });
    const first = await plan(project);
    expect(first.stdout).toContain('~ manage existing index events_lower_email_idx');
    expect(first.stdout).toMatch(/warning: .*index someone_elses_idx is not declared in any policy/);
    await applyAndConverge(project);
    expect(await indexNames('app.events')).toContain('app.someone_elses_idx');
  });

  it('drops an index it manages once the policy removes it, only with --allow-drop', async () => {
    const project = await projectWith({ 'events.yaml': EVENTS });
    await applyAndConverge(project);
    await writePolicy(project, 'events.yaml', EVENTS.split('  - name: events_lower_email_idx')[0] ?? '');
    const p = await plan(project);
    expect(p.stdout).toContain('- drop index events_lower_email_idx on app.events');
    const refused = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--allow-drop');
    expect(await indexNames('app.events')).toContain('app.events_lower_email_idx');
    await applyAndConverge(project, '--allow-drop');
    expect(await indexNames('app.events')).not.toContain('app.events_lower_email_idx');
  });

  it('drops undeclared indexes of a fully managed table only with --allow-drop, never constraint indexes', async () => {
    await sql(`CREATE INDEX someone_elses_idx ON app.events (kind)`);
    const project = await projectWith({ 'events.yaml': EVENTS.replace('table: app.events', 'table: app.events\nmanaged: full') });
    const p = await plan(project);
    expect(p.stdout).toContain('- drop index someone_elses_idx');
    expect(p.stdout).not.toContain('drop index events_pkey');
    await applyAndConverge(project, '--allow-drop');
    expect(await indexNames('app.events')).toEqual(['app.events_lower_email_idx', 'app.events_pkey', 'app.events_tenant_created_idx']);
  });

  it('detects an INVALID index left by a failed concurrent build and rebuilds it', async () => {
    await sql(`INSERT INTO app.events VALUES (100001, 1, now(), 'k', 'open', 'dup@x'), (100002, 1, now(), 'k', 'open', 'dup@x')`);
    await sql(`CREATE UNIQUE INDEX CONCURRENTLY events_email_key ON app.events (email)`).catch(() => undefined);
    const invalid = await sql(`SELECT indisvalid FROM pg_index WHERE indexrelid = 'app.events_email_key'::regclass`);
    expect(invalid[0]?.['indisvalid']).toBe(false);
    await sql(`DELETE FROM app.events WHERE id = 100002`);
    const project = await projectWith({
      'events.yaml': `table: app.events\nindexes:\n  - name: events_email_key\n    columns: [email]\n    unique: true\n`,
    });
    const p = await plan(project);
    expect(p.stdout).toContain('± rebuild INVALID index events_email_key');
    await applyAndConverge(project);
    const valid = await sql(`SELECT indisvalid FROM pg_index WHERE indexrelid = 'app.events_email_key'::regclass`);
    expect(valid[0]?.['indisvalid']).toBe(true);
  });

  it('builds an index on a partitioned table ON ONLY the parent, concurrently per partition, then attaches', async () => {
    await sql(`CREATE TABLE app.metrics (id bigint, at timestamptz NOT NULL, host text) PARTITION BY RANGE (at)`);
    await sql(`CREATE TABLE app.metrics_2026_10 PARTITION OF app.metrics FOR VALUES FROM ('2026-10-01') TO ('2026-11-01')`);
    await sql(`CREATE TABLE app.metrics_2026_11 PARTITION OF app.metrics FOR VALUES FROM ('2026-11-01') TO ('2026-12-01')`);
    await sql(`INSERT INTO app.metrics SELECT g, '2026-10-15'::timestamptz + (g % 40) * interval '1 day', 'h' || (g % 9) FROM generate_series(1, 5000) g`);
    const project = await projectWith({ 'metrics.yaml': `table: app.metrics\nindexes:\n  - name: metrics_host_at_idx\n    columns: [host, at]\n` });
    const p = await plan(project);
    expect(p.stdout).toContain('CREATE INDEX IF NOT EXISTS "metrics_host_at_idx" ON ONLY "app"."metrics"');
    expect(p.stdout).toContain('CREATE INDEX CONCURRENTLY "metrics_2026_10_metrics_host_at_idx" ON "app"."metrics_2026_10"');
    expect(p.stdout).toContain('ALTER INDEX "app"."metrics_host_at_idx" ATTACH PARTITION "app"."metrics_2026_11_metrics_host_at_idx"');
    await applyAndConverge(project);
    const parent = await sql(`SELECT indisvalid FROM pg_index WHERE indexrelid = 'app.metrics_host_at_idx'::regclass`);
    expect(parent[0]?.['indisvalid']).toBe(true);
  });

  describe('an interrupted partitioned build', () => {
    const METRICS = `table: app.metrics\nindexes:\n  - name: metrics_host_idx\n    columns: [host]\n`;

    beforeEach(async () => {
      await sql(`CREATE TABLE app.metrics (id bigint, at timestamptz NOT NULL, host text) PARTITION BY RANGE (at)`);
      for (const month of ['10', '11', '12']) {
        const next = month === '12' ? '2027-01-01' : `2026-${Number(month) + 1}-01`;
        await sql(`CREATE TABLE app.metrics_2026_${month} PARTITION OF app.metrics FOR VALUES FROM ('2026-${month}-01') TO ('${next}')`);
      }
      await sql(`INSERT INTO app.metrics SELECT g, '2026-10-01'::timestamptz + (g % 90) * interval '1 day', 'h' || (g % 9) FROM generate_series(1, 6000) g`);
    });


    it('is resumed: a VALID partition index under the expected name is attached as is, an INVALID one rebuilt, the rest built', async () => {
      // What an apply stopped midway leaves: the parent ON ONLY, one partition's index built but never attached, one INVALID.
      await sql(`CREATE INDEX metrics_host_idx ON ONLY app.metrics (host)`);
      await sql(`CREATE INDEX metrics_2026_10_metrics_host_idx ON app.metrics_2026_10 (host)`);
      await leaveInvalidIndex(`CREATE INDEX CONCURRENTLY metrics_2026_11_metrics_host_idx ON app.metrics_2026_11 (host)`);
      const handBuilt = await sql(`SELECT 'app.metrics_2026_10_metrics_host_idx'::regclass::oid::int8 AS oid`);
      const project = await projectWith({ 'metrics.yaml': METRICS });

      const p = await plan(project);
      expect(p.stdout).toContain('± rebuild INVALID index metrics_host_idx');
      expect(p.stdout).not.toContain('DROP INDEX IF EXISTS "app"."metrics_host_idx"');
      expect(p.stdout).not.toContain('CREATE INDEX CONCURRENTLY "metrics_2026_10_metrics_host_idx"');
      expect(p.stdout).toContain('ALTER INDEX "app"."metrics_host_idx" ATTACH PARTITION "app"."metrics_2026_10_metrics_host_idx"');
      const dropInvalid = p.stdout.indexOf('DROP INDEX CONCURRENTLY IF EXISTS "app"."metrics_2026_11_metrics_host_idx"');
      expect(dropInvalid).toBeGreaterThan(0);
      expect(p.stdout.indexOf('CREATE INDEX CONCURRENTLY "metrics_2026_11_metrics_host_idx"')).toBeGreaterThan(dropInvalid);
      expect(p.stdout).toContain('CREATE INDEX CONCURRENTLY "metrics_2026_12_metrics_host_idx"');

      await applyAndConverge(project);
      const attached = await sql(
        `SELECT c.relname, x.indisvalid FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_index x ON x.indexrelid = c.oid
          WHERE i.inhparent = 'app.metrics_host_idx'::regclass ORDER BY 1`,
      );
      expect(attached).toEqual(['10', '11', '12'].map((m) => ({ relname: `metrics_2026_${m}_metrics_host_idx`, indisvalid: true })));
      expect((await sql(`SELECT indisvalid FROM pg_index WHERE indexrelid = 'app.metrics_host_idx'::regclass`))[0]?.['indisvalid']).toBe(true);
      expect((await sql(`SELECT 'app.metrics_2026_10_metrics_host_idx'::regclass::oid::int8 AS oid`))[0]).toEqual(handBuilt[0]);
    });

    it('reports a partition index of another definition under the name it needs, and leaves it alone', async () => {
      await sql(`CREATE INDEX metrics_2026_11_metrics_host_idx ON app.metrics_2026_11 (at)`);
      const project = await projectWith({ 'metrics.yaml': METRICS });

      const p = await plan(project);
      expect(p.code).toBe(1);
      expect(p.stderr).toContain(
        'index metrics_host_idx: the index of partition app.metrics_2026_11 would be named metrics_2026_11_metrics_host_idx, but an index of another definition has that name',
      );
      const applied = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
      expect(applied.code).toBe(1);
      expect(await indexNames('app.metrics')).toEqual([]);
      const definition = await sql(`SELECT pg_get_indexdef('app.metrics_2026_11_metrics_host_idx'::regclass) AS d`);
      expect(String(definition[0]?.['d'])).toContain('USING btree (at)');
    });
  });

  it('makes a first plan in the same number of round trips for one table as for twenty, expressions and predicates included', async () => {
    const firstPlanRoundTrips = async (tables: number): Promise<number> => {
      await sql(`DROP SCHEMA IF EXISTS wide CASCADE; CREATE SCHEMA wide`);
      const files: Record<string, string> = {};
      for (let t = 0; t < tables; t += 1) {
        await sql(`CREATE TABLE wide.t${t} (id int, email text, status text)`);
        files[`t${t}.yaml`] = [
          `table: wide.t${t}`,
          'indexes:',
          `  - { name: t${t}_email_idx, columns: [{ expression: lower(email) }], where: "status <> 'gone'" }`,
          `  - { name: t${t}_id_idx, columns: [id] }`,
          '',
        ].join('\n');
      }
      const { desired, errors } = await loadPolicies(path.join(await projectWith(files), 'policies'));
      expect(errors).toEqual([]);
      const client = await db.pool.connect();
      try {
        const outcome = await makePlan(client, desired, new Date());
        expect(outcome.ok && outcome.plan.changes.length).toBe(tables * 2);
        return outcome.roundTrips;
      } finally {
        client.release();
      }
    };
    expect(await firstPlanRoundTrips(20)).toBe(await firstPlanRoundTrips(1));
  });

  it('writes a history record for every apply', async () => {
    const project = await projectWith({ 'events.yaml': EVENTS });
    await applyAndConverge(project);
    await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    const rows = await sql(`SELECT kind, outcome, duration_ms, (summary->>'add')::int AS added, actor FROM pgwarden.history ORDER BY id`);
    expect(rows.map((r) => [r['kind'], r['outcome'], r['added']])).toEqual([
      ['apply', 'succeeded', 2],
      ['apply', 'succeeded', 0],
    ]);
    expect(Number(rows[0]?.['duration_ms'])).toBeGreaterThanOrEqual(0);
    expect(String(rows[0]?.['actor'])).not.toBe('');
  });
});
