import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureBloat } from '../../engine/vacuum-health/bloat.ts';
import { readVacuumSettings } from '../../engine/vacuum-health/table-health.ts';
import { vacuumHealthReport, type VacuumHealthReport, type VacuumHealthRow } from '../../engine/vacuum-health/vacuum-health-report.ts';
import { runCli } from '../support/cli.ts';
import { project as projectWith, removeProjects } from './projects.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import { churnedTable } from './churn.ts';

let db: TestDatabase;
let project: string;
const env = (): NodeJS.ProcessEnv => ({ DATABASE_URL: db.url });

const POLICY = `table: app.queue
vacuum:
  autovacuum: { enabled: false }
  max_dead_ratio: 0.05
  min_health: 0.95
`;

async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function row(report: VacuumHealthReport, name: string): VacuumHealthRow {
  const found = report.tables.find((t) => `${t.schema}.${t.name}` === name);
  if (!found) throw new Error(`${name} is not in the report`);
  return found;
}

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query('CREATE SCHEMA app');
  await churnedTable(db.pool, 'app', 'queue');
  await db.pool.query(`CREATE TABLE app.tidy (id int PRIMARY KEY, name text)`);
  await db.pool.query(`INSERT INTO app.tidy SELECT g, 'n' || g FROM generate_series(1, 20000) g`);
  await db.pool.query(`VACUUM ANALYZE app.tidy`);
  project = await projectWith({ 'queue.yaml': POLICY });
});
afterAll(async () => {
  await db.close();
  await removeProjects();
});

describe('pgwarden health', () => {
  it('lists a churned table first, below its floor, with the figures behind its score', async () => {
    const result = await runCli(['health', '--json', '--estimate-only'], { cwd: project, env: env() });
    expect(result.stderr).toBe('');
    // app.queue at about 64% live rows is a red table-health status: exit 1.
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as VacuumHealthReport;

    const queue = report.tables[0];
    expect(`${queue?.schema}.${queue?.name}`).toBe('app.queue');
    expect(queue?.liveTuples).toBe(18_000);
    expect(queue?.deadTuples).toBeGreaterThan(2_000);
    expect(queue?.health).toBeCloseTo(18_000 / (18_000 + (queue?.deadTuples ?? 0)), 10);
    expect(queue?.health).toBeLessThan(0.95);
    expect(queue).toMatchObject({ floor: 0.95, maxDeadRatio: 0.05, belowFloor: true, limitedBy: 'dead tuples', governedBy: 'app.queue' });
    expect(queue?.autovacuum.enabled).toBe(false);
    expect(queue?.bloat.method).toBe('estimate');

    const tidy = row(report, 'app.tidy');
    expect(tidy).toMatchObject({ health: 1, floor: null, belowFloor: false, limitedBy: null });
    expect(tidy.bloat.method).toBe('estimate');
    expect(tidy.bloat.ratio).toBeLessThan(0.1);
  });

  it('prints the tables worst first, what is below its floor, and which method measured the bloat', async () => {
    const result = await runCli(['health', '--estimate-only'], { cwd: project, env: env() });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^ {2}RED {4}table health: 6\d\.\d%$/m);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`Table health of ${db.name} (PostgreSQL ${lines[0]?.match(/PostgreSQL ([^)]+)\)/)?.[1]}): 2 tables, worst first`);
    expect(lines[2]).toMatch(/^ {2}health {2}floor {2}table {6}\s*dead\s+changed\s+xid age\s+size\s+bloat \(method\)$/);
    expect(lines[3]).toMatch(/^ {2}0\.\d\d ! {2}0\.95 {3}app\.queue .*\(estimate\)$/);
    expect(lines[4]).toMatch(/^ {2}1\.00 {4}- {6}app\.tidy .*\(estimate\)$/);
    expect(result.stdout).toMatch(/Below their health floor \(1\): `pgwarden maintain` restores them \(--dry-run shows how\)\n {2}app\.queue: 0\.\d\d < 0\.95: \d+% dead tuples\n/);
    expect(result.stdout).toContain('Bloat by method: estimate 2 (pgstattuple is not installed: CREATE EXTENSION pgstattuple for exact figures).');
  });

  it('exits 2 with --detailed-exitcode while a table is below its floor', async () => {
    expect((await runCli(['health', '--detailed-exitcode', '--estimate-only'], { cwd: project, env: env() })).code).toBe(2);
  });

  it('measures bloat exactly with pgstattuple and pgstatindex once installed, close to the estimate', async () => {
    const estimated = await withClient((c) => vacuumHealthReport(c, undefined, { exact: false }));
    await db.pool.query('CREATE EXTENSION IF NOT EXISTS pgstattuple');
    try {
      const exact = await withClient((c) => vacuumHealthReport(c, undefined));
      const queue = row(exact, 'app.queue');
      expect(queue.bloat.method).toBe('pgstattuple');
      expect(queue.indexes.map((i) => [i.name, i.method])).toEqual([['queue_pkey', 'pgstatindex']]);
      // The churn left a third of the heap dead or free; the estimate lands within 10 points of pgstattuple.
      expect(queue.bloat.ratio).toBeGreaterThan(0.2);
      expect(Math.abs((queue.bloat.ratio ?? 0) - (row(estimated, 'app.queue').bloat.ratio ?? 0))).toBeLessThan(0.1);
      expect(exact.bloat).toMatchObject({ extensionSchema: 'public', tablesMeasured: 2, indexesMeasured: 2, budgetExhausted: false });

      const approx = await withClient(async (c) => {
        const s = await readVacuumSettings(c);
        return measureBloat(c, s.blockSize, s.pgstattupleSchema, { approxAboveBytes: 1 });
      });
      expect(approx.tables.map((t) => t.method)).toEqual(['pgstattuple_approx', 'pgstattuple_approx']);

      // No time for exact measurement: every figure keeps its estimate, and the report says why.
      const rushed = await withClient((c) => vacuumHealthReport(c, undefined, { budgetMs: 0 }));
      expect(rushed.tables.map((t) => t.bloat.method)).toEqual(['estimate', 'estimate']);
      expect(rushed.bloat.budgetExhausted).toBe(true);
    } finally {
      await db.pool.query('DROP EXTENSION pgstattuple');
    }
  });

  it('reads every table in the same number of queries, however many there are', async () => {
    const before = await withClient((c) => vacuumHealthReport(c, undefined, { exact: false }));
    await db.pool.query(`DO $$ BEGIN FOR i IN 1..60 LOOP EXECUTE format('CREATE TABLE app.many_%s (id int PRIMARY KEY, v text)', i); END LOOP; END $$`);
    try {
      const after = await withClient((c) => vacuumHealthReport(c, undefined, { exact: false }));
      expect(after.tables).toHaveLength(before.tables.length + 60);
      expect(after.queries).toBe(before.queries);
      expect(after.queries).toBe(4);
    } finally {
      await db.pool.query(`DO $$ BEGIN FOR i IN 1..60 LOOP EXECUTE format('DROP TABLE app.many_%s', i); END LOOP; END $$`);
    }
  });

  it('has the plan flag a table below its floor', async () => {
    const plan = await runCli(['plan'], { cwd: project, env: env() });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/warning: policies\/queue\.yaml:2:1: app\.queue has health 0\.\d\d, below its floor 0\.95 \(\d+% dead tuples\); `pgwarden maintain` restores it/);
  });

  it('refuses a read-only standby: its statistics are not the primary\'s', async () => {
    const result = await runCli(['health'], { cwd: project, env: { DATABASE_URL: db.standbyUrl } });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'pgwarden: this server is a read-only standby (in recovery): its activity statistics are its own and nearly empty, so table health cannot be judged there\n  hint: point --database-url at the primary\n',
    );
  });
});
