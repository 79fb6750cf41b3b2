import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { apply, type ApplyEvent } from '../../engine/apply/apply.ts';
import { makePlan } from '../../engine/plan/make-plan.ts';
import type { Plan } from '../../engine/plan/plan.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { renderPlanText } from '../../engine/render/render-text.ts';
import { projectWith, runCli, writePolicy } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import path from 'node:path';

let db: TestDatabase;

async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await db.pool.query(text, values)).rows;
}

async function planAt(project: string, now: Date): Promise<Plan> {
  const { desired, errors } = await loadPolicies(path.join(project, 'policies'));
  expect(errors).toEqual([]);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const outcome = await makePlan(client, desired, now);
    if (!outcome.ok) throw new Error(outcome.errors.map((e) => e.message).join('; '));
    return outcome.plan;
  } finally {
    await client.end();
  }
}

/** Applies at `now`, then plans again at `now`: nothing may remain. Returns the applied plan. */
async function applyAt(project: string, now: Date, allowDrop = false): Promise<Plan> {
  const { desired } = await loadPolicies(path.join(project, 'policies'));
  const result = await apply({
    databaseUrl: db.url,
    desired,
    allowDrop,
    lockTimeoutMs: 2000,
    buildTimeoutMs: 0,
    retries: 1,
    backoffMs: 50,
    now: () => now,
    who: { actor: 'test', gitCommit: null, gitBranch: null },
  });
  const again = await planAt(project, now);
  expect(renderPlanText(again, { color: false })).toContain('No changes.');
  return result.plan;
}

async function partitions(table: string): Promise<string[]> {
  const rows = await sql(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass ORDER BY c.relname`,
    [table],
  );
  return rows.map((r) => String(r['name']));
}

const addresses = (plan: Plan): string[] => plan.changes.map((c) => `${c.glyph} ${c.change.kind} ${c.change.address.replace(/^partition:/, '')}`);

beforeAll(async () => {
  db = await useTestDatabase();
  // Bounds are UTC whatever the session's zone: every connection of this database runs in New York.
  await sql(`ALTER DATABASE ${JSON.stringify(db.name)} SET timezone = 'America/New_York'`);
});
afterAll(async () => {
  await db.close();
});

beforeEach(async () => {
  await sql(`DROP SCHEMA IF EXISTS app CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA app`);
  await sql(`CREATE TABLE app.events (id bigint NOT NULL, tenant_id int NOT NULL, created_at timestamptz NOT NULL, kind text,
               PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)`);
});

const MONTHLY = `
table: app.events
indexes:
  - name: events_tenant_created_idx
    columns: [tenant_id, created_at desc]
partitioning:
  by: range
  column: created_at
  interval: month
  premake: 3
  retention: { keep: 12, then: detach }
  default_partition: true
`;

describe('monthly partitioning with premake, retention and a default partition', () => {
  it('creates the current month, three months ahead and the default partition, then plans no changes', async () => {
    const project = await projectWith({ 'events.yaml': MONTHLY });
    const now = new Date('2026-11-25T10:00:00Z');
    const plan = await planAt(project, now);
    expect(addresses(plan)).toEqual([
      '+ create-index index:app.events.events_tenant_created_idx',
      '+ create-partition app.events.events_2026_11',
      '+ create-partition app.events.events_2026_12',
      '+ create-partition app.events.events_2027_01',
      '+ create-partition app.events.events_2027_02',
      '+ create-partition app.events.events_default',
    ]);
    const text = renderPlanText(plan, { color: false });
    expect(text).toContain(`ALTER TABLE "app"."events" ATTACH PARTITION "app"."events_2026_12" FOR VALUES FROM ('2026-12-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')`);
    expect(text).toContain('lock:  SHARE UPDATE EXCLUSIVE on app.events — online');
    await applyAt(project, now);
    expect(await partitions('app.events')).toEqual(['events_2026_11', 'events_2026_12', 'events_2027_01', 'events_2027_02', 'events_default']);
    // A new session runs in New York (the database's setting), where the bounds print as midnight UTC.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const bounds = await client.query(`SELECT pg_get_expr(relpartbound, oid) AS b FROM pg_class WHERE oid = 'app.events_2026_11'::regclass`).finally(() => client.end());
    expect(bounds.rows[0]?.['b']).toBe(`FOR VALUES FROM ('2026-10-31 20:00:00-04') TO ('2026-11-30 19:00:00-05')`);
  });

  it('gives every new partition the declared indexes, attached to the parent and valid', async () => {
    const project = await projectWith({ 'events.yaml': MONTHLY });
    const now = new Date('2026-11-25T10:00:00Z');
    await applyAt(project, now);
    // A month on, a partition made after the index exists gets it too.
    await applyAt(project, new Date('2026-12-02T00:00:00Z'));
    const rows = await sql(`
      SELECT c.relname AS partition, bool_and(x.indisvalid) AS valid, count(*)::int AS indexes
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_index x ON x.indrelid = c.oid
        JOIN pg_inherits ii ON ii.inhrelid = x.indexrelid
       WHERE i.inhparent = 'app.events'::regclass
         AND ii.inhparent IN ('app.events_tenant_created_idx'::regclass, 'app.events_pkey'::regclass)
       GROUP BY c.relname ORDER BY 1`);
    expect(rows).toHaveLength(6);
    for (const row of rows) expect(row).toMatchObject({ valid: true, indexes: 2 });
    const parent = await sql(`SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 'app.events_tenant_created_idx'::regclass`);
    expect(parent[0]?.['valid']).toBe(true);
  });

  it('adds one partition ahead and detaches one past retention when the clock crosses a month boundary', async () => {
    const project = await projectWith({ 'events.yaml': MONTHLY });
    await applyAt(project, new Date('2026-11-25T10:00:00Z'));
    // The year before, as if the table had existed for a while; November 2025 is about to age out.
    for (let month = 0; month < 12; month += 1) {
      const from = new Date(Date.UTC(2025, 10 + month, 1)).toISOString();
      const to = new Date(Date.UTC(2025, 11 + month, 1)).toISOString();
      const name = `events_${from.slice(0, 4)}_${from.slice(5, 7)}`;
      await sql(`CREATE TABLE app.${name} PARTITION OF app.events FOR VALUES FROM ('${from}') TO ('${to}')`);
    }
    await sql(`INSERT INTO app.events SELECT g, 1, '2025-11-15 00:00:00+00', 'k' FROM generate_series(1, 500) g`);
    await sql(`ANALYZE app.events_2025_11`);
    const justBefore = await planAt(project, new Date('2026-11-30T23:59:59Z'));
    expect(justBefore.changes).toEqual([]);

    const nextMonth = new Date('2026-12-01T00:00:01Z');
    const plan = await planAt(project, nextMonth);
    expect(addresses(plan)).toEqual(['+ create-partition app.events.events_2027_03', '- detach-partition app.events.events_2025_11']);
    const text = renderPlanText(plan, { color: false });
    expect(text).toContain('detach partition events_2025_11 of app.events: ~500 rows');
    expect(text).toContain('destructive: needs --allow-drop');
    // A default partition exists: no CONCURRENTLY, a short ACCESS EXCLUSIVE under lock_timeout.
    expect(text).toContain('ALTER TABLE "app"."events" DETACH PARTITION "app"."events_2025_11"\n');
    await expect(applyAt(project, nextMonth)).rejects.toThrow(/--allow-drop|drops or detaches 1 object/);
    expect(await partitions('app.events')).toContain('events_2025_11');
    await applyAt(project, nextMonth, true);
    expect(await partitions('app.events')).not.toContain('events_2025_11');
    // detach keeps the data as a plain table.
    expect(await sql(`SELECT count(*)::int AS n FROM app.events_2025_11`)).toEqual([{ n: 500 }]);
  });

  it('moves rows out of the default partition in one transaction when their range gets its own partition', async () => {
    const project = await projectWith({ 'events.yaml': MONTHLY });
    await applyAt(project, new Date('2026-11-25T10:00:00Z'));
    // Rows far ahead of premake land in the default partition...
    await sql(`INSERT INTO app.events SELECT g, 1, '2027-03-10 12:00:00+00', 'k' FROM generate_series(1, 300) g`);
    await sql(`INSERT INTO app.events SELECT g, 1, '2027-04-10 12:00:00+00', 'k' FROM generate_series(301, 310) g`);
    // ...until the clock brings March within premake.
    const now = new Date('2026-12-05T00:00:00Z');
    const plan = await planAt(project, now);
    expect(addresses(plan)).toEqual(['+ create-partition app.events.events_2027_03']);
    const text = renderPlanText(plan, { color: false });
    expect(text).toContain('moving 300 row(s) out of events_default');
    expect(text).toContain('LOCK TABLE ONLY "app"."events" IN SHARE UPDATE EXCLUSIVE MODE');
    expect(text).toMatch(/ADD CONSTRAINT "events_2027_03_pgwarden_bound" CHECK/);
    await applyAt(project, now);
    expect(await sql(`SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM app.events GROUP BY 1 ORDER BY 1`)).toEqual([
      { p: 'app.events_2027_03', n: 300 },
      { p: 'app.events_default', n: 10 },
    ]);
    const constraints = await sql(`SELECT conname FROM pg_constraint WHERE conrelid = 'app.events_2027_03'::regclass AND contype = 'c'`);
    expect(constraints).toEqual([]);
  });
});

describe('default-partition rows in the way of a table other tables reference', () => {
  async function eventsWithRowsAhead(project: string): Promise<Date> {
    await applyAt(project, new Date('2026-11-25T10:00:00Z'));
    await sql(`INSERT INTO app.events SELECT g, 1, '2027-03-10 12:00:00+00', 'k' FROM generate_series(1, 300) g`);
    return new Date('2026-12-05T00:00:00Z');
  }

  it('refuses to move rows a foreign key would cascade on, at the policy, and leaves the referencing rows intact', async () => {
    const project = await projectWith({ 'events.yaml': MONTHLY });
    const now = await eventsWithRowsAhead(project);
    await sql(`CREATE TABLE app.event_notes (id int PRIMARY KEY, event_id bigint NOT NULL, created_at timestamptz NOT NULL,
                 CONSTRAINT event_notes_event_fk FOREIGN KEY (event_id, created_at) REFERENCES app.events (id, created_at) ON DELETE CASCADE)`);
    await sql(`INSERT INTO app.event_notes SELECT g, g, '2027-03-10 12:00:00+00' FROM generate_series(1, 300) g`);
    const { desired } = await loadPolicies(path.join(project, 'policies'));
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const outcome = await makePlan(client, desired, now).finally(() => client.end());
    expect(outcome.ok).toBe(false);
    const errors = outcome.ok ? [] : outcome.errors;
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ file: expect.stringContaining('events.yaml'), line: 6 });
    expect(errors[0]?.message).toContain('events_2027_03 cannot be created: 300 row(s) of its range sit in events_default');
    expect(errors[0]?.message).toContain('app.event_notes.event_notes_event_fk (ON DELETE CASCADE: the referencing rows would be deleted)');
    expect(errors[0]?.hint).toMatch(/DROP CONSTRAINT .* ATTACH PARTITION .* ADD CONSTRAINT/);
    await expect(
      apply({ databaseUrl: db.url, desired, allowDrop: false, lockTimeoutMs: 2000, buildTimeoutMs: 0, retries: 1, backoffMs: 50, now: () => now, who: { actor: 'test', gitCommit: null, gitBranch: null } }),
    ).rejects.toThrow(/events_2027_03 cannot be created/);
    expect(await sql(`SELECT count(*)::int AS n FROM app.event_notes`)).toEqual([{ n: 300 }]);
    expect(await sql(`SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM app.events GROUP BY 1`)).toEqual([{ p: 'app.events_default', n: 300 }]);
  });

  it('names the DELETE triggers that fire while rows move, and moves them', async () => {
    const project = await projectWith({ 'events.yaml': MONTHLY });
    const now = await eventsWithRowsAhead(project);
    await sql(`CREATE TABLE app.deleted (id bigint)`);
    await sql(`CREATE FUNCTION app.note_delete() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO app.deleted VALUES (OLD.id); RETURN OLD; END$$`);
    await sql(`CREATE TRIGGER events_deleted AFTER DELETE ON app.events FOR EACH ROW EXECUTE FUNCTION app.note_delete()`);
    const plan = await planAt(project, now);
    expect(plan.changes[0]?.change.reason).toContain('the DELETE fires the trigger events_deleted on the default partition for each moved row (pgwarden disables no trigger');
    await applyAt(project, now);
    expect(await sql(`SELECT count(*)::int AS n FROM app.deleted`)).toEqual([{ n: 300 }]);
    expect(await sql(`SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM app.events GROUP BY 1`)).toEqual([{ p: 'app.events_2027_03', n: 300 }]);
  });
});

describe('per-partition settings from the table policy', () => {
  it('creates new partitions with the policy\'s autovacuum settings, so the next plan has nothing to set', async () => {
    const project = await projectWith({
      'events.yaml': `${MONTHLY}vacuum:\n  autovacuum: { vacuum_scale_factor: 0.02, analyze_scale_factor: 0.01 }\n`,
    });
    const now = new Date('2026-11-25T10:00:00Z');
    const plan = await planAt(project, now);
    expect(renderPlanText(plan, { color: false })).toContain(
      `(LIKE "app"."events" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING GENERATED INCLUDING COMMENTS) WITH ("autovacuum_vacuum_scale_factor" = '0.02', "autovacuum_analyze_scale_factor" = '0.01')`,
    );
    await applyAt(project, now);
    // A month later, the new partition is born with them too.
    await applyAt(project, new Date('2026-12-03T00:00:00Z'));
    const rows = await sql(`SELECT c.relname AS name, c.reloptions AS options FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                             WHERE i.inhparent = 'app.events'::regclass ORDER BY 1`);
    expect(rows).toHaveLength(6);
    for (const row of rows) expect(row['options']).toEqual(['autovacuum_vacuum_scale_factor=0.02', 'autovacuum_analyze_scale_factor=0.01']);
  });
});

describe('what a new partition takes from its parent', () => {
  it('keeps column compression, and holds the parent\'s CHECK constraints as inherited ones only', async () => {
    await sql(`ALTER TABLE app.events ALTER COLUMN kind SET COMPRESSION pglz, ADD CONSTRAINT events_tenant_positive CHECK (tenant_id > 0)`);
    const project = await projectWith({ 'events.yaml': `table: app.events\npartitioning: { by: range, column: created_at, interval: month, premake: 0 }\n` });
    await applyAt(project, new Date('2026-11-25T00:00:00Z'));
    expect(await sql(`SELECT attcompression AS c FROM pg_attribute WHERE attrelid = 'app.events_2026_11'::regclass AND attname = 'kind'`)).toEqual([{ c: 'p' }]);
    expect(await sql(`SELECT conname, conislocal, coninhcount FROM pg_constraint WHERE conrelid = 'app.events_2026_11'::regclass AND contype = 'c'`)).toEqual([
      { conname: 'events_tenant_positive', conislocal: false, coninhcount: 1 },
    ]);
  });
});

describe('other intervals', () => {
  it('keeps daily partitions, named by day, across a month boundary', async () => {
    const project = await projectWith({
      'events.yaml': `
table: app.events
partitioning: { by: range, column: created_at, interval: day, premake: 2, retention: { keep: 3, then: drop } }
`,
    });
    await applyAt(project, new Date('2026-11-29T23:00:00Z'));
    expect(await partitions('app.events')).toEqual(['events_2026_11_29', 'events_2026_11_30', 'events_2026_12_01']);
    const later = new Date('2026-12-03T08:00:00Z');
    const plan = await planAt(project, later);
    // No default partition: the detach can be CONCURRENTLY; drop follows as its own step.
    expect(addresses(plan)).toEqual([
      '+ create-partition app.events.events_2026_12_02',
      '+ create-partition app.events.events_2026_12_03',
      '+ create-partition app.events.events_2026_12_04',
      '+ create-partition app.events.events_2026_12_05',
      '- detach-partition app.events.events_2026_11_29',
    ]);
    expect(renderPlanText(plan, { color: false })).toContain('DETACH PARTITION "app"."events_2026_11_29" CONCURRENTLY');
    await applyAt(project, later, true);
    expect(await partitions('app.events')).toEqual(['events_2026_11_30', 'events_2026_12_01', 'events_2026_12_02', 'events_2026_12_03', 'events_2026_12_04', 'events_2026_12_05']);
    expect(await sql(`SELECT to_regclass('app.events_2026_11_29') AS r`)).toEqual([{ r: null }]);
  });

  it('keeps yearly partitions on a date column', async () => {
    await sql(`DROP TABLE app.events; CREATE TABLE app.events (day date NOT NULL, n int) PARTITION BY RANGE (day)`);
    const project = await projectWith({ 'events.yaml': `table: app.events\npartitioning: { by: range, column: day, interval: year, premake: 1 }\n` });
    const now = new Date('2026-12-31T23:59:59Z');
    const plan = await planAt(project, now);
    expect(renderPlanText(plan, { color: false })).toContain(`FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`);
    await applyAt(project, now);
    expect(await partitions('app.events')).toEqual(['events_2026', 'events_2027']);
    await applyAt(project, new Date('2027-01-01T00:00:00Z'));
    expect(await partitions('app.events')).toEqual(['events_2026', 'events_2027', 'events_2028']);
  });
});

describe('partitions pgwarden does not manage', () => {
  it('reports misaligned and foreign-named partitions, creates nothing overlapping them and never removes them', async () => {
    await sql(`CREATE TABLE app.events_mid PARTITION OF app.events FOR VALUES FROM ('2026-12-15 00:00:00+00') TO ('2027-01-15 00:00:00+00')`);
    await sql(`CREATE TABLE app.events_old PARTITION OF app.events FOR VALUES FROM ('2026-08-01 00:00:00+00') TO ('2026-09-01 00:00:00+00')`);
    await sql(`CREATE TABLE app.events_2026_09 PARTITION OF app.events FOR VALUES FROM ('2026-09-01 00:00:00+00') TO ('2026-10-01 00:00:00+00')`);
    const project = await projectWith({ 'events.yaml': `table: app.events\npartitioning: { by: range, column: created_at, interval: month, premake: 3, retention: { keep: 1, then: drop } }\n` });
    const now = new Date('2026-11-25T00:00:00Z');
    const plan = await planAt(project, now);
    const text = renderPlanText(plan, { color: false });
    expect(text).toMatch(/partition events_mid covers FROM \(.*\) TO \(.*\), which is not one month aligned to UTC/);
    expect(text).toContain('partition events_old covers the month of 2026-08-01 but the naming pattern calls it events_2026_08');
    // December and January overlap events_mid: not created. events_old is past retention but not pgwarden's to remove.
    expect(addresses(plan)).toEqual([
      '+ create-partition app.events.events_2026_11',
      '+ create-partition app.events.events_2027_02',
      '- detach-partition app.events.events_2026_09',
    ]);
    await applyAt(project, now, true);
    expect(await partitions('app.events')).toEqual(['events_2026_11', 'events_2027_02', 'events_mid', 'events_old']);
  });

  it('fills a gap between partitions it keeps', async () => {
    await sql(`CREATE TABLE app.events_2026_09 PARTITION OF app.events FOR VALUES FROM ('2026-09-01 00:00:00+00') TO ('2026-10-01 00:00:00+00')`);
    const project = await projectWith({ 'events.yaml': `table: app.events\npartitioning: { by: range, column: created_at, interval: month, premake: 0 }\n` });
    const plan = await planAt(project, new Date('2026-11-25T00:00:00Z'));
    expect(addresses(plan)).toEqual(['+ create-partition app.events.events_2026_10', '+ create-partition app.events.events_2026_11']);
    expect(plan.changes[0]?.change.reason).toContain('a gap');
  });
});

describe('an interrupted DETACH ... CONCURRENTLY', () => {
  it('is finished by the next plan with DETACH ... FINALIZE', async () => {
    const project = await projectWith({ 'events.yaml': `table: app.events\npartitioning: { by: range, column: created_at, interval: month, premake: 0, retention: { keep: 1 } }\n` });
    await sql(`CREATE TABLE app.events_2026_01 PARTITION OF app.events FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')`);
    // An open transaction that has read the table makes the detach wait in its second phase; cancelling it there
    // leaves the partition pending, exactly as an interrupted apply would.
    const reader = new pg.Client({ connectionString: db.url });
    const detacher = new pg.Client({ connectionString: db.url });
    await Promise.all([reader.connect(), detacher.connect()]);
    try {
      await reader.query(`BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM app.events`);
      const pid = (await detacher.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      const detaching = detacher.query(`ALTER TABLE app.events DETACH PARTITION app.events_2026_01 CONCURRENTLY`).catch((e: Error) => e);
      await expect.poll(async () => (await sql(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [pid]))[0]?.['wait_event_type'], { timeout: 10_000 }).toBe('Lock');
      await sql(`SELECT pg_cancel_backend($1)`, [pid]);
      expect(await detaching).toBeInstanceOf(Error);
      await reader.query('COMMIT');
    } finally {
      await Promise.all([reader.end(), detacher.end()]);
    }
    expect(await sql(`SELECT inhdetachpending AS p FROM pg_inherits WHERE inhrelid = 'app.events_2026_01'::regclass`)).toEqual([{ p: true }]);
    const now = new Date('2026-11-25T00:00:00Z');
    const plan = await planAt(project, now);
    expect(addresses(plan)).toEqual(['- finalize-detach app.events.events_2026_01', '+ create-partition app.events.events_2026_11']);
    expect(renderPlanText(plan, { color: false })).toContain('DETACH PARTITION "app"."events_2026_01" FINALIZE');
    await applyAt(project, now);
    expect(await partitions('app.events')).toEqual(['events_2026_11']);
  });
});

describe('retention under a long-running reader', () => {
  const DROP_POLICY = `table: app.events\npartitioning: { by: range, column: created_at, interval: month, premake: 0, retention: { keep: 1, then: drop } }\n`;
  const now = new Date('2026-11-25T00:00:00Z');

  async function applyWith(project: string, options: { lockTimeoutMs: number; retries: number; onEvent?: (event: ApplyEvent) => void }): Promise<void> {
    const { desired } = await loadPolicies(path.join(project, 'policies'));
    await apply({ databaseUrl: db.url, desired, allowDrop: true, buildTimeoutMs: 0, backoffMs: 50, now: () => now, who: { actor: 'test', gitCommit: null, gitBranch: null }, ...options });
  }

  it('finishes a DETACH ... CONCURRENTLY left pending by an old snapshot with DETACH ... FINALIZE, in the same apply', async () => {
    const project = await projectWith({ 'events.yaml': DROP_POLICY });
    await sql(`CREATE TABLE app.events_2026_01 PARTITION OF app.events FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')`);
    await sql(`INSERT INTO app.events VALUES (1, 1, '2026-01-10 00:00:00+00', 'k')`);
    // A report in REPEATABLE READ: its snapshot predates the detach, and it holds its locks until it ends.
    const reader = new pg.Client({ connectionString: db.url });
    await reader.connect();
    await reader.query(`BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM app.events`);
    const events: ApplyEvent[] = [];
    let released: Promise<unknown> | null = null;
    try {
      await applyWith(project, {
        lockTimeoutMs: 300,
        retries: 8,
        onEvent: (event) => {
          events.push(event);
          // The reader ends once FINALIZE has had to wait for it: by then the detach is pending.
          if (event.type === 'retry' && event.sql.includes('FINALIZE') && released === null) released = reader.query('COMMIT');
        },
      });
    } finally {
      await (released ?? reader.query('ROLLBACK'));
      await reader.end();
    }
    const notices = events.flatMap((e) => (e.type === 'notice' ? [e.message] : []));
    expect(notices).toEqual([expect.stringMatching(/^app\.events_2026_01 was left detach-pending \(.*\); finishing it with DETACH \.\.\. FINALIZE$/)]);
    expect(events.some((e) => e.type === 'retry' && e.sql.includes('FINALIZE'))).toBe(true);
    expect(await partitions('app.events')).toEqual(['events_2026_11']);
    expect(await sql(`SELECT to_regclass('app.events_2026_01') AS r`)).toEqual([{ r: null }]);
    expect(renderPlanText(await planAt(project, now), { color: false })).toContain('No changes.');
  });

  it('drops, at the next apply, a partition retention detached but could not drop', async () => {
    const project = await projectWith({ 'events.yaml': DROP_POLICY });
    await sql(`CREATE TABLE app.events_2026_01 PARTITION OF app.events FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')`);
    // A view on the partition itself: DETACH does not mind it, DROP TABLE refuses.
    await sql(`CREATE VIEW app.january AS SELECT * FROM app.events_2026_01`);
    await expect(applyWith(project, { lockTimeoutMs: 300, retries: 1 })).rejects.toThrow(/depend/);
    expect(await partitions('app.events')).toEqual(['events_2026_11']);
    expect(await sql(`SELECT relispartition AS p FROM pg_class WHERE oid = 'app.events_2026_01'::regclass`)).toEqual([{ p: false }]);

    const plan = await planAt(project, now);
    expect(addresses(plan)).toEqual(['- finalize-detach app.events.events_2026_01']);
    expect(plan.changes[0]?.change.reason).toContain('its DROP TABLE did not complete');
    expect(plan.changes[0]?.destructive).toBe(true);
    expect(renderPlanText(plan, { color: false })).toContain('DROP TABLE "app"."events_2026_01"');
    await sql(`DROP VIEW app.january`);
    await applyAt(project, now, true);
    expect(await sql(`SELECT to_regclass('app.events_2026_01') AS r`)).toEqual([{ r: null }]);
  });
});
