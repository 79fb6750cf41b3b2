import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterDown } from '../../engine/cluster/embedded-cluster.ts';
import { run } from '../../engine/cli/main.ts';
import { runCli } from '../support/cli.ts';

let home: string;
const ports: string[] = [];

async function freePort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise((r) => server.close(r));
  return String(typeof address === 'object' && address ? address.port : 0);
}

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'pgwarden-demo-'));
  await chmod(home, 0o755);
  ports.push(await freePort(), await freePort());
});
afterAll(async () => {
  await clusterDown({ baseDir: home, destroy: true });
  await rm(home, { recursive: true, force: true });
});

// `npm start` runs `pgwarden demo`; here at the small scale and with short workloads, on its own cluster.
const demo = () =>
  runCli(['demo', '--yes', '--scale', 'small', '--duration', '2s', '--port', ports[0]!, '--standby-port', ports[1]!], {
    cwd: home,
    env: { PGWARDEN_HOME: home },
  });

describe('pgwarden demo', () => {
  // The conversion of events under the workload adds some 20 s at the small scale on a busy machine.
  it('runs end to end on a fresh machine: cluster, example data, workload, plan, online apply, conversion, speedup', async () => {
    const result = await demo();
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toContain('primary postgres://postgres@127.0.0.1:');
    expect(out).toMatch(/loaded small example \(seed 1\)/);
    expect(out).toContain('Where the time went (pg_stat_statements)');
    // events is loaded plain: the plan converts it online, with its declared indexes and monthly partitions.
    expect(out).toContain('± convert public.events into a table partitioned by month on created_at');
    expect(out).toContain('indexes: events_tenant_created_idx, events_server_created_idx');
    // ... and the autovacuum settings of deployments and servers.
    expect(out).toContain('~ set autovacuum_vacuum_scale_factor (default) -> 0.02, autovacuum_analyze_scale_factor (default) -> 0.01 on public.deployments');
    expect(out).toContain('Plan: 6 to add, 3 to change, 0 to destroy.');
    expect(out).toContain('applied 8 change(s)');
    expect(out).toContain('plan again: only the conversion of public.events remains (the partitioning step does it)');
    // The partitioning step converts events online while the API's workload runs, loses no statement, then drops the old table.
    expect(out).toMatch(/verified: [\d,]+ rows in \d+ partition range\(s\), counts and checksums equal/);
    expect(out).toMatch(/swapped: public\.events is partitioned now; .* ACCESS EXCLUSIVE held \d+ ms/);
    expect(out).toMatch(/the workload meanwhile: [\d,]+ statements, 0 failed/);
    expect(out).toContain('dropped public.events_unpartitioned');
    // A month of events reads one monthly partition.
    expect(out).toMatch(/-> 1 of 1[67] partitions scanned, 9[34]% pruned \(1[56] at plan time\)/);
    // The headline query reads a tenant's last 50 events: a scan of the whole table before, an index after.
    const line = out.split('\n').find((l) => l.trimStart().startsWith('tenant_recent_events') && l.includes('->'));
    const m = /([\d.]+) ms ->\s+([\d.]+) ms/.exec(line ?? '');
    expect(m, line).not.toBeNull();
    expect(Number(m![1]) / Number(m![2])).toBeGreaterThan(3);
    // Churn takes deployments below its health floor; maintain brings it back (unless autovacuum beat it to it).
    expect(out).toMatch(/\$ pgwarden health\n.*\n\n.*\n {4}0\.\d\d ! {2}0\.95 {3}public\.deployments /);
    expect(out).toMatch(/ {4}public\.deployments +VACUUM \(ANALYZE\) +[\d,]+ -> 0 +0\.\d\d -> 1\.00 .* done|nothing is due \(autovacuum got there first\)/);
  }, 300_000);

  it('resumes cleanly when run again: data kept, nothing left to apply', async () => {
    const result = await demo();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('already loaded by an earlier run');
    expect(result.stdout).toContain('No changes. Database pgwarden_demo matches the policies.');
    expect(result.stdout).toContain('nothing to do: the policies were applied by an earlier run');
  });
  it('at a terminal, pauses between steps and ends on the live page with traffic, until Ctrl-C', async () => {
    const servePort = await freePort();
    const interrupt = new AbortController();
    let stdout = '';
    let prompts = 0;
    const finished = run(['demo', '--scale', 'small', '--duration', '1s', '--port', ports[0]!, '--standby-port', ports[1]!, '--serve-port', servePort], {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stdout += t),
      env: { PGWARDEN_HOME: home },
      cwd: home,
      isTTY: true,
      color: false,
      prompt: async () => {
        prompts += 1;
        return '';
      },
      signal: interrupt.signal,
    });
    const health = async (): Promise<{ collector: { state: string }; snapshot: { figures: { statementsPerSecond?: number | null } } | null } | null> => {
      const r = await fetch(`http://127.0.0.1:${servePort}/api/health`).catch(() => null);
      return r?.ok ? ((await r.json()) as never) : null;
    };
    // Conditions, not durations: each wait ends when the condition holds (the test's timeout bounds it).
    let body = null;
    while (!(body?.collector.state === 'connected' && body.snapshot)) {
      await new Promise((r) => setTimeout(r, 250));
      if (stdout.includes('pgwarden serve: http')) body = await health();
    }
    // The report site from the demo's history (applies, a maintain run, a routing apply): every run has
    // its page. A build made from an older history (another run's, in the shared cache) is served marked
    // as being rebuilt, never as current.
    let runPages: number[] = [];
    let freshness: string | null = null;
    while (freshness !== 'current') {
      const history = await fetch(`http://127.0.0.1:${servePort}/`).catch(() => null);
      const html = history?.ok ? await history.text() : '';
      freshness = history?.headers.get('x-pgwarden-site') ?? null;
      if (freshness === 'rebuilding') expect(html).toContain('it is being rebuilt');
      runPages = [...html.matchAll(/href="\/runs\/(\d+)\/"/g)].map((m) => Number(m[1]));
      if (freshness !== 'current') await new Promise((r) => setTimeout(r, 500));
    }
    const statuses = await Promise.all(runPages.map(async (id) => (await fetch(`http://127.0.0.1:${servePort}/runs/${id}/`)).status));
    interrupt.abort();
    expect(await finished).toBe(0);
    expect(stdout).not.toContain('the report site could not be built');
    expect(runPages.length).toBeGreaterThanOrEqual(3);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(stdout).toContain(`pgwarden serve: http://127.0.0.1:${servePort}/live/`);
    expect(body?.collector.state).toBe('connected');
    // A pause after each of the steps that show something: the cluster's own start runs straight on.
    expect(prompts).toBeGreaterThanOrEqual(10);
    expect(stdout).toContain('pgwarden serve: stopped');
  }, 600_000);
});
