import pg from 'pg';
import { settingsOf } from '../connection/connection-settings.ts';
import { connect } from '../connection/open-connection.ts';
import { SERVER_IDENTITY_SQL, type ServerIdentityRow, type SettingRow } from '../catalog/replica-queries.ts';
import { canonicalActual, canonicalSetting } from '../diff/setting-value.ts';
import type { Plan } from '../plan/plan.ts';
import type { ReplicaStep } from '../plan/routing-steps.ts';
import { errorLine } from '../replica-lag/monitor-connection.ts';
import type { Environment } from '../routing/router-options.ts';
import { ensureReplicaSettingRegistry, writeReplicaSetting } from '../store/replica-setting-registry.ts';
import { ApplyError } from './apply.ts';

/**
 * Runs plan steps that belong to a replica on that replica's own connection. The URL comes from the
 * environment at apply time (a saved plan holds only the variable's name), and before anything runs
 * the server behind it is checked again: in recovery, a standby of this very primary, same database.
 * What pgwarden set is recorded on the primary, the only writable place.
 */
export interface ReplicaStepRunner {
  run(step: ReplicaStep, onStatement: (sql: string) => void, onNotice: (message: string) => void): Promise<void>;
  close(): Promise<void>;
}

const TIMEOUT_MS = 10_000;
const SETTING_SQL = `SELECT s.name, s.setting, s.unit, s.vartype, s.context, s.enumvals, s.min_val, s.max_val, s.pending_restart
  FROM pg_catalog.pg_settings s WHERE s.name = $1`;

export function replicaStepRunner(primary: pg.ClientBase, env: Environment): ReplicaStepRunner {
  const clients = new Map<string, Promise<pg.Client>>();
  let registryReady = false;

  const open = async (step: ReplicaStep): Promise<pg.Client> => {
    const { name, urlEnv } = step.replica;
    const url = env[urlEnv];
    if (url === undefined || url.trim() === '') {
      throw new ApplyError(`replica ${name}: the environment variable ${urlEnv} is not set`, undefined, `set ${urlEnv} to the replica's connection URL`);
    }
    let client: pg.Client;
    try {
      client = await connect(settingsOf(url, env, urlEnv), { application_name: 'pgwarden apply', connectionTimeoutMillis: TIMEOUT_MS, statement_timeout: TIMEOUT_MS });
    } catch (error) {
      throw new ApplyError(`cannot connect to replica ${name} (${urlEnv}): ${errorLine(error)}`);
    }
    const [mine, theirs] = await Promise.all([primary.query<ServerIdentityRow>(SERVER_IDENTITY_SQL), client.query<ServerIdentityRow>(SERVER_IDENTITY_SQL)]);
    const p = mine.rows[0];
    const r = theirs.rows[0];
    const wrong =
      r === undefined || p === undefined
        ? 'it returned no identity'
        : !r.in_recovery
          ? 'it is not in recovery (a primary, not a standby)'
          : r.system_identifier !== p.system_identifier
            ? `it belongs to another cluster (system identifier ${r.system_identifier})`
            : r.database !== p.database
              ? `it is connected to database "${r.database}", not "${p.database}"`
              : null;
    if (wrong !== null) {
      await client.end().catch(() => undefined);
      throw new ApplyError(`refusing to change replica ${name} (${urlEnv}): ${wrong}`, undefined, `check ${urlEnv}; nothing was changed on it`);
    }
    return client;
  };

  const clientFor = (step: ReplicaStep): Promise<pg.Client> => {
    let client = clients.get(step.replica.name);
    if (client === undefined) {
      client = open(step);
      clients.set(step.replica.name, client);
    }
    return client;
  };

  const record = async (step: ReplicaStep): Promise<void> => {
    if (!registryReady) {
      await ensureReplicaSettingRegistry(primary);
      registryReady = true;
    }
    await writeReplicaSetting(primary, step);
  };

  return {
    async run(step, onStatement, onNotice) {
      const client = await clientFor(step);
      const before = (await client.query<SettingRow>(SETTING_SQL, [step.setting])).rows[0];
      for (const sql of step.sql) {
        onStatement(`[${step.replica.name}] ${sql}`);
        try {
          await client.query(sql);
        } catch (error) {
          throw new ApplyError(`replica ${step.replica.name}: ${errorLine(error)}`, sql);
        }
      }
      if (step.needsRestart) {
        onNotice(`${step.setting} on replica ${step.replica.name} takes effect when that standby restarts; pgwarden does not restart servers`);
      } else {
        await awaitReload(client, step, before);
      }
      await record(step);
    },
    async close() {
      const opened = await Promise.all([...clients.values()].map((c) => c.catch(() => null)));
      await Promise.all(opened.map((c) => c?.end().catch(() => undefined)));
    },
  };
}

/**
 * pg_reload_conf() only signals the postmaster; the new value reaches backends a moment later. Wait
 * (briefly) until this session sees it, so that a plan run right after apply sees it too.
 */
async function awaitReload(client: pg.Client, step: ReplicaStep, before: SettingRow | undefined): Promise<void> {
  const wanted = before !== undefined && step.value !== undefined ? canonicalSetting(step.value, before) : null;
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    const row = (await client.query<SettingRow>(SETTING_SQL, [step.setting])).rows[0];
    if (row === undefined) return;
    if (wanted?.ok === true ? canonicalActual(row) === wanted.canonical : row.setting !== before?.setting) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Settings that take effect only at a restart are refused unless the user said so. */
export function restartRefusal(plan: Plan, allowRestart: boolean): { readonly message: string; readonly hint: string } | null {
  if (allowRestart) return null;
  const restart = plan.changes.flatMap((c) => c.steps).filter((s): s is ReplicaStep => s.kind === 'replica' && s.needsRestart);
  if (restart.length === 0) return null;
  const names = restart.map((s) => `${s.setting} on ${s.replica.name}`).join(', ');
  return {
    message: `the plan changes settings that need a restart of the standby (${names}); nothing was applied`,
    hint: 're-run with --allow-restart to write them with ALTER SYSTEM, then restart the standby yourself (pgwarden never restarts a server)',
  };
}
