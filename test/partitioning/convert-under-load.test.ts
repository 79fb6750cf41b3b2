import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, type ApplyEvent } from '../../engine/apply/apply.ts';
import { makePlan } from '../../engine/plan/make-plan.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { renderPlanText } from '../../engine/render/render-text.ts';
import { createRouter } from '../../engine/routing/index.ts';
import { projectWith } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
const NOW = new Date('2026-11-20T12:00:00Z');
const LOCK_TIMEOUT_MS = 1000;

const POLICY = `
table: app.events
indexes:
  - name: events_tenant_created_idx
    columns: [tenant_id, created_at desc]
partitioning:
  by: range
  column: created_at
  interval: month
  premake: 2
  default_partition: true
`;

async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db.pool.query(text, values)).rows;
}

beforeAll(async () => {
  db = await useTestDatabase();
  await sql(`CREATE SCHEMA app;
    CREATE TABLE app.events (id bigserial, tenant_id int NOT NULL, created_at timestamptz NOT NULL, kind text NOT NULL, n int NOT NULL DEFAULT 0,
                             PRIMARY KEY (id, created_at));
    INSERT INTO app.events (tenant_id, created_at, kind)
      SELECT g % 13, timestamptz '2026-09-01 00:00:00+00' + (g * interval '37 minutes'), 'k' || (g % 4) FROM generate_series(1, 4000) g;
    ANALYZE app.events;`);
});
afterAll(async () => {
  await db.close();
});

/**
 * A writer on its own connection: inserts, updates of the partition key and of other columns, deletes,
 * each its own statement. It keeps a model of the table (key -> row text, from RETURNING), so the
 * result can be compared row by row with what it expects, and times every statement.
 */
function startWriter(model: Map<string, string>) {
  const client = new pg.Client({ connectionString: db.url });
  client.on('error', () => undefined);
  const latencies: number[] = [];
  let statements = 0;
  const ops = [0, 0, 0, 0];
  let stop = false;
  let seed = 7;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    // The high bits: an LCG's low bits repeat with a short period.
    return Math.floor(seed / 65536) % n;
  };
  const keyOf = (row: Record<string, unknown>): string => `${String(row['id'])}|${String(row['created_at'])}`;
  // Rows with id <= 200 are the router's to read: the writer leaves them alone.
  const pick = (): [string, string] => {
    const keys = [...model.keys()].filter((k) => Number(k.split('|')[0]) > 200);
    const k = keys[random(keys.length)]!;
    const [id, at] = k.split('|') as [string, string];
    return [id, at];
  };
  const loop = async (): Promise<void> => {
    await client.connect();
    // A statement that waits on a lock longer than lock_timeout plus one retry fails (and fails the
    // test), however slow the machine is otherwise.
    await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET lock_timeout = '${2 * LOCK_TIMEOUT_MS}ms'`);
    while (!stop) {
      const op = random(4);
      const t0 = performance.now();
      if (op === 0) {
        const at = `2026-${String(9 + random(4)).padStart(2, '0')}-${String(1 + random(28)).padStart(2, '0')} 10:00:00+00`;
        const r = await client.query(`INSERT INTO app.events AS e (tenant_id, created_at, kind) VALUES ($1, $2, 'new') RETURNING id::text, created_at::text, e::text AS row`, [random(13), at]);
        const row = r.rows[0]!;
        model.set(keyOf(row), String(row['row']));
      } else if (op === 1) {
        const [id, at] = pick();
        const r = await client.query(`UPDATE app.events e SET n = n + 1, kind = 'upd' WHERE id = $1 AND created_at = $2 RETURNING id::text, created_at::text, e::text AS row`, [id, at]);
        if (r.rows[0]) model.set(keyOf(r.rows[0]), String(r.rows[0]['row']));
      } else if (op === 2) {
        // Moves the row by 20 days: often into another month, so into another partition of the new table.
        const [id, at] = pick();
        const r = await client.query(
          `UPDATE app.events e SET created_at = created_at + interval '20 days', kind = 'moved' WHERE id = $1 AND created_at = $2 RETURNING id::text, created_at::text, e::text AS row`,
          [id, at],
        );
        if (r.rows[0]) {
          model.delete(`${id}|${at}`);
          model.set(keyOf(r.rows[0]), String(r.rows[0]['row']));
        }
      } else {
        const [id, at] = pick();
        await client.query(`DELETE FROM app.events WHERE id = $1 AND created_at = $2`, [id, at]);
        model.delete(`${id}|${at}`);
      }
      latencies.push(performance.now() - t0);
      ops[op] = (ops[op] ?? 0) + 1;
      statements += 1;
    }
  };
  const done = loop();
  return {
    latencies,
    count: (): number => statements,
    /** Statements by kind: insert, update, key move, delete. */
    ops,
    async stop(): Promise<void> {
      stop = true;
      await done;
      await client.end();
    },
  };
}

async function until(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('converting a table while a writer inserts, updates and deletes', () => {
  it('ends with exactly the old rows plus every write, no writer waiting past lock_timeout, and the standby the same', async () => {
    const model = new Map<string, string>();
    // Timestamps as text in UTC, ISO, on every connection that reads or writes the model.
    const reader = new pg.Client({ connectionString: db.url });
    reader.on('error', () => undefined);
    await reader.connect();
    await reader.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'`);
    for (const r of (await reader.query(`SELECT id::text, created_at::text, e::text AS row FROM app.events e`)).rows) {
      model.set(`${String(r['id'])}|${String(r['created_at'])}`, String(r['row']));
    }
    const writer = startWriter(model);
    await until(() => writer.count() >= 20, 'the writer to get going');
    // A router reads rows the writer does not touch, from the standby when it is fresh enough, the whole time.
    const PINNED_SQL = `SELECT id::text || ':' || tenant_id || ':' || kind || ':' || n AS row FROM app.events WHERE id <= 200 ORDER BY id`;
    const pinned = (await reader.query(PINNED_SQL)).rows.map((r) => String(r['row']));
    // A generous max lag: what is checked is that the standby's rows are right, not the lag policy.
    const router = createRouter({ primary: db.url, replicas: db.standbyUrl ? [{ name: 'standby1', connection: db.standbyUrl }] : [], maxLagMs: 30_000, heartbeat: false });
    await router.ready();
    if (db.standbyUrl !== '') await until(() => router.metrics().replicas[0]?.healthy === true, 'the standby to take reads');
    let reading = true;
    const reads = { count: 0, wrong: 0 };
    const routed = (async () => {
      while (reading) {
        const r = await router.query(PINNED_SQL);
        reads.count += 1;
        if (JSON.stringify(r.rows.map((x: Record<string, unknown>) => String(x['row']))) !== JSON.stringify(pinned)) reads.wrong += 1;
      }
    })();
    const project = await projectWith({ 'events.yaml': POLICY });
    const { desired } = await loadPolicies(path.join(project, 'policies'));
    const events: ApplyEvent[] = [];
    let batches = 0;
    await apply({
      databaseUrl: db.url,
      desired,
      allowDrop: false,
      lockTimeoutMs: LOCK_TIMEOUT_MS,
      buildTimeoutMs: 0,
      retries: 5,
      backoffMs: 50,
      now: () => NOW,
      who: { actor: 'test', gitCommit: null, gitBranch: null },
      onEvent: (e) => events.push(e),
      // Small batches, and between two of them the writer has done some work: the writes interleave with the copy whatever the machine's load.
      conversion: {
        initialBatchRows: 200,
        targetBatchMs: 1,
        afterBatch: async () => {
          batches += 1;
          const at = writer.count();
          await until(() => writer.count() >= at + 5, 'the writer between two batches');
        },
      },
    });
    reading = false;
    await routed;
    const routedTo = router.metrics().targets;
    await router.end();
    if (db.standbyUrl !== '') expect(routedTo.replicas['standby1'] ?? 0).toBeGreaterThan(0);
    expect(reads.count).toBeGreaterThan(10);
    expect(reads.wrong).toBe(0);
    const written = writer.count();
    // No writer statement waited on a lock longer than lock_timeout plus one retry: its own lock_timeout
    // would have failed it, and stop() would throw that error here.
    await writer.stop();
    expect(batches).toBeGreaterThanOrEqual(10);
    expect(written).toBeGreaterThan(50);
    for (const n of writer.ops) expect(n).toBeGreaterThan(5);
    const kind = await sql(`SELECT relkind FROM pg_class WHERE oid = 'app.events'::regclass`);
    expect(kind[0]?.['relkind']).toBe('p');
    // Row by row: the partitioned table holds exactly what the writer's model says.
    const actual = (await reader.query(`SELECT id::text, created_at::text, e::text AS row FROM app.events e`)).rows.map((r) => String(r['row'])).sort();
    // A difference names its rows, and whether the old table (as the swap left it) has them too.
    const wanted = new Set(model.values());
    const have = new Set(actual);
    const old = new Set((await reader.query(`SELECT e::text AS row FROM app.events_unpartitioned e`)).rows.map((r) => String(r['row'])));
    const extra = actual.filter((r) => !wanted.has(r));
    const missing = [...wanted].filter((r) => !have.has(r));
    expect({ extra, missing, extraInOldTable: extra.filter((r) => old.has(r)), missingInOldTable: missing.filter((r) => old.has(r)) }).toEqual({
      extra: [],
      missing: [],
      extraInOldTable: [],
      missingInOldTable: [],
    });
    expect(actual).toEqual([...model.values()].sort());
    expect(events.some((e) => e.type === 'notice' && /^swapped: app\.events is partitioned now/.test(e.message))).toBe(true);
    // The standby replays all of it.
    if (db.standbyUrl !== '') {
      const [lsn] = await sql(`SELECT pg_current_wal_lsn()::text AS lsn`);
      const standby = new pg.Client({ connectionString: db.standbyUrl });
      await standby.connect();
      try {
        await until(async () => (await standby.query(`SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok`, [lsn?.['lsn']])).rows[0]?.['ok'] === true, 'the standby to replay');
        await standby.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'`);
        const replayed = (await standby.query(`SELECT e::text AS row FROM app.events e`)).rows.map((r) => String(r['row'])).sort();
        expect(replayed).toEqual(actual);
        const [p] = (await standby.query(`SELECT relkind FROM pg_class WHERE oid = 'app.events'::regclass`)).rows;
        expect(p?.['relkind']).toBe('p');
      } finally {
        await standby.end();
      }
    }
    await reader.end();
    // Converged: only the old table's drop is left, for --allow-drop.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const again = await makePlan(client, desired, NOW).finally(() => client.end());
    expect(again.ok && again.plan.changes.map((c) => c.change.kind)).toEqual(['drop-unpartitioned']);
    expect(again.ok && renderPlanText(again.plan, { color: false })).toContain('- drop app.events_unpartitioned');
    await apply({ databaseUrl: db.url, desired, allowDrop: true, lockTimeoutMs: LOCK_TIMEOUT_MS, buildTimeoutMs: 0, retries: 5, backoffMs: 50, now: () => NOW, who: { actor: 'test', gitCommit: null, gitBranch: null } });
    const last = new pg.Client({ connectionString: db.url });
    await last.connect();
    const none = await makePlan(last, desired, NOW).finally(() => last.end());
    expect(none.ok && renderPlanText(none.plan, { color: false })).toContain('No changes.');
  });
});
