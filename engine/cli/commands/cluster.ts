import { clusterDown, clusterStatus, clusterUp, ClusterError, defaultBaseDir, type ClusterStatus } from '../../cluster/embedded-cluster.ts';
import { EXAMPLE_DATABASE, ensureExampleDatabase } from '../../cluster/example-database.ts';
import { withDatabase } from '../../cluster/local-address.ts';
import { CliError, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';

function portOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CliError(`--${name} must be a port number (1-65535), got "${value}"`);
  return port;
}

function asCliError(error: unknown): never {
  if (error instanceof ClusterError) throw new CliError(error.message, error.hint);
  throw error;
}

export const upOptions = defineOptions({
  port: { type: 'string', value: 'PORT', byDefault: '5432', description: 'the primary\'s port' },
  'standby-port': { type: 'string', value: 'PORT', byDefault: '5433', description: 'the standby\'s port' },
  'no-example': { type: 'boolean', description: 'do not load the example platform\'s tables' },
});

export const downOptions = defineOptions({
  destroy: { type: 'boolean', description: 'also delete the data directory' },
});

export const statusOptions = defineOptions({});

export async function upCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, upOptions);
  const urls = await clusterUp({
    baseDir: io.env['PGWARDEN_HOME'] ?? defaultBaseDir(),
    primaryPort: portOption(values.port, 'port'),
    standbyPort: portOption(values['standby-port'], 'standby-port'),
    log: (line) => io.stderr(`${line}\n`),
  }).catch(asCliError);
  // The bundled policies (policies/) describe the example platform: give them its tables, once, so the
  // quickstart's `plan` has something to plan. Small scale takes seconds; later runs find it loaded.
  const example = values['no-example']
    ? null
    : await ensureExampleDatabase(urls.primaryUrl, { name: EXAMPLE_DATABASE, scale: 'small', onProgress: (m) => io.stderr(`  example: ${m}\n`) });
  const databaseUrl = example?.url ?? urls.primaryUrl;
  const replicaUrl = example ? withDatabase(urls.standbyUrl, EXAMPLE_DATABASE) : urls.standbyUrl;
  if (values.json) {
    io.stdout(`${JSON.stringify({ ...urls, ...(example ? { exampleUrl: example.url } : {}) }, null, 2)}\n`);
    return 0;
  }
  io.stdout(
    [
      'PostgreSQL 16 primary and streaming hot standby are up.',
      `  primary: ${urls.primaryUrl}`,
      `  standby: ${urls.standbyUrl}`,
      ...(example ? [`  example: ${example.url}  (the example platform at small scale, for the policies in policies/)`] : []),
      '',
      `export DATABASE_URL=${databaseUrl}`,
      `export REPLICA_URL=${replicaUrl}`,
      '',
    ].join('\n'),
  );
  return 0;
}

export async function downCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, downOptions);
  await clusterDown({ baseDir: io.env['PGWARDEN_HOME'] ?? defaultBaseDir(), destroy: values.destroy ?? false }).catch(asCliError);
  io.stdout(values.destroy ? 'Stopped the embedded cluster and deleted its data.\n' : 'Stopped the embedded cluster (data kept; `pgwarden up` restarts it).\n');
  return 0;
}

function describe(status: ClusterStatus): string {
  if (!status.initialised) return 'No embedded cluster here yet: `pgwarden up` creates one.\n';
  const node = (n: ClusterStatus['primary']): string => {
    const state = n.accepting ? (n.inRecovery ? 'running, in recovery (hot standby)' : 'running, accepting writes') : n.running ? `running, not answering${n.error ? `: ${n.error}` : ''}` : 'DOWN';
    return `  ${n.role.padEnd(8)} ${n.url}  ${state}`;
  };
  const r = status.replication;
  // pg_stat_replication's replay_lag is NULL both when a streaming standby has caught up and when
  // there is no standby at all: only a streaming standby's NULL means "0 ms".
  const lag = !r
    ? status.primary.accepting
      ? '  replication: no standby connected, lag unknown'
      : '  replication: unknown (primary down)'
    : r.state !== 'streaming'
      ? `  replication: ${r.state}, lag unknown (the standby is not streaming)`
      : `  replication: ${r.state}, replay lag ${r.replayLagMs === null ? '0 ms (caught up)' : `${r.replayLagMs.toFixed(1)} ms`}, ${r.lagBytes ?? 0} bytes behind`;
  return `${[node(status.primary), node(status.standby), lag].join('\n')}\n`;
}

/** Healthy: both servers answer and the standby streams. Anything less is worth a non-zero exit in a script. */
export function clusterHealthy(status: ClusterStatus): boolean {
  return !status.initialised || (status.primary.accepting && status.standby.accepting && status.replication?.state === 'streaming');
}

export async function statusCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, statusOptions);
  const status = await clusterStatus({ baseDir: io.env['PGWARDEN_HOME'] ?? defaultBaseDir() }).catch(asCliError);
  io.stdout(values.json ? `${JSON.stringify(status, null, 2)}\n` : describe(status));
  return clusterHealthy(status) ? 0 : 1;
}
