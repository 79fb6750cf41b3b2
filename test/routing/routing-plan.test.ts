import { createServer } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;

const policy = (...settings: string[]): string =>
  [
    'routing:',
    '  replicas:',
    '    - name: standby1',
    '      url_env: REPLICA_URL',
    '  max_lag_ms: 2000',
    ...(settings.length > 0 ? ['  standby_settings:', ...settings.map((s) => `    ${s}`)] : []),
    '',
  ].join('\n');

/** The CLI's environment; `null`: REPLICA_URL unset. */
const env = (replicaUrl: string | null = db.standbyUrl): NodeJS.ProcessEnv => ({
  DATABASE_URL: db.url,
  ...(replicaUrl === null ? {} : { REPLICA_URL: replicaUrl }),
});

async function heartbeatExists(): Promise<boolean> {
  const r = await db.pool.query<{ here: boolean }>(`SELECT to_regclass('pgwarden.heartbeat') IS NOT NULL AS here`);
  return r.rows[0]?.here ?? false;
}

async function routerMetricsExists(): Promise<boolean> {
  const r = await db.pool.query<{ here: boolean }>(`SELECT to_regclass('pgwarden.router_metrics') IS NOT NULL AS here`);
  return r.rows[0]?.here ?? false;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address !== null ? address.port : 1;
}

beforeAll(async () => {
  db = await useTestDatabase();
  if (db.standbyUrl === '') throw new Error('these tests need the suite’s streaming standby');
  // The standby serves the new database once it has replayed CREATE DATABASE.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = new pg.Client({ connectionString: db.standbyUrl });
    try {
      await client.connect();
      await client.end();
      break;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
});
afterAll(async () => {
  await db?.close();
});

describe('plan and apply for the routing policy, on the real primary and standby', () => {
  it('stops with an error naming the variable when a replica URL is missing from the environment', async () => {
    const project = await projectWith({ 'routing.yaml': policy() });

    const result = await runCli(['plan'], { cwd: project, env: env(null) });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('policies/routing.yaml:4:16: replica standby1: the environment variable REPLICA_URL is not set');
    expect(result.stderr).toContain('1 error in the policies; nothing was changed.');
    expect(await heartbeatExists()).toBe(false);
  });

  it('verifies the replica, creates the heartbeat table, and then plans no changes', async () => {
    const project = await projectWith({ 'routing.yaml': policy() });

    const planned = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() });
    expect(planned.stderr).toBe('');
    expect(planned.code).toBe(2);
    expect(planned.stdout).toMatch(/Replicas \(policies\/routing\.yaml\):\n {2}ok {4}standby1 {2}streaming from this primary, [\d.]+ ms behind/);
    expect(planned.stdout).toContain("+ create the replication heartbeat table pgwarden.heartbeat and the routers' metrics table pgwarden.router_metrics on the primary");

    const applied = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(await heartbeatExists()).toBe(true);
    expect((await db.pool.query('SELECT id FROM pgwarden.heartbeat')).rows).toEqual([{ id: 1 }]);
    expect(await routerMetricsExists()).toBe(true);

    const again = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() });
    expect(again.stdout).toContain('No changes.');
    expect(again.code).toBe(0);
  });

  it('adds the router metrics table where only the heartbeat exists (applied by an older pgwarden), then plans no changes', async () => {
    const project = await projectWith({ 'routing.yaml': policy() });
    await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    await db.pool.query('DROP TABLE pgwarden.router_metrics');

    const planned = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() });
    expect(planned.code).toBe(2);
    expect(planned.stdout).toContain("+ create the routers' metrics table pgwarden.router_metrics on the primary");
    expect(planned.stdout).not.toContain('pgwarden.heartbeat and');

    const applied = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    expect(applied.stderr).toBe('');
    expect(await routerMetricsExists()).toBe(true);
    const again = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() });
    expect(again.stdout).toContain('No changes.');
    expect(again.code).toBe(0);
  });

  it('plans no change for standby settings that already hold, in any spelling PostgreSQL accepts', async () => {
    const project = await projectWith({ 'routing.yaml': policy('hot_standby_feedback: false', 'max_standby_streaming_delay: 0.5min') });

    const planned = await runCli(['plan', '--detailed-exitcode', '--json'], { cwd: project, env: env() });

    expect(planned.stderr).toBe('');
    const plan = JSON.parse(planned.stdout) as { changes: unknown[]; routing: { replicas: { name: string; status: string }[] } };
    expect(plan.changes).toEqual([]);
    expect(plan.routing.replicas).toMatchObject([{ name: 'standby1', status: 'ok' }]);
    expect(planned.code).toBe(0);
  });

  it('reports an unknown or invalid standby setting at its line, with a suggestion', async () => {
    const project = await projectWith({ 'routing.yaml': policy('hot_standby_feedbak: on', 'max_standby_streaming_delay: soon') });

    const planned = await runCli(['plan'], { cwd: project, env: env() });

    expect(planned.code).toBe(1);
    expect(planned.stderr).toContain('policies/routing.yaml:7:26: standby setting "hot_standby_feedbak" is not a PostgreSQL setting on standby1 (did you mean "hot_standby_feedback"?)');
    expect(planned.stderr).toContain('policies/routing.yaml:8:34: "soon" is not a number');
  });

  it('refuses a replica URL that names the primary', async () => {
    const project = await projectWith({ 'routing.yaml': policy() });

    const planned = await runCli(['plan'], { cwd: project, env: env(db.url) });

    expect(planned.code).toBe(1);
    expect(planned.stderr).toContain('replica standby1 (REPLICA_URL) is not in recovery: it is a primary, not a hot standby');
  });

  it('warns about a replica it cannot reach, and still plans', async () => {
    const project = await projectWith({ 'routing.yaml': policy('hot_standby_feedback: on') });

    const planned = await runCli(['plan'], { cwd: project, env: env(`postgres://postgres@127.0.0.1:${await closedPort()}/${db.name}`) });

    expect(planned.code).toBe(0);
    expect(planned.stdout).toMatch(/warning: policies\/routing\.yaml:3:7: replica standby1 \(REPLICA_URL\) is unreachable: .*ECONNREFUSED.*; its standby settings were not checked/);
    expect(planned.stdout).toMatch(/FAIL {2}standby1 {2}/);
  });

  it('validates the routing document without a database or the environment', async () => {
    const project = await projectWith({ 'routing.yaml': policy('hot_standby_feedback: on') });

    const result = await runCli(['validate'], { cwd: project, env: {} });

    expect(result.stdout).toBe('1 policy file(s) valid: 0 table(s), 0 index(es), routing to 1 replica(s).\n');
    expect(result.code).toBe(0);
  });

  it('shows the replicas in the Markdown plan for pull requests, and never a URL', async () => {
    const project = await projectWith({ 'routing.yaml': policy() });
    const secretUrl = db.standbyUrl.replace('postgres@', 'postgres:s3cret@');

    const planned = await runCli(['plan', '--format', 'markdown'], { cwd: project, env: env(secretUrl) });

    expect(planned.stdout).toContain('| `standby1` | ok | streaming from this primary');
    expect(planned.stdout).not.toContain('s3cret');
    expect(planned.stdout).not.toContain(db.standbyUrl);
  });

  // Last: it replaces the schema the tests above created. A role as managed providers give it (owner of its
  // objects, pg_monitor, no CREATE on the database) uses a pgwarden schema an administrator made for it.
  it('applies routing as a role without CREATE on the database into a schema made for it, and names the grant when there is none', async () => {
    const role = `routing_owner_${db.name}`.slice(0, 63);
    const project = await projectWith({ 'routing.yaml': policy() });
    const roleEnv = { ...env(), DATABASE_URL: db.url.replace('postgres@', `${role}@`) };
    await db.pool.query(`DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE ROLE "${role}" LOGIN IN ROLE pg_monitor`);
    try {
      const refused = await runCli(['apply', '--auto-approve'], { cwd: project, env: roleEnv });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe(
        `pgwarden: apply failed: pgwarden keeps its history and registries in the schema "pgwarden", which role "${role}" may not create ` +
          `(permission denied for database ${db.name}): GRANT CREATE ON DATABASE "${db.name}" TO "${role}", or have an administrator run CREATE SCHEMA pgwarden AUTHORIZATION "${role}"\n`,
      );
      expect(await heartbeatExists()).toBe(false);

      await db.pool.query(`CREATE SCHEMA pgwarden AUTHORIZATION "${role}"`);
      const applied = await runCli(['apply', '--auto-approve'], { cwd: project, env: roleEnv });
      expect(applied.stderr).toBe('');
      expect(applied.code).toBe(0);
      expect(await heartbeatExists()).toBe(true);
      expect(await routerMetricsExists()).toBe(true);
      const again = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: roleEnv });
      expect(again.stdout).toContain('No changes.');
      expect(again.code).toBe(0);
    } finally {
      await db.pool.query(`DROP SCHEMA IF EXISTS pgwarden CASCADE; DROP OWNED BY "${role}"; DROP ROLE "${role}"`);
    }
  });
});
