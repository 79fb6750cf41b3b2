import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../engine/cli/main.ts';
import type { VacuumProgress } from '../../engine/maintain/maintain.ts';
import type { MaintenanceTask } from '../../engine/maintain/maintenance-task.ts';
import { CI_PROGRESS_EVERY_MS, maintainProgressPrinter } from '../../engine/maintain/render-maintain.ts';
import { ident } from '../../engine/sql/ident.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';
import { churnedTable } from './churn.ts';
import { project as projectWith, removeProjects } from './projects.ts';

let db: TestDatabase;

const DEFAULTS = `defaults:
  vacuum:
    max_dead_ratio: 0.05
    min_health: 0.95
`;

beforeAll(async () => {
  db = await useTestDatabase();
  // Cost-based delay makes this database's VACUUMs take a few seconds on a small table, so the
  // progress printer sees several phases without a table of gigabytes.
  await db.pool.query(`ALTER DATABASE ${ident(db.name)} SET vacuum_cost_delay = '2ms'`);
  await db.pool.query(`ALTER DATABASE ${ident(db.name)} SET vacuum_cost_limit = 5`);
});
afterAll(async () => {
  await db.close();
  await removeProjects();
});
beforeEach(async () => {
  await db.pool.query(`DROP SCHEMA IF EXISTS app CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA app`);
});

/** `pgwarden maintain` as a terminal (isTTY) or a CI log would run it, the output kept whole. */
async function maintain(project: string, isTTY: boolean): Promise<{ code: number; stdout: string; ms: number }> {
  let stdout = '';
  const started = Date.now();
  const code = await run(['maintain', '--lock-timeout', '30s'], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stdout += t),
    env: { DATABASE_URL: db.url },
    cwd: project,
    isTTY,
    color: false,
  });
  return { code, stdout, ms: Date.now() - started };
}

/** Runs `maintain` while another session holds app.big's lock for `holdMs`, then lets it go. */
async function maintainBehindALock(isTTY: boolean, holdMs: number): Promise<{ code: number; stdout: string; ms: number; holderPid: number }> {
  await churnedTable(db.pool, 'app', 'big', 40_000);
  const project = await projectWith({ 'defaults.yaml': DEFAULTS });
  const holder = new pg.Client({ connectionString: db.url, application_name: 'long report' });
  await holder.connect();
  try {
    await holder.query('BEGIN; LOCK TABLE app.big IN SHARE UPDATE EXCLUSIVE MODE');
    const holderPid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const running = maintain(project, isTTY);
    // Held for `holdMs` from when the VACUUM waits for it: on a busy machine maintain may take seconds to get there.
    for (;;) {
      const waiting = await db.pool.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE 'VACUUM%' AND datname = current_database()`);
      if (waiting.rowCount) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, holdMs));
    await holder.query('ROLLBACK');
    return { ...(await running), holderPid };
  } finally {
    await holder.end();
  }
}

describe('maintain progress', () => {
  it('in a CI log: one line when the VACUUM starts waiting for its lock, one per phase after, not one per poll', async () => {
    const result = await maintainBehindALock(false, 3000);
    expect(result.code).toBe(0);
    const progress = result.stdout.split('\n').filter((l) => l.startsWith('      app.big: ') && !/: done in /.test(l));
    const waiting = progress.filter((l) => l.includes(`waiting for pid ${result.holderPid}`));
    // Polled every 0.5 s for 3 s: six polls saw the same wait; under 5 s apart, one line says so.
    expect(waiting).toHaveLength(1);
    expect(waiting[0]).toMatch(/^ {6}app\.big: waiting for its lock — waiting for pid \d+ \(idle in transaction, transaction open \d+ s\)$/);
    const phases = progress.filter((l) => !l.includes('waiting for pid'));
    expect(phases.length).toBeGreaterThanOrEqual(1);
    // A phase of pg_stat_progress_vacuum or _analyze ("scanning heap 40%", "acquiring sample rows").
    expect(phases[0]).toMatch(/^ {6}app\.big: [a-z ]+( \d+%)?$/);
    expect(progress.indexOf(waiting[0]!)).toBeLessThan(progress.indexOf(phases[0]!));
    // A line per change of phase, and the same phase again at most every 5 s.
    const distinct = new Set(progress.map((l) => l.replace(/ \d+%$/, '').replace(/transaction open \d+ s/, ''))).size;
    expect(progress.length).toBeLessThanOrEqual(distinct + Math.floor(result.ms / 5000) + 1);
    expect(result.stdout).not.toContain('\r');
  });

  it('at a terminal: one bar, redrawn in place while it waits and runs, cleared before the result line', async () => {
    const result = await maintainBehindALock(true, 2500);
    expect(result.code).toBe(0);
    const redraws = result.stdout.split('\r      [').slice(1);
    expect(redraws.length).toBeGreaterThanOrEqual(3);
    // Every redraw is the whole bar line, erased to its end, with no newline: the line is rewritten, not added.
    for (const r of redraws.slice(0, -1)) expect(r).toMatch(/^[#.]{20}\]( \d+%)? app\.big [^\n]*\u001b\[K$/);
    expect(redraws[0]).toContain(`waiting for its lock — waiting for pid ${result.holderPid}`);
    const last = redraws.at(-1)!;
    // The bar is cleared (\r, erase line) before the table's result is printed on a line of its own.
    expect(last).toMatch(/^[#.]{20}\][^\n]*\u001b\[K\r\u001b\[K {6}app\.big: done in \d+\.\d s\n/);
  });
});

describe('the CI cadence of progress lines', () => {
  const task: MaintenanceTask = {
    oid: 1,
    schema: 'app',
    name: 'big',
    kind: 'table',
    action: 'vacuum',
    reasons: [],
    before: null,
    policy: { schema: 'app', name: 'big', source: { file: 'policies/defaults.yaml', line: 1, col: 1 } },
    minHealth: 0.95,
    maxDeadRatio: 0.05,
  };
  const blocked = (ageS: number): VacuumProgress => ({
    command: null,
    phase: null,
    percent: null,
    indexPasses: 0,
    waitingFor: [{ pid: 42, state: 'idle in transaction', applicationName: 'report', transactionAgeS: ageS, query: 'LOCK TABLE app.big' }],
  });
  const scanning = (percent: number): VacuumProgress => ({ command: 'vacuum', phase: 'scanning heap', percent, indexPasses: 0, waitingFor: [] });

  it('a wait polled every 0.5 s for 12 s prints a line at 0, 5 and 10 s; the phase that follows prints at once, its percentages every 5 s', () => {
    let clock = 0;
    const lines: string[] = [];
    const print = maintainProgressPrinter({ stdout: (t) => lines.push(t), isTTY: false }, () => clock);
    for (; clock < 12_000; clock += 500) print({ type: 'progress', task, progress: blocked(clock / 1000) });
    for (let p = 0; p < 20; p += 1, clock += 500) print({ type: 'progress', task, progress: scanning(p * 5) });
    expect(CI_PROGRESS_EVERY_MS).toBe(5000);
    expect(lines).toEqual([
      '      app.big: waiting for its lock — waiting for pid 42 (idle in transaction, transaction open 0 s)\n',
      '      app.big: waiting for its lock — waiting for pid 42 (idle in transaction, transaction open 5 s)\n',
      '      app.big: waiting for its lock — waiting for pid 42 (idle in transaction, transaction open 10 s)\n',
      '      app.big: scanning heap 0%\n',
      '      app.big: scanning heap 50%\n',
    ]);
  });
});

