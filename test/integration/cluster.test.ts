import { chmod, mkdtemp, rm, writeFile, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterDown, clusterStopNode } from '../../engine/cluster/embedded-cluster.ts';
import { runCli } from '../support/cli.ts';
import { freePort } from '../../engine/cluster/local-address.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
let home: string;
const ports = { primary: 0, standby: 0 };

const cli = (...args: string[]) => runCli(args, { cwd: home, env: { PGWARDEN_HOME: home } });

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'pgwarden-cluster-'));
  await chmod(home, 0o755);
  ports.primary = await freePort();
  ports.standby = await freePort();
});
afterAll(async () => {
  await clusterDown({ baseDir: home, destroy: true });
  await rm(home, { recursive: true, force: true });
});

describe('the embedded cluster (pgwarden up | status | down)', () => {
  it('starts a primary and a streaming hot standby, prints their URLs, and replicates writes', async () => {
    const up = await cli('up', '--port', String(ports.primary), '--standby-port', String(ports.standby));
    expect(up.stderr).toContain('initialising the primary');
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`export DATABASE_URL=postgres://postgres@127.0.0.1:${ports.primary}/pgwarden_example`);
    expect(up.stderr).toContain('example: loaded small example');
    const primary = new pg.Client(`postgres://postgres@127.0.0.1:${ports.primary}/postgres`);
    const standby = new pg.Client(`postgres://postgres@127.0.0.1:${ports.standby}/postgres`);
    await primary.connect();
    await standby.connect();
    try {
      const settings = await primary.query(`SELECT current_setting('shared_preload_libraries') AS spl, current_setting('wal_level') AS wal, current_setting('server_version_num')::int AS v`);
      expect(settings.rows[0]).toMatchObject({ spl: 'pg_stat_statements', wal: 'replica' });
      expect(Number(settings.rows[0]?.v)).toBeGreaterThanOrEqual(160000);
      await primary.query(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements; CREATE EXTENSION IF NOT EXISTS pgstattuple`);
      await primary.query(`CREATE TABLE replicated (v text); INSERT INTO replicated VALUES ('hello')`);
      const deadline = Date.now() + 10_000;
      let seen: string | undefined;
      while (Date.now() < deadline && seen === undefined) {
        seen = (await standby.query(`SELECT v FROM replicated`).catch(() => ({ rows: [] as { v: string }[] }))).rows[0]?.v;
        if (seen === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(seen).toBe('hello');
      expect((await standby.query(`SELECT pg_is_in_recovery() AS r`)).rows[0]?.r).toBe(true);
    } finally {
      await primary.end();
      await standby.end();
    }
  });

  it('is safe to run again: up on a running cluster changes nothing and prints the same URLs', async () => {
    const again = await cli('up');
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('');
    expect(again.stdout).toContain(`127.0.0.1:${ports.standby}`);
  });

  it('runs the README quickstart as written: validate, plan, apply, then plan with nothing left', async () => {
    const up = await cli('up');
    const databaseUrl = /^export DATABASE_URL=(\S+)$/m.exec(up.stdout)?.[1];
    expect(databaseUrl).toBe(`postgres://postgres@127.0.0.1:${ports.primary}/pgwarden_example`);
    // From the repository root, as a newcomer runs it: the default --policies is ./policies.
    const inRepo = (...args: string[]) => runCli(args, { cwd: REPO_ROOT, env: { PGWARDEN_HOME: home, DATABASE_URL: databaseUrl } });
    expect((await inRepo('validate')).code).toBe(0);
    const plan = await inRepo('plan', '--detailed-exitcode');
    expect(plan.stderr).not.toContain('pgwarden:');
    expect(plan.code).toBe(2);
    const applied = await inRepo('apply', '--auto-approve');
    expect(applied.stderr).not.toContain('pgwarden:');
    expect(applied.code).toBe(0);
    const again = await inRepo('plan', '--detailed-exitcode');
    expect(again.stdout).toContain('No changes.');
    expect(again.code).toBe(0);
  });

  it('shows both servers, the standby state and its replay lag', async () => {
    const status = await cli('status');
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/primary .* running, accepting writes/);
    expect(status.stdout).toMatch(/standby .* running, in recovery \(hot standby\)/);
    expect(status.stdout).toMatch(/replication: streaming, replay lag [\d.]+ ms/);
  });

  it('says the standby is down when it is, without hanging, and up brings it back', async () => {
    await clusterStopNode({ baseDir: home, role: 'standby' });
    const started = Date.now();
    const status = await cli('status', '--json');
    expect(Date.now() - started).toBeLessThan(5000);
    const parsed = JSON.parse(status.stdout) as { standby: { running: boolean }; primary: { accepting: boolean }; replication?: { state: string } };
    expect(parsed.primary.accepting).toBe(true);
    expect(parsed.standby.running).toBe(false);
    expect(parsed.replication?.state).toBe('not connected');
    expect(status.code).toBe(1);
    const text = await cli('status');
    expect(text.stdout).toMatch(/standby .* DOWN/);
    // No standby streaming means no lag figure at all, never "0 ms (caught up)".
    expect(text.stdout).toContain('replication: not connected, lag unknown (the standby is not streaming)');
    expect(text.stdout).not.toMatch(/caught up|replay lag/);
    expect(text.code).toBe(1);
    const up = await cli('up');
    expect(up.code).toBe(0);
    expect((await cli('status')).stdout).toMatch(/replication: streaming/);
  });

  it('refuses a taken port with a clear message and a way out', async () => {
    await cli('down');
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(ports.primary, '127.0.0.1', r));
    try {
      const up = await cli('up');
      expect(up.code).toBe(1);
      expect(up.stderr).toContain(`port ${ports.primary} for the primary is already in use`);
      expect(up.stderr).toContain('hint: stop it, or choose another port with --port');
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });

  it('recognises an interrupted init (stale data directory) and says how to start over', async () => {
    await unlink(path.join(home, 'standby', 'PG_VERSION'));
    await writeFile(path.join(home, 'standby', 'standby.signal'), '');
    const up = await cli('up');
    expect(up.code).toBe(1);
    expect(up.stderr).toMatch(/the standby data directory .* is incomplete \(no PG_VERSION\)/);
    expect(up.stderr).toContain('pgwarden down --destroy');
    const down = await cli('down', '--destroy');
    expect(down.code).toBe(0);
    expect((await cli('status')).stdout).toContain('No embedded cluster here yet');
  });
});
