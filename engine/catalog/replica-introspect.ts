import type pg from 'pg';
import { settingsOf } from '../connection/connection-settings.ts';
import { connect } from '../connection/open-connection.ts';
import type { ActualReplica, ActualRouting } from './actual-routing.ts';
import type { DesiredRouting } from '../policy/desired-routing.ts';
import { sampleLagOnce } from '../replica-lag/lag-sampler.ts';
import { errorLine, isSqlError } from '../replica-lag/monitor-connection.ts';
import type { ResolvedReplica } from '../routing/router-options.ts';
import { query, type CatalogSession } from './introspect.ts';
import {
  FILE_SETTINGS_SQL,
  MANAGED_REPLICA_SETTINGS_SQL,
  ROUTING_OBJECTS_SQL,
  SERVER_IDENTITY_SQL,
  STANDBY_SETTINGS_SQL,
  type FileSettingRow,
  type ManagedReplicaSettingRow,
  type RoutingObjectsRow,
  type ServerIdentityRow,
  type SettingRow,
} from './replica-queries.ts';

const CONNECT_TIMEOUT_MS = 5000;

/**
 * The actual side of a routing plan: two or three round trips on the primary, and on each replica
 * (connected in parallel, each bounded by a timeout) its identity, one lag sample and its settings.
 * A replica that cannot be reached is a finding, not a failure of the plan.
 */
export async function introspectRouting(
  session: CatalogSession,
  routing: DesiredRouting,
  resolved: readonly ResolvedReplica[],
): Promise<ActualRouting> {
  const [identity] = await query<ServerIdentityRow>(session, SERVER_IDENTITY_SQL);
  const [objects] = await query<RoutingObjectsRow>(session, ROUTING_OBJECTS_SQL);
  if (identity === undefined || objects === undefined) throw new Error('the primary returned no identity row');
  const registry = objects.registry_exists ? await query<ManagedReplicaSettingRow>(session, MANAGED_REPLICA_SETTINGS_SQL) : [];

  const names = [...new Set([...routing.standbySettings.map((s) => s.name), ...registry.map((r) => r.setting_name)])];
  const replicas = await Promise.all(
    routing.replicas.map(async (replica): Promise<ActualReplica> => {
      const target = resolved.find((r) => r.name === replica.name);
      if (target === undefined) return { name: replica.name, state: 'unset' };
      return readReplica(session, target, names, resolved.length === 1);
    }),
  );
  return {
    primary: {
      identity,
      heartbeatExists: objects.heartbeat_exists,
      heartbeatColumns: objects.heartbeat_columns,
      routerMetricsExists: objects.router_metrics_exists,
      routerMetricsColumns: objects.router_metrics_columns,
      registry,
    },
    replicas,
  };
}

async function readReplica(session: CatalogSession, target: ResolvedReplica, names: readonly string[], sole: boolean): Promise<ActualReplica> {
  let client: pg.Client;
  try {
    client = await connect(settingsOf(target.url, process.env, `replica ${target.name}`), {
      application_name: 'pgwarden plan',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      statement_timeout: CONNECT_TIMEOUT_MS,
    });
  } catch (error) {
    return { name: target.name, state: 'unreachable', error: errorLine(error) };
  }
  try {
    const identity = (await client.query<ServerIdentityRow>(SERVER_IDENTITY_SQL)).rows[0];
    if (identity === undefined) return { name: target.name, state: 'unreachable', error: 'it returned no identity row' };
    const settings = (await client.query<SettingRow>(STANDBY_SETTINGS_SQL)).rows;
    const fileSettings = await readFileSettings(client, names);
    session.roundTrips += 1;
    const [lag] = await sampleLagOnce(
      session.client,
      [{ name: target.name, client, ...(target.applicationName === undefined ? {} : { applicationName: target.applicationName }) }],
      { soleReplica: sole },
    );
    if (lag === undefined) return { name: target.name, state: 'unreachable', error: 'no lag sample' };
    return { name: target.name, state: 'reached', identity, lag, settings, fileSettings };
  } catch (error) {
    return { name: target.name, state: 'unreachable', error: errorLine(error) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** pg_file_settings is superuser-only by default: "unknown" (null) rather than a failed plan. */
async function readFileSettings(client: pg.Client, names: readonly string[]): Promise<FileSettingRow[] | null> {
  if (names.length === 0) return [];
  try {
    return (await client.query<FileSettingRow>(FILE_SETTINGS_SQL, [names])).rows;
  } catch (error) {
    if (isSqlError(error) && error.code === '42501') return null;
    throw error;
  }
}
