import { introspectRouting } from '../catalog/replica-introspect.ts';
import type { CatalogSession } from '../catalog/introspect.ts';
import type { Warning } from '../diff/change.ts';
import type { RoutingChange, RoutingReport } from '../diff/routing-change.ts';
import { diffRouting } from '../diff/routing-diff.ts';
import type { DesiredState, PolicyError } from '../policy/desired.ts';
import { missingVariableMessage, type Environment, type ResolvedReplica } from '../routing/router-options.ts';

export interface RoutingPlan {
  readonly changes: readonly RoutingChange[];
  readonly warnings: readonly Warning[];
  readonly errors: readonly PolicyError[];
  readonly report?: RoutingReport;
}

/**
 * The replica side of a plan: each replica's URL from the environment (a missing variable is an
 * error pointing at the policy line that names it), then what the primary and every replica say,
 * then the pure diff. Nothing happens without a `routing:` document.
 */
export async function planRouting(session: CatalogSession, desired: DesiredState, env: Environment): Promise<RoutingPlan> {
  const routing = desired.routing;
  if (routing === undefined) return { changes: [], warnings: [], errors: [] };
  const errors: PolicyError[] = [];
  const resolved: ResolvedReplica[] = [];
  for (const replica of routing.replicas) {
    const url = env[replica.urlEnv];
    if (url === undefined || url.trim() === '') {
      errors.push({ ...replica.urlEnvSource, ...missingVariableMessage(replica) });
      continue;
    }
    resolved.push({ name: replica.name, url, ...(replica.applicationName === undefined ? {} : { applicationName: replica.applicationName }) });
  }
  const actual = await introspectRouting(session, routing, resolved);
  const diff = diffRouting(routing, actual);
  return { changes: diff.changes, warnings: diff.warnings, errors: [...errors, ...diff.errors], report: diff.report };
}
