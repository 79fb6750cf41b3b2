import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binariesFor } from '../../engine/cluster/binaries.ts';
import { resolveConnection } from '../../engine/connection/connection-settings.ts';
import { connect } from '../../engine/connection/open-connection.ts';
import { projectWith, runCli, type CliResult } from '../support/cli.ts';
import { startServer, type ThrowawayServer } from '../support/throwaway-server.ts';

/**
 * Least privilege, as managed providers hand it out: every command as a superuser, as a role that owns
 * the database and its tables and has pg_monitor, and as a read-only role (CONNECT and SELECT only), on
 * PostgreSQL 16 and 15. What needs more than a role has fails in one line that names the grant. This is
 * the matrix of docs/managed-databases.md.
 */
const VERSIONS = [
  { version: '16', bin: async () => path.dirname((await binariesFor(process.getuid?.() === 0 ? 'postgres' : undefined)).pgCtl) },
  { version: '15', bin: async () => '/usr/lib/postgresql/15/bin' },
] as const;

const POLICY = `table: public.events
indexes:
  - name: events_tenant_idx
    columns: [tenant_id]
vacuum:
  autovacuum: { vacuum_scale_factor: 0.02 }
  max_dead_ratio: 0.05
`;

const ROLES = ['postgres', 'app_owner', 'app_reader'] as const;
type Role = (typeof ROLES)[number];

for (const { version, bin } of VERSIONS) {
  describe(`least privilege on PostgreSQL ${version}`, () => {
    let server: ThrowawayServer;
    let project: string;
    let out: string;

    const urlAs = (role: Role): string => `postgres://${role}@127.0.0.1:${server.port}/app?sslmode=disable`;
    const sql = async (role: Role, text: string): Promise<void> => {
      const client = await connect(resolveConnection({ connectionString: urlAs(role), env: {} }));
      try {
        await client.query(text);
      } finally {
        await client.end();
      }
    };
    const cli = (role: Role, args: readonly string[]): Promise<CliResult> => runCli(args, { cwd: project, env: { DATABASE_URL: urlAs(role) } });
    const firstLine = (r: CliResult): string => r.stderr.split('\n')[0] ?? '';

    /** serve on a free port, as the role; the caller aborts it and awaits `running`. */
    const serveAs = async (role: Role): Promise<{ running: Promise<CliResult>; controller: AbortController; base: string }> => {
      const port = await freePort();
      const controller = new AbortController();
      const running = runCli(['serve', '--port', String(port), '--no-site'], { cwd: project, env: { DATABASE_URL: urlAs(role) }, signal: controller.signal });
      return { running, controller, base: `http://127.0.0.1:${port}` };
    };

    beforeAll(async () => {
      server = await startServer({ bin: await bin(), installHint: 'apt-get install postgresql-15 (Debian), or npm install for 16' });
      const admin = await connect(resolveConnection({ connectionString: `${server.adminUrl}?sslmode=disable`, env: {} }));
      try {
        await admin.query('CREATE ROLE app_owner LOGIN IN ROLE pg_monitor; CREATE ROLE app_reader LOGIN');
        await admin.query('CREATE DATABASE app OWNER app_owner');
      } finally {
        await admin.end();
      }
      await sql('postgres', 'CREATE EXTENSION pg_stat_statements');
      await sql(
        'app_owner',
        `CREATE TABLE public.events (id bigint PRIMARY KEY, tenant_id int NOT NULL);
         INSERT INTO public.events SELECT g, g % 50 FROM generate_series(1, 5000) g;
         ANALYZE public.events;
         SELECT count(*) FROM public.events WHERE tenant_id = 7;
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO app_reader`,
      );
      project = await projectWith({ 'events.yaml': POLICY });
      out = await mkdtemp(path.join(tmpdir(), 'pgwarden-privileges-'));
    }, 180_000);

    afterAll(async () => {
      await server?.stop();
      if (project) await rm(project, { recursive: true, force: true });
      if (out) await rm(out, { recursive: true, force: true });
    });

    it('plan as a role that does not own a declared table is an error naming the table and its owner, before anything runs', async () => {
      const result = await cli('app_reader', ['plan']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        'policies/events.yaml:1:1: table public.events is owned by role "app_owner", and the role pgwarden connects as may not change it (2 change(s) planned for it need the owner\'s rights)',
      );
      const apply = await cli('app_reader', ['apply', '--auto-approve']);
      expect(apply.code).toBe(1);
      expect(firstLine(apply)).toContain('table public.events is owned by role "app_owner"');
    });

    it('plan, apply and plan again converge as the owner with pg_monitor', async () => {
      expect((await cli('app_owner', ['plan'])).code).toBe(0);
      const apply = await cli('app_owner', ['apply', '--auto-approve']);
      expect(apply.stderr).toBe('');
      expect(apply.code).toBe(0);
      const again = await cli('app_owner', ['plan', '--detailed-exitcode']);
      expect(again.stdout).toContain('No changes');
      expect(again.code).toBe(0);
    });

    it('plan as the read-only role says which grant lets it read pgwarden\'s schema, and plans once granted', async () => {
      const denied = await cli('app_reader', ['plan']);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toBe(
        'pgwarden: plan failed: permission denied for schema pgwarden\n' +
          '  hint: pgwarden reads its registries and history in the schema "pgwarden": GRANT USAGE ON SCHEMA pgwarden TO <role>; GRANT SELECT ON ALL TABLES IN SCHEMA pgwarden TO <role>\n',
      );
      await sql('app_owner', 'GRANT USAGE ON SCHEMA pgwarden TO app_reader; GRANT SELECT ON ALL TABLES IN SCHEMA pgwarden TO app_reader');
      const granted = await cli('app_reader', ['plan', '--detailed-exitcode']);
      expect(granted.stderr).toBe('');
      expect(granted.code).toBe(0);
      expect((await cli('postgres', ['plan', '--detailed-exitcode'])).code).toBe(0);
    });

    it('analyze, advise, health and import work for every role, pg_monitor or not', async () => {
      for (const role of ROLES) {
        for (const args of [['analyze'], ['advise'], ['health'], ['import', '--dry-run']]) {
          const result = await cli(role, args);
          expect({ role, args, code: result.code, stderr: result.stderr }).toEqual({ role, args, code: 0, stderr: '' });
        }
      }
    });

    // The site build is the same for every role: only reading the history differs, so the least privileged one builds it.
    it('report works for the read-only role once it may read pgwarden\'s schema', async () => {
      const result = await cli('app_reader', ['report', '--out', path.join(out, 'site'), '--no-health']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
    });

    // serve for each role, one after the other (each is a process with its own pool): the live API and
    // /metrics answer once the first poll is in. The read-only role reads pgwarden's schema since the grant above.
    it('serve answers /api/health, /api/history and /metrics for every role, and stops cleanly', async () => {
      for (const role of ROLES) {
        const { running, controller, base } = await serveAs(role);
        try {
          const health = await waitForSnapshot(`${base}/api/health`, running);
          const history = await fetch(`${base}/api/history`);
          const metrics = await fetch(`${base}/metrics`);
          const seen = { role, collector: health.collector, history: history.status, metrics: metrics.status };
          expect(seen).toEqual({ role, collector: expect.objectContaining({ state: 'connected', error: null }), history: 200, metrics: 200 });
          expect(((await history.json()) as { runs: unknown[] }).runs.length).toBeGreaterThan(0);
          expect(await metrics.text()).toContain('pgwarden_');
        } finally {
          controller.abort();
        }
        const result = await running;
        expect({ role, code: result.code, stderr: result.stderr }).toEqual({ role, code: 0, stderr: '' });
        expect(result.stdout).toContain('pgwarden serve: stopped');
      }
    }, 120_000);

    // Node prints a driver's deprecation warning on the process's stderr, which runCli does not capture: the real binary.
    it('serve, as the binary users run, prints no driver warning while it answers the API', async () => {
      const port = await freePort();
      const bin = path.join(import.meta.dirname, '..', '..', 'bin', 'pgwarden.js');
      const child = spawn(process.execPath, [bin, 'serve', '--port', String(port), '--no-site'], { cwd: project, env: { ...process.env, DATABASE_URL: urlAs('app_owner') } });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const running = exited.then((code): CliResult => ({ code: code ?? 1, stdout: '', stderr }));
      try {
        const base = `http://127.0.0.1:${port}`;
        await waitForSnapshot(`${base}/api/health`, running);
        const answers = await Promise.all([1, 2, 3, 4].map(() => fetch(`${base}/api/history`).then((r) => r.status)));
        expect(answers).toEqual([200, 200, 200, 200]);
      } finally {
        child.kill('SIGINT');
      }
      expect(await exited).toBe(0);
      // Only pgwarden's own lines (the SIGINT notice), no "(node:PID) ...Warning".
      expect(stderr.split('\n').filter((line) => line !== '' && !line.startsWith('pgwarden: '))).toEqual([]);
    });

    it('serve as the read-only role without read access to pgwarden\'s schema: the live figures answer, /api/history names the grants', async () => {
      await sql('app_owner', 'REVOKE SELECT ON ALL TABLES IN SCHEMA pgwarden FROM app_reader; REVOKE USAGE ON SCHEMA pgwarden FROM app_reader');
      const { running, controller, base } = await serveAs('app_reader');
      try {
        expect((await waitForSnapshot(`${base}/api/health`, running)).collector).toMatchObject({ state: 'connected', error: null });
        expect((await fetch(`${base}/metrics`)).status).toBe(200);
        const history = await fetch(`${base}/api/history`);
        expect({ status: history.status, body: await history.json() }).toEqual({
          status: 403,
          body: {
            error:
              'permission denied for schema pgwarden: pgwarden reads its registries and history in the schema "pgwarden": GRANT USAGE ON SCHEMA pgwarden TO <role>; GRANT SELECT ON ALL TABLES IN SCHEMA pgwarden TO <role>',
          },
        });
      } finally {
        controller.abort();
        await sql('app_owner', 'GRANT USAGE ON SCHEMA pgwarden TO app_reader; GRANT SELECT ON ALL TABLES IN SCHEMA pgwarden TO app_reader');
      }
      expect((await running).code).toBe(0);
    });

    it('maintain works as the superuser and the owner; the read-only role gets one line naming the grant', async () => {
      expect((await cli('postgres', ['maintain'])).code).toBe(0);
      expect((await cli('app_owner', ['maintain'])).code).toBe(0);
      const reader = await cli('app_reader', ['maintain']);
      expect(reader.code).toBe(1);
      expect(reader.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(reader.stderr).toMatch(/^pgwarden: maintain failed: .*belongs to role "app_owner"; role "app_reader" may not write it/u);
    });

    it('apply as the read-only role, with nothing to change, says in one line that it may not write pgwarden\'s history', async () => {
      const result = await cli('app_reader', ['apply', '--auto-approve']);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        'pgwarden: apply failed: pgwarden keeps its history and registries in the schema "pgwarden", which belongs to role "app_owner"; ' +
          'role "app_reader" may not write it (permission denied for schema pgwarden): run pgwarden as "app_owner", or GRANT "app_owner" TO "app_reader"\n',
      );
    });

    it('a role that owns its tables but may create neither in their schema nor in the database is told each grant, and works once granted', async () => {
      const admin = await connect(resolveConnection({ connectionString: `${server.adminUrl}?sslmode=disable`, env: {} }));
      try {
        await admin.query('CREATE ROLE table_owner LOGIN IN ROLE pg_monitor');
        await admin.query('CREATE DATABASE shared');
      } finally {
        await admin.end();
      }
      const shared = async (role: 'postgres' | 'table_owner', text: string): Promise<void> => {
        const client = await connect(resolveConnection({ connectionString: `postgres://${role}@127.0.0.1:${server.port}/shared?sslmode=disable`, env: {} }));
        try {
          await client.query(text);
        } finally {
          await client.end();
        }
      };
      await shared('postgres', 'CREATE TABLE public.events (id bigint PRIMARY KEY, tenant_id int NOT NULL); ALTER TABLE public.events OWNER TO table_owner');
      const env = { DATABASE_URL: `postgres://table_owner@127.0.0.1:${server.port}/shared?sslmode=disable` };
      const noCreate = await runCli(['plan'], { cwd: project, env });
      expect(noCreate.code).toBe(1);
      expect(noCreate.stderr).toContain(
        'policies/events.yaml:1:1: the role pgwarden connects as may not create in schema public, where 1 change(s) planned for table public.events create an index or a partition (GRANT CREATE ON SCHEMA "public" TO <your role>)',
      );
      await shared('postgres', 'GRANT CREATE ON SCHEMA public TO table_owner');
      expect((await runCli(['plan'], { cwd: project, env })).code).toBe(0);
      const refused = await runCli(['apply', '--auto-approve'], { cwd: project, env });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toBe(
        'pgwarden: apply failed: pgwarden keeps its history and registries in the schema "pgwarden", which role "table_owner" may not create ' +
          '(permission denied for database shared): GRANT CREATE ON DATABASE "shared" TO "table_owner", or have an administrator run CREATE SCHEMA pgwarden AUTHORIZATION "table_owner"\n',
      );
      await shared('postgres', 'CREATE SCHEMA pgwarden AUTHORIZATION table_owner');
      const applied = await runCli(['apply', '--auto-approve'], { cwd: project, env });
      expect(applied.stderr).toBe('');
      expect(applied.code).toBe(0);
      expect((await runCli(['plan', '--detailed-exitcode'], { cwd: project, env })).code).toBe(0);
    });
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

interface HealthAnswer {
  collector: unknown;
  snapshot: unknown;
}

/** Polls until serve has its first snapshot; fails at once if serve ended instead. */
async function waitForSnapshot(url: string, running: Promise<CliResult>): Promise<HealthAnswer> {
  let ended: CliResult | undefined;
  void running.then((r) => (ended = r));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (ended) throw new Error(`serve ended (${ended.code}): ${ended.stderr}`);
    const answer = await fetch(url).then(async (r) => (r.ok ? ((await r.json()) as HealthAnswer) : undefined)).catch(() => undefined);
    if (answer?.snapshot) return answer;
    if (Date.now() > deadline) throw new Error(`no snapshot from ${url} within 30 s: ${JSON.stringify(answer?.collector)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
