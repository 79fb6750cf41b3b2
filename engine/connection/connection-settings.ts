import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';
import { ConnectionError } from './connection-error.ts';
import { parseConnectionString, type ConnectionOptions } from './connection-string.ts';
import { LIBPQ_KEYWORDS, LIBPQ_OPTIONS } from './libpq-options.ts';
import { readService, serviceFileLocations } from './service-file.ts';

export type Environment = Readonly<Record<string, string | undefined>>;

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
export type TargetSessionAttrs = 'any' | 'read-write' | 'read-only' | 'primary' | 'standby' | 'prefer-standby';

/** One server to try: a host name (or a Unix socket directory), the address to dial instead (`hostaddr`), a port. */
export interface HostTarget {
  readonly host: string;
  readonly hostaddr?: string;
  readonly port: number;
}

/**
 * A connection with libpq's meanings, every default applied: what `psql` would connect to with the same
 * URL, variables and files. Made by `resolveConnection`, turned into driver configuration by
 * `open-connection.ts`; nothing else reads a connection string.
 */
export interface ConnectionSettings {
  readonly kind: 'connection-settings';
  readonly hosts: readonly HostTarget[];
  readonly user: string;
  readonly database: string;
  /** Given in the URL, keywords, service file or PGPASSWORD; otherwise the password file is asked when the server wants one. */
  readonly password?: string;
  readonly passfile: string;
  readonly applicationName?: string;
  readonly fallbackApplicationName?: string;
  /** libpq's `connect_timeout`, per host; undefined: wait as long as the OS does. */
  readonly connectTimeoutMs?: number;
  readonly options?: string;
  readonly clientEncoding?: string;
  readonly keepAlive?: boolean;
  readonly keepAliveIdleMs?: number;
  readonly ssl: TlsSettings;
  readonly targetSessionAttrs: TargetSessionAttrs;
  readonly service?: string;
}

export interface TlsSettings {
  readonly mode: SslMode;
  /** A file, or `system` (the trusted roots of the TLS library). Defaults to `~/.postgresql/root.crt`. */
  readonly rootCert: string;
  readonly rootCertGiven: boolean;
  readonly cert: string;
  readonly key: string;
  readonly password?: string;
  readonly negotiation: 'postgres' | 'direct';
  readonly minVersion?: TlsVersion;
  readonly maxVersion?: TlsVersion;
}

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export interface ResolveInput {
  /** `--database-url`, `DATABASE_URL`, a replica's `url_env`: a URL or `keyword=value` pairs; undefined: only the environment. */
  readonly connectionString?: string;
  readonly env: Environment;
  /** Home directory for `~/.pgpass`, `~/.pg_service.conf`, `~/.postgresql/`: default the OS user's. */
  readonly home?: string;
  /** Where the answer came from, for error messages (`DATABASE_URL`, `REPLICA_URL`). */
  readonly source?: string;
}

/** Unix socket directories libpq builds look in (Debian's, then the source default). */
const SOCKET_DIRECTORIES = ['/var/run/postgresql', '/tmp'];

function checkKeywords(options: ConnectionOptions, where: string): void {
  for (const [keyword, value] of Object.entries(options)) {
    const known = LIBPQ_KEYWORDS.get(keyword);
    if (known === undefined) {
      throw new ConnectionError(`invalid connection option "${keyword}" in ${where}`, 'see the libpq connection parameters: https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS');
    }
    checkValue(keyword, value, where, known.supported);
  }
}

function checkValue(keyword: string, value: string, where: string, supported: readonly string[] | undefined): void {
  if (supported === undefined || supported.includes(value)) return;
  if (supported.length === 0) throw new ConnectionError(`connection option "${keyword}" (in ${where}) is not supported by pgwarden`, 'remove it; see docs/managed-databases.md for what pgwarden honours');
  const known = LIBPQ_KEYWORDS.get(keyword)?.supported;
  throw new ConnectionError(`${keyword} "${value}" (in ${where}) is not supported by pgwarden; it takes ${known?.join(', ') ?? ''}`);
}

/** The PG* variables as connection options, only for keywords nothing earlier set. */
function environmentOptions(env: Environment): { options: Record<string, string>; variables: Record<string, string> } {
  const options: Record<string, string> = {};
  const variables: Record<string, string> = {};
  for (const o of LIBPQ_OPTIONS) {
    if (o.env === undefined || o.keyword === 'service') continue;
    const value = env[o.env];
    if (value === undefined || value === '') continue;
    options[o.keyword] = value;
    variables[o.keyword] = o.env;
  }
  return { options, variables };
}

function list(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(',').map((s) => s.trim());
}

function defaultSocketDirectory(port: number): string | undefined {
  return SOCKET_DIRECTORIES.find((dir) => existsSync(path.join(dir, `.s.PGSQL.${port}`)));
}

function integer(keyword: string, value: string, where: string): number {
  if (!/^\s*-?\d+\s*$/u.test(value)) throw new ConnectionError(`invalid integer value "${value}" for connection option "${keyword}" (in ${where})`);
  return Number.parseInt(value, 10);
}

function hostTargets(options: ConnectionOptions, where: (keyword: string) => string): HostTarget[] {
  const hosts = list(options['host']);
  const addrs = list(options['hostaddr']);
  const ports = list(options['port']);
  const count = Math.max(hosts.length, addrs.length, 1);
  if (hosts.length > 1 && addrs.length > 0 && addrs.length !== hosts.length) {
    throw new ConnectionError(`could not match ${hosts.length} host names to ${addrs.length} hostaddr values`);
  }
  if (ports.length > 1 && ports.length !== count) throw new ConnectionError(`could not match ${ports.length} port numbers to ${count} hosts`);
  const portAt = (i: number): number => {
    const text = (ports.length === 1 ? ports[0] : ports[i]) ?? '';
    if (text === '') return 5432;
    const port = integer('port', text, where('port'));
    if (port < 1 || port > 65535) throw new ConnectionError(`invalid port number: "${text}" (in ${where('port')})`);
    return port;
  };
  return Array.from({ length: count }, (_, i) => {
    const port = portAt(i);
    const hostaddr = addrs[i] === undefined || addrs[i] === '' ? undefined : addrs[i];
    // No host: libpq's default Unix socket; where no server listens on one, localhost over TCP (what
    // libpq does on systems without Unix sockets, and what node-postgres always did).
    const host = hosts[i] === undefined || hosts[i] === '' ? (hostaddr ?? defaultSocketDirectory(port) ?? 'localhost') : (hosts[i] ?? 'localhost');
    return { host, port, ...(hostaddr === undefined ? {} : { hostaddr }) };
  });
}

/**
 * What the user gave, resolved as libpq does: the connection string's options first, then the service
 * file's (`service=` or `PGSERVICE`), then the `PG*` variables, then the defaults.
 *
 * @example
 * resolveConnection({ connectionString: 'postgres://app@db.internal/app?sslmode=verify-full', env: process.env })
 */
export function resolveConnection(input: ResolveInput): ConnectionSettings {
  const home = input.home ?? input.env['HOME'] ?? homedir();
  const sourceName = input.source ?? 'the connection string';
  const given = input.connectionString === undefined || input.connectionString.trim() === '' ? {} : parseConnectionString(input.connectionString);
  checkKeywords(given, sourceName);
  const origin: Record<string, string> = Object.fromEntries(Object.keys(given).map((k) => [k, sourceName]));
  let merged: Record<string, string> = { ...given };

  const service = given['service'] ?? (input.env['PGSERVICE'] === '' ? undefined : input.env['PGSERVICE']);
  if (service !== undefined) {
    const locations = serviceFileLocations(input.env, home);
    const fromService = readService(service, locations);
    checkKeywords(fromService, `service "${service}"`);
    for (const [k, v] of Object.entries(fromService)) {
      if (merged[k] !== undefined) continue;
      merged[k] = v;
      origin[k] = `service "${service}"`;
    }
  }
  const { options: fromEnv, variables } = environmentOptions(input.env);
  for (const [k, v] of Object.entries(fromEnv)) {
    if (merged[k] !== undefined) continue;
    const variable = variables[k] ?? k;
    checkValue(k, v, variable, LIBPQ_KEYWORDS.get(k)?.supported);
    merged[k] = v;
    origin[k] = variable;
  }
  const where = (keyword: string): string => origin[keyword] ?? sourceName;

  // requiressl is libpq's older spelling; sslmode wins when both are there.
  if (merged['sslmode'] === undefined && merged['requiressl'] !== undefined) {
    merged = { ...merged, sslmode: merged['requiressl'] === '1' ? 'require' : 'prefer' };
  }
  let hosts = hostTargets(merged, where);
  if (merged['load_balance_hosts'] === 'random') hosts = shuffle(hosts);

  const user = merged['user'] ?? osUser();
  const database = merged['dbname'] ?? user;
  const rootCertGiven = merged['sslrootcert'] !== undefined && merged['sslrootcert'] !== '';
  const rootCert = rootCertGiven ? (merged['sslrootcert'] ?? '') : path.join(home, '.postgresql', 'root.crt');
  // libpq 16+: sslrootcert=system makes verify-full the default and refuses anything weaker.
  const mode = (merged['sslmode'] ?? (rootCert === 'system' ? 'verify-full' : 'prefer')) as SslMode;
  if (rootCert === 'system' && mode !== 'verify-full') {
    throw new ConnectionError(`weak sslmode "${mode}" may not be used with sslrootcert=system (use "verify-full")`);
  }
  const connectTimeout = merged['connect_timeout'] === undefined ? undefined : integer('connect_timeout', merged['connect_timeout'], where('connect_timeout'));
  const keepAliveIdle = merged['keepalives_idle'] === undefined ? undefined : integer('keepalives_idle', merged['keepalives_idle'], where('keepalives_idle'));
  const negotiation = (merged['sslnegotiation'] ?? 'postgres') as 'postgres' | 'direct';
  if (negotiation === 'direct' && !['require', 'verify-ca', 'verify-full'].includes(mode)) {
    throw new ConnectionError(`weak sslmode "${mode}" may not be used with sslnegotiation=direct (use "require", "verify-ca", or "verify-full")`);
  }
  const password = merged['password'] === undefined || merged['password'] === '' ? undefined : merged['password'];
  return {
    kind: 'connection-settings',
    hosts,
    user,
    database,
    ...(password === undefined ? {} : { password }),
    passfile: merged['passfile'] ?? path.join(home, '.pgpass'),
    ...(merged['application_name'] === undefined ? {} : { applicationName: merged['application_name'] }),
    ...(merged['fallback_application_name'] === undefined ? {} : { fallbackApplicationName: merged['fallback_application_name'] }),
    // libpq: zero, negative or absent waits indefinitely; 1 s is raised to 2 s.
    ...(connectTimeout === undefined || connectTimeout <= 0 ? {} : { connectTimeoutMs: Math.max(connectTimeout, 2) * 1000 }),
    ...(merged['options'] === undefined ? {} : { options: merged['options'] }),
    ...(merged['client_encoding'] === undefined ? {} : { clientEncoding: merged['client_encoding'] }),
    ...(merged['keepalives'] === undefined ? {} : { keepAlive: merged['keepalives'] === '1' }),
    ...(keepAliveIdle === undefined ? {} : { keepAliveIdleMs: keepAliveIdle * 1000 }),
    ssl: {
      mode,
      rootCert,
      rootCertGiven,
      cert: merged['sslcert'] || path.join(home, '.postgresql', 'postgresql.crt'),
      key: merged['sslkey'] || path.join(home, '.postgresql', 'postgresql.key'),
      ...(merged['sslpassword'] === undefined ? {} : { password: merged['sslpassword'] }),
      negotiation,
      ...(merged['ssl_min_protocol_version'] === undefined ? { minVersion: 'TLSv1.2' as const } : { minVersion: merged['ssl_min_protocol_version'] as TlsVersion }),
      ...(merged['ssl_max_protocol_version'] === undefined ? {} : { maxVersion: merged['ssl_max_protocol_version'] as TlsVersion }),
    },
    targetSessionAttrs: (merged['target_session_attrs'] ?? 'any') as TargetSessionAttrs,
    ...(service === undefined ? {} : { service }),
  };
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    throw new ConnectionError('no user name given and the OS user has none', 'give one: postgres://USER@host/db, user=USER or PGUSER');
  }
}

function shuffle<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Which server an attempt went to, in libpq's words: `connection to server at "db" (10.0.0.5), port 5432`. */
export function describeHost(target: HostTarget): string {
  if (target.host.startsWith('/')) return `connection to server on socket "${path.join(target.host, `.s.PGSQL.${target.port}`)}"`;
  return `connection to server at "${target.host}"${target.hostaddr === undefined ? '' : ` (${target.hostaddr})`}, port ${target.port}`;
}

/** What code that opens connections accepts: settings already resolved, or a string to resolve with libpq's rules. */
export type ConnectionTarget = string | ConnectionSettings;

/** Settings as opposed to a node-postgres configuration object, where code accepts both. */
export function isConnectionSettings(value: unknown): value is ConnectionSettings {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'connection-settings';
}

/** A string is resolved against `env` (the process's, by default), as libpq would; settings pass through. */
export function settingsOf(target: ConnectionTarget, env: Environment = process.env, source?: string): ConnectionSettings {
  return typeof target === 'string' ? resolveConnection({ connectionString: target, env, ...(source === undefined ? {} : { source }) }) : target;
}
