import type { SqlName, StatementFacts } from './statement-facts.ts';

/**
 * What the router knows about the database, loaded from the primary in the background: which function
 * names are read-only in every overload, and which relations a standby cannot or must not serve.
 */
export interface RoutingKnowledge {
  /** Bumped on every reload, so cached decisions are re-derived (cheaply) from cached facts. */
  readonly version: number;
  readonly loaded: boolean;
  /** Keyed `schema\0name`, and `\0name` for "in any schema": true when every overload is read-only. */
  readonly readOnlyFunctions: ReadonlyMap<string, boolean>;
  /** Temporary and unlogged relations and sequences, keyed like functions. */
  readonly primaryOnlyRelations: ReadonlySet<string>;
}

export const emptyKnowledge: RoutingKnowledge = { version: 0, loaded: false, readOnlyFunctions: new Map(), primaryOnlyRelations: new Set() };

export type PrimaryReason = 'write' | 'function' | 'relation' | 'unparseable' | 'learned';

export type RouteDecision =
  | { readonly target: 'replica' }
  | { readonly target: 'primary'; readonly reason: PrimaryReason; readonly detail: string };

export const replicaDecision: RouteDecision = { target: 'replica' };

/**
 * Volatile (so not provably read-only by the catalog) yet harmless on a standby: reading a clock or a
 * random source, sleeping, sizes, and the recovery status functions (PostgreSQL 16 marks all of these
 * VOLATILE). Only as pg_catalog resolves them (unqualified names search pg_catalog first unless
 * search_path says otherwise).
 */
const READ_ONLY_VOLATILE = new Set([
  'random',
  'random_normal',
  'clock_timestamp',
  'timeofday',
  'gen_random_uuid',
  'pg_sleep',
  'pg_sleep_for',
  'pg_sleep_until',
  'pg_is_in_recovery',
  'pg_is_wal_replay_paused',
  'pg_get_wal_replay_pause_state',
  'pg_last_wal_receive_lsn',
  'pg_last_wal_replay_lsn',
  'pg_last_xact_replay_timestamp',
  'pg_relation_size',
  'pg_table_size',
  'pg_indexes_size',
  'pg_total_relation_size',
  'pg_database_size',
  'pg_tablespace_size',
]);

/**
 * Volatile and wrong on a standby whatever the catalog says: sequences and advisory locks are state
 * on the primary, NOTIFY and txid assignment need a writable server, set_config is session state.
 */
const PRIMARY_FUNCTIONS = /^(nextval|setval|currval|lastval|set_config|pg_notify|txid_current|pg_current_xact_id|pg_(try_)?advisory_.*|lo_.*|dblink.*)$/u;

export function decideRoute(facts: StatementFacts, knowledge: RoutingKnowledge): RouteDecision {
  if (facts.kind === 'unparseable') return { target: 'primary', reason: 'unparseable', detail: facts.error };
  if (facts.kind === 'write') return { target: 'primary', reason: 'write', detail: facts.why };
  for (const fn of facts.functions) {
    if (!functionIsReadOnly(fn, knowledge)) {
      const detail = knowledge.loaded ? `calls ${display(fn)}(), not known to be read-only` : `calls ${display(fn)}() before the function catalog was loaded`;
      return { target: 'primary', reason: 'function', detail };
    }
  }
  for (const rel of facts.relations) {
    if (relationIsPrimaryOnly(rel, knowledge)) {
      return { target: 'primary', reason: 'relation', detail: `reads ${display(rel)}, a temporary or unlogged table or a sequence` };
    }
  }
  return replicaDecision;
}

function functionIsReadOnly(fn: SqlName, knowledge: RoutingKnowledge): boolean {
  const builtin = fn.schema === null || fn.schema === 'pg_catalog';
  if (builtin && PRIMARY_FUNCTIONS.test(fn.name)) return false;
  if (builtin && READ_ONLY_VOLATILE.has(fn.name)) return true;
  return knowledge.readOnlyFunctions.get(`${fn.schema ?? ''}\u0000${fn.name}`) === true;
}

function relationIsPrimaryOnly(rel: SqlName, knowledge: RoutingKnowledge): boolean {
  if (rel.schema !== null && rel.schema.startsWith('pg_temp')) return true;
  return knowledge.primaryOnlyRelations.has(`${rel.schema ?? ''}\u0000${rel.name}`);
}

function display(name: SqlName): string {
  return name.schema === null ? name.name : `${name.schema}.${name.name}`;
}

/** Builds knowledge from the primary's catalog rows (see engine/catalog/replica-queries.ts). */
export function buildKnowledge(
  version: number,
  functions: readonly { schema: string; name: string; read_only: boolean }[],
  relations: readonly { schema: string; name: string }[],
): RoutingKnowledge {
  const readOnlyFunctions = new Map<string, boolean>();
  for (const fn of functions) {
    readOnlyFunctions.set(`${fn.schema}\u0000${fn.name}`, fn.read_only);
    // Unqualified: read-only only if it is so in every schema the name could resolve to.
    const any = `\u0000${fn.name}`;
    readOnlyFunctions.set(any, (readOnlyFunctions.get(any) ?? true) && fn.read_only);
  }
  const primaryOnlyRelations = new Set<string>();
  for (const rel of relations) {
    primaryOnlyRelations.add(`${rel.schema}\u0000${rel.name}`);
    primaryOnlyRelations.add(`\u0000${rel.name}`);
  }
  return { version, loaded: true, readOnlyFunctions, primaryOnlyRelations };
}
