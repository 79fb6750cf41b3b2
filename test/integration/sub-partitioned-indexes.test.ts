import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import pg from 'pg';
import { apply, APPLY_DEFAULTS } from '../../engine/apply/apply.ts';
import { makePlan } from '../../engine/plan/make-plan.ts';
import type { SqlStep } from '../../engine/plan/step.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { projectWith, runCli, writePolicy } from '../support/cli.ts';
import { convergeHelpers } from '../support/converge.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

/**
 * A two-level partition tree: app.readings is ranged by month, and each month is hash-partitioned by
 * sensor. Its index is a tree of the same shape: ON ONLY the root and each month, CONCURRENTLY each
 * leaf, attached bottom-up.
 */

let db: TestDatabase;
const { env, sql, plan, applyAndConverge, leaveInvalidIndex } = convergeHelpers(() => db);

const MONTHS = ['2026_10', '2026_11'] as const;
const LEAVES = MONTHS.flatMap((m) => [`readings_${m}_h0`, `readings_${m}_h1`]);
const INDEX = 'readings_sensor_at_idx';
const READINGS = `table: app.readings\nindexes:\n  - name: ${INDEX}\n    columns: [sensor, at]\n`;

/** The index tree under `root`, level by level, each index with its table and validity. */
async function indexTree(root: string): Promise<{ level: number; index: string; table: string; valid: boolean }[]> {
  const rows = await sql(
    `SELECT t.level, c.relname AS index, tc.relname AS table, x.indisvalid AS valid
       FROM pg_partition_tree($1::regclass) t
       JOIN pg_class c ON c.oid = t.relid
       JOIN pg_index x ON x.indexrelid = t.relid
       JOIN pg_class tc ON tc.oid = x.indrelid
      ORDER BY t.level, c.relname`,
    [root],
  );
  return rows.map((r) => ({ level: Number(r['level']), index: String(r['index']), table: String(r['table']), valid: Boolean(r['valid']) }));
}

/** The index tree a complete build leaves: one VALID index per table of the partition tree, named by pgwarden. */
const COMPLETE_TREE = [
  { level: 0, index: INDEX, table: 'readings', valid: true },
  ...MONTHS.map((m) => ({ level: 1, index: `readings_${m}_${INDEX}`, table: `readings_${m}`, valid: true })),
  ...LEAVES.map((leaf) => ({ level: 2, index: `${leaf}_${INDEX}`, table: leaf, valid: true })),
];

async function oidOf(relation: string): Promise<number> {
  return Number((await sql(`SELECT $1::regclass::oid::int8 AS oid`, [relation]))[0]?.['oid']);
}

async function desiredState(project: string) {
  const { desired, errors } = await loadPolicies(path.join(project, 'policies'));
  expect(errors).toEqual([]);
  return desired;
}

beforeAll(async () => {
  db = await useTestDatabase();
});
afterAll(async () => {
  await db.close();
});

beforeEach(async () => {
  await sql(`DROP SCHEMA IF EXISTS app CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA app`);
  await sql(`CREATE TABLE app.readings (id bigint NOT NULL, at timestamptz NOT NULL, sensor int NOT NULL, value float8) PARTITION BY RANGE (at)`);
  for (const [m, from, to] of [['2026_10', '2026-10-01', '2026-11-01'], ['2026_11', '2026-11-01', '2026-12-01']] as const) {
    await sql(`CREATE TABLE app.readings_${m} PARTITION OF app.readings FOR VALUES FROM ('${from}') TO ('${to}') PARTITION BY HASH (sensor)`);
    for (const r of [0, 1]) await sql(`CREATE TABLE app.readings_${m}_h${r} PARTITION OF app.readings_${m} FOR VALUES WITH (MODULUS 2, REMAINDER ${r})`);
  }
  await sql(`INSERT INTO app.readings SELECT g, '2026-10-01'::timestamptz + (g % 60) * interval '1 day', g % 40, g * 0.5 FROM generate_series(1, 8000) g`);
  await sql(`ANALYZE app.readings`);
});

describe('an index on a sub-partitioned table', () => {
  it('is made ON ONLY the table and each sub-partitioned partition, CONCURRENTLY on each leaf, and attached bottom-up', async () => {
    const project = await projectWith({ 'readings.yaml': READINGS });

    const p = await plan(project);
    expect(p.code).toBe(2);
    expect(p.stdout).toContain(`CREATE INDEX IF NOT EXISTS "${INDEX}" ON ONLY "app"."readings" USING btree`);
    for (const m of MONTHS) {
      expect(p.stdout).toContain(`CREATE INDEX IF NOT EXISTS "readings_${m}_${INDEX}" ON ONLY "app"."readings_${m}" USING btree`);
      expect(p.stdout).not.toContain(`ON "app"."readings_${m}" USING`);
      const monthIntoRoot = p.stdout.indexOf(`ALTER INDEX "app"."${INDEX}" ATTACH PARTITION "app"."readings_${m}_${INDEX}"`);
      for (const leaf of [`readings_${m}_h0`, `readings_${m}_h1`]) {
        const build = p.stdout.indexOf(`CREATE INDEX CONCURRENTLY "${leaf}_${INDEX}" ON "app"."${leaf}" USING btree`);
        const leafIntoMonth = p.stdout.indexOf(`ALTER INDEX "app"."readings_${m}_${INDEX}" ATTACH PARTITION "app"."${leaf}_${INDEX}"`);
        expect(build).toBeGreaterThan(0);
        expect(leafIntoMonth).toBeGreaterThan(build);
        expect(monthIntoRoot).toBeGreaterThan(leafIntoMonth);
      }
    }

    await applyAndConverge(project);
    expect(await indexTree(`app.${INDEX}`)).toEqual(COMPLETE_TREE);
  });

  it('takes a lock that stops writes to a leaf only in the brief ON ONLY and ATTACH steps, never during a build', async () => {
    const project = await projectWith({ 'readings.yaml': READINGS });
    const client = await db.pool.connect();
    const outcome = await makePlan(client, await desiredState(project), new Date()).finally(() => client.release());
    if (!outcome.ok) throw new Error(outcome.errors[0]?.message);
    const steps = outcome.plan.changes.flatMap((c) => c.steps).filter((s): s is SqlStep => s.kind === 'sql');

    // SHARE (writes wait) only on the partitioned tables, ON ONLY, outside any build.
    const share = steps.filter((s) => s.lock.mode === 'SHARE');
    expect(share.map((s) => s.lock.on).sort()).toEqual(['app.readings', ...MONTHS.map((m) => `app.readings_${m}`)]);
    expect(share.every((s) => / ON ONLY /.test(s.sql) && !s.build && s.transactional)).toBe(true);
    // Every build is a leaf's, CONCURRENTLY: SHARE UPDATE EXCLUSIVE, which INSERT/UPDATE/DELETE never wait for.
    const builds = steps.filter((s) => s.build);
    expect(builds.map((s) => s.lock.on).sort()).toEqual(LEAVES.map((leaf) => `app.${leaf}`));
    expect(builds.every((s) => s.lock.mode === 'SHARE UPDATE EXCLUSIVE' && s.lock.online && / CONCURRENTLY /.test(s.sql))).toBe(true);
    // ATTACH holds ACCESS EXCLUSIVE on the attached index alone, catalog-only: the plan says so.
    const blocking = steps.filter((s) => s.lock.mode === 'ACCESS EXCLUSIVE');
    expect(blocking.every((s) => /^ALTER INDEX .* ATTACH PARTITION /.test(s.sql) && s.lock.on.startsWith('index '))).toBe(true);
    expect(blocking).toHaveLength(LEAVES.length + MONTHS.length);
  });

  it('lets a writer insert into a leaf while that leaf\'s index is being built', async () => {
    const project = await projectWith({ 'readings.yaml': READINGS });
    const leaf = LEAVES[0] ?? '';
    const old = new pg.Client({ connectionString: db.url });
    const writer = new pg.Client({ connectionString: db.url });
    await Promise.all([old.connect(), writer.connect()]);
    try {
      // An older snapshot holds the leaf's concurrent build in its last phase, its lock on the leaf held.
      await old.query(`BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1`);
      let building!: () => void;
      const buildStarted = new Promise<void>((resolve) => (building = resolve));
      const applying = apply({
        ...APPLY_DEFAULTS,
        lockTimeoutMs: 60_000,
        databaseUrl: db.url,
        desired: await desiredState(project),
        who: { actor: 'test', gitCommit: null, gitBranch: null },
        onEvent: (event) => {
          if (event.type === 'step' && event.sql.startsWith(`CREATE INDEX CONCURRENTLY "${leaf}_${INDEX}"`)) building();
        },
      });
      await buildStarted;
      await expect
        .poll(async () => (await sql(`SELECT phase FROM pg_stat_progress_create_index WHERE relid = $1::regclass`, [`app.${leaf}`]))[0]?.['phase'], { timeout: 20_000 })
        .toBe('waiting for old snapshots');

      await writer.query(`SET lock_timeout = '1s'`);
      const started = Date.now();
      await writer.query(`INSERT INTO app.${leaf} (id, at, sensor, value) SELECT 100001, '2026-10-05', sensor, 1 FROM app.${leaf} LIMIT 1`);
      await writer.query(`INSERT INTO app.readings (id, at, sensor, value) SELECT 100002, '2026-10-06', sensor, 2 FROM app.${leaf} LIMIT 1`);
      expect(Date.now() - started).toBeLessThan(1000);
      expect((await sql(`SELECT phase FROM pg_stat_progress_create_index WHERE relid = $1::regclass`, [`app.${leaf}`]))[0]?.['phase']).toBe('waiting for old snapshots');

      await old.query('ROLLBACK');
      await applying;
    } finally {
      await old.query('ROLLBACK').catch(() => undefined);
      await Promise.all([old.end(), writer.end()]);
    }
    const again = await plan(project);
    expect(again.stdout).toContain('No changes.');
    expect(await indexTree(`app.${INDEX}`)).toEqual(COMPLETE_TREE);
    expect((await sql(`SELECT count(*)::int AS n FROM app.${leaf} WHERE id > 100000`))[0]?.['n']).toBe(2);
  });

  it('resumes a build interrupted inside a sub-partitioned partition: the month\'s index is finished, not dropped', async () => {
    const project = await projectWith({ 'readings.yaml': READINGS });
    const [month] = MONTHS;
    const [first, second] = [`readings_${month}_h0`, `readings_${month}_h1`];
    const controller = new AbortController();
    // Stopped after the first leaf of the first month was built and attached, before the second leaf's build.
    const interrupted = apply({
      ...APPLY_DEFAULTS,
      databaseUrl: db.url,
      desired: await desiredState(project),
      who: { actor: 'test', gitCommit: null, gitBranch: null },
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'step' && event.sql.startsWith(`CREATE INDEX CONCURRENTLY "${second}_${INDEX}"`)) controller.abort();
      },
    });
    await expect(interrupted).rejects.toThrow('interrupted');
    // ...and a concurrent build of the second leaf cut short, as a cancel or a lock timeout leaves it.
    await leaveInvalidIndex(`CREATE INDEX CONCURRENTLY ${second}_${INDEX} ON app.${second} (sensor, at)`);
    expect(await indexTree(`app.readings_${month}_${INDEX}`)).toEqual([
      { level: 0, index: `readings_${month}_${INDEX}`, table: `readings_${month}`, valid: false },
      { level: 1, index: `${first}_${INDEX}`, table: first, valid: true },
    ]);
    const kept = await oidOf(`app.${first}_${INDEX}`);
    const keptMonth = await oidOf(`app.readings_${month}_${INDEX}`);

    const p = await plan(project);
    expect(p.stdout).toContain(`± rebuild INVALID index ${INDEX}`);
    expect(p.stdout).not.toContain(`DROP INDEX IF EXISTS`);
    expect(p.stdout).not.toContain(`"${first}_${INDEX}" ON`);
    expect(p.stdout).not.toContain(`ATTACH PARTITION "app"."${first}_${INDEX}"`);
    expect(p.stdout).not.toContain(`ON ONLY "app"."readings_${month}"`);
    const dropLeftover = p.stdout.indexOf(`DROP INDEX CONCURRENTLY IF EXISTS "app"."${second}_${INDEX}"`);
    const rebuild = p.stdout.indexOf(`CREATE INDEX CONCURRENTLY "${second}_${INDEX}" ON "app"."${second}"`);
    const intoMonth = p.stdout.indexOf(`ALTER INDEX "app"."readings_${month}_${INDEX}" ATTACH PARTITION "app"."${second}_${INDEX}"`);
    const monthIntoRoot = p.stdout.indexOf(`ALTER INDEX "app"."${INDEX}" ATTACH PARTITION "app"."readings_${month}_${INDEX}"`);
    expect(dropLeftover).toBeGreaterThan(0);
    expect(rebuild).toBeGreaterThan(dropLeftover);
    expect(intoMonth).toBeGreaterThan(rebuild);
    expect(monthIntoRoot).toBeGreaterThan(intoMonth);
    // The month nobody started is built whole.
    expect(p.stdout).toContain(`CREATE INDEX IF NOT EXISTS "readings_2026_11_${INDEX}" ON ONLY "app"."readings_2026_11"`);

    await applyAndConverge(project);
    expect(await indexTree(`app.${INDEX}`)).toEqual(COMPLETE_TREE);
    expect([await oidOf(`app.${first}_${INDEX}`), await oidOf(`app.readings_${month}_${INDEX}`)]).toEqual([kept, keptMonth]);
  });

  it('finishes a sub-partitioned partition\'s INVALID index already attached to the parent\'s, without attaching it again', async () => {
    // Attached top-down by hand: the month's index hangs under the root's, INVALID until its leaves are attached.
    await sql(`CREATE INDEX ${INDEX} ON ONLY app.readings (sensor, at)`);
    for (const m of MONTHS) {
      await sql(`CREATE INDEX readings_${m}_${INDEX} ON ONLY app.readings_${m} (sensor, at)`);
      await sql(`ALTER INDEX app.${INDEX} ATTACH PARTITION app.readings_${m}_${INDEX}`);
    }
    const project = await projectWith({ 'readings.yaml': READINGS });

    const p = await plan(project);
    expect(p.stdout).toContain(`± rebuild INVALID index ${INDEX}`);
    expect(p.stdout).not.toContain('DROP INDEX');
    expect(p.stdout).not.toContain(`ALTER INDEX "app"."${INDEX}" ATTACH PARTITION`);
    for (const leaf of LEAVES) expect(p.stdout).toContain(`CREATE INDEX CONCURRENTLY "${leaf}_${INDEX}"`);

    await applyAndConverge(project);
    expect(await indexTree(`app.${INDEX}`)).toEqual(COMPLETE_TREE);
  });

  it('rebuilds a tree a leaf index attached while INVALID keeps from ever turning valid', async () => {
    await sql(`CREATE INDEX ${INDEX} ON ONLY app.readings (sensor, at)`);
    await sql(`CREATE INDEX readings_2026_10_${INDEX} ON ONLY app.readings_2026_10 (sensor, at)`);
    await leaveInvalidIndex(`CREATE INDEX CONCURRENTLY readings_2026_10_h0_${INDEX} ON app.readings_2026_10_h0 (sensor, at)`);
    // PostgreSQL accepts an INVALID index in ATTACH, and validates the month's index only at an ATTACH: no
    // build under it can make it valid, so it is dropped (with what hangs under it) and built again.
    await sql(`ALTER INDEX app.readings_2026_10_${INDEX} ATTACH PARTITION app.readings_2026_10_h0_${INDEX}`);
    const project = await projectWith({ 'readings.yaml': READINGS });

    const p = await plan(project);
    expect(p.stdout).toContain(`± rebuild INVALID index ${INDEX}`);
    const drop = p.stdout.indexOf(`DROP INDEX IF EXISTS "app"."readings_2026_10_${INDEX}"`);
    expect(drop).toBeGreaterThan(0);
    expect(p.stdout.indexOf(`CREATE INDEX IF NOT EXISTS "readings_2026_10_${INDEX}" ON ONLY "app"."readings_2026_10"`)).toBeGreaterThan(drop);
    expect(p.stdout).not.toContain(`DROP INDEX IF EXISTS "app"."${INDEX}"`);

    await applyAndConverge(project);
    expect(await indexTree(`app.${INDEX}`)).toEqual(COMPLETE_TREE);
  });

  it('rebuilds a whole tree whose attached INVALID index no build can finish', async () => {
    await sql(`CREATE INDEX ${INDEX} ON ONLY app.readings (sensor, at)`);
    await sql(`CREATE INDEX readings_2026_10_${INDEX} ON ONLY app.readings_2026_10 (sensor, at)`);
    await sql(`ALTER INDEX app.${INDEX} ATTACH PARTITION app.readings_2026_10_${INDEX}`);
    await leaveInvalidIndex(`CREATE INDEX CONCURRENTLY readings_2026_10_h0_${INDEX} ON app.readings_2026_10_h0 (sensor, at)`);
    await sql(`ALTER INDEX app.readings_2026_10_${INDEX} ATTACH PARTITION app.readings_2026_10_h0_${INDEX}`);
    const project = await projectWith({ 'readings.yaml': READINGS });

    const p = await plan(project);
    expect(p.stdout).toContain(`± rebuild INVALID index ${INDEX}`);
    expect(p.stdout).toContain(`DROP INDEX IF EXISTS "app"."${INDEX}"`);
    expect(p.stdout).toContain('lock:  ACCESS EXCLUSIVE on app.readings and every partition under it');

    await applyAndConverge(project);
    expect(await indexTree(`app.${INDEX}`)).toEqual(COMPLETE_TREE);
  });

  it('replaces its definition again and again: each new tree is built beside the live one under names it does not hold', async () => {
    const project = await projectWith({ 'readings.yaml': READINGS });
    await applyAndConverge(project);
    for (const columns of ['[sensor, at, value]', '[sensor, value]', '[sensor, at]']) {
      await writePolicy(project, 'readings.yaml', READINGS.replace('[sensor, at]', columns));
      const p = await plan(project);
      expect(p.stdout).toContain(`± replace index ${INDEX} on app.readings`);
      await applyAndConverge(project);
      const tree = await indexTree(`app.${INDEX}`);
      expect(tree.map((i) => [i.level, i.table, i.valid])).toEqual(COMPLETE_TREE.map((i) => [i.level, i.table, true]));
      const definition = await sql(`SELECT pg_get_indexdef($1::regclass) AS d`, [`app.${INDEX}`]);
      expect(String(definition[0]?.['d'])).toContain(`(${columns.slice(1, -1)})`);
    }
  });

  it('drops it with one short ACCESS EXCLUSIVE on the table and every partition under it, and says so', async () => {
    const project = await projectWith({ 'readings.yaml': READINGS });
    await applyAndConverge(project);
    await writePolicy(project, 'readings.yaml', 'table: app.readings\nindexes: []\n');

    const p = await plan(project);
    expect(p.stdout).toContain(`- drop index ${INDEX} on app.readings`);
    expect(p.stdout).toContain('lock:  ACCESS EXCLUSIVE on app.readings and every partition under it — blocks writes briefly (under lock_timeout)');
    // PostgreSQL (<= 17) refuses DROP INDEX CONCURRENTLY on a partitioned index.
    expect(p.stdout).toContain(`DROP INDEX IF EXISTS "app"."${INDEX}"`);
    expect(p.stdout).not.toContain('DROP INDEX CONCURRENTLY');

    await applyAndConverge(project, '--allow-drop');
    expect(await sql(`SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid WHERE c.relname LIKE 'readings%'`)).toEqual([]);
  });
});
