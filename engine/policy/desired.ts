import type { DesiredPartitioning } from './partitioning-policy.ts';
import type { DesiredRouting } from './desired-routing.ts';
import type { DesiredVacuum } from './vacuum-policy.ts';

/** Where a policy value came from, for every message that points back at a file. */
export interface SourcePos {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export type SortOrder = 'asc' | 'desc';
export type NullsOrder = 'first' | 'last';
export type IndexMethod = 'btree' | 'hash' | 'gin' | 'gist' | 'brin' | 'spgist';

interface KeyOptions {
  /** Only meaningful for btree; other methods ignore ordering. */
  readonly order: SortOrder;
  /** Resolved from `order` when the policy is silent (asc -> last, desc -> first), as PostgreSQL does. */
  readonly nulls: NullsOrder;
  readonly opclass?: string;
  readonly collation?: string;
}

export type DesiredIndexKey =
  | (KeyOptions & { readonly kind: 'column'; readonly column: string })
  | (KeyOptions & { readonly kind: 'expression'; readonly expression: string });

export interface DesiredIndex {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly method: IndexMethod;
  readonly unique: boolean;
  readonly nullsNotDistinct: boolean;
  readonly keys: readonly DesiredIndexKey[];
  readonly include: readonly string[];
  /** A SQL boolean expression; PostgreSQL canonicalises it, pgwarden never rewrites it. */
  readonly where?: string;
  /** Storage parameters (`WITH (...)`) as their text goes into SQL, in declared order; absent when none. */
  readonly with?: Readonly<Record<string, string>>;
  readonly source: SourcePos;
}

/**
 * `partial`: pgwarden creates and changes what the policy declares and reports other indexes.
 * `full`: indexes on the table that no policy declares may be dropped (with `--allow-drop`).
 */
export type ManagedMode = 'partial' | 'full';

export interface DesiredTable {
  readonly schema: string;
  readonly name: string;
  readonly managed: ManagedMode;
  readonly indexes: readonly DesiredIndex[];
  /** Range partitioning by time that pgwarden keeps true (engine/policy/partitioning-policy.ts). */
  readonly partitioning?: DesiredPartitioning;
  /** Autovacuum settings and maintain thresholds, the `defaults:` document's merged in (engine/policy/vacuum-policy.ts). */
  readonly vacuum?: DesiredVacuum;
  readonly source: SourcePos;
}

export interface DesiredState {
  readonly tables: readonly DesiredTable[];
  /** Policy files read, relative to the policies directory, sorted. */
  readonly files: readonly string[];
  /** The `routing:` document, when there is one (engine/policy/routing-document.ts). */
  readonly routing?: DesiredRouting;
  /** The `defaults:` document's vacuum policy: every table no policy gives its own (engine/policy/vacuum-policy.ts). */
  readonly vacuumDefaults?: DesiredVacuum;
}

/** A mistake in a policy file: collected, never thrown one at a time. */
export interface PolicyError {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
  readonly hint?: string;
}

export function formatPolicyError(error: PolicyError): string {
  const hint = error.hint ? ` (${error.hint})` : '';
  return `${error.file}:${error.line}:${error.col}: ${error.message}${hint}`;
}
