import { describe, expect, it } from 'vitest';
import { defaultRowsRanges } from '../../engine/catalog/actual-probes.ts';
import type { ActualPartition, PartitionedTableInfo } from '../../engine/catalog/partition-queries.ts';
import { partitionAddress } from '../../engine/diff/partition-change.ts';
import { defaultRowProbes, diffPartitions } from '../../engine/diff/partition-diff.ts';
import { partitionName } from '../../engine/diff/partition-interval.ts';
import type { DesiredState } from '../../engine/policy/desired.ts';
import type { DesiredPartitioning } from '../../engine/policy/partitioning-policy.ts';

// readActual decides which default-partition ranges to count from the desired state, before any diff:
// it must count every range the partition diff will ask about, and nothing on tables without a default.

const at = { file: 'policies/events.yaml', line: 1, col: 1 };
const now = new Date('2026-11-25T10:00:00Z');

function desired(partitioning: Partial<DesiredPartitioning> = {}): DesiredState {
  const policy: DesiredPartitioning = { by: 'range', column: 'created_at', interval: 'month', premake: 3, defaultPartition: true, naming: '{table}_{YYYY}_{MM}', source: at, columnSource: at, ...partitioning };
  return { files: ['events.yaml'], tables: [{ schema: 'app', name: 'events', managed: 'partial', indexes: [], source: at, partitioning: policy }] };
}

function partition(name: string, from: string | null, to: string | null, extra: Partial<ActualPartition> = {}): ActualPartition {
  return { oid: 1, schema: 'app', name, isDefault: false, from, to, boundText: `FOR VALUES FROM ('${from}') TO ('${to}')`, detachPending: false, partitioned: false, rowEstimate: 100, totalBytes: 8192, ...extra };
}

function table(partitions: ActualPartition[]): PartitionedTableInfo {
  return {
    schema: 'app', name: 'events', oid: 1, partitioned: true, strategy: 'r', keyColumns: ['created_at'],
    columnTypes: { id: 'bigint', created_at: 'timestamp with time zone' }, insertableColumns: ['id', 'created_at'],
    rowEstimate: 0, bytes: 0, partitions, referencingKeys: [], defaultDeleteTriggers: [],
  };
}

const DEFAULT = partition('events_default', null, null, { isDefault: true, boundText: 'DEFAULT' });
const month = (y: number, m: number): string => new Date(Date.UTC(y, m - 1, 1)).toISOString().replace('.000Z', '.000000Z');

describe('the default-partition ranges readActual counts', () => {
  it('are every range the partition diff probes, keyed as it looks them up', () => {
    const cases: [DesiredState, PartitionedTableInfo][] = [
      [desired(), table([DEFAULT])],
      [desired(), table([partition('events_2026_06', month(2026, 6), month(2026, 7)), partition('events_2026_11', month(2026, 11), month(2026, 12)), DEFAULT])],
      [desired({ retention: { keep: 2, then: 'detach', source: at } }), table([partition('events_2026_01', month(2026, 1), month(2026, 2)), DEFAULT])],
      [desired({ interval: 'day', premake: 5, naming: '{table}_{YYYY}{MM}{DD}' }), table([DEFAULT])],
    ];
    for (const [state, info] of cases) {
      const probed = defaultRowProbes(diffPartitions({ desired: state, tables: [info], now }));
      const policy = state.tables[0]!.partitioning!;
      const counted = new Map(defaultRowsRanges(state, [info], now).map((r) => [partitionAddress(r.schema, r.table, partitionName(policy.naming, r.table, r.start)), r.probe]));
      expect(probed.length).toBeGreaterThan(0);
      for (const p of probed) expect(counted.get(p.address)).toEqual(p.probe);
    }
  });

  it('are none on a table without a default partition, or whose key the policy cannot use', () => {
    expect(defaultRowsRanges(desired(), [table([])], now)).toEqual([]);
    expect(defaultRowsRanges(desired({ column: 'id' }), [table([DEFAULT])], now)).toEqual([]);
    expect(defaultRowsRanges(desired(), [table([{ ...DEFAULT, detachPending: true }])], now)).toEqual([]);
  });
});
