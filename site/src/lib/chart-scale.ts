/**
 * The pure parts of the live page's charts, tested without a browser: the y scale's upper bound and the
 * spans a chart marks (a standby down).
 */

export interface YScale {
  /** The top of the y axis. */
  readonly hi: number;
  /** The highest value when it is drawn off the scale (a short spike), else null. */
  readonly clipped: number | null;
}

/**
 * The top of a chart's scale. A spike of a few seconds (a client pool restarting: 560 tx/s against 50)
 * must not flatten fifteen minutes of the chart: when the highest value is over three times the 90th
 * percentile of the window, the scale follows the percentile and the spike is drawn off it, its value
 * said in the legend.
 */
export function yScale(values: readonly (number | null)[], floor = 0): YScale {
  const known = values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  const max = known.at(-1) ?? 0;
  const bound = (v: number): number => Math.max(v, floor, 1e-9) * 1.15;
  if (known.length < 10) return { hi: bound(max), clipped: null };
  const p90 = known[Math.floor((known.length - 1) * 0.9)] ?? max;
  if (!(p90 > 0 && max > 3 * p90)) return { hi: bound(max), clipped: null };
  // The floor (a threshold line) may hold the scale above the spike anyway: then nothing is off it.
  const hi = bound(p90 * 1.5);
  return max > hi ? { hi, clipped: max } : { hi: bound(max), clipped: null };
}

export interface Span {
  /** Epoch ms. */
  readonly from: number;
  readonly to: number;
}

/**
 * The spans where `flag` holds, from the first flagged point to the first one after it (or the last
 * point): each poll's figure covers the window before it.
 */
export function flaggedSpans<P extends { readonly t: number }>(points: readonly P[], flag: (p: P) => boolean): Span[] {
  const spans: Span[] = [];
  let from: number | null = null;
  let previous: number | null = null;
  for (const p of points) {
    if (flag(p)) {
      from ??= previous ?? p.t;
    } else if (from !== null) {
      spans.push({ from, to: p.t });
      from = null;
    }
    previous = p.t;
  }
  if (from !== null && previous !== null) spans.push({ from, to: previous });
  return spans;
}
