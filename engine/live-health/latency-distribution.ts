/**
 * Statement latency percentiles from pg_stat_statements deltas. pg_stat_statements keeps no histogram,
 * only per-statement count, sum and (through stddev) sum of squares; over a window each statement gives
 * a mean and a standard deviation. Each statement's latency is modelled as a log-normal with those two
 * moments (latencies are positive and right-skewed), and the window's distribution as the call-weighted
 * mixture of them. The percentiles are therefore estimates, and the page says so ("est.").
 */

export interface StatementWindow {
  readonly calls: number;
  readonly meanMs: number;
  readonly stddevMs: number;
}

export interface LatencySummary {
  readonly meanMs: number | null;
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
  readonly buckets: readonly { readonly leMs: number | null; readonly share: number }[];
}

/** Bucket upper bounds in ms (the last bucket is everything above the last bound). */
export const LATENCY_BUCKETS_MS = [1, 5, 10, 50, 100, 500, 1000] as const;

interface Component {
  readonly weight: number;
  readonly mu: number;
  readonly sigma: number;
}

// Abramowitz–Stegun 7.1.26: absolute error below 1.5e-7, plenty for a percentile on a dashboard.
function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return sign * y;
}

function toComponent(s: StatementWindow, totalCalls: number): Component | null {
  if (!(s.calls > 0) || !(s.meanMs > 0)) return null;
  // Log-normal with mean m and variance v: sigma^2 = ln(1 + v/m^2), mu = ln m - sigma^2/2.
  const cv2 = Math.max(0, (s.stddevMs * s.stddevMs) / (s.meanMs * s.meanMs));
  const sigma2 = Math.log(1 + cv2);
  return { weight: s.calls / totalCalls, mu: Math.log(s.meanMs) - sigma2 / 2, sigma: Math.sqrt(sigma2) };
}

function cdf(components: readonly Component[], ms: number): number {
  if (ms <= 0) return 0;
  const lx = Math.log(ms);
  let p = 0;
  for (const c of components) {
    if (c.sigma < 1e-9) p += lx >= c.mu ? c.weight : 0;
    else p += c.weight * 0.5 * (1 + erf((lx - c.mu) / (c.sigma * Math.SQRT2)));
  }
  return p;
}

function quantile(components: readonly Component[], q: number): number {
  // Bisection in log space between bounds that surely bracket every component's quantile.
  let lo = Math.min(...components.map((c) => c.mu - 6 * c.sigma - 1));
  let hi = Math.max(...components.map((c) => c.mu + 6 * c.sigma + 1));
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (cdf(components, Math.exp(mid)) < q) lo = mid;
    else hi = mid;
  }
  return Math.exp((lo + hi) / 2);
}

export function summariseLatency(statements: readonly StatementWindow[]): LatencySummary {
  const totalCalls = statements.reduce((n, s) => n + (s.calls > 0 ? s.calls : 0), 0);
  if (totalCalls <= 0) return { meanMs: null, p50Ms: null, p95Ms: null, p99Ms: null, buckets: [] };
  const totalMs = statements.reduce((n, s) => n + (s.calls > 0 ? s.calls * s.meanMs : 0), 0);
  // Thousands of statements cost little each, but the tail of rarely-called ones moves no percentile:
  // keep the 300 with most calls and fold the rest into one component with their pooled moments.
  const sorted = [...statements].filter((s) => s.calls > 0).sort((a, b) => b.calls - a.calls);
  const head = sorted.slice(0, 300);
  const tail = sorted.slice(300);
  if (tail.length > 0) {
    const calls = tail.reduce((n, s) => n + s.calls, 0);
    const mean = tail.reduce((n, s) => n + s.calls * s.meanMs, 0) / calls;
    const sumSq = tail.reduce((n, s) => n + s.calls * (s.stddevMs * s.stddevMs + s.meanMs * s.meanMs), 0);
    head.push({ calls, meanMs: mean, stddevMs: Math.sqrt(Math.max(0, sumSq / calls - mean * mean)) });
  }
  const components = head.map((s) => toComponent(s, totalCalls)).filter((c): c is Component => c !== null);
  if (components.length === 0) return { meanMs: totalMs / totalCalls, p50Ms: null, p95Ms: null, p99Ms: null, buckets: [] };
  let below = 0;
  const buckets: { leMs: number | null; share: number }[] = [];
  for (const le of LATENCY_BUCKETS_MS) {
    const p = Math.min(1, cdf(components, le));
    buckets.push({ leMs: le, share: Math.max(0, p - below) });
    below = Math.max(below, p);
  }
  buckets.push({ leMs: null, share: Math.max(0, 1 - below) });
  return {
    meanMs: totalMs / totalCalls,
    p50Ms: quantile(components, 0.5),
    p95Ms: quantile(components, 0.95),
    p99Ms: quantile(components, 0.99),
    buckets,
  };
}

/** One statement's p95 under the same model. */
export function statementP95(s: StatementWindow): number | null {
  const c = toComponent(s, s.calls);
  return c ? quantile([c], 0.95) : null;
}
