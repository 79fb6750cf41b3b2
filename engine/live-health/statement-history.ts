import type { StatementCounters } from './health-readings.ts';

/** The windows the live page offers over the statements, and their lengths. */
export const STATEMENT_WINDOWS = { '5s': 5_000, '1h': 3_600_000, '24h': 86_400_000 } as const;
export type StatementWindowName = keyof typeof STATEMENT_WINDOWS;

/** One statement's figures over a window (counter increases between two polls). */
export interface WindowStatement {
  /** `userid:queryid`, as in the snapshot's top statements. */
  readonly id: string;
  readonly query: string | null;
  readonly calls: number;
  readonly totalMs: number;
  readonly meanMs: number;
  readonly rows: number;
  /** Share of all the workload's statement time in the window, 0..1. */
  readonly timeShare: number;
}

export interface StatementWindowResult {
  readonly window: StatementWindowName;
  /** The polls the figures are between; covered < the window's length while serve has not run that long. */
  readonly from: string | null;
  readonly to: string | null;
  readonly coveredMs: number;
  /** pg_stat_statements was reset inside the window: the figures count from then. */
  readonly resetAt: string | null;
  readonly calls: number;
  readonly totalMs: number;
  readonly statements: readonly WindowStatement[];
}

export interface StatementHistoryPoint {
  readonly from: string;
  readonly to: string;
  readonly calls: number;
  readonly meanMs: number;
}

type Counters = ReadonlyMap<string, readonly [calls: number, totalMs: number, rows: number]>;

interface Checkpoint {
  readonly at: number;
  readonly resetAt: string | null;
  readonly counters: Counters;
}

/** Minute checkpoints back an hour, then quarter-hour ones back a day: at most ~156, whatever the uptime. */
const FINE_MS = 60_000;
const FINE_SPAN_MS = 3_600_000 + FINE_MS;
const COARSE_MS = 900_000;
const COARSE_SPAN_MS = 86_400_000 + COARSE_MS;

/**
 * The pg_stat_statements counters of past polls, thinned as they age, so the statements of the last hour
 * or day are the difference between now and the checkpoint nearest that far back. Memory is bounded by the
 * number of checkpoints (≈156) times the statements pg_stat_statements keeps (its `max`, 5,000 by default;
 * three numbers each). It lives in serve's memory: a restart starts it afresh, and the page says how much
 * of the window it covers.
 */
export class StatementHistory {
  private checkpoints: Checkpoint[] = [];
  private previous: Checkpoint | null = null;
  private latest: Checkpoint | null = null;

  record(at: number, resetAt: string | null, counters: readonly StatementCounters[]): void {
    const point: Checkpoint = { at, resetAt, counters: new Map(counters.map((c) => [c.key, [c.calls, c.totalMs, c.rows] as const])) };
    this.previous = this.latest;
    this.latest = point;
    const last = this.checkpoints.at(-1);
    if (!last || at - last.at >= FINE_MS) this.checkpoints.push(point);
    // Thin: past the fine span keep one per coarse step; past the coarse span drop.
    const kept: Checkpoint[] = [];
    for (const c of this.checkpoints) {
      const age = at - c.at;
      if (age > COARSE_SPAN_MS) continue;
      const before = kept.at(-1);
      if (age > FINE_SPAN_MS && before && at - before.at > FINE_SPAN_MS && c.at - before.at < COARSE_MS) continue;
      kept.push(c);
    }
    this.checkpoints = kept;
  }

  /** Polls are not a window across an outage: the next one starts the 5-second window afresh. */
  interrupt(): void {
    this.previous = null;
    this.latest = null;
  }

  size(): number {
    return this.checkpoints.length;
  }

  window(name: StatementWindowName, texts: ReadonlyMap<string, string>, ownKeys: ReadonlySet<string>, limit = 50): StatementWindowResult {
    const latest = this.latest;
    const base = name === '5s' ? this.previous : this.baseline(STATEMENT_WINDOWS[name]);
    if (!latest || !base || base === latest) {
      return { window: name, from: null, to: latest ? new Date(latest.at).toISOString() : null, coveredMs: 0, resetAt: null, calls: 0, totalMs: 0, statements: [] };
    }
    // A reset between the two: every entry counts from zero (as the snapshot's window does).
    const reset = latest.resetAt !== null && base.resetAt !== null && latest.resetAt !== base.resetAt ? latest.resetAt : null;
    const rows: { id: string; calls: number; totalMs: number; rows: number }[] = [];
    for (const [key, [calls, totalMs, r]] of latest.counters) {
      if (ownKeys.has(key)) continue;
      const [c0, t0, r0] = reset === null ? (base.counters.get(key) ?? [0, 0, 0]) : [0, 0, 0];
      // Fewer calls than before: the entry was evicted and made again; its counters are not comparable.
      if (calls - c0 <= 0 || totalMs < t0) continue;
      rows.push({ id: key, calls: calls - c0, totalMs: totalMs - t0, rows: Math.max(0, r - r0) });
    }
    const totalMs = rows.reduce((n, r) => n + r.totalMs, 0);
    const statements = rows
      .sort((a, b) => b.totalMs - a.totalMs)
      .slice(0, limit)
      .map((r) => ({ ...r, query: texts.get(r.id) ?? null, meanMs: r.totalMs / r.calls, timeShare: totalMs > 0 ? r.totalMs / totalMs : 0 }));
    return {
      window: name,
      from: new Date(base.at).toISOString(),
      to: new Date(latest.at).toISOString(),
      coveredMs: latest.at - base.at,
      resetAt: reset,
      calls: rows.reduce((n, r) => n + r.calls, 0),
      totalMs,
      statements,
    };
  }

  /**
   * One statement's calls and mean latency between each checkpoint and the next (a minute apart over the
   * last hour, a quarter-hour before it), oldest first: its latency history for the drill-down.
   */
  history(id: string): StatementHistoryPoint[] {
    const points = [...this.checkpoints];
    if (this.latest && points.at(-1) !== this.latest) points.push(this.latest);
    const out: StatementHistoryPoint[] = [];
    for (let i = 1; i < points.length; i++) {
      const a = points[i - 1]!;
      const b = points[i]!;
      const now = b.counters.get(id);
      if (!now) continue;
      const reset = a.resetAt !== null && b.resetAt !== null && a.resetAt !== b.resetAt;
      const before = reset ? undefined : a.counters.get(id);
      const calls = now[0] - (before?.[0] ?? 0);
      const totalMs = now[1] - (before?.[1] ?? 0);
      if (calls <= 0 || totalMs < 0) continue;
      out.push({ from: new Date(a.at).toISOString(), to: new Date(b.at).toISOString(), calls, meanMs: totalMs / calls });
    }
    return out;
  }

  /** The newest checkpoint at least `ms` old, else the oldest there is (a window not yet fully covered). */
  private baseline(ms: number): Checkpoint | null {
    if (!this.latest) return null;
    const cutoff = this.latest.at - ms;
    let found: Checkpoint | null = null;
    for (const c of this.checkpoints) {
      if (c.at <= cutoff) found = c;
      else break;
    }
    return found ?? this.checkpoints[0] ?? null;
  }
}
