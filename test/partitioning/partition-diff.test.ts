import { describe, expect, it } from 'vitest';
import type { ActualPartition, PartitionedTableInfo } from '../../engine/catalog/partition-queries.ts';
import { defaultRowProbes, diffPartitions } from '../../engine/diff/partition-diff.ts';
import type { DesiredState } from '../../engine/policy/desired.ts';

const at = { file: 'policies/events.yaml', line: 1, col: 1 };

function desired(partitioning: Partial<NonNullable<DesiredState['tables'][number]['partitioning']>> = {}): DesiredState {
  return {
    files: ['events.yaml'],
    tables: [
      {
        schema: 'app',
        name: 'events',
        managed: 'partial',
        indexes: [],
        source: at,
        partitioning: { by: 'range', column: 'created_at', interval: 'month', premake: 1, defaultPartition: true, naming: '{table}_{YYYY}_{MM}', source: at, columnSource: at, ...partitioning },
      },
    ],
  };
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

const NOV = partition('events_2026_11', '2026-11-01T00:00:00.000000Z', '2026-12-01T00:00:00.000000Z');
const DEFAULT = partition('events_default', null, null, { isDefault: true, boundText: 'DEFAULT' });
const now = new Date('2026-11-25T10:00:00Z');

describe('the partition diff, without a database', () => {
  it('asks for the default partition\'s rows of each range it is about to create, and moves them when there are some', () => {
    const input = { desired: desired(), tables: [table([NOV, DEFAULT])], now };
    const first = diffPartitions(input);
    const probes = defaultRowProbes(first);
    expect(probes).toEqual([
      { address: 'partition:app.events.events_2026_12', probe: { schema: 'app', table: 'events_default', column: 'created_at', type: 'timestamptz', from: '2026-12-01 00:00:00+00', to: '2027-01-01 00:00:00+00' } },
    ]);
    const second = diffPartitions({ ...input, defaultRows: new Map([['partition:app.events.events_2026_12', 42]]) });
    const [create] = second.after;
    expect(create?.kind === 'create-partition' && create.move).toEqual({ defaultPartition: { schema: 'app', name: 'events_default' }, rows: 42, columns: ['id', 'created_at'] });
    expect(create?.reason).toContain('42 rows of this range sit in events_default');
  });

  it('finishes a pending detach before anything else, and drops it only when retention says drop', () => {
    const old = partition('events_2025_01', '2025-01-01T00:00:00.000000Z', '2025-02-01T00:00:00.000000Z', { detachPending: true });
    const keep = diffPartitions({ desired: desired({ retention: { keep: 12, then: 'detach', source: at } }), tables: [table([old, NOV, DEFAULT])], now });
    expect(keep.before.map((c) => [c.kind, c.kind === 'finalize-detach' && c.drop])).toEqual([['finalize-detach', false]]);
    const drop = diffPartitions({ desired: desired({ retention: { keep: 12, then: 'drop', source: at } }), tables: [table([old, NOV, DEFAULT])], now });
    expect(drop.before.map((c) => [c.kind, c.kind === 'finalize-detach' && c.destructive])).toEqual([['finalize-detach', true]]);
  });

  it('gives the same plan for the last second of a month in UTC whatever the local zone would say', () => {
    // 23:30 UTC on 30 November is already 1 December in Berlin: still November here.
    const diff = diffPartitions({ desired: desired(), tables: [table([NOV, DEFAULT])], now: new Date('2026-11-30T23:30:00Z') });
    expect(diff.after.map((c) => c.partition.name)).toEqual(['events_2026_12']);
  });

  it('treats a MINVALUE partition as covering everything before its upper bound', () => {
    const legacy = partition('events_legacy', 'MINVALUE', '2026-11-01T00:00:00.000000Z', { boundText: "FOR VALUES FROM (MINVALUE) TO ('2026-11-01 00:00:00+00')" });
    const diff = diffPartitions({ desired: desired({ defaultPartition: false }), tables: [table([legacy])], now });
    expect(diff.after.map((c) => c.partition.name)).toEqual(['events_2026_11', 'events_2026_12']);
    expect(diff.warnings.map((w) => w.message)).toEqual([
      "partition events_legacy covers FROM (MINVALUE) TO ('2026-11-01 00:00:00+00'), which is not one month aligned to UTC; pgwarden leaves it alone and creates no partition overlapping it",
    ]);
  });
});
