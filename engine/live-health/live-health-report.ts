import type { ConnectionTarget } from '../connection/connection-settings.ts';
import { createHealthCollector } from './health-collector.ts';
import type { HealthSnapshot, LagSource } from './health-snapshot.ts';
import { THRESHOLDS, type Level } from './health-status.ts';

/**
 * `pgwarden health`'s live part: what the live page shows, from two polls of the collector `windowMs`
 * apart (rates and latency need a window), without the page's three-poll debouncing: a one-off reading
 * takes each figure's level as it is.
 */
export interface LiveHealthReport {
  readonly windowMs: number | null;
  readonly statuses: readonly {
    readonly figure: string;
    readonly label: string;
    readonly value: number | null;
    readonly unit: 'ms' | 'ratio' | 'count' | 'bytes';
    readonly level: Level;
  }[];
  readonly latency: { readonly p50Ms: number | null; readonly p95Ms: number | null; readonly p99Ms: number | null; readonly meanMs: number | null; readonly statementsPerSecond: number | null };
  readonly cacheHitRatio: number | null;
  readonly indexHitRatio: number | null;
  readonly connections: { readonly total: number; readonly max: number; readonly active: number; readonly idleInTransaction: number };
  readonly replicas: readonly { readonly name: string; readonly state: string; readonly lagMs: number | null; readonly lagBytes: number | null; readonly lagSource: LagSource | null }[];
  readonly findings: HealthSnapshot['findings'];
  /** The worst level of any figure: `critical` makes `pgwarden health` exit 1. */
  readonly level: Level;
  readonly error: string | null;
}

export interface LiveHealthOptions {
  readonly primaryUrl: ConnectionTarget | undefined;
  readonly standbys: readonly { readonly name: string; readonly url: string; readonly applicationName?: string }[];
  readonly windowMs: number;
}

export function liveHealthFrom(snapshot: HealthSnapshot): Omit<LiveHealthReport, 'error'> {
  const statuses = THRESHOLDS.map((t) => ({ figure: t.figure, label: t.label, value: snapshot.figures[t.figure], unit: t.unit, level: snapshot.status[t.figure]?.raw ?? 'unknown' }));
  const levels = statuses.map((s) => s.level);
  const f = snapshot.figures;
  return {
    windowMs: snapshot.windowMs,
    statuses,
    latency: { p50Ms: f.latencyP50Ms, p95Ms: f.latencyP95Ms, p99Ms: f.latencyP99Ms, meanMs: f.latencyMeanMs, statementsPerSecond: f.callsPerSecond },
    cacheHitRatio: f.cacheHitRatio,
    indexHitRatio: f.indexHitRatio,
    connections: { total: f.connections, max: f.maxConnections, active: snapshot.primary.connections.active, idleInTransaction: snapshot.primary.connections.idleInTransaction },
    // A standby that is down or not streaming has no lag figure: unknown, never "0 ms".
    replicas: snapshot.standbys.map((s) => {
      const known = s.state !== 'down' && s.state !== 'not-streaming';
      return { name: s.name, state: s.state, lagMs: known ? s.lagMs : null, lagBytes: known ? s.lagBytes : null, lagSource: known ? s.lagSource : null };
    }),
    findings: snapshot.findings,
    level: levels.includes('critical') ? 'critical' : levels.includes('warn') ? 'warn' : levels.includes('ok') ? 'ok' : 'unknown',
  };
}

export async function liveHealthReport(options: LiveHealthOptions): Promise<LiveHealthReport> {
  const collector = createHealthCollector({ primaryUrl: options.primaryUrl, standbys: options.standbys, intervalMs: Math.max(1000, options.windowMs), slowIntervalMs: 3_600_000 });
  try {
    await collector.pollOnce();
    await new Promise((r) => setTimeout(r, options.windowMs));
    const snapshot = await collector.pollOnce();
    if (!snapshot) return { ...emptyReport(), error: collector.state().error ?? 'no answer from the primary' };
    return { ...liveHealthFrom(snapshot), error: null };
  } finally {
    await collector.stop();
  }
}

function emptyReport(): Omit<LiveHealthReport, 'error'> {
  return {
    windowMs: null,
    statuses: [],
    latency: { p50Ms: null, p95Ms: null, p99Ms: null, meanMs: null, statementsPerSecond: null },
    cacheHitRatio: null,
    indexHitRatio: null,
    connections: { total: 0, max: 0, active: 0, idleInTransaction: 0 },
    replicas: [],
    findings: [],
    level: 'critical',
  };
}

const ms = (v: number | null): string => (v === null ? 'unknown' : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : v >= 10 ? `${v.toFixed(1)} ms` : `${v.toFixed(2)} ms`);
const pct = (v: number | null, digits = 2): string => (v === null ? 'no data' : `${(v * 100).toFixed(digits)}%`);
const bytes = (v: number | null): string => {
  if (v === null) return 'unknown';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let n = v;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
};
const LEVEL_TEXT: Record<Level, string> = { ok: 'ok', warn: 'AMBER', critical: 'RED', unknown: '-' };

function paint(on: boolean, level: Level, text: string): string {
  if (!on || level === 'ok' || level === 'unknown') return text;
  return `\u001b[${level === 'critical' ? 31 : 33}m${text}\u001b[0m`;
}

function figureText(s: LiveHealthReport['statuses'][number]): string {
  if (s.value === null) return 'no data';
  if (s.unit === 'ms') return ms(s.value);
  if (s.unit === 'ratio') return pct(s.value, s.figure === 'cacheHitRatio' || s.figure === 'indexHitRatio' ? 2 : 1);
  return String(Math.round(s.value));
}

/** The live snapshot for a terminal: the headline figures, each replica, then every figure's level. */
export function renderLiveHealthText(report: LiveHealthReport, options: { readonly color: boolean }): string {
  if (report.error !== null) return `Live snapshot: the primary did not answer (${report.error})\n`;
  const window = report.windowMs === null ? '' : ` over ${(report.windowMs / 1000).toFixed(1)} s`;
  const l = report.latency;
  const rows: [string, string][] = [
    ['latency (est.)', `p50 ${ms(l.p50Ms)}, p95 ${ms(l.p95Ms)}, p99 ${ms(l.p99Ms)}; mean ${ms(l.meanMs)}${l.statementsPerSecond === null ? '' : `, ${l.statementsPerSecond.toFixed(1)} statements/s`}`],
    ['cache hit', pct(report.cacheHitRatio)],
    ['index hit', pct(report.indexHitRatio)],
    ['connections', `${report.connections.total} of ${report.connections.max} (${report.connections.active} active, ${report.connections.idleInTransaction} idle in a transaction)`],
    ...report.replicas.map((r): [string, string] => [
      `replica ${r.name}`,
      r.lagMs === null && r.lagBytes === null ? `${r.state}, lag unknown` : `${r.state}, lag ${ms(r.lagMs)}, ${bytes(r.lagBytes)} behind${r.lagSource ? ` (${r.lagSource})` : ''}`,
    ]),
  ];
  if (report.replicas.length === 0) rows.push(['replicas', 'none watched (the routing policy\'s replicas whose URL variable is set, or --standby NAME=URL)']);
  const width = Math.max(...rows.map(([k]) => k.length));
  const out = [`Live snapshot${window} (rates over the window; latency estimated from pg_stat_statements)`];
  for (const [k, v] of rows) out.push(`  ${k.padEnd(width)}  ${v}`);
  const flagged = report.statuses.filter((s) => s.level === 'warn' || s.level === 'critical');
  out.push('');
  if (flagged.length === 0) out.push(`Status: every figure is green${report.statuses.some((s) => s.level === 'unknown') ? ' or has no data' : ''}.`);
  else {
    out.push('Status:');
    for (const s of flagged) out.push(paint(options.color, s.level, `  ${LEVEL_TEXT[s.level].padEnd(5)}  ${s.label}: ${s.figure === 'replicaLagMs' && report.replicas.some((r) => r.lagMs === null) ? 'a replica is down or not streaming' : figureText(s)}`));
  }
  for (const f of report.findings.slice(0, 10)) out.push(`  ${f.level.padEnd(8)} ${f.subject}: ${f.message}`, `           ${f.fixSql}`);
  return `${out.join('\n')}\n`;
}
