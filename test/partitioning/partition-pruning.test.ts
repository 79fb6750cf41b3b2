import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { formatPartitionPruning, partitionPruning } from '../../engine/analysis/partition-pruning.ts';

// Captured from the suite's PostgreSQL 16: `events` by month over 2026 (12 partitions) plus a default partition.
const PARTITIONS = [...Array.from({ length: 12 }, (_, m) => ({ name: `events_2026_${String(m + 1).padStart(2, '0')}` })), { name: 'events_default' }];

async function fixture(name: string): Promise<unknown> {
  return JSON.parse(await readFile(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8'));
}

describe('counting pruned partitions in EXPLAIN (FORMAT JSON) output', () => {
  it('counts partitions the planner pruned for a one-month range of constants', async () => {
    const pruning = partitionPruning(await fixture('plan-time'), PARTITIONS);
    expect(pruning).toMatchObject({ total: 13, scanned: 1, scannedPartitions: ['events_2026_11'], prunedAtPlanTime: 12, prunedAtStartup: 0, prunedAtRunTime: 0, analyzed: true });
    expect(formatPartitionPruning(pruning)).toBe('1 of 13 partitions scanned, 92% pruned (12 at plan time)');
  });

  it('counts "Subplans Removed" of a generic plan pruned at executor startup', async () => {
    const pruning = partitionPruning(await fixture('startup'), PARTITIONS);
    expect(pruning).toMatchObject({ total: 13, scanned: 2, scannedPartitions: ['events_2026_06', 'events_2026_07'], prunedAtPlanTime: 0, prunedAtStartup: 11 });
    expect(formatPartitionPruning(pruning)).toBe('2 of 13 partitions scanned, 84% pruned (11 at executor startup)');
  });

  it('counts partitions a join pruned during execution: in the plan, never executed', async () => {
    const pruning = partitionPruning(await fixture('run-time'), PARTITIONS);
    expect(pruning).toMatchObject({ total: 13, scanned: 2, scannedPartitions: ['events_2026_03', 'events_2026_04'], prunedAtRunTime: 11, prunedAtPlanTime: 0 });
    expect(formatPartitionPruning(pruning)).toBe('2 of 13 partitions scanned, 84% pruned (11 during execution)');
  });

  it('reports no pruning for a scan of the whole table, and says "in the plan" without ANALYZE', async () => {
    const pruning = partitionPruning(await fixture('no-pruning'), PARTITIONS);
    expect(pruning).toMatchObject({ total: 13, scanned: 13, prunedPercent: 0, analyzed: false });
    expect(formatPartitionPruning(pruning)).toBe('13 of 13 partitions in the plan, 0% pruned');
  });

  it('ignores scans of other tables and survives input that is not a plan', () => {
    expect(partitionPruning({ 'Node Type': 'Seq Scan', 'Relation Name': 'months' }, PARTITIONS)).toMatchObject({ scanned: 0, prunedPercent: 100 });
    expect(partitionPruning('not a plan', PARTITIONS)).toMatchObject({ scanned: 0, total: 13 });
  });
});
