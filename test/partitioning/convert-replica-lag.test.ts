import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, type ApplyEvent, type ApplyOptions } from '../../engine/apply/apply.ts';
import { makePlan } from '../../engine/plan/make-plan.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { renderPlanText } from '../../engine/render/render-text.ts';
import { projectWith } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
const NOW = new Date('2026-11-20T12:00:00Z');
const MAX_LAG_MS = 300;

const EVENTS = `
table: app.events
partitioning:
  by: range
  column: created_at
  interval: month
  premake: 1
`;
const ROUTING = `routing:
  replicas:
    - name: standby1
      url_env: PGWARDEN_TEST_CONVERT_REPLICA_URL
  max_lag_ms: ${MAX_LAG_MS}
`;

async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db.pool.query(text, values)).rows;
}

async function onStandby(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: db.standbyUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

async function until(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * However fast the copy runs: wait until the standby has reported (on WAL this writes) that it is still
 * behind, well after now, so the copy's next check finds it over max_lag_ms.
 */
async function standbyReportsBehind(): Promise<void> {
  const [mark] = await sql(`SELECT pg_current_wal_lsn()::text AS lsn, clock_timestamp() AS at`);
  await until(async () => {
    await sql(`INSERT INTO app.tick VALUES (1)`);
    const [r] = await sql(`SELECT bool_and(replay_lsn < $1::pg_lsn AND reply_time > $2::timestamptz + interval '${2 * MAX_LAG_MS} ms') AS behind FROM pg_stat_replication`, [mark?.['lsn'], mark?.['at']]);
    return r?.['behind'] === true;
  }, 'the standby to report it is behind');
}

beforeAll(async () => {
  db = await useTestDatabase();
  if (db.standbyUrl === '') throw new Error('this test needs the suite’s streaming standby');
  await sql(`CREATE SCHEMA app;
    CREATE TABLE app.events (id bigserial, created_at timestamptz NOT NULL, kind text NOT NULL, PRIMARY KEY (id, created_at));
    INSERT INTO app.events (created_at, kind)
      SELECT timestamptz '2026-09-01 00:00:00+00' + (g * interval '3 minutes'), 'k' || (g % 4) FROM generate_series(1, 20000) g;
    ANALYZE app.events;
    CREATE TABLE app.tick (n int);`);
});
afterAll(async () => {
  await onStandby('SELECT pg_wal_replay_resume()').catch(() => undefined);
  await db.close();
});

describe('the copy throttled on replica lag', () => {
  it('stops with a clear error when the standby stays behind, then pauses while replay is paused and goes on once it resumes', async () => {
    const project = await projectWith({ 'events.yaml': EVENTS, 'routing.yaml': ROUTING });
    const { desired, errors } = await loadPolicies(path.join(project, 'policies'));
    expect(errors).toEqual([]);
    const base: Omit<ApplyOptions, 'onEvent' | 'conversion'> = {
      databaseUrl: db.url,
      env: { PGWARDEN_TEST_CONVERT_REPLICA_URL: db.standbyUrl },
      desired,
      allowDrop: false,
      lockTimeoutMs: 1000,
      buildTimeoutMs: 0,
      retries: 5,
      backoffMs: 50,
      now: () => NOW,
      who: { actor: 'test', gitCommit: null, gitBranch: null },
    };
    const expected = (await sql(`SELECT e::text AS row FROM app.events e ORDER BY id`)).map((r) => String(r['row']));
    try {
      // 1. Replay stops after the second batch and stays stopped: the copy waits, then gives up with a line
      //    that says why, the old table still the live one.
      const first: ApplyEvent[] = [];
      let batchesFirst = 0;
      await expect(
        apply({
          ...base,
          onEvent: (e) => first.push(e),
          conversion: {
            initialBatchRows: 100,
            targetBatchMs: 1,
            maxReplicaWaitMs: 1500,
            afterBatch: async () => {
              batchesFirst += 1;
              // Paused after the second batch; after the third, the position the copy noted before it
              // is reported unreplayed long enough: the fourth waits.
              if (batchesFirst === 2) await onStandby('SELECT pg_wal_replay_pause()');
              if (batchesFirst === 2 || batchesFirst === 3) await standbyReportsBehind();
            },
          },
        }),
      ).rejects.toThrow(/waited .* for a standby to replay \(lag \d+ ms, max_lag_ms 300\) and stopped after [\d,]+ rows; the old table is still the live one/);
      expect(first.some((e) => e.type === 'notice' && /^copy paused after [\d,]+ rows: waiting for the replica, replay lag \d+ ms is over max_lag_ms 300$/.test(e.message))).toBe(true);
      expect((await sql(`SELECT relkind FROM pg_class WHERE oid = 'app.events'::regclass`))[0]?.['relkind']).toBe('r');
      const [stopped] = await sql(`SELECT rows_copied::int AS n FROM pgwarden.conversion`);
      expect(Number(stopped?.['n'])).toBeGreaterThan(0);

      // 2. Still paused: the next apply resumes the copy, and waits at once. While it waits, no batch
      //    commits; once replay resumes, the copy goes on and the conversion completes.
      const second: ApplyEvent[] = [];
      const order: string[] = [];
      let pausedLines = 0;
      let resumed: Promise<void> | null = null;
      await apply({
        ...base,
        onEvent: (e) => {
          second.push(e);
          if (e.type === 'notice') order.push(e.message);
          if (e.type === 'progress' && /^copy paused: waiting for the replica \(replay lag \d+ ms over max_lag_ms 300\)$/.test(e.progress.phase)) {
            pausedLines += 1;
            // Several checks in a row found it behind: now let it replay.
            if (pausedLines === 5) resumed = onStandby('SELECT pg_wal_replay_resume()');
          }
        },
        conversion: {
          initialBatchRows: 100,
          targetBatchMs: 1,
          afterBatch: async () => {
            order.push('batch');
            if (order.filter((m) => m === 'batch').length > 1) return;
            await standbyReportsBehind();
          },
        },
      });
      await resumed;
      expect(pausedLines).toBeGreaterThanOrEqual(5);
      const pausedAt = order.findIndex((m) => m.startsWith('copy paused after'));
      const caughtUp = order.findIndex((m) => /^the replica caught up after [\d.]+ s: the copy goes on$/.test(m));
      expect(pausedAt).toBeGreaterThanOrEqual(0);
      expect(caughtUp).toBeGreaterThan(pausedAt);
      expect(order.slice(pausedAt, caughtUp)).not.toContain('batch');
      expect(order.slice(caughtUp)).toContain('batch');
      expect(order.some((m) => /^resuming the copy after [\d,]+ rows$/.test(m))).toBe(true);
      expect(order.some((m) => /^swapped: app\.events is partitioned now/.test(m))).toBe(true);
    } finally {
      await onStandby('SELECT pg_wal_replay_resume()');
    }
    expect((await sql(`SELECT relkind FROM pg_class WHERE oid = 'app.events'::regclass`))[0]?.['relkind']).toBe('p');
    expect((await sql(`SELECT e::text AS row FROM app.events e ORDER BY id`)).map((r) => String(r['row']))).toEqual(expected);
    // Converged: only the old table's drop is left, for --allow-drop; after it, nothing.
    await apply({ ...base, allowDrop: true });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const again = await makePlan(client, desired, NOW, { env: { PGWARDEN_TEST_CONVERT_REPLICA_URL: db.standbyUrl } }).finally(() => client.end());
    expect(again.ok && renderPlanText(again.plan, { color: false })).toContain('No changes.');
  });
});
