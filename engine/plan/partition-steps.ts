import type { CreatePartition, DetachPartition, FinalizeDetach, PartitionChange, RelationName } from '../diff/partition-change.ts';
import type { TimeKeyType } from '../catalog/partition-queries.ts';
import { storageParameterListSql } from '../sql/ddl.ts';
import { ident, literal, qualified } from '../sql/ident.ts';
import type { SqlStep } from './step.ts';

/**
 * The statements of partition changes. Locking, as PostgreSQL 14-17 takes it:
 *
 * - A new partition is created beside the table (`CREATE TABLE ... (LIKE parent ...)`) and attached:
 *   ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the parent, so reads and writes go on, where
 *   `CREATE TABLE ... PARTITION OF` would take ACCESS EXCLUSIVE on it. ATTACH builds the parent's
 *   partitioned indexes on the new table (empty: instant) and clones its foreign keys and triggers.
 *   With a default partition, ATTACH also locks that one ACCESS EXCLUSIVE and scans it.
 * - Statements of one step are sent as one simple-protocol message, which PostgreSQL runs as one
 *   implicit transaction: all of it or none of it, and no half-made partition is ever left behind.
 * - Locks are taken parent first, then partitions (explicit `LOCK TABLE ONLY` where a step touches
 *   both), the order PostgreSQL's own DETACH and ATTACH use, so pgwarden cannot deadlock with them.
 *   A partition is never dropped while attached (DROP TABLE locks the partition, then the parent: the
 *   reverse order, which is where pg_partman users met deadlocks): it is detached first.
 */

const CAST: Readonly<Record<TimeKeyType, string>> = { date: 'date', timestamp: 'timestamp', timestamptz: 'timestamptz' };

function typed(value: string, type: TimeKeyType): string {
  return `${literal(value)}::${CAST[type]}`;
}

function relation(r: RelationName): string {
  return qualified(r.schema, r.name);
}

function createLikeSql(change: CreatePartition): string {
  // LIKE copies columns, NOT NULL, defaults, CHECK constraints, storage, compression (PostgreSQL 14+),
  // generated columns and comments; not identity (the parent's sequence stays the one used). ATTACH
  // requires every CHECK of the parent and merges the copies into them: afterwards they are inherited
  // only (conislocal false, coninhcount 1), exactly as on a partition made with PARTITION OF.
  const like = `CREATE TABLE ${relation(change.partition)} (LIKE ${relation(change.parent)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING GENERATED INCLUDING COMMENTS)`;
  const params = Object.entries(change.storageParameters);
  return params.length === 0 ? like : `${like} WITH (${storageParameterListSql(change.storageParameters)})`;
}

/** A constraint name for the bound CHECK, within 63 bytes. */
function boundConstraintName(partition: string): string {
  const suffix = '_pgwarden_bound';
  let base = partition;
  while (Buffer.byteLength(base + suffix, 'utf8') > 63) base = [...base].slice(0, -1).join('');
  return base + suffix;
}

export function createPartitionStep(change: CreatePartition): SqlStep {
  const { bound, parent, partition } = change;
  if (bound.kind === 'default') {
    return {
      kind: 'sql',
      sql: [createLikeSql(change), `ALTER TABLE ${relation(parent)} ATTACH PARTITION ${relation(partition)} DEFAULT`].join(';\n'),
      transactional: true,
      lock: { mode: 'SHARE UPDATE EXCLUSIVE', on: `${parent.schema}.${parent.name}`, online: true },
      build: false,
    };
  }
  const column = ident(bound.keyColumn);
  const from = typed(bound.from, bound.keyType);
  const to = typed(bound.to, bound.keyType);
  const range = `${column} >= ${from} AND ${column} < ${to}`;
  const attach = `ALTER TABLE ${relation(parent)} ATTACH PARTITION ${relation(partition)} FOR VALUES FROM (${literal(bound.from)}) TO (${literal(bound.to)})`;
  const defaultLock = change.defaultPartition
    ? { mode: 'ACCESS EXCLUSIVE' as const, on: `${change.defaultPartition.schema}.${change.defaultPartition.name} (the default partition, scanned by ATTACH)`, online: false }
    : { mode: 'SHARE UPDATE EXCLUSIVE' as const, on: `${parent.schema}.${parent.name}`, online: true };
  if (change.move === null) {
    return { kind: 'sql', sql: [createLikeSql(change), attach].join(';\n'), transactional: true, lock: defaultLock, build: false };
  }
  const { move } = change;
  const columns = move.columns.map(ident).join(', ');
  const check = boundConstraintName(partition.name);
  return {
    kind: 'sql',
    sql: [
      // Parent first, in the mode ATTACH takes anyway; then the default partition in the mode ATTACH
      // takes on it, before reading it, so no lock is ever upgraded mid-transaction.
      `LOCK TABLE ONLY ${relation(parent)} IN SHARE UPDATE EXCLUSIVE MODE`,
      `LOCK TABLE ONLY ${relation(move.defaultPartition)} IN ACCESS EXCLUSIVE MODE`,
      createLikeSql(change),
      `INSERT INTO ${relation(partition)} (${columns}) SELECT ${columns} FROM ONLY ${relation(move.defaultPartition)} WHERE ${range}`,
      `DELETE FROM ONLY ${relation(move.defaultPartition)} WHERE ${range}`,
      // A CHECK that implies the partition constraint lets ATTACH skip its scan of the rows just copied.
      `ALTER TABLE ${relation(partition)} ADD CONSTRAINT ${ident(check)} CHECK (${column} IS NOT NULL AND ${range})`,
      attach,
      `ALTER TABLE ${relation(partition)} DROP CONSTRAINT ${ident(check)}`,
    ].join(';\n'),
    transactional: true,
    lock: { mode: 'ACCESS EXCLUSIVE', on: `${move.defaultPartition.schema}.${move.defaultPartition.name} (the default partition, while ${move.rows} row(s) move)`, online: false },
    // Copying rows out of the default partition may take a while: no short statement_timeout.
    build: true,
  };
}

function dropSql(partition: RelationName): string {
  return `DROP TABLE ${relation(partition)}`;
}

/** What apply needs around a step that detaches a partition in its own transactions. */
export interface DetachInfo {
  /** `concurrently`: may leave the partition pending, to finish with `finalizeSql`; `finalize`: is that finish. */
  readonly mode: 'concurrently' | 'finalize';
  readonly parent: RelationName;
  readonly partition: RelationName;
  /** `DETACH ... FINALIZE`: what finishes the detach when PostgreSQL left the partition pending. */
  readonly finalizeSql: string;
  /**
   * Retention drops the partition once detached, in a later step: apply records it in
   * `pgwarden.retired_partition` first, so if that DROP fails the next plan still finds the table
   * (no longer in pg_inherits) and drops it.
   */
  readonly thenDrop: boolean;
}

/** A DETACH ... CONCURRENTLY or FINALIZE step. */
export interface DetachStep extends SqlStep {
  readonly detach: DetachInfo;
}

export function detachOf(step: SqlStep): DetachInfo | null {
  return 'detach' in step ? (step as DetachStep).detach : null;
}

function finalizeSql(parent: RelationName, partition: RelationName): string {
  return `ALTER TABLE ${relation(parent)} DETACH PARTITION ${relation(partition)} FINALIZE`;
}

function dropStep(partition: RelationName): SqlStep {
  return { kind: 'sql', sql: dropSql(partition), transactional: true, lock: { mode: 'ACCESS EXCLUSIVE', on: `${partition.schema}.${partition.name} (detached)`, online: true }, build: false };
}

export function detachPartitionSteps(change: DetachPartition): SqlStep[] {
  const { parent, partition } = change;
  const on = `${parent.schema}.${parent.name}`;
  if (change.concurrently) {
    // Two transactions of its own, the second waiting for every transaction that has used the parent; it
    // cannot run in a transaction block. If that wait runs into lock_timeout (or is cancelled) the
    // partition stays "detach pending": apply then sends DETACH ... FINALIZE (see DetachInfo), and an
    // apply that stops before that leaves it to the next plan.
    const detach: DetachStep = {
      kind: 'sql',
      sql: `ALTER TABLE ${relation(parent)} DETACH PARTITION ${relation(partition)} CONCURRENTLY`,
      transactional: false,
      lock: { mode: 'SHARE UPDATE EXCLUSIVE', on, online: true },
      build: false,
      detach: { mode: 'concurrently', parent, partition, finalizeSql: finalizeSql(parent, partition), thenDrop: change.drop },
    };
    return change.drop ? [detach, dropStep(partition)] : [detach];
  }
  // With a default partition, PostgreSQL refuses CONCURRENTLY: a plain DETACH takes ACCESS EXCLUSIVE on
  // the parent for a moment, under lock_timeout, and is retried with backoff.
  const statements = [`ALTER TABLE ${relation(parent)} DETACH PARTITION ${relation(partition)}`];
  if (change.drop) statements.push(dropSql(partition));
  return [{ kind: 'sql', sql: statements.join(';\n'), transactional: true, lock: { mode: 'ACCESS EXCLUSIVE', on, online: false }, build: false }];
}

export function finalizeDetachSteps(change: FinalizeDetach): SqlStep[] {
  const { parent, partition } = change;
  // Detached for retention's drop, whose DROP failed: a plain table now, and only the DROP is left.
  if (change.alreadyDetached) return [dropStep(partition)];
  const finalize: DetachStep = {
    kind: 'sql',
    sql: finalizeSql(parent, partition),
    transactional: true,
    // ACCESS EXCLUSIVE on the partition (pending: new queries on the parent no longer use it), then a wait
    // for every older snapshot, under lock_timeout, retried with backoff.
    lock: { mode: 'SHARE UPDATE EXCLUSIVE', on: `${parent.schema}.${parent.name}`, online: true },
    build: false,
    detach: { mode: 'finalize', parent, partition, finalizeSql: finalizeSql(parent, partition), thenDrop: change.drop },
  };
  return change.drop ? [finalize, dropStep(partition)] : [finalize];
}

export function partitionSteps(change: PartitionChange): SqlStep[] {
  switch (change.kind) {
    case 'create-partition':
      return [createPartitionStep(change)];
    case 'detach-partition':
      return detachPartitionSteps(change);
    case 'finalize-detach':
      return finalizeDetachSteps(change);
  }
}
