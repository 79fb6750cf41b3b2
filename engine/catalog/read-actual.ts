import type pg from 'pg';
import type { DesiredState } from '../policy/desired.ts';
import type { Environment, ResolvedReplica } from '../routing/router-options.ts';
import type { Actual, DefaultRowCount, TableStatistics } from './actual.ts';
import { defaultRowsRanges, definitionTargets } from './actual-probes.ts';
import type { ActualRouting } from './actual-routing.ts';
import { canonicaliseIndexes, knownSignatures, type Canonical } from './canonicalise.ts';
import type { Catalog } from './catalog.ts';
import { catalogSession, introspectShared, query, type CatalogSession } from './introspect.ts';
import { countDefaultRows, introspectPartitions, retiredPartitions } from './partition-queries.ts';
import { INDEX_DEFINITIONS_SQL } from './queries.ts';
import { introspectRouting } from './replica-introspect.ts';
import { readTableStats, readVacuumSettings } from './table-statistics.ts';
import { readConversions } from './read-conversions.ts';

/** How long reading the catalog waits for a lock another session holds on a declared table. */
export const PLAN_LOCK_TIMEOUT_MS = 5000;

const SESSION_SETUP_SQL = `SELECT pg_catalog.set_config('standard_conforming_strings', 'on', false), pg_catalog.set_config('lock_timeout', $1, false),
       pg_catalog.pg_is_in_recovery() AS r`;

/** What `readActual()` reads: driven by the desired state, at one instant (which partitions are due). */
export interface ActualScope {
  readonly desired: DesiredState;
  readonly now: Date;
  /** Where the routing policy's replica URLs are read from. */
  readonly env: Environment;
  /**
   * Opens a second connection to the same database, so that independent reads run side by side (the
   * index rows beside the tables, the catalog facts beside the scratch builds). Without it, or when it
   * fails (no connection slot left), everything is read on the session's connection, one after the other.
   */
  readonly connect?: () => Promise<pg.Client>;
}

/**
 * The whole actual state a plan compares the policies against, in a fixed number of round trips whatever
 * the database size (counted on the session): the catalog and registries, then what only the desired
 * state can say is needed (canonical signatures of the declared indexes, rows sitting in default
 * partitions, definitions of the indexes a change may touch). Nothing is read after this.
 */
export async function readActual(session: CatalogSession, scope: ActualScope): Promise<Actual> {
  // Opened while the first query runs; a failure only means reading on one connection. Scratch builds
  // run there too: the same lock_timeout (and string syntax) as here.
  const opening: Promise<pg.Client | undefined> =
    scope.connect?.().then(
      async (client) => {
        try {
          await client.query(SESSION_SETUP_SQL, [`${PLAN_LOCK_TIMEOUT_MS}ms`]);
          return client;
        } catch {
          await client.end().catch(() => undefined);
          return undefined;
        }
      },
      () => undefined,
    ) ?? Promise.resolve(undefined);
  try {
    return await readWith(session, scope, opening);
  } finally {
    await (await opening)?.end().catch(() => undefined);
  }
}

async function readWith(session: CatalogSession, scope: ActualScope, opening: Promise<pg.Client | undefined>): Promise<Actual> {
  const { desired } = scope;
  // standard_conforming_strings on: policy SQL is checked by libpg_query, which always lexes strings
  // that way; with it off, a backslash in a quoted string would let the server see a statement end the
  // parser did not (engine/catalog/canonicalise.ts). lock_timeout: a table locked by someone else makes
  // the plan fail with a clear error instead of waiting behind them.
  const [recovery] = await query<{ r: boolean }>(session, SESSION_SETUP_SQL, [`${PLAN_LOCK_TIMEOUT_MS}ms`]);
  if (recovery?.r) throw new Error('this server is a standby (in recovery); plan and apply need the primary');
  const second = await opening;
  // Its setup query counts too.
  const helper = second === undefined ? undefined : { ...catalogSession(second), roundTrips: 1 };
  const named = desired.tables.map((t) => ({ schema: t.schema, name: t.name }));
  const { catalog, shared } = await introspectShared(session, named, helper);
  const canonical = await canonicalSignatures(session, desired, catalog, shared ? helper : undefined);
  // What the second connection sent counts like the rest: the figure is statements, whatever the connection.
  session.roundTrips += helper?.roundTrips ?? 0;
  const partitioned = desired.tables.filter((t) => t.partitioning !== undefined).map((t) => ({ schema: t.schema, name: t.name }));
  const partitions = await introspectPartitions(session, partitioned);
  // Only policies that drop can have left a detached table behind to drop.
  const dropping = desired.tables.filter((t) => t.partitioning?.retention?.then === 'drop').map((t) => ({ schema: t.schema, name: t.name }));
  const retired = await retiredPartitions(session, dropping);
  const ranges = defaultRowsRanges(desired, partitions, scope.now);
  const counts = await countDefaultRows(session, ranges.map((r) => r.probe));
  const defaultRows = ranges.map((r, i): DefaultRowCount => ({ schema: r.schema, table: r.table, start: r.start, rows: counts[i] ?? 0 }));
  const routing = await readRouting(session, desired, scope.env);
  const tableStatistics = await readStatistics(session, desired);
  const indexDefinitions = await readDefinitions(session, definitionTargets(desired, catalog, canonical));
  const conversions = await readConversions(session, desired, scope.now);
  return Object.freeze({ catalog, canonical, partitions, retired, defaultRows, indexDefinitions, routing, tableStatistics, conversions });
}

/**
 * Canonical signatures of the declared indexes on existing tables: known from the registry when the
 * policy entry and the live index are unchanged since pgwarden built them, else derived from catalog
 * facts or built on scratch tables (engine/catalog/canonicalise.ts).
 */
async function canonicalSignatures(session: CatalogSession, desired: DesiredState, catalog: Catalog, helper: CatalogSession | undefined): Promise<Map<string, Canonical>> {
  const existing = new Set(catalog.tables.map((t) => `${t.schema}\u0000${t.name}`));
  const indexes = desired.tables.filter((t) => existing.has(`${t.schema}\u0000${t.name}`)).flatMap((t) => t.indexes);
  const known = knownSignatures(catalog, indexes);
  const unknown = indexes.filter((_, i) => known[i] === undefined);
  const fresh = unknown.length > 0 ? await canonicaliseIndexes(session, unknown, helper) : [];
  const canonical = new Map<string, Canonical>(unknown.map((index, i) => [`${index.schema}\u0000${index.name}`, fresh[i]!]));
  indexes.forEach((index, i) => {
    const signature = known[i];
    if (signature) canonical.set(`${index.schema}\u0000${index.name}`, { ok: true, signature });
  });
  return canonical;
}

/**
 * The replica side: each replica's URL from the environment (a missing variable leaves it `unset`, which
 * the diff reports where the policy names it), then what the primary and every replica say.
 */
async function readRouting(session: CatalogSession, desired: DesiredState, env: Environment): Promise<ActualRouting | null> {
  const routing = desired.routing;
  if (routing === undefined) return null;
  const resolved: ResolvedReplica[] = [];
  for (const replica of routing.replicas) {
    const url = env[replica.urlEnv];
    if (url === undefined || url.trim() === '') continue;
    resolved.push({ name: replica.name, url, ...(replica.applicationName === undefined ? {} : { applicationName: replica.applicationName }) });
  }
  return introspectRouting(session, routing, resolved);
}

/** Two round trips when any vacuum policy exists (the health floors), none otherwise. */
async function readStatistics(session: CatalogSession, desired: DesiredState): Promise<TableStatistics | null> {
  if (desired.vacuumDefaults === undefined && !desired.tables.some((t) => t.vacuum !== undefined)) return null;
  const settings = await readVacuumSettings(session.client);
  const stats = await readTableStats(session.client);
  session.roundTrips += 2;
  return { settings, stats };
}

/** One round trip, and only when some live index may be acted on: never a deparse of the whole catalog. */
async function readDefinitions(session: CatalogSession, targets: readonly { schema: string; name: string }[]): Promise<Map<string, string>> {
  if (targets.length === 0) return new Map();
  const rows = await query<{ schema: string; name: string; definition: string }>(session, INDEX_DEFINITIONS_SQL, [
    targets.map((r) => r.schema),
    targets.map((r) => r.name),
  ]);
  return new Map(rows.map((r) => [`${r.schema}\u0000${r.name}`, r.definition]));
}
