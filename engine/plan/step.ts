import { replacementName, type Change, type PartitionIndex, type PartitionRef, type TableRef } from '../diff/change.ts';
import { signatureKey, type IndexSignature } from '../catalog/catalog.ts';
import { specHash } from '../catalog/canonicalise.ts';
import type { DesiredIndex } from '../policy/desired.ts';
import { alterIndexParametersSql, attachIndexSql, createIndexSql, dropIndexSql, renameIndexSql } from '../sql/ddl.ts';
import { partitionSteps } from './partition-steps.ts';
import { storageSteps, type SettingRegistryStep } from './storage-steps.ts';
import { isRoutingChange } from '../diff/routing-change.ts';
import { routingSteps, type ReplicaStep } from './routing-steps.ts';
import { convertSteps, type ConvertStep } from './convert-steps.ts';

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

export type Step = SqlStep | RegistryStep | SettingRegistryStep | ReplicaStep | ConvertStep;

const onTable = (schema: string, table: string): string => `${schema}.${table}`;

/** A partitioned index's parent, as ATTACH PARTITION names it. */
interface ParentIndex {
  readonly schema: string;
  readonly name: string;
}

function buildSteps(index: DesiredIndex, name: string, table: TableRef, partitionIndexes: readonly PartitionIndex[]): Step[] {
  if (!table.partitioned) return [concurrentBuildStep(index, { schema: index.schema, name: index.table }, name)];
  // PostgreSQL (<= 17) cannot build an index CONCURRENTLY on a partitioned table: create it ON ONLY the
  // parent (instant, INVALID), build each partition's index concurrently, attach them; the parent
  // index turns valid when the last partition is attached.
  const steps: Step[] = [onOnlyStep(index, { schema: index.schema, name: index.table }, name)];
  for (const child of partitionIndexes) steps.push(...partitionIndexSteps(index, { schema: index.schema, name }, child));
  return steps;
}

/**
 * `CREATE INDEX ... ON ONLY`: the partitioned table alone, INVALID until its partitions' indexes are
 * attached. A SHARE lock on that one table (writes routed through it wait), for a catalog-only moment;
 * its partitions are not locked. A plain CREATE INDEX there would hold SHARE on every partition below
 * for the whole build.
 */
function onOnlyStep(index: DesiredIndex, table: { schema: string; name: string }, name: string): SqlStep {
  return {
    kind: 'sql',
    sql: createIndexSql(index, { schema: table.schema, table: table.name, name, only: true, ifNotExists: true }),
    transactional: true,
    lock: { mode: 'SHARE', on: onTable(table.schema, table.name), online: false },
    build: false,
  };
}

function concurrentBuildStep(index: DesiredIndex, table: { schema: string; name: string }, name: string): SqlStep {
  return {
    kind: 'sql',
    sql: createIndexSql(index, { schema: table.schema, table: table.name, name, concurrently: true }),
    transactional: false,
    lock: { mode: 'SHARE UPDATE EXCLUSIVE', on: onTable(table.schema, table.name), online: true },
    build: true,
    creates: { schema: table.schema, name },
  };
}

/**
 * One partition's part: build its index (after dropping an INVALID one left under that name, which a
 * second CREATE INDEX would collide with), or take the one standing there as it is; then attach. A
 * sub-partitioned partition's index is made ON ONLY and its own partitions' parts come first, so it is
 * VALID by the time it is attached and every level turns valid bottom-up.
 */
function partitionIndexSteps(index: DesiredIndex, parent: ParentIndex, child: PartitionIndex): Step[] {
  const { partition } = child;
  const steps: Step[] = [];
  if (child.existing === 'invalid') steps.push(dropStep(partition.schema, child.name, partition));
  if (child.existing === 'none' || child.existing === 'invalid') {
    const table = { schema: partition.schema, name: partition.name };
    steps.push(partition.partitioned ? onOnlyStep(index, table, child.name) : concurrentBuildStep(index, table, child.name));
  }
  // An index lives in its table's schema: the sub-partitioned partition's index is the parent of the next level.
  for (const grandchild of child.partitionIndexes) steps.push(...partitionIndexSteps(index, { schema: partition.schema, name: child.name }, grandchild));
  if (!child.attached) steps.push(attachStep(parent, partition, child.name));
  return steps;
}

/**
 * ATTACH PARTITION is catalog-only, but PostgreSQL (14-17) takes ACCESS EXCLUSIVE on the index being
 * attached (SHARE UPDATE EXCLUSIVE on the parent index, ACCESS SHARE on both tables): reads and writes
 * of that one partition wait for that moment, or for lock_timeout while it queues.
 */
function attachStep(parent: ParentIndex, partition: PartitionRef, name: string): SqlStep {
  return {
    kind: 'sql',
    sql: attachIndexSql(parent.schema, parent.name, partition.schema, name),
    transactional: true,
    lock: { mode: 'ACCESS EXCLUSIVE', on: `index ${partition.schema}.${name} of ${onTable(partition.schema, partition.name)}`, online: false },
    build: false,
  };
}

function dropStep(schema: string, name: string, table: Pick<TableRef, 'schema' | 'name' | 'partitioned'>): SqlStep {
  // DROP INDEX CONCURRENTLY is refused on partitioned indexes (PostgreSQL <= 17): a short ACCESS EXCLUSIVE,
  // taken on the table and on every partition under it, at every level (the attached indexes go too).
  const concurrently = !table.partitioned;
  return {
    kind: 'sql',
    sql: dropIndexSql(schema, name, { concurrently }),
    transactional: !concurrently,
    lock: concurrently
      ? { mode: 'SHARE UPDATE EXCLUSIVE', on: onTable(table.schema, table.name), online: true }
      : { mode: 'ACCESS EXCLUSIVE', on: `${onTable(table.schema, table.name)} and every partition under it`, online: false },
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
    case 'set-index-parameters':
      return [
        {
          kind: 'sql',
          sql: alterIndexParametersSql(change.index.schema, change.index.name, change.set, change.reset),
          transactional: true,
          // On the index alone, for a catalog-only moment: ACCESS EXCLUSIVE there pauses the queries that would use it.
          lock: {
            mode: change.lock,
            on:
              change.lock === 'ACCESS EXCLUSIVE'
                ? `index ${change.index.schema}.${change.index.name} (every query on ${change.table.schema}.${change.table.name} opens it: reads and writes pause for that moment)`
                : `index ${change.index.schema}.${change.index.name}`,
            online: change.lock !== 'ACCESS EXCLUSIVE',
          },
          build: false,
        },
      ];
    case 'convert-table':
    case 'drop-unpartitioned':
      return convertSteps(change);
  }
}
