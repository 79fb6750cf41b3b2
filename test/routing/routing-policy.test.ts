import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPolicies } from '../../engine/policy/load.ts';
import { resolveReplicas, RoutingConfigError } from '../../engine/routing/router-options.ts';
import { policyDir, yaml, type PolicyDir } from '../policy/policy-dir.ts';

let policies: PolicyDir | undefined;

afterEach(async () => {
  await policies?.remove();
  policies = undefined;
});

async function load(files: Readonly<Record<string, string>>) {
  policies = await policyDir(files);
  return loadPolicies(policies.dir);
}

/** The errors as `file:line:col: message (hint)`, the file relative to the policies directory. */
async function errorsOf(files: Readonly<Record<string, string>>): Promise<string[]> {
  const { errors } = await load(files);
  return errors.map((e) => `${path.relative(policies?.dir ?? '', e.file)}:${e.line}:${e.col}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
}

const ROUTING = yaml(
  'routing:',
  '  replicas:',
  '    - name: standby1',
  '      url_env: REPLICA_URL',
  '  max_lag_ms: 250',
  '  read_your_writes_ms: 500',
  '  on_replica_down: error',
  '  standby_settings:',
  '    hot_standby_feedback: true',
  '    max_standby_streaming_delay: 30s',
  '    work_mem: 64MB',
);

describe('the routing policy', () => {
  it('loads into the desired state with its defaults filled in and PostgreSQL spellings for values', async () => {
    const { desired, errors } = await load({ 'routing.yaml': ROUTING, 'events.yaml': yaml('table: events') });

    expect(errors).toEqual([]);
    expect(desired.tables.map((t) => t.name)).toEqual(['events']);
    expect(desired.routing).toMatchObject({
      reads: 'replica',
      maxLagMs: 250,
      readYourWritesMs: 500,
      onReplicaDown: 'error',
      replicas: [{ name: 'standby1', urlEnv: 'REPLICA_URL', urlEnvSource: { line: 4, col: 16 } }],
      standbySettings: [
        { name: 'hot_standby_feedback', value: 'on' },
        { name: 'max_standby_streaming_delay', value: '30s' },
        { name: 'work_mem', value: '64MB' },
      ],
    });
  });

  it('defaults reads to the replica, lag to 1 s, read-your-writes to 1 s and a down replica to the primary', async () => {
    const { desired } = await load({ 'r.yaml': yaml('routing:', '  replicas: [{ name: r1, url_env: R1_URL }]') });

    expect(desired.routing).toMatchObject({ reads: 'replica', maxLagMs: 1000, readYourWritesMs: 1000, onReplicaDown: 'primary', standbySettings: [] });
  });

  it('reports unknown keys, bad enums and bounds at their line and column', async () => {
    const errors = await errorsOf({
      'r.yaml': yaml('routing:', '  replicas: [{ name: r1, url_env: R1_URL }]', '  reads: replcia', '  max_lag_ms: 0', '  max_lag: 5'),
    });

    expect(errors).toEqual([
      'r.yaml:3:10: "reads" must be one of replica, primary, got "replcia" (did you mean "replica"?)',
      'r.yaml:4:15: "max_lag_ms" must be at least 1, got 0',
      'r.yaml:5:3: unknown key "max_lag" in routing (expected one of: replicas, reads, max_lag_ms, read_your_writes_ms, on_replica_down, standby_settings)',
    ]);
  });

  it('refuses a connection URL where the name of an environment variable belongs', async () => {
    const errors = await errorsOf({ 'r.yaml': yaml('routing:', '  replicas:', '    - name: r1', '      url_env: postgres://app:secret@db:5432/app') });

    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^r\.yaml:4:16: "url_env" names an environment variable, but this looks like a connection URL \(put the URL in an environment variable/);
  });

  it('refuses two replicas with one name, or reading one variable', async () => {
    const errors = await errorsOf({
      'r.yaml': yaml('routing:', '  replicas:', '    - { name: r1, url_env: A_URL }', '    - { name: r1, url_env: A_URL }'),
    });

    expect(errors).toEqual([
      'r.yaml:4:15: replica "r1" is declared twice (first as item 1 of "replicas")',
      'r.yaml:4:28: replicas 1 and 2 read the same variable A_URL (each replica needs its own URL)',
    ]);
  });

  it('needs at least one replica, and a name and a variable for each', async () => {
    const errors = await errorsOf({ 'a.yaml': yaml('routing:', '  replicas: []'), 'b.yaml': yaml('routing:', '  replicas:', '    - name: r1') });

    expect(errors).toEqual(['a.yaml:2:13: "replicas" must list at least one item', 'b.yaml:3:7: replica is missing "url_env"']);
  });

  it('rejects a setting value that is neither text, a number nor a boolean, and setting names in capitals', async () => {
    const errors = await errorsOf({
      'r.yaml': yaml('routing:', '  replicas: [{ name: r1, url_env: R1_URL }]', '  standby_settings:', '    work_mem: [64MB]', '    Work_Mem: 64MB'),
    });

    expect(errors).toHaveLength(2);
    expect(errors[0]).toBe('r.yaml:4:15: "work_mem" must be a string, a number or true or false, got a list');
    expect(errors[1]).toMatch(/^r\.yaml:5:5: unknown key "Work_Mem" in standby settings/);
  });

  it('allows one routing document: a second one names where the first is', async () => {
    const one = yaml('routing:', '  replicas: [{ name: r1, url_env: R1_URL }]');
    const errors = await errorsOf({ 'a.yaml': one, 'b.yaml': one });

    expect(errors).toEqual([`b.yaml:1:1: a second routing document (the first is at ${policies?.file('a.yaml')}:1:1) (declare every replica in one routing document)`]);
  });

  it('turns a replica variable missing from the environment into an error naming the variable and the policy line', async () => {
    const { desired } = await load({ 'routing.yaml': ROUTING });
    const routing = desired.routing;
    if (routing === undefined) throw new Error('no routing');

    expect(() => resolveReplicas(routing, {})).toThrow(RoutingConfigError);
    expect(() => resolveReplicas(routing, { REPLICA_URL: '  ' })).toThrow(/routing\.yaml:4:16: replica standby1: the environment variable REPLICA_URL is not set/);
    expect(resolveReplicas(routing, { REPLICA_URL: 'postgres://r/db' })).toEqual([{ name: 'standby1', url: 'postgres://r/db' }]);
  });
});
