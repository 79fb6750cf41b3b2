import type pg from 'pg';
import { renderHealthText } from '../../vacuum-health/render-health.ts';
import { vacuumHealthReport } from '../../vacuum-health/vacuum-health-report.ts';
import { planMaintenance, runMaintenance } from '../../maintain/maintain.ts';
import { maintainProgressPrinter, renderMaintainSummary } from '../../maintain/render-maintain.ts';
import type { DesiredState } from '../../policy/desired.ts';
import type { Io } from '../context.ts';

/**
 * The demo's vacuum step: a busy hour of deployments churns the table, `pgwarden health` shows it
 * below its floor, `pgwarden maintain` brings it back, and health is read again.
 */
export async function vacuumDemo(client: pg.Client, url: string, desired: DesiredState, io: Io): Promise<void> {
  io.stdout('  A busy hour: a third of the deployments change status, a twentieth of the servers report in.\n');
  await client.query(`UPDATE public.deployments SET status = CASE status WHEN 'running' THEN 'succeeded' ELSE 'running' END, updated_at = now() WHERE id % 3 = 0`);
  await client.query(`UPDATE public.servers SET last_seen_at = now() WHERE id % 20 = 0`);
  // This session's counters reach the shared statistics when it goes idle (PostgreSQL 15+: at most once a second).
  await client.query('SELECT pg_catalog.pg_stat_force_next_flush()');
  await client.query('SELECT 1');

  const before = await vacuumHealthReport(client, desired, { exact: false });
  io.stdout(`\n  $ pgwarden health\n${indent(renderHealthText(before, { color: io.color, limit: 6 }))}`);

  io.stdout('\n  $ pgwarden maintain --parallel 2\n');
  const plan = await planMaintenance(client, desired, new Date());
  if (plan.tasks.length === 0) {
    io.stdout('  nothing is due (autovacuum got there first)\n');
    return;
  }
  const print = maintainProgressPrinter({ stdout: (text) => io.stdout(text.replace(/^(?=.)/gmu, '  ')), isTTY: false });
  const result = await runMaintenance(plan, {
    databaseUrl: url,
    parallel: 2,
    lockTimeoutMs: 5000,
    ...(io.signal === undefined ? {} : { signal: io.signal }),
    onEvent: print,
  });
  io.stdout(`\n${indent(renderMaintainSummary(result))}`);
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gmu, '  ');
}
