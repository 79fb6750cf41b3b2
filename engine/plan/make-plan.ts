import type pg from 'pg';
import type { Catalog } from '../catalog/catalog.ts';
import { catalogSession } from '../catalog/introspect.ts';
import { PLAN_LOCK_TIMEOUT_MS, readActual, type ActualScope } from '../catalog/read-actual.ts';
import { diffAll } from '../diff/diff-all.ts';
import { ownershipErrors } from '../diff/ownership.ts';
import type { DesiredState, PolicyError } from '../policy/desired.ts';
import type { Environment } from '../routing/router-options.ts';
import { buildPlan, type Plan } from './plan.ts';

export { PLAN_LOCK_TIMEOUT_MS };

export type PlanOutcome =
  | { readonly ok: true; readonly plan: Plan; readonly catalog: Catalog; readonly roundTrips: number }
  | { readonly ok: false; readonly errors: readonly PolicyError[]; readonly roundTrips: number };

/**
 * The plan pipeline, in DESIGN.md's order and never back: read the whole actual state (`readActual`),
 * diff it against the desired state (`diffAll`, pure), build the plan's steps (`buildPlan`, pure).
 * `env`: where the routing policy's replica URLs are read from (the CLI passes its own environment);
 * `connect`: a second connection for reads that can run side by side (engine/catalog/read-actual.ts).
 */
export async function makePlan(
  client: pg.ClientBase,
  desired: DesiredState,
  now: Date,
  options: { readonly env?: Environment; readonly connect?: ActualScope['connect'] } = {},
): Promise<PlanOutcome> {
  const session = catalogSession(client);
  const scope: ActualScope = { desired, now, env: options.env ?? {}, ...(options.connect === undefined ? {} : { connect: options.connect }) };
  const actual = await readActual(session, scope).catch((error: unknown) => {
    if ((error as { code?: string }).code !== '55P03') throw error;
    throw new Error(
      `another session holds a lock on a declared table; reading the catalog waited ${PLAN_LOCK_TIMEOUT_MS / 1000} s (lock_timeout) and gave up, nothing was changed. Plan again once that session is done`,
    );
  });
  const diff = diffAll(desired, actual, now);
  const errors = [...diff.errors, ...ownershipErrors(desired, actual.catalog, diff.changes)];
  if (errors.length > 0) return { ok: false, errors, roundTrips: session.roundTrips };
  const built = buildPlan({ changes: diff.changes, warnings: diff.warnings, catalog: actual.catalog, desired, now });
  const plan = diff.routing === undefined ? built : { ...built, routing: diff.routing };
  return { ok: true, plan, catalog: actual.catalog, roundTrips: session.roundTrips };
}
