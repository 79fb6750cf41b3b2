import { parsePublishedMetrics, type PublishedRouterMetrics } from '../routing/router-metrics.ts';
import type { RouterRow, RoutingReading } from './health-readings.ts';
import type { ReasonCount, RouterHealth, RoutingHealth, RoutingTarget } from './health-snapshot.ts';

/**
 * The routing section of a snapshot, from the rows routers publish: pure, so its rules are tested
 * without a database. Each router's publications of the last window are remembered between polls;
 * a rate is the increase of a counter from the window's first publication to its last, over the time
 * between them. Counters count since the router started: one that went down, or a new `startedAt`,
 * is a restart, and the increase across it is the new value (counted from zero), as Prometheus's
 * `increase()` does. A router seen for the first time that started within the window is counted from
 * its start, so a fresh router has rates at once.
 */

interface Publication {
  /** The primary's clock, epoch ms. */
  readonly at: number;
  /** The router's clock, epoch ms. */
  readonly startedAt: number;
  readonly counters: ReadonlyMap<string, number>;
  readonly metrics: PublishedRouterMetrics;
  readonly row: RouterRow;
}

/** Each router's publications within the window (plus the one just before it), oldest first. */
export type RoutingMemory = ReadonlyMap<string, readonly Publication[]>;

export const ROUTING_WINDOW_MS = 60_000;
/**
 * Where reads go now is taken over the last two or three publications (routers publish every 5 s): a
 * replica that went down must drop out of the share within seconds, not after the minute that the
 * fallback counts cover.
 */
export const ROUTING_RECENT_MS = 12_000;

/** The publications of the last `recentMs`, with the one just before as their baseline. */
function recent(publications: readonly Publication[], recentMs: number): readonly Publication[] {
  const latest = publications.at(-1);
  if (latest === undefined) return [];
  const first = publications.findIndex((p) => p.at >= latest.at - recentMs);
  return publications.slice(Math.max(0, first - 1));
}

const READS_PRIMARY = 'reads:primary';
const replicaKey = (name: string): string => `reads:replica:${name}`;

/** Every counter of a publication under one flat key, so that increases are taken the same way for all. */
function flatten(m: PublishedRouterMetrics): Map<string, number> {
  const out = new Map<string, number>([[READS_PRIMARY, m.reads.primary], ['failed-reads', m.failedReads]]);
  for (const [name, n] of Object.entries(m.reads.replicas)) out.set(replicaKey(name), n);
  for (const [reason, n] of Object.entries(m.primaryStatements)) out.set(`primary:${reason}`, n);
  for (const [reason, n] of Object.entries(m.fallbacks)) out.set(`fallback:${reason}`, n);
  for (const [reason, n] of Object.entries(m.retries)) out.set(`retry:${reason}`, n);
  return out;
}

function publicationOf(row: RouterRow): Publication | null {
  const metrics = parsePublishedMetrics(row.counters);
  if (metrics === null) return null;
  return { at: row.updatedAtMs, startedAt: row.startedAtMs, counters: flatten(metrics), metrics, row };
}

/** Appends a newer publication and drops those no longer needed: one at or before the window's start is kept as the baseline. */
function remember(previous: readonly Publication[], next: Publication, windowMs: number): Publication[] {
  const last = previous.at(-1);
  const all = last !== undefined && last.at >= next.at ? [...previous] : [...previous, next];
  const start = (all.at(-1)?.at ?? next.at) - windowMs;
  let drop = 0;
  while (drop + 1 < all.length && (all[drop + 1]?.at ?? Infinity) <= start) drop += 1;
  return all.slice(drop);
}

interface RouterWindow {
  readonly spanMs: number;
  readonly increases: ReadonlyMap<string, number>;
}

/** Increases of every counter over a router's remembered publications; restarts count from zero. */
function routerWindow(publications: readonly Publication[], windowMs: number): RouterWindow | null {
  const first = publications[0];
  const latest = publications.at(-1);
  if (first === undefined || latest === undefined) return null;
  // Started within the window and seen since its start: its counters began at zero then.
  const fromStart = first.startedAt >= latest.at - windowMs && first.startedAt < first.at;
  const points: { at: number; startedAt: number; counters: ReadonlyMap<string, number> }[] = fromStart
    ? [{ at: first.startedAt, startedAt: first.startedAt, counters: new Map() }, ...publications]
    : [...publications];
  const base = points[0];
  if (base === undefined || latest.at <= base.at) return null;
  const increases = new Map<string, number>();
  for (let i = 1; i < points.length; i += 1) {
    const before = points[i - 1];
    const after = points[i];
    if (before === undefined || after === undefined) continue;
    const restarted = after.startedAt !== before.startedAt || [...after.counters].some(([k, v]) => v < (before.counters.get(k) ?? 0));
    for (const [k, v] of after.counters) increases.set(k, (increases.get(k) ?? 0) + (restarted ? v : v - (before.counters.get(k) ?? 0)));
  }
  return { spanMs: latest.at - base.at, increases };
}

const perSecond = (n: number, ms: number): number => (n * 1000) / ms;

function reasonCounts(windows: readonly RouterWindow[], prefix: string): ReasonCount[] {
  const totals = new Map<string, number>();
  for (const w of windows) {
    for (const [k, v] of w.increases) if (k.startsWith(prefix) && v > 0) totals.set(k.slice(prefix.length), (totals.get(k.slice(prefix.length)) ?? 0) + v);
  }
  return [...totals].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
}

/** Sum of a counter's rate over the routers with a window, and of its increase; null when none has one. */
function total(windows: readonly RouterWindow[], match: (key: string) => boolean): { rate: number; count: number } | null {
  if (windows.length === 0) return null;
  let rate = 0;
  let count = 0;
  for (const w of windows) {
    for (const [k, v] of w.increases) {
      if (!match(k)) continue;
      rate += perSecond(v, w.spanMs);
      count += v;
    }
  }
  return { rate, count };
}

const maxOf = (values: readonly (number | null)[]): number | null => {
  const known = values.filter((v): v is number => v !== null);
  return known.length > 0 ? Math.max(...known) : null;
};

function replicaTargets(latest: readonly Publication[], windows: readonly RouterWindow[]): RoutingTarget[] {
  const names = [...new Set(latest.flatMap((p) => [...p.metrics.replicas.map((r) => r.name), ...Object.keys(p.metrics.reads.replicas)]))].sort();
  return names.map((name) => {
    const seen = latest.flatMap((p) => p.metrics.replicas.filter((r) => r.name === name));
    const reads = total(windows, (k) => k === replicaKey(name));
    return {
      name,
      kind: 'replica',
      readsPerSecond: reads?.rate ?? null,
      reads: reads?.count ?? null,
      seenBy: seen.length,
      healthyIn: seen.filter((r) => r.healthy).length,
      lagMs: maxOf(seen.map((r) => r.lagMs)),
      p99LagMs: maxOf(seen.map((r) => r.p99LagMs)),
      reasons: [...new Set(seen.flatMap((r) => (r.reason === null ? [] : [r.reason])))],
    };
  });
}

function empty(state: RoutingHealth['state'], note: string | null, staleRouters: number): RoutingHealth {
  return { state, note, windowMs: null, ratesWindowMs: null, readsPerSecond: null, replicaReadShare: null, primaryStatementsPerSecond: null, targets: [], fallbacks: [], retries: [], failedReads: null, routers: [], staleRouters };
}

export function computeRouting(
  reading: RoutingReading | undefined,
  previous: RoutingMemory | null,
  windowMs: number = ROUTING_WINDOW_MS,
  recentMs: number = ROUTING_RECENT_MS,
): { readonly routing: RoutingHealth | null; readonly memory: RoutingMemory } {
  if (reading === undefined) return { routing: null, memory: new Map() };
  if (!reading.table) return { routing: empty('no-table', 'no router metrics table: apply the routing policy (pgwarden apply) to create pgwarden.router_metrics', 0), memory: new Map() };
  if (reading.error !== null) return { routing: empty('unreadable', reading.error, reading.staleRouters), memory: new Map() };
  const memory = new Map<string, readonly Publication[]>();
  for (const row of reading.routers) {
    const publication = publicationOf(row);
    if (publication !== null) memory.set(row.instance, remember(previous?.get(row.instance) ?? [], publication, windowMs));
  }
  if (memory.size === 0) return { routing: empty('silent', 'no router has published in the last minute', reading.staleRouters), memory };

  const histories = [...memory.values()];
  const latest = histories.flatMap((h) => h.slice(-1));
  const windows = histories.flatMap((h) => {
    const w = routerWindow(h, windowMs);
    return w === null ? [] : [w];
  });
  const nowWindows = histories.flatMap((h) => {
    const w = routerWindow(recent(h, recentMs), recentMs);
    return w === null ? [] : [w];
  });
  const primaryReads = total(nowWindows, (k) => k === READS_PRIMARY);
  const replicaReads = total(nowWindows, (k) => k.startsWith('reads:replica:'));
  const allReads = primaryReads !== null && replicaReads !== null ? primaryReads.count + replicaReads.count : null;
  const routers: RouterHealth[] = histories.flatMap((h) => {
    const p = h.at(-1);
    if (p === undefined) return [];
    const w = routerWindow(recent(h, recentMs), recentMs);
    const reads = w === null ? null : [...w.increases].filter(([k]) => k.startsWith('reads:')).reduce((sum, [, v]) => sum + v, 0);
    return [
      {
        instance: p.row.instance,
        application: p.row.application,
        host: p.row.host,
        pid: p.row.pid,
        startedAt: new Date(p.startedAt).toISOString(),
        updatedAt: new Date(p.at).toISOString(),
        ageMs: p.row.ageMs,
        reads: p.metrics.policy.reads,
        maxLagMs: p.metrics.policy.maxLagMs,
        readsPerSecond: w === null || reads === null ? null : perSecond(reads, w.spanMs),
        counters: {
          reads: { primary: p.metrics.reads.primary, ...p.metrics.reads.replicas },
          fallbacks: p.metrics.fallbacks,
          retries: p.metrics.retries,
          failedReads: p.metrics.failedReads,
        },
      },
    ];
  });
  const routing: RoutingHealth = {
    state: 'reporting',
    note: null,
    windowMs: windows.length > 0 ? Math.max(...windows.map((w) => w.spanMs)) : null,
    ratesWindowMs: nowWindows.length > 0 ? Math.max(...nowWindows.map((w) => w.spanMs)) : null,
    readsPerSecond: primaryReads !== null && replicaReads !== null ? primaryReads.rate + replicaReads.rate : null,
    // over the recent publications, as the targets' rates: the share of reads replicas serve now
    replicaReadShare: allReads !== null && allReads > 0 && replicaReads !== null ? replicaReads.count / allReads : null,
    primaryStatementsPerSecond: total(windows, (k) => k.startsWith('primary:'))?.rate ?? null,
    targets: [
      { name: 'primary', kind: 'primary', readsPerSecond: primaryReads?.rate ?? null, reads: primaryReads?.count ?? null, seenBy: latest.length, healthyIn: latest.length, lagMs: null, p99LagMs: null, reasons: [] },
      ...replicaTargets(latest, nowWindows),
    ],
    fallbacks: reasonCounts(windows, 'fallback:'),
    retries: reasonCounts(windows, 'retry:'),
    failedReads: total(windows, (k) => k === 'failed-reads')?.count ?? null,
    routers: routers.sort((a, b) => a.application.localeCompare(b.application) || a.instance.localeCompare(b.instance)),
    staleRouters: reading.staleRouters,
  };
  return { routing, memory };
}
