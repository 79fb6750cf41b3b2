import type pg from 'pg';
import { formatPolicyError } from '../policy/desired.ts';
import type { DesiredReplica, DesiredRouting } from '../policy/desired-routing.ts';
import { loadPolicies } from '../policy/load.ts';
import type { ReplicaTarget } from '../replica-lag/lag-sampler.ts';
import { createRouter, type RouterOptions, type RoutingPool } from './routing-pool.ts';

/** A routing policy that cannot be turned into a router: one sentence, with where to fix it. */
export class RoutingConfigError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export type Environment = Readonly<Record<string, string | undefined>>;

export interface ResolvedReplica {
  readonly name: string;
  readonly url: string;
  readonly applicationName?: string;
}

/** The message for a replica whose variable is unset, shared by the router and by plan. */
export function missingVariableMessage(replica: DesiredReplica): { message: string; hint: string } {
  return {
    message: `replica ${replica.name}: the environment variable ${replica.urlEnv} is not set`,
    hint: `set ${replica.urlEnv} to the replica's connection URL (postgres://user@host:5432/db); policies name the variable so that no password is kept in git`,
  };
}

/** Each replica's URL from the environment; a missing variable is an error naming it. */
export function resolveReplicas(routing: DesiredRouting, env: Environment): ResolvedReplica[] {
  return routing.replicas.map((replica) => {
    const url = env[replica.urlEnv];
    if (url === undefined || url.trim() === '') {
      const { message, hint } = missingVariableMessage(replica);
      const at = `${replica.urlEnvSource.file}:${replica.urlEnvSource.line}:${replica.urlEnvSource.col}`;
      throw new RoutingConfigError(`${at}: ${message}`, hint);
    }
    return { name: replica.name, url, ...(replica.applicationName === undefined ? {} : { applicationName: replica.applicationName }) };
  });
}

/** Router options for a routing policy: `primary` is the application's own primary connection. */
export function routerOptionsFromPolicy(
  routing: DesiredRouting,
  input: { readonly primary: string | pg.PoolConfig; readonly env: Environment },
): RouterOptions {
  return {
    primary: input.primary,
    replicas: resolveReplicas(routing, input.env).map((r) => ({
      name: r.name,
      connection: r.url,
      ...(r.applicationName === undefined ? {} : { applicationName: r.applicationName }),
    })),
    reads: routing.reads,
    maxLagMs: routing.maxLagMs,
    readYourWritesMs: routing.readYourWritesMs,
    onReplicaDown: routing.onReplicaDown,
  };
}

/** What `pgwarden serve` needs to sample lag without a router. */
export function replicaTargetsFromPolicy(routing: DesiredRouting, env: Environment): ReplicaTarget[] {
  return resolveReplicas(routing, env).map((r) => ({
    name: r.name,
    connection: r.url,
    ...(r.applicationName === undefined ? {} : { applicationName: r.applicationName }),
  }));
}

/**
 * Loads the policies and builds the router their `routing:` document describes.
 *
 * @example
 * const db = await loadRouter({ policies: 'policies', primary: process.env.DATABASE_URL, env: process.env });
 */
export async function loadRouter(options: {
  readonly policies: string;
  readonly primary: string | pg.PoolConfig;
  readonly env: Environment;
  /** Router settings the policy does not carry (pool sizes, sampling interval...). */
  readonly overrides?: Partial<Omit<RouterOptions, 'primary' | 'replicas'>>;
}): Promise<RoutingPool> {
  const { desired, errors } = await loadPolicies(options.policies);
  const [first] = errors;
  if (first !== undefined) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
    throw new RoutingConfigError(`${formatPolicyError(first)}${more}`, 'run `pgwarden validate` to see every mistake');
  }
  if (desired.routing === undefined) {
    throw new RoutingConfigError(`no routing document in ${options.policies}`, 'add a policy file with `routing: { replicas: [{ name, url_env }] }`');
  }
  return createRouter({ ...routerOptionsFromPolicy(desired.routing, options), ...options.overrides });
}
