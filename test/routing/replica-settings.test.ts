import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRouter } from '../../engine/routing/index.ts';
import { projectWith, runCli, writePolicy } from '../support/cli.ts';
import { ownCluster, sql, waitFor, type OwnCluster } from './own-cluster.ts';

let cluster: OwnCluster;
let project: string;

const policy = (...settings: string[]): string =>
  ['routing:', '  replicas:', '    - name: standby1', '      url_env: REPLICA_URL', '  standby_settings:', ...settings.map((s) => `    ${s}`), ''].join('\n');

const env = (): NodeJS.ProcessEnv => ({ DATABASE_URL: cluster.primaryUrl, REPLICA_URL: cluster.standbyUrl });

async function standbySetting(name: string): Promise<string | undefined> {
  const rows = await sql<{ setting: string }>(cluster.standbyUrl, 'SELECT setting FROM pg_settings WHERE name = $1', [name]);
  return rows[0]?.setting;
}

async function planNoChanges(): Promise<string> {
  const again = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() });
  expect(again.stdout).toContain('No changes.');
  expect(again.code).toBe(0);
  return again.stdout;
}

beforeAll(async () => {
  cluster = await ownCluster();
  project = await projectWith({ 'routing.yaml': policy('hot_standby_feedback: on', 'max_standby_streaming_delay: 0') });
});
afterAll(async () => {
  await cluster?.destroy();
});

describe('standby settings, kept by plan and apply on the replica itself', () => {
  it('sets them with ALTER SYSTEM and pg_reload_conf() on the standby, then plans no changes', async () => {
    const planned = await runCli(['plan'], { cwd: project, env: env() });
    expect(planned.stdout).toContain('~ set hot_standby_feedback = on on replica standby1 (now off)');
    expect(planned.stdout).toContain('~ set max_standby_streaming_delay = 0 on replica standby1 (now 30s)');
    expect(planned.stdout).toContain(`[standby1] ALTER SYSTEM SET "hot_standby_feedback" = 'on'`);

    const applied = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);

    expect(await standbySetting('hot_standby_feedback')).toBe('on');
    expect(await standbySetting('max_standby_streaming_delay')).toBe('0');
    // The primary's own settings are untouched.
    expect((await sql(cluster.primaryUrl, `SELECT setting FROM pg_settings WHERE name = 'max_standby_streaming_delay'`))[0]).toEqual({ setting: '30000' });
    await planNoChanges();
  });

  it('reports drift when a managed setting is changed behind pgwarden’s back, and puts it back', async () => {
    await sql(cluster.standbyUrl, 'ALTER SYSTEM SET hot_standby_feedback = off');
    await sql(cluster.standbyUrl, 'SELECT pg_reload_conf()');
    await waitFor('the reload', async () => (await standbySetting('hot_standby_feedback')) === 'off');

    const planned = await runCli(['plan', '--detailed-exitcode'], { cwd: project, env: env() });
    expect(planned.code).toBe(2);
    expect(planned.stdout).toContain('why:   drift: pgwarden set on, the replica now has off');

    expect((await runCli(['apply', '--auto-approve'], { cwd: project, env: env() })).code).toBe(0);
    expect(await standbySetting('hot_standby_feedback')).toBe('on');
    await planNoChanges();
  });

  it('refuses a setting that needs a restart unless --allow-restart, then waits for the restart without replanning it', async () => {
    await writePolicy(project, 'routing.yaml', policy('hot_standby_feedback: on', 'max_standby_streaming_delay: 0', 'max_locks_per_transaction: 128'));

    const refused = await runCli(['apply', '--auto-approve'], { cwd: project, env: env() });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('settings that need a restart of the standby (max_locks_per_transaction on standby1); nothing was applied');
    expect(refused.stderr).toContain('--allow-restart');
    const files = await sql(cluster.standbyUrl, `SELECT setting FROM pg_file_settings WHERE name = 'max_locks_per_transaction'`);
    expect(files).toEqual([]);

    const applied = await runCli(['apply', '--auto-approve', '--allow-restart'], { cwd: project, env: env() });
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('max_locks_per_transaction on replica standby1 takes effect when that standby restarts');

    const again = await planNoChanges();
    expect(again).toContain('warning: policies/routing.yaml:8:32: max_locks_per_transaction = 128 is set on standby1 and takes effect when that standby restarts');
  });

  it('resets a setting it set once no policy names it, and then plans no changes', async () => {
    await writePolicy(project, 'routing.yaml', policy('hot_standby_feedback: on', 'max_standby_streaming_delay: 0'));

    const planned = await runCli(['plan'], { cwd: project, env: env() });
    expect(planned.stdout).toContain("- reset max_locks_per_transaction on replica standby1 to the server's default");

    expect((await runCli(['apply', '--auto-approve', '--allow-restart'], { cwd: project, env: env() })).code).toBe(0);
    expect(await sql(cluster.standbyUrl, `SELECT setting FROM pg_file_settings WHERE name = 'max_locks_per_transaction' AND sourcefile LIKE '%auto.conf'`)).toEqual([]);
    await planNoChanges();
  });
});

describe('a read cancelled by a recovery conflict', () => {
  it('is retried once on the primary, and the replica rests until things are quiet', async () => {
    await sql(cluster.primaryUrl, 'CREATE TABLE conflicted (n int); INSERT INTO conflicted SELECT generate_series(1, 1000)');
    const router = createRouter({ primary: cluster.primaryUrl, replicas: [{ name: 'standby1', connection: cluster.standbyUrl }], readYourWritesScope: 'session' });
    try {
      await router.ready();
      await waitFor('the standby to take reads and know the table', async () => (await router.route('SELECT count(*) FROM conflicted')).target === 'replica');
      await waitFor('the table on the standby', async () => (await sql(cluster.standbyUrl, `SELECT to_regclass('conflicted') IS NOT NULL AS here`))[0]?.['here'] === true);

      // A slow read on the standby holds a lock on the table; the primary's ACCESS EXCLUSIVE lock, replayed
      // with max_standby_streaming_delay = 0 (set above), cancels it at once.
      const read = router.query<{ n: number; standby: boolean }>('SELECT count(*)::int AS n, bool_and(pg_is_in_recovery()) AS standby FROM conflicted, pg_sleep(1)');
      await waitFor('the read to run on the standby', async () => {
        const rows = await sql(cluster.standbyUrl, `SELECT 1 FROM pg_stat_activity WHERE query LIKE '%FROM conflicted, pg_sleep%' AND state = 'active' AND pid <> pg_backend_pid()`);
        return rows.length > 0;
      });
      await sql(cluster.primaryUrl, 'BEGIN; LOCK TABLE conflicted IN ACCESS EXCLUSIVE MODE; COMMIT');

      const result = await read;
      expect(result.rows).toEqual([{ n: 1000, standby: false }]);
      const m = router.metrics();
      expect(m.retries['recovery-conflict']).toBe(1);
      expect(m.failedReads).toBe(0);
      expect(m.transitions.some((t) => t.reason === 'recovery-conflict')).toBe(true);
      await waitFor('the replica to take reads again', () => router.metrics().replicas[0]?.healthy === true, 10_000);
    } finally {
      await router.end();
    }
  });
});
