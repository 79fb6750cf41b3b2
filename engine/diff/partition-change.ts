import type { TimeKeyType } from '../catalog/partition-queries.ts';
import type { SourcePos } from '../policy/desired.ts';
import type { TableRef } from './change.ts';

/** A relation by name. */
export interface RelationName {
  readonly schema: string;
  readonly name: string;
}

interface PartitionChangeBase {
  /** `partition:schema.table.partition`. */
  readonly address: string;
  /** The partitioned table, except for a detach, where it is the partition that leaves (its rows and bytes). */
  readonly table: TableRef;
  readonly reason: string;
  readonly source?: SourcePos;
  readonly parent: RelationName;
  readonly partition: RelationName;
}

export type PartitionBound =
  | { readonly kind: 'range'; readonly from: string; readonly to: string; readonly keyColumn: string; readonly keyType: TimeKeyType }
  | { readonly kind: 'default' };

/** Rows of the new partition's range that sit in the default partition and must move first. */
export interface DefaultRowsMove {
  readonly defaultPartition: RelationName;
  readonly rows: number;
  /** Insertable columns of the parent, in order: the copy names them, so column order never matters. */
  readonly columns: readonly string[];
}

/** A partition the policy wants and the table lacks: created beside the table, then attached. */
export interface CreatePartition extends PartitionChangeBase {
  readonly kind: 'create-partition';
  /** Bound literals as PostgreSQL reads them for the key type (`2026-12-01 00:00:00+00`). */
  readonly bound: PartitionBound;
  /** A default partition exists: ATTACH scans it and locks it ACCESS EXCLUSIVE for the transaction. */
  readonly defaultPartition: RelationName | null;
  readonly move: DefaultRowsMove | null;
  /** Storage parameters of the table's policy (autovacuum settings) the new partition carries. */
  readonly storageParameters: Readonly<Record<string, string>>;
}

/** Retention: a partition wholly older than `keep` intervals is detached, and dropped when the policy says so. */
export interface DetachPartition extends PartitionChangeBase {
  readonly kind: 'detach-partition';
  readonly drop: boolean;
  /** DETACH ... CONCURRENTLY (PostgreSQL 14+): not in a transaction, refused while a default partition exists. */
  readonly concurrently: boolean;
  /** pg_class.reltuples (-1: never analyzed) and table + index + TOAST bytes: what leaves the table. */
  readonly rows: number;
  readonly bytes: number;
  readonly destructive: true;
}

/**
 * A `DETACH ... CONCURRENTLY` was interrupted: the partition is pending until `DETACH ... FINALIZE`. Also
 * a partition detached for `then: drop` whose DROP did not run (`alreadyDetached`).
 */
export interface FinalizeDetach extends PartitionChangeBase {
  readonly kind: 'finalize-detach';
  /** The partition is past retention and the policy says drop: dropped once detached. */
  readonly drop: boolean;
  /**
   * The detach finished but the DROP that retention wanted after it did not (recorded in
   * `pgwarden.retired_partition`): the table is a plain table now and only the DROP is left.
   */
  readonly alreadyDetached: boolean;
  readonly rows: number;
  readonly bytes: number;
  readonly destructive: boolean;
}

export type PartitionChange = CreatePartition | DetachPartition | FinalizeDetach;

export function partitionAddress(schema: string, table: string, partition: string): string {
  return `partition:${schema}.${table}.${partition}`;
}
