import type { PolicyError } from './desired.ts';
import type { DesiredReplica, DesiredRouting, DesiredStandbySetting } from './desired-routing.ts';
import { isMapping, positionOf, type DataPath, type DocumentSource } from './document-source.ts';
import { policyValidators } from './policy-validators.ts';
import { schemaProblems } from './schema-problem.ts';

/** What one `routing:` document yields: its mistakes, and the routing when there are none. */
export interface RoutingDocument {
  readonly errors: readonly PolicyError[];
  readonly routing?: DesiredRouting;
}

// What a shell (and every CI system) accepts as a variable name.
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/u;

/**
 * Reads a `routing:` document.
 *
 * @example
 * routing:
 *   replicas: [{ name: standby1, url_env: REPLICA_URL }]
 *   max_lag_ms: 250
 *   standby_settings: { hot_standby_feedback: on }
 */
export function readRoutingDocument(data: Readonly<Record<string, unknown>>, source: DocumentSource): RoutingDocument {
  const check = policyValidators().routing;
  const errors: PolicyError[] = [];
  const report = (path: DataPath, message: string, hint?: string, part: 'key' | 'value' = 'value'): void => {
    errors.push({ ...positionOf(source, path, part), message, ...(hint === undefined ? {} : { hint }) });
  };
  const valid = check(data);
  for (const problem of schemaProblems(check.errors ?? [])) report(problem.path, problem.message, problem.hint, problem.part);

  const section = isMapping(data['routing']) ? data['routing'] : {};
  const replicas = Array.isArray(section['replicas']) ? (section['replicas'] as readonly unknown[]) : [];
  const names = new Map<string, number>();
  const variables = new Map<string, number>();
  for (const [i, item] of replicas.entries()) {
    if (!isMapping(item)) continue;
    const { name, url_env: urlEnv } = item;
    if (typeof name === 'string' && name !== '') {
      const first = names.get(name);
      if (first === undefined) names.set(name, i);
      else report(['routing', 'replicas', i, 'name'], `replica ${JSON.stringify(name)} is declared twice (first as item ${first + 1} of "replicas")`);
    }
    if (typeof urlEnv !== 'string' || urlEnv === '') continue;
    if (urlEnv.includes('://') || urlEnv.includes('@')) {
      report(
        ['routing', 'replicas', i, 'url_env'],
        '"url_env" names an environment variable, but this looks like a connection URL',
        'put the URL in an environment variable (e.g. REPLICA_URL) and name the variable here: a URL may carry a password, and policies live in git',
      );
    } else if (!ENV_NAME.test(urlEnv)) {
      report(['routing', 'replicas', i, 'url_env'], `"url_env" must be an environment variable name (letters, digits, _), got ${JSON.stringify(urlEnv)}`);
    } else {
      const first = variables.get(urlEnv);
      if (first === undefined) variables.set(urlEnv, i);
      else report(['routing', 'replicas', i, 'url_env'], `replicas ${first + 1} and ${i + 1} read the same variable ${urlEnv}`, 'each replica needs its own URL');
    }
  }
  if (!valid || errors.length > 0) return { errors };

  const routing = data.routing;
  return {
    errors,
    routing: {
      replicas: routing.replicas.map(
        (replica, i): DesiredReplica => ({
          name: replica.name,
          urlEnv: replica.url_env,
          ...(replica.application_name === undefined ? {} : { applicationName: replica.application_name }),
          source: positionOf(source, ['routing', 'replicas', i]),
          urlEnvSource: positionOf(source, ['routing', 'replicas', i, 'url_env']),
        }),
      ),
      reads: routing.reads ?? 'replica',
      maxLagMs: routing.max_lag_ms ?? 1000,
      readYourWritesMs: routing.read_your_writes_ms ?? 1000,
      onReplicaDown: routing.on_replica_down ?? 'primary',
      standbySettings: Object.entries(routing.standby_settings ?? {}).flatMap(([name, value]): DesiredStandbySetting[] =>
        value === undefined ? [] : [{ name, value: settingText(value), source: positionOf(source, ['routing', 'standby_settings', name]) }],
      ),
      source: positionOf(source, ['routing'], 'key'),
    },
  };
}

/** YAML's `true` is PostgreSQL's `on`; numbers keep the form they were written in. */
function settingText(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return String(value);
}

/** One routing document per policy directory: a second one is a mistake, pointed at both places. */
export function singleRouting(documents: readonly DesiredRouting[]): { routing?: DesiredRouting; errors: PolicyError[] } {
  const [first, ...rest] = documents;
  const errors = rest.map(
    (extra): PolicyError => ({
      ...extra.source,
      message: `a second routing document (the first is at ${first?.source.file}:${first?.source.line}:${first?.source.col})`,
      hint: 'declare every replica in one routing document',
    }),
  );
  return { ...(first === undefined ? {} : { routing: first }), errors };
}
