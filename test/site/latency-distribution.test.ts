import { describe, expect, it } from 'vitest';
import { statementP95, summariseLatency } from '../../engine/live-health/latency-distribution.ts';

describe('statement latency percentiles from pg_stat_statements deltas', () => {
  it('gives the mean as every percentile when every call took the same time', () => {
    const s = summariseLatency([{ calls: 100, meanMs: 4, stddevMs: 0 }]);
    expect(s.meanMs).toBeCloseTo(4, 6);
    expect(s.p50Ms).toBeCloseTo(4, 3);
    expect(s.p99Ms).toBeCloseTo(4, 3);
  });

  it('puts the median on the fast statement and the p99 on the slow one when 2% of calls are slow', () => {
    const s = summariseLatency([
      { calls: 980, meanMs: 1, stddevMs: 0.2 },
      { calls: 20, meanMs: 800, stddevMs: 50 },
    ]);
    expect(s.p50Ms).toBeGreaterThan(0.7);
    expect(s.p50Ms).toBeLessThan(1.3);
    expect(s.p99Ms).toBeGreaterThan(600);
    expect(s.p99Ms).toBeLessThan(1000);
    expect(s.meanMs).toBeCloseTo((980 * 1 + 20 * 800) / 1000, 6);
  });

  it('splits the calls into latency buckets that add up to one', () => {
    const s = summariseLatency([
      { calls: 50, meanMs: 0.5, stddevMs: 0.1 },
      { calls: 50, meanMs: 200, stddevMs: 20 },
    ]);
    const total = s.buckets.reduce((n, b) => n + b.share, 0);
    expect(total).toBeCloseTo(1, 6);
    expect(s.buckets.find((b) => b.leMs === 1)?.share).toBeGreaterThan(0.45);
    expect(s.buckets.find((b) => b.leMs === 500)?.share).toBeGreaterThan(0.45);
  });

  it('reports no percentiles for a window without calls', () => {
    const s = summariseLatency([{ calls: 0, meanMs: 0, stddevMs: 0 }]);
    expect(s).toEqual({ meanMs: null, p50Ms: null, p95Ms: null, p99Ms: null, buckets: [] });
  });

  it('folds thousands of rarely-called statements in without losing their calls', () => {
    const many = Array.from({ length: 2000 }, (_, i) => ({ calls: 1, meanMs: 100 + (i % 7), stddevMs: 1 }));
    const s = summariseLatency([{ calls: 2000, meanMs: 1, stddevMs: 0.1 }, ...many]);
    expect(s.p50Ms).toBeGreaterThan(0.5);
    expect(s.p95Ms).toBeGreaterThan(90);
  });

  it('estimates a single statement p95 above its mean when it varies', () => {
    expect(statementP95({ calls: 10, meanMs: 10, stddevMs: 5 })).toBeGreaterThan(15);
  });
});
