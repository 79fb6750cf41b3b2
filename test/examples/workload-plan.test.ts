import { describe, expect, it } from 'vitest';
import { buildDeck, drawOperation } from '../../engine/example/workload.ts';
import type { WorkloadContext } from '../../engine/example/workload-context.ts';
import { WORKLOAD_QUERIES } from '../../engine/example/workload-queries.ts';
import { formatWorkloadReport, percentile, type WorkloadReport } from '../../engine/example/workload-report.ts';

const TENANTS = Array.from({ length: 50 }, (_, i) => String(i + 1));
const CONTEXT: WorkloadContext = {
  tenantIds: TENANTS,
  serversByTenant: new Map(TENANTS.map((tenant) => [tenant, [`${tenant}01`, `${tenant}02`, `${tenant}03`]])),
  serverIds: TENANTS.map((tenant) => `${tenant}01`),
  deploymentIds: ['1', '2', '3'],
  historyEnd: new Date('2025-06-01T12:00:00Z'),
};

function firstOperations(seed: number, count: number): { name: string; values: readonly unknown[] }[] {
  const deck = buildDeck(WORKLOAD_QUERIES, seed);
  return Array.from({ length: count }, (_, ticket) => {
    const { query, values } = drawOperation(deck, CONTEXT, seed, ticket);
    return { name: query.name, values };
  });
}

describe('the workload plan', () => {
  it('draws the same queries and parameters for the same seed', () => {
    expect(firstOperations(5, 200)).toEqual(firstOperations(5, 200));
    expect(firstOperations(5, 200)).not.toEqual(firstOperations(6, 200));
  });

  it('runs every query once per deck, in proportion to its weight', () => {
    const deck = buildDeck(WORKLOAD_QUERIES, 1);
    const total = WORKLOAD_QUERIES.reduce((sum, query) => sum + query.weight, 0);
    expect(deck).toHaveLength(total);
    for (const query of WORKLOAD_QUERIES) {
      expect(deck.filter((card) => card === query)).toHaveLength(query.weight);
    }
  });

  it('asks about the largest tenants as often as the data skew says', () => {
    const recent = firstOperations(9, 20_000).filter((operation) => operation.name === 'tenant_recent_events');
    const topTenth = recent.filter((operation) => Number(operation.values[0]) <= 5).length;
    // The data gives the top 10% of tenants 0.1 ** (1 / 4) ≈ 56% of the events.
    expect(topTenth / recent.length).toBeGreaterThan(0.5);
    expect(topTenth / recent.length).toBeLessThan(0.62);
  });
});

describe('the workload report', () => {
  it('takes nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile([], 50)).toBeNull();
  });

  it('formats an aligned table with one line per query and a total', () => {
    const report: WorkloadReport = {
      seed: 1,
      ratePerSecond: 50,
      concurrency: 4,
      writes: true,
      durationMs: 10_000,
      achievedRatePerSecond: 49.9,
      count: 1_001,
      errors: 1,
      queries: [
        { name: 'tenant_recent_events', access: 'read', count: 1_000, errors: 0, p50Ms: 1.5, p95Ms: 12.25, p99Ms: 300, maxMs: 1_250.5 },
        { name: 'insert_event', access: 'write', count: 1, errors: 1, p50Ms: 2, p95Ms: 2, p99Ms: 2, maxMs: 2, firstError: 'boom' },
      ],
    };
    const lines = formatWorkloadReport(report).split('\n');
    const [header, first, second, total] = lines;
    expect(header).toMatch(/^query\s+access\s+count\s+errors\s+p50 ms\s+p95 ms\s+p99 ms\s+max ms$/);
    expect(first).toMatch(/^tenant_recent_events\s+read\s+1000\s+0\s+1\.50\s+12\.25\s+300\.00\s+1250\.50$/);
    expect(second).toMatch(/^insert_event\s+write\s+1\s+1\s+2\.00/);
    expect(total).toMatch(/^total\s+1001\s+1$/);
    // Numbers are right-aligned: each numeric column ends where its header ends.
    const maxEnd = header?.length ?? 0;
    expect(first?.length).toBe(maxEnd);
    expect(second?.length).toBe(maxEnd);
    expect(lines).toContain('  insert_event: boom');
  });
});
