import { replacementName, type Change, type PartitionIndex, type TableRef } from '../diff/change.ts';
import { signatureKey, type IndexSignature } from '../catalog/catalog.ts';
import { specHash } from '../catalog/canonicalise.ts';
import type { DesiredIndex } from '../policy/desired.ts';
import { attachIndexSql, createIndexSql, dropIndexSql, renameIndexSql } from '../sql/ddl.ts';
import { partitionSteps } from './partition-steps.ts';
import { storageSteps, type SettingRegistryStep } from './storage-steps.ts';
import { isRoutingChange } from '../diff/routing-change.ts';
import { routingSteps, type ReplicaStep } from './routing-steps.ts';

/** The lock a statement takes, as PostgreSQL names it, and on what. */
export interface LockInfo {
  readonly mode: 'SHARE UPDATE EXCLUSIVE' | 'SHARE' | 'ACCESS EXCLUSIVE';
  readonly on: string;
  /** True when reads and writes go on while the statement runs. */
  readonly online: boolean;
}

/** One statement of a plan. A non-transactional step (CONCURRENTLY) always runs on its own. */
export interface SqlStep {
  readonly kind: 'sql';
  readonly sql: string;
  readonly transactional: boolean;
  readonly lock: LockInfo;
  /** A build: gets the long statement_timeout and progress reporting. */
  readonly build: boolean;
  /** The index this step creates: checked `indisvalid` afterwards, dropped if a failed build left it INVALID. */
  readonly creates?: { readonly schema: string; readonly name: string };
}

/** Bookkeeping in the `pgwarden` schema: which indexes pgwarden manages. */
export interface RegistryStep {
  readonly kind: 'registry';
  readonly action: 'record' | 'forget';
  readonly schema: string;
  readonly name: string;
  readonly table: string;
  readonly policyFile?: string;
  readonly specHash?: string;
  readonly signature?: string;
}

export type Step = SqlStep | RegistryStep | SettingRegistryStep | ReplicaStep;

const onTable = (schema: string, table: string): string => `${schema}.${table}`;

function buildSteps(index: DesiredIndex, name: string, table: TableRef, partitionIndexes: readonly PartitionIndex[]): Step[] {
  if (!table.partitioned) {
    return [
      {
        kind: 'sql',
        sql: createIndexSql(index, { schema: index.schema, table: index.table, name, concurrently: true }),
        transactional: false,
        lock: { mode: 'SHARE UPDATE EXCLUSIVE', on: onTable(index.schema, index.table), online: true },
        build: true,
        creates: { schema: index.schema, name },
      },
    ];
  }
  // PostgreSQL (<= 17) cannot build an index CONCURRENTLY on a partitioned table: create it ON ONLY the
  // parent (instant, INVALID), build each partition's index concurrently, attach them; the parent
  // index turns valid when the last partition is attached.
  const steps: Step[] = [
    {
      kind: 'sql',
      sql: createIndexSql(index, { schema: index.schema, table: index.table, name, only: true, ifNotExists: true }),
      transactional: true,
      lock: { mode: 'SHARE', on: onTable(index.schema, index.table), online: false },
      build: false,
    },
  ];
  for (const child of partitionIndexes) steps.push(...partitionIndexSteps(index, name, child));
  return steps;
}

/**
 * One partition's part: build its index (after dropping an INVALID one left under that name, which a
 * second CREATE INDEX would collide with), or take the VALID one standing there as it is; then attach.
 */
function partitionIndexSteps(index: DesiredIndex, parentName: string, child: PartitionIndex): Step[] {
  const { partition } = child;
  const steps: Step[] = [];
  if (child.existing === 'invalid') steps.push(dropStep(partition.schema, child.name, partition));
  if (child.existing !== 'valid') {
    steps.push({
      kind: 'sql',
      sql: createIndexSql(index, {
        schema: partition.schema,
        table: partition.name,
        name: child.name,
        concurrently: !partition.partitioned,
        ifNotExists: partition.partitioned,
      }),
      transactional: partition.partitioned,
      lock: partition.partitioned
        ? { mode: 'SHARE', on: onTable(partition.schema, partition.name), online: false }
        : { mode: 'SHARE UPDATE EXCLUSIVE', on: onTable(partition.schema, partition.name), online: true },
      build: !partition.partitioned,
      creates: { schema: partition.schema, name: child.name },
    });
  }
  steps.push({
    kind: 'sql',
    sql: attachIndexSql(index.schema, parentName, partition.schema, child.name),
    transactional: true,
    lock: { mode: 'SHARE UPDATE EXCLUSIVE', on: `${index.schema}.${parentName}`, online: true },
    build: false,
  });
  return steps;
}

function dropStep(schema: string, name: string, table: Pick<TableRef, 'schema' | 'name' | 'partitioned'>): SqlStep {
  // DROP INDEX CONCURRENTLY is refused on partitioned indexes (PostgreSQL <= 17): a short ACCESS EXCLUSIVE.
  const concurrently = !table.partitioned;
  return {
    kind: 'sql',
    sql: dropIndexSql(schema, name, { concurrently }),
    transactional: !concurrently,
    lock: concurrently
      ? { mode: 'SHARE UPDATE EXCLUSIVE', on: onTable(table.schema, table.name), online: true }
      : { mode: 'ACCESS EXCLUSIVE', on: onTable(table.schema, table.name), online: false },
    build: false,
  };
}

function renameStep(schema: string, from: string, to: string): SqlStep {
  return {
    kind: 'sql',
    sql: renameIndexSql(schema, from, to),
    transactional: true,
    lock: { mode: 'SHARE UPDATE EXCLUSIVE', on: `${schema}.${from}`, online: true },
    build: false,
  };
}

function record(change: { index: DesiredIndex; signature: IndexSignature }, name = change.index.name): RegistryStep {
  const { index } = change;
  return {
    kind: 'registry',
    action: 'record',
    schema: index.schema,
    name,
    table: index.table,
    policyFile: index.source.file,
    specHash: specHash(index),
    signature: signatureKey(change.signature),
  };
}

/** The statements that carry out one change, in order. */
export function stepsFor(change: Change): Step[] {
  if (isRoutingChange(change)) return routingSteps(change);
  const { table } = change;
  switch (change.kind) {
    case 'create-index':
      // Recorded before the build, so an interrupted build is known to be pgwarden's own.
      return [record(change), ...buildSteps(change.index, change.index.name, table, change.partitionIndexes)];
    case 'rebuild-index':
      // Resuming an interrupted partitioned build: only the partitions that lack their index, nothing dropped.
      if (change.resume) return [record(change), ...buildSteps(change.index, change.index.name, table, change.partitionIndexes)];
      return [record(change), dropStep(change.actual.schema, change.actual.name, table), ...buildSteps(change.index, change.index.name, table, change.partitionIndexes)];
    case 'replace-index': {
      const next = replacementName(change.index.name);
      return [
        record(change, next),
        ...buildSteps(change.index, next, table, change.partitionIndexes),
        dropStep(change.actual.schema, change.actual.name, table),
        renameStep(change.index.schema, next, change.index.name),
        { kind: 'registry', action: 'forget', schema: change.index.schema, name: next, table: table.name },
        record(change),
      ];
    }
    case 'rename-index':
      return [
        renameStep(change.actual.schema, change.actual.name, change.index.name),
        { kind: 'registry', action: 'forget', schema: change.actual.schema, name: change.actual.name, table: table.name },
        record(change),
      ];
    case 'adopt-index':
      return [record(change)];
    case 'drop-index':
      return [
        dropStep(change.actual.schema, change.actual.name, table),
        { kind: 'registry', action: 'forget', schema: change.actual.schema, name: change.actual.name, table: table.name },
      ];
    case 'create-partition':
    case 'detach-partition':
    case 'finalize-detach':
      return partitionSteps(change);
    case 'set-storage-parameters':
      return storageSteps(change);
  }
}
