import type { IndexSignature } from '../catalog/catalog.ts';
import type { DesiredIndex, SourcePos } from '../policy/desired.ts';
import type { PartitionChange } from './partition-change.ts';
import type { RoutingChange } from './routing-change.ts';
import type { SetIndexParameters } from './set-index-parameters.ts';
import type { SetStorageParameters } from './set-storage-parameters.ts';
import type { ConvertChange } from './convert-change.ts';

/** The table a change touches, as it was when the plan was made (display and estimates only). */
export interface TableRef {
  readonly schema: string;
  readonly name: string;
  readonly partitioned: boolean;
  readonly bytes: number;
  readonly rowEstimate: number;
  /** The direct partitions of a partitioned table (a sub-partitioned one has partitions of its own). */
  readonly partitions: readonly PartitionRef[];
}

export interface PartitionRef {
  readonly schema: string;
  readonly name: string;
  readonly partitioned: boolean;
}

/** A live index a change acts on. */
export interface IndexRef {
  readonly schema: string;
  readonly name: string;
  readonly valid: boolean;
  /** `pg_get_indexdef`, display only; null for an adoption (the live index is the declared one). */
  readonly definition: string | null;
  readonly bytes: number;
}

/**
 * A partition's part of a partitioned index: the index of its own PostgreSQL needs before it can be
 * attached, and what already stands, unattached, under that index's name (an earlier build that was
 * interrupted before its ATTACH, or an index someone built by hand the way PostgreSQL documents).
 * A sub-partitioned partition's part is itself a partitioned index, with a part for each of its own
 * partitions: the tree is built top-down (ON ONLY each partitioned level, CONCURRENTLY each leaf) and
 * attached bottom-up, so no statement but the brief ON ONLY ones locks a whole subtree.
 */
export interface PartitionIndex {
  readonly partition: PartitionRef;
  /** `partitionIndexName(partition, index)`, or the name of the index already attached. */
  readonly name: string;
  /**
   * 'none': build it; 'valid': it has the declared definition, attach it as is; 'invalid': drop it and
   * build again; 'incomplete' (sub-partitioned only): an INVALID partitioned index of the declared
   * definition whose own partitions lack their indexes: finish those, nothing dropped.
   */
  readonly existing: 'none' | 'valid' | 'invalid' | 'incomplete';
  /** Already attached to the parent's index (an incomplete one found attached): no ATTACH. */
  readonly attached: boolean;
  /** For a sub-partitioned partition, what each of its partitions needs; empty for a leaf. */
  readonly partitionIndexes: readonly PartitionIndex[];
}

/** A change that builds a declared index: on a partitioned table, what each partition needs. */
interface BuildsIndex {
  /** Empty for a plain table. */
  readonly partitionIndexes: readonly PartitionIndex[];
}

/** A change that makes a declared index exist: carries what PostgreSQL made of the declaration. */
interface DeclaredIndex {
  readonly index: DesiredIndex;
  readonly signature: IndexSignature;
}

interface ChangeBase {
  /** `index:schema.table.name`: stable across runs, for humans and for matching. */
  readonly address: string;
  readonly table: TableRef;
  readonly reason: string;
  readonly source?: SourcePos;
}

/** The index is declared and missing. */
export interface CreateIndex extends ChangeBase, DeclaredIndex, BuildsIndex {
  readonly kind: 'create-index';
}

/** An INVALID index (a failed or interrupted concurrent build) stands under the declared name. */
export interface RebuildIndex extends ChangeBase, DeclaredIndex, BuildsIndex {
  readonly kind: 'rebuild-index';
  readonly actual: IndexRef;
  /** The INVALID index has the declared definition (a partitioned one can then be finished, not redone). */
  readonly definitionMatches: boolean;
  /**
   * A partitioned index with the declared definition that some partitions still lack, at any level:
   * nothing is dropped, `partitionIndexes` lists only the unfinished parts. Otherwise the INVALID index
   * is dropped and built again.
   */
  readonly resume: boolean;
}

/** The declared name exists with another definition: build the new one first, then drop the old. */
export interface ReplaceIndex extends ChangeBase, DeclaredIndex, BuildsIndex {
  readonly kind: 'replace-index';
  readonly actual: IndexRef;
}

/** An equivalent index exists under another name. */
export interface RenameIndex extends ChangeBase, DeclaredIndex {
  readonly kind: 'rename-index';
  readonly actual: IndexRef;
}

/** An equivalent index exists under the declared name but pgwarden did not create it: record it as managed. */
export interface AdoptIndex extends ChangeBase, DeclaredIndex {
  readonly kind: 'adopt-index';
  readonly actual: IndexRef;
}

/** An index no policy declares that pgwarden may remove (it manages it, or the table is fully managed). */
export interface DropIndex extends ChangeBase {
  readonly kind: 'drop-index';
  readonly actual: IndexRef;
  /** False for pgwarden's own leftovers (an interrupted replace); true otherwise: needs --allow-drop. */
  readonly destructive: boolean;
}

export type Change = CreateIndex | RebuildIndex | ReplaceIndex | RenameIndex | AdoptIndex | DropIndex | SetIndexParameters | PartitionChange | SetStorageParameters | RoutingChange | ConvertChange;
export type ChangeKind = Change['kind'];

/** Something the plan reports but will not act on. */
export interface Warning {
  readonly address: string;
  readonly message: string;
  readonly source?: SourcePos;
}

export function indexAddress(schema: string, table: string, name: string): string {
  return `index:${schema}.${table}.${name}`;
}

/** Name of the index a replace builds before swapping it in; recognised as pgwarden's own leftover. */
export function replacementName(name: string): string {
  const suffix = '_pgwarden_new';
  const bytes = Buffer.from(name, 'utf8');
  const room = 63 - suffix.length;
  // Cut on a character boundary: a truncated multi-byte character would make an invalid name.
  const base = bytes.length <= room ? name : Buffer.from(bytes.subarray(0, room)).toString('utf8').replace(/\uFFFD+$/, '');
  return `${base}${suffix}`;
}

export const REPLACEMENT_SUFFIX = '_pgwarden_new';

/** `<partition>_<index>` cut to 63 bytes with a short hash so distinct long names stay distinct. */
export function partitionIndexName(partition: string, index: string): string {
  const full = `${partition}_${index}`;
  if (Buffer.byteLength(full, 'utf8') <= 63) return full;
  let hash = 0;
  for (const ch of full) hash = (Math.imul(hash, 31) + (ch.codePointAt(0) ?? 0)) >>> 0;
  const suffix = `_${hash.toString(36)}`;
  let base = full;
  while (Buffer.byteLength(base + suffix, 'utf8') > 63) base = [...base].slice(0, -1).join('');
  return base + suffix;
}
