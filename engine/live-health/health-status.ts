import type { FigureName, Figures } from './health-snapshot.ts';

export type Level = 'ok' | 'warn' | 'critical' | 'unknown';

/**
 * A figure's thresholds. `above`: higher is worse (latency, lag) and a value must exceed a bound to
 * breach it ("amber above 50%"); `below`: lower is worse (hit rates) and a value on the bound is still
 * fine ("green at 99% or more").
 */
export interface Threshold {
  readonly figure: FigureName;
  readonly label: string;
  readonly unit: 'ms' | 'ratio' | 'count' | 'bytes';
  readonly direction: 'above' | 'below';
  readonly warn: number;
  readonly critical: number;
  /** Why these numbers: shown in the page's legend and the docs. */
  readonly note: string;
}

/**
 * The status strip's rules. Cache and index hit and connections are the issue's; the others are ours,
 * chosen for an OLTP API database and documented in docs/site.md.
 */
export const THRESHOLDS: readonly Threshold[] = [
  { figure: 'latencyP95Ms', label: 'p95 latency (est.)', unit: 'ms', direction: 'above', warn: 100, critical: 500, note: 'statement p95 over the window; an API budget is usually a few hundred ms end to end' },
  { figure: 'cacheHitRatio', label: 'cache hit', unit: 'ratio', direction: 'below', warn: 0.99, critical: 0.98, note: 'green at 99% or more, amber to 98%, red below' },
  { figure: 'indexHitRatio', label: 'index hit', unit: 'ratio', direction: 'below', warn: 0.99, critical: 0.98, note: 'green at 99% or more, amber to 98%, red below' },
  { figure: 'replicaLagMs', label: 'replica lag', unit: 'ms', direction: 'above', warn: 250, critical: 1000, note: 'amber at the routing default max_lag_ms (250 ms): reads start falling back to the primary' },
  { figure: 'tableHealth', label: 'table health', unit: 'ratio', direction: 'below', warn: 0.95, critical: 0.8, note: 'the worst table; 0.95 is the default min_health floor' },
  { figure: 'connectionsShare', label: 'connections', unit: 'ratio', direction: 'above', warn: 0.5, critical: 0.75, note: 'amber above 50% of max_connections, red above 75%' },
  { figure: 'rollbackShare', label: 'rollbacks', unit: 'ratio', direction: 'above', warn: 0.05, critical: 0.2, note: 'share of transactions rolled back in the window' },
  { figure: 'longestTransactionMs', label: 'oldest transaction', unit: 'ms', direction: 'above', warn: 60_000, critical: 600_000, note: 'an open transaction holds back vacuum everywhere: amber after 1 min, red after 10' },
  { figure: 'idleInTransaction', label: 'idle in transaction', unit: 'count', direction: 'above', warn: 0, critical: 4, note: 'sessions idle inside an open transaction for over 5 s' },
  { figure: 'locksWaiting', label: 'lock waits', unit: 'count', direction: 'above', warn: 0, critical: 4, note: 'lock requests not granted at the moment of the poll' },
  { figure: 'deadlocks', label: 'deadlocks', unit: 'count', direction: 'above', warn: 0, critical: 2, note: 'deadlocks detected in the window' },
  { figure: 'xidAgeShare', label: 'XID age', unit: 'ratio', direction: 'above', warn: 0.1, critical: 0.5, note: 'share of the 2^31 wraparound horizon: amber near the default autovacuum_freeze_max_age (200M), red at half way' },
];

export function levelOf(threshold: Threshold, value: number | null): Level {
  if (value === null || !Number.isFinite(value)) return 'unknown';
  if (threshold.direction === 'above') {
    if (value > threshold.critical) return 'critical';
    if (value > threshold.warn) return 'warn';
    return 'ok';
  }
  if (value < threshold.critical) return 'critical';
  if (value < threshold.warn) return 'warn';
  return 'ok';
}

/** This poll's level of one figure; a standby that is down is the worst replica lag there is, not an unknown one. */
function rawLevel(t: Threshold, figures: Figures): Level {
  if (t.figure === 'replicaLagMs' && figures.standbysDown > 0) return 'critical';
  return levelOf(t, figures[t.figure]);
}

export interface FigureStatus {
  readonly figure: FigureName;
  /** The level shown: changes only after `POLLS_TO_CHANGE` polls in a row at a new level. */
  readonly level: Level;
  /** This poll's own level, before debouncing. */
  readonly raw: Level;
  readonly value: number | null;
  /** When `level` last changed (ISO 8601). */
  readonly since: string;
  /** Consecutive polls whose raw level differs from `level` (0..POLLS_TO_CHANGE-1). */
  readonly pending: number;
}

export type StatusBoard = Readonly<Partial<Record<FigureName, FigureStatus>>>;

/** Three polls (15 s at the default interval): a single spike does not turn the strip red, nor a single quiet poll green. */
export const POLLS_TO_CHANGE = 3;

/**
 * The next status board from the previous one and this poll's figures. Pure: the collector keeps the
 * board between polls. The first poll takes its levels as they are; afterwards a figure changes level
 * only after `pollsToChange` consecutive polls agree on a level other than the one shown.
 */
export function nextStatus(previous: StatusBoard | null, figures: Figures, at: string, pollsToChange = POLLS_TO_CHANGE): StatusBoard {
  const board: Partial<Record<FigureName, FigureStatus>> = {};
  for (const t of THRESHOLDS) {
    const value = figures[t.figure];
    const raw = rawLevel(t, figures);
    const before = previous?.[t.figure];
    if (!before) {
      board[t.figure] = { figure: t.figure, level: raw, raw, value, since: at, pending: 0 };
      continue;
    }
    if (raw === before.level) {
      board[t.figure] = { ...before, raw, value, pending: 0 };
      continue;
    }
    // Counting needs the same new level every time: warn, critical, warn is not three polls of critical.
    const pending = raw === before.raw ? before.pending + 1 : 1;
    board[t.figure] = pending >= pollsToChange ? { figure: t.figure, level: raw, raw, value, since: at, pending: 0 } : { ...before, raw, value, pending };
  }
  return board;
}

/** The worst level on the board (unknown counts as nothing). */
export function overallLevel(board: StatusBoard): Level {
  const levels = Object.values(board).map((s) => s?.level);
  if (levels.includes('critical')) return 'critical';
  if (levels.includes('warn')) return 'warn';
  return levels.includes('ok') ? 'ok' : 'unknown';
}
