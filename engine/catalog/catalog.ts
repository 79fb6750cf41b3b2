/**
 * The live database as pgwarden sees it: the neutral model the diff compares policies against.
 * Built by `introspect()` from a fixed number of catalog queries.
 */

/** One key column of an index, in PostgreSQL's own resolved terms (OIDs, option bits). */
export interface IndexKeySignature {
  /** Column name for a plain column key; null for an expression key. */
  readonly column: string | null;
  /** PostgreSQL's deparsed expression (search_path empty, so fully qualified); null for a column. */
  readonly expression: string | null;
  readonly opclass: number;
  readonly collation: number;
  /** pg_index.indoption bits: 1 = DESC, 2 = NULLS FIRST. */
  readonly option: number;
}

/**
 * What an index *is*, independent of its name and table: two indexes with equal signatures on the same
 * table are interchangeable. Everything here comes from raw catalog columns, except expressions and
 * predicates, which PostgreSQL deparses — so equality is PostgreSQL's, not a string normaliser's.
 */
export interface IndexSignature {
  readonly method: string;
  readonly unique: boolean;
  readonly nullsNotDistinct: boolean;
  readonly keys: readonly IndexKeySignature[];
  readonly include: readonly string[];
  readonly predicate: string | null;
}

export type TableKind = 'table' | 'partitioned';

export interface ActualTable {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: TableKind;
  /** Set when this table is a partition of another. */
  readonly parentOid: number | null;
  readonly partitionBound: string | null;
  readonly partitionKey: string | null;
  readonly rowEstimate: number;
  /** Heap bytes: exact for tables a policy names, relpages-based elsewhere. */
  readonly bytes: number;
  readonly reloptions: readonly string[];
  /** The TOAST table's reloptions (`toast.*` settings land there); null when the table has no TOAST table. */
  readonly toastReloptions: readonly string[] | null;
  /** The owning role, and whether the role pgwarden connects as has its rights (owner, member, or superuser). */
  readonly owner: string;
  readonly actsAsOwner: boolean;
  /** The connecting role may create relations (indexes, partitions) in the table's schema. */
  readonly createsInSchema: boolean;
}

export interface ActualIndex {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly tableOid: number;
  /** False after a failed or interrupted concurrent build: present, maintained, never used. */
  readonly valid: boolean;
  readonly primary: boolean;
  /** The constraint this index backs ('p' primary key, 'u' unique, 'x' exclusion), if any. */
  readonly constraintType: 'p' | 'u' | 'x' | null;
  /** The partitioned index this one is attached to, when it is a partition's index. */
  readonly parentIndexOid: number | null;
  readonly signature: IndexSignature;
  /** pg_class.reloptions of the index (`fillfactor=70`), as stored; empty when none. */
  readonly reloptions: readonly string[];
  readonly bytes: number;
  readonly scans: number;
}

export interface ManagedIndexRecord {
  readonly schema: string;
  readonly name: string;
  readonly table: string;
  readonly policyFile: string | null;
  /** `specHash()` of the policy entry the index was built from. */
  readonly specHash: string | null;
  /** `signatureKey()` of the index as built. */
  readonly signature: string | null;
}

/** A storage parameter pgwarden set on a table (for a partitioned table: on its partitions). */
export interface ManagedSettingRecord {
  readonly schema: string;
  readonly table: string;
  readonly parameter: string;
}

export interface Catalog {
  readonly database: string;
  readonly serverVersion: number;
  /** Parents before their partitions, at every level of a partition tree. */
  readonly tables: readonly ActualTable[];
  readonly indexes: readonly ActualIndex[];
  /** Indexes pgwarden created or adopted (the `pgwarden.managed_index` registry). */
  readonly managed: readonly ManagedIndexRecord[];
  /** Names of every relation, by schema, so a new index name can be checked against all of them. */
  readonly relationNames: ReadonlyMap<string, ReadonlySet<string>>;
  /** Storage parameters pgwarden set (`pgwarden.managed_setting`); absent or empty before it ever set one. */
  readonly managedSettings?: readonly ManagedSettingRecord[];
}

export function sameSignature(a: IndexSignature, b: IndexSignature): boolean {
  return a === b || signatureKey(a) === signatureKey(b);
}

// A signature is an immutable value compared several times per plan (probes, diff, steps, fingerprint):
// on 20,000 indexes, making its string once instead of at each comparison is a measurable part of a plan.
const keys = new WeakMap<IndexSignature, string>();

/** A stable string for maps and fingerprints; field order is fixed by construction. */
export function signatureKey(s: IndexSignature): string {
  let key = keys.get(s);
  if (key === undefined) {
    key = JSON.stringify([s.method, s.unique, s.nullsNotDistinct, s.keys.map((k) => [k.column, k.expression, k.opclass, k.collation, k.option]), s.include, s.predicate]);
    keys.set(s, key);
  }
  return key;
}
