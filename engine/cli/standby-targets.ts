import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ReplicaTarget } from '../replica-lag/lag-sampler.ts';
import { replicaTargetsFromPolicy } from '../routing/router-options.ts';
import { loadPolicies } from '../policy/load.ts';
import { CliError, type Io } from './context.ts';

// The standbys `serve` and `health` watch: shared by both commands, so it lives in cli/, not in either.

export interface StandbyTarget {
  readonly name: string;
  readonly url: string;
  /** The standby's application_name on the primary, when the routing policy gives it. */
  readonly applicationName?: string;
}

/**
 * The routing policy's replicas whose URL variable is set, and the names of those whose is not. No
 * policies folder, or none with a `routing:` document: nothing. Invalid policies are reported by
 * `validate` and `plan`; serve only says it could not read them.
 */
export async function policyStandbys(policiesDir: string | undefined, io: Io): Promise<{ readonly targets: StandbyTarget[]; readonly notes: string[] }> {
  const given = policiesDir ?? 'policies';
  const dir = path.resolve(io.cwd, given);
  if (policiesDir === undefined && !existsSync(dir)) return { targets: [], notes: [] };
  const { desired, errors } = await loadPolicies(dir, { displayDir: given });
  if (errors.length > 0) return { targets: [], notes: [`the policies in ${given} do not validate (run pgwarden validate): their routing replicas are not watched`] };
  const routing = desired.routing;
  if (routing === undefined) return { targets: [], notes: [] };
  const set = routing.replicas.filter((r) => (io.env[r.urlEnv] ?? '').trim() !== '');
  const notes = routing.replicas.filter((r) => !set.includes(r)).map((r) => `replica ${r.name}: ${r.urlEnv} is not set, so it is not watched`);
  const targets = replicaTargetsFromPolicy({ ...routing, replicas: set }, io.env).map((t: ReplicaTarget) => ({
    name: t.name,
    url: String(t.connection),
    ...(t.applicationName === undefined ? {} : { applicationName: t.applicationName }),
  }));
  return { targets, notes };
}

/** `--standby NAME=URL` (repeatable), or REPLICA_URL as `standby1` (what `pgwarden up` prints). */
export function standbyTargets(flags: readonly string[] | undefined, env: NodeJS.ProcessEnv): StandbyTarget[] {
  if (!flags || flags.length === 0) return env['REPLICA_URL'] ? [{ name: 'standby1', url: env['REPLICA_URL'] }] : [];
  const seen = new Set<string>();
  return flags.map((flag, i) => {
    const m = /^([A-Za-z0-9_.-]{1,63})=(.+)$/.exec(flag);
    const target = m ? { name: m[1] ?? '', url: m[2] ?? '' } : /^postgres(ql)?:\/\//.test(flag) ? { name: `standby${i + 1}`, url: flag } : null;
    if (!target) throw new CliError(`--standby must be NAME=URL or a postgres:// URL (got "${flag.replace(/:[^:@/]*@/, ':***@').slice(0, 80)}")`);
    if (seen.has(target.name)) throw new CliError(`--standby names must be unique ("${target.name}" given twice)`);
    seen.add(target.name);
    return target;
  });
}
