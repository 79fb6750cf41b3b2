import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runWorkload } from '../../example/workload.ts';
import { apply, APPLY_DEFAULTS } from '../../apply/apply.ts';
import { makePlan } from '../../plan/make-plan.ts';
import type { DesiredState } from '../../policy/desired.ts';
import { loadPolicies } from '../../policy/load.ts';
import { renderPlanText, renderPolicyErrors } from '../../render/render-text.ts';
import { createRouter, routerOptionsFromPolicy, type RoutingPool } from '../../routing/index.ts';
import { settingsOf } from '../../connection/connection-settings.ts';
import { connect } from '../../connection/open-connection.ts';
import { CliError, type Io } from '../context.ts';
import { progressPrinter } from '../progress-printer.ts';

/** The example routing policy (one replica, REPLICA_URL): the demo points it at the embedded standby. */
const ROUTING_POLICY = fileURLToPath(new URL('../../../examples/routing', import.meta.url));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await sleep(50);
  }
  return check();
}

const ms = (value: number | null | undefined): string => (value === null || value === undefined ? '-' : value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`);

/**
 * The demo's routing step: plan and apply the routing policy against the embedded standby, run the
 * API's workload through the router, then pause replay on the standby to show reads leaving it and
 * coming back. Replay is always resumed, whatever happens.
 */
export async function routingDemo(
  io: Io,
  input: { readonly primaryUrl: string; readonly standbyUrl: string; readonly durationMs: number; readonly desired: DesiredState },
): Promise<void> {
  const shown = path.relative(io.cwd, ROUTING_POLICY) || '.';
  const loaded = await loadPolicies(ROUTING_POLICY, { displayDir: shown });
  const routing = loaded.desired.routing;
  if (loaded.errors.length > 0 || routing === undefined) {
    io.stderr(renderPolicyErrors(loaded.errors));
    throw new CliError('the example routing policy is invalid', undefined, 1, true);
  }
  // The demo's table policies plus the routing document, as if routing.yaml sat in policies/: a plan of
  // the routing document alone would read every table policy as removed.
  const desired: DesiredState = { ...input.desired, routing, files: [...input.desired.files, 'routing.yaml'] };
  // The policy names REPLICA_URL; here it is the embedded standby, whatever the shell says.
  const env = { ...io.env, REPLICA_URL: input.standbyUrl };

  const client = await connect(settingsOf(input.primaryUrl), { application_name: 'pgwarden demo' });
  try {
    const outcome = await makePlan(client, desired, new Date(), { env });
    if (!outcome.ok) {
      io.stderr(renderPolicyErrors(outcome.errors, 'planning'));
      throw new CliError('the example routing policy does not match the cluster', undefined, 1, true);
    }
    io.stdout(`  ${shown}/routing.yaml, with REPLICA_URL set to the embedded standby:\n\n`);
    io.stdout(renderPlanText(outcome.plan, { color: io.color }).replace(/^/gmu, '  '));
    const result = await apply({
      databaseUrl: input.primaryUrl,
      desired,
      env,
      ...APPLY_DEFAULTS,
      signal: io.signal,
      onEvent: progressPrinter(io),
    });
    io.stdout(result.plan.changes.length === 0 ? '  nothing to do: applied by an earlier run\n' : `  applied ${result.applied} change(s)\n`);
    const again = await makePlan(client, desired, new Date(), { env });
    io.stdout(`  plan again: ${again.ok && again.plan.changes.length === 0 ? 'No changes.' : 'changes remain (unexpected)'}\n`);
  } finally {
    await client.end().catch(() => undefined);
  }

  // Each API request is its own session: a request's writes do not hold other requests' reads.
  const router = createRouter({
    ...routerOptionsFromPolicy(routing, { primary: { connectionString: input.primaryUrl, max: 6, application_name: 'pgwarden demo (router)' }, env }),
    readYourWritesScope: 'session',
  });
  router.on('error', () => undefined);
  try {
    await router.ready();
    await waitUntil(() => router.metrics().replicas[0]?.healthy === true, 5000);
    const durationMs = Math.min(input.durationMs, 5000);
    io.stdout(`\n  The API's workload for ${durationMs / 1000} s through the router (a pg.Pool):\n`);
    await runWorkload(router, { durationMs, ratePerSecond: 20, concurrency: 4 });
    io.stdout(summary(router));
    await fallbackDemo(io, router, input.standbyUrl);
  } finally {
    await router.end();
  }
}

function summary(router: RoutingPool): string {
  const m = router.metrics();
  const replica = m.replicas[0];
  const lag = replica?.lag;
  const writes = m.primaryStatements.write + m.primaryStatements.function;
  return [
    `  reads: ${replica?.reads ?? 0} on ${replica?.name ?? 'the standby'}, ${m.targets.primary - writes} on the primary; writes: ${writes} on the primary; failed: ${m.failedReads}`,
    `  lag of ${replica?.name}: now ${ms(lag?.lagMs)} (${lag?.lagSource ?? '-'}), p50 ${ms(replica?.window.p50Ms)}, p99 ${ms(replica?.window.p99Ms)}, max ${ms(replica?.window.maxMs)} over ${replica?.window.samples ?? 0} samples`,
    `  measured two ways: heartbeat ${ms(lag?.heartbeatLagMs)} old (${m.heartbeat?.writes ?? 0} beats), pg_stat_replication.replay_lag ${ms(lag?.primaryView?.replayLagMs)}, ${lag?.bytesBehind ?? '-'} bytes to replay`,
    '',
  ].join('\n');
}

/** Pauses replay until the router sees the standby past max_lag_ms, shows where reads go, resumes. */
async function fallbackDemo(io: Io, router: RoutingPool, standbyUrl: string): Promise<void> {
  const standby = await connect(settingsOf(standbyUrl), { application_name: 'pgwarden demo' });
  const where = async (): Promise<string> => {
    const before = router.metrics().targets.primary;
    for (let i = 0; i < 10; i += 1) await router.query('SELECT count(*) FROM public.tenants');
    const onPrimary = router.metrics().targets.primary - before;
    return onPrimary === 10 ? 'all 10 reads on the primary' : `${10 - onPrimary} of 10 reads on the standby`;
  };
  try {
    await standby.query('SELECT pg_catalog.pg_wal_replay_pause()');
    const started = Date.now();
    const lagging = await waitUntil(() => router.metrics().replicas[0]?.reason === 'lag', 5000);
    const lagMs = router.metrics().replicas[0]?.lag?.lagMs;
    io.stdout(
      lagging
        ? `  replay paused: after ${Date.now() - started} ms the standby is ${ms(lagMs)} behind (max_lag_ms ${router.metrics().policy.maxLagMs}): ${await where()}\n`
        : '  replay paused, but the standby did not fall behind within 5 s (is the primary idle?)\n',
    );
  } finally {
    await standby.query('SELECT pg_catalog.pg_wal_replay_resume()').catch(() => undefined);
    await standby.end().catch(() => undefined);
  }
  const resumed = Date.now();
  const back = await waitUntil(() => router.metrics().replicas[0]?.healthy === true, 10_000);
  io.stdout(
    back
      ? `  replay resumed: the standby takes reads again after ${Date.now() - resumed} ms (hysteresis: under half of max_lag_ms for 1 s): ${await where()}\n`
      : '  replay resumed; the standby has not caught up within 10 s yet\n',
  );
}
