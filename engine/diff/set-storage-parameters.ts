import type { SourcePos } from '../policy/desired.ts';
import type { TableRef } from './change.ts';

/** One storage parameter's move: `before` null = not set (PostgreSQL's default); `after` null = RESET. */
export interface StorageSettingChange {
  readonly parameter: string;
  readonly before: string | null;
  readonly after: string | null;
}

/** One relation's ALTER TABLE: the table itself, or one leaf partition of a partitioned table. */
export interface RelationStorageChange {
  readonly schema: string;
  readonly name: string;
  readonly set: readonly { readonly parameter: string; readonly value: string }[];
  readonly reset: readonly string[];
}

/**
 * Autovacuum storage parameters of a table (and its TOAST table) differ from its vacuum policy:
 * `ALTER TABLE ... SET (...), RESET (...)` on the table, or on each leaf partition of a partitioned one
 * (PostgreSQL <= 17 keeps no storage parameters on a partitioned table).
 */
export interface SetStorageParameters {
  readonly kind: 'set-storage-parameters';
  /** `storage:schema.table`. */
  readonly address: string;
  readonly table: TableRef;
  readonly reason: string;
  readonly source?: SourcePos;
  /** What changes, summed up over the relations (display). */
  readonly settings: readonly StorageSettingChange[];
  /** Empty when only pgwarden's own record of what it manages changes. */
  readonly relations: readonly RelationStorageChange[];
  /** Parameters pgwarden manages on the table once applied (`pgwarden.managed_setting`). */
  readonly managed: readonly string[];
  /** Parameters recorded as managed before the change (a removed one of these is reset). */
  readonly previouslyManaged: readonly string[];
}

export function storageAddress(schema: string, table: string): string {
  return `storage:${schema}.${table}`;
}
