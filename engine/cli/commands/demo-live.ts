import pg from 'pg';
import { runWorkload } from '../../example/workload.ts';
import { createHealthCollector } from '../../live-health/health-collector.ts';
import { THRESHOLDS } from '../../live-health/health-status.ts';
import type { Io } from '../context.ts';
import { settingsOf } from '../../connection/connection-settings.ts';
import { createPool } from '../../connection/open-connection.ts';

const pct = (v: number | null): string => (v === null ? '-' : `${(v * 100).toFixed(2)}%`);
const ms = (v: number | null): string => (v === null ? '-' : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);

/**
 * The demo's live-page step: the health collector polls the primary and the standby around a few
 * seconds of the API's workload, and prints what the live page's gauges and status strip would show
 * (rates over that window, not totals since the stats reset) and what the poll itself cost.
 */
export async function liveDemo(io: Io, input: { readonly primaryUrl: string; readonly standbyUrl: string; readonly durationMs: number }): Promise<void> {
  const collector = createHealthCollector({ primaryUrl: input.primaryUrl, standbys: [{ name: 'standby1', url: input.standbyUrl }], slowIntervalMs: 3_600_000 });
  const pool = createPool(settingsOf(input.primaryUrl), { max: 4, application_name: 'pgwarden demo workload' });
  pool.on('error', () => undefined);
  try {
    await collector.pollOnce();
    await runWorkload(pool, { durationMs: Math.min(input.durationMs, 5000), ratePerSecond: 20, concurrency: 4 });
    const s = await collector.pollOnce();
    if (!s) {
      io.stdout(`  the collector could not reach the database: ${collector.state().error ?? 'no answer'}\n`);
      return;
    }
    const f = s.figures;
    io.stdout(`  over the last ${((s.windowMs ?? 0) / 1000).toFixed(1)} s (one window of the live page):\n`);
    const rows: [string, string][] = [
      ['statement latency', `p95 ${ms(f.latencyP95Ms)} (est.), mean ${ms(f.latencyMeanMs)}, ${(f.callsPerSecond ?? 0).toFixed(1)} statements/s`],
      ['cache hit / index hit', `${pct(f.cacheHitRatio)} / ${pct(f.indexHitRatio)} (index scans ${pct(f.indexScanShare)})`],
      ['replica lag', s.standbys.map((r) => `${r.name} ${r.state}, ${ms(r.lagMs)} (${r.lagSource ?? 'unknown'})`).join('; ') || 'no standby'],
      ['worst table', s.tables.worst[0] ? `${s.tables.worst[0].schema}.${s.tables.worst[0].name}, ${pct(f.tableHealth)} live rows` : '-'],
      ['connections', `${f.connections} of ${f.maxConnections}, ${f.idleInTransaction} idle in a transaction`],
      ['this poll', `${ms(s.poll.wallMs)} wall, ${s.poll.queries} queries`],
      ...(s.poll.databaseMs !== null ? ([['pgwarden in the db', `${ms(s.poll.databaseMs)} over the window (all its statements: polls, lag sampler, checks)`]] as [string, string][]) : []),
    ];
    for (const [k, v] of rows) io.stdout(`  ${k.padEnd(22)} ${v}\n`);
    const amber = THRESHOLDS.filter((t) => s.status[t.figure]?.level === 'warn' || s.status[t.figure]?.level === 'critical').map((t) => t.label);
    io.stdout(`  status strip: ${amber.length === 0 ? 'all green' : `attention on ${amber.join(', ')}`}; ${s.findings.length} finding(s), each with its fix SQL\n`);
    io.stdout('\n  See it live (gauges and 15-minute charts, updated every 5 s):\n');
    io.stdout('    npx pgwarden serve                 # then open http://127.0.0.1:3000/live/\n');
    io.stdout('    npx pgwarden report --out report/  # the plan history as a static site, for GitHub Pages\n');
  } finally {
    await pool.end().catch(() => undefined);
    await collector.stop();
  }
}
