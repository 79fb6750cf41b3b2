import type pg from 'pg';
import { canonicaliseIndexes, knownSignatures, type Canonical } from '../catalog/canonicalise.ts';
import type { Catalog } from '../catalog/catalog.ts';
import { catalogSession, introspect, query } from '../catalog/introspect.ts';
import { desiredKey, diffIndexes } from '../diff/index-diff.ts';
import type { DesiredState, PolicyError } from '../policy/desired.ts';
import { storageParametersFor } from '../diff/vacuum-settings.ts';
import { planPartitions } from './partition-plan.ts';
import { planStorage } from './storage-plan.ts';
import { buildPlan, type Plan } from './plan.ts';
import { withIndexDefinitions } from './index-definitions.ts';
import { planRouting } from './routing-plan.ts';
import type { Environment } from '../routing/router-options.ts';

export type PlanOutcome =
  | { readonly ok: true; readonly plan: Plan; readonly catalog: Catalog; readonly roundTrips: number }
  | { readonly ok: false; readonly errors: readonly PolicyError[]; readonly roundTrips: number };

/** How long reading the catalog waits for a lock another session holds on a declared table. */
export const PLAN_LOCK_TIMEOUT_MS = 5000;

/** The plan pipeline: introspect -> canonicalise the desired indexes (derived from catalog facts, else built on scratch) -> diff -> Plan. */
/** `env`: where the routing policy's replica URLs are read from (the CLI passes its own environment). */
export async function makePlan(client: pg.ClientBase, desired: DesiredState, now: Date, options: { readonly env?: Environment } = {}): Promise<PlanOutcome> {
  try {
    return await planAgainst(client, desired, now, options);
  } catch (error) {
    if ((error as { code?: string }).code !== '55P03') throw error;
    throw new Error(
      `another session holds a lock on a declared table; reading the catalog waited ${PLAN_LOCK_TIMEOUT_MS / 1000} s (lock_timeout) and gave up, nothing was changed. Plan again once that session is done`,
    );
  }
}

async function planAgainst(client: pg.ClientBase, desired: DesiredState, now: Date, options: { readonly env?: Environment }): Promise<PlanOutcome> {
  const session = catalogSession(client);
  // standard_conforming_strings on: policy SQL is checked by libpg_query, which always lexes strings
  // that way; with it off, a backslash in a quoted string would let the server see a statement end the
  // parser did not (engine/catalog/canonicalise.ts). lock_timeout: a table locked by someone else makes
  // the plan fail with a clear error instead of waiting behind them.
  const [recovery] = await query<{ r: boolean }>(
    session,
    `SELECT pg_catalog.set_config('standard_conforming_strings', 'on', false), pg_catalog.set_config('lock_timeout', $1, false),
            pg_catalog.pg_is_in_recovery() AS r`,
    [`${PLAN_LOCK_TIMEOUT_MS}ms`],
  );
  if (recovery?.r) throw new Error('this server is a standby (in recovery); plan and apply need the primary');
  const named = desired.tables.map((t) => ({ schema: t.schema, name: t.name }));
  const catalog = await introspect(session, named);
  const existing = new Set(catalog.tables.map((t) => `${t.schema}\u0000${t.name}`));
  const indexes = desired.tables.filter((t) => existing.has(`${t.schema}\u0000${t.name}`)).flatMap((t) => t.indexes);
  const known = knownSignatures(catalog, indexes);
  const unknown = indexes.filter((_, i) => known[i] === undefined);
  const fresh = unknown.length > 0 ? await canonicaliseIndexes(session, unknown) : [];
  const canonical = new Map<string, Canonical>(unknown.map((index, i) => [desiredKey(index), fresh[i]!]));
  indexes.forEach((index, i) => {
    const signature = known[i];
    if (signature) canonical.set(desiredKey(index), { ok: true, signature });
  });
  const diff = diffIndexes(desired, catalog, canonical);
  const partitions = await planPartitions(session, desired, now, storageParametersFor);
  const routing = await planRouting(session, desired, options.env ?? {});
  const errors = [...diff.errors, ...partitions.errors, ...routing.errors];
  if (errors.length > 0) return { ok: false, errors, roundTrips: session.roundTrips };
  // Interrupted detaches finish first; new partitions come after the index changes, so ATTACH gives
  // them every index the parent has by then.
  const storage = await planStorage(session, desired, catalog);
  const changes = await withIndexDefinitions(session, [...partitions.before, ...diff.changes, ...storage.changes, ...partitions.after, ...routing.changes]);
  const built = buildPlan({ changes, warnings: [...diff.warnings, ...partitions.warnings, ...storage.warnings, ...routing.warnings], catalog, desired, now });
  const plan = routing.report === undefined ? built : { ...built, routing: routing.report };
  return { ok: true, plan, catalog, roundTrips: session.roundTrips };
}
