import pg from 'pg';
import { SESSION_ATTRIBUTES_SQL, type SessionAttributesRow } from '../catalog/session-queries.ts';
import { ConnectionError } from './connection-error.ts';
import {
  describeHost,
  isConnectionSettings,
  resolveConnection,
  settingsOf,
  type ConnectionSettings,
  type ConnectionTarget,
  type HostTarget,
  type TargetSessionAttrs,
} from './connection-settings.ts';
import { passwordFromFile } from './pgpass.ts';
import { tlsOptions, transportOrder, type Transport } from './tls-options.ts';

/**
 * What a caller adds to the user's connection: pgwarden's name for the session, timeouts, pool sizes.
 * The user's own `application_name` and `connect_timeout` win over the caller's, as libpq's
 * `fallback_application_name` does.
 */
export type SessionOptions = Omit<pg.ClientConfig, 'connectionString' | 'host' | 'port' | 'user' | 'password' | 'database' | 'ssl' | 'options' | 'client_encoding'>;
export type PoolOptions = Omit<pg.PoolConfig, 'connectionString' | 'host' | 'port' | 'user' | 'password' | 'database' | 'ssl' | 'options' | 'client_encoding' | 'Client'>;

type DriverConfig = pg.ClientConfig & { sslnegotiation?: 'postgres' | 'direct' };

function passwordFor(settings: ConnectionSettings, target: HostTarget): string | (() => Promise<string>) {
  if (settings.password !== undefined) return settings.password;
  // Asked only when the server wants a password, as libpq reads the password file only then.
  return async () => {
    const found = passwordFromFile(settings.passfile, {
      // libpq matches a Unix socket connection against "localhost".
      host: target.host.startsWith('/') ? 'localhost' : target.host,
      port: String(target.port),
      database: settings.database,
      user: settings.user,
    });
    if (found.kind === 'found') return found.password;
    throw new ConnectionError(
      `the server asks for a password for user "${settings.user}" and none was given${found.kind === 'ignored' ? ` (${found.reason})` : ''}`,
      `put it in the URL, in PGPASSWORD, or in ${settings.passfile} (mode 0600)`,
    );
  };
}

function driverConfig(settings: ConnectionSettings, target: HostTarget, transport: Transport, session: SessionOptions): DriverConfig {
  const applicationName = settings.applicationName ?? session.application_name ?? settings.fallbackApplicationName;
  const timeout = settings.connectTimeoutMs ?? session.connectionTimeoutMillis;
  return {
    ...session,
    host: target.hostaddr ?? target.host,
    port: target.port,
    user: settings.user,
    database: settings.database,
    password: passwordFor(settings, target),
    ssl: transport.kind === 'tls' ? transport.options : false,
    // Explicit, so that node-postgres never falls back to its own reading of PGSSLNEGOTIATION.
    sslnegotiation: settings.ssl.negotiation,
    ...(applicationName === undefined ? {} : { application_name: applicationName }),
    ...(timeout === undefined ? {} : { connectionTimeoutMillis: timeout }),
    ...(settings.options === undefined ? {} : { options: settings.options }),
    ...(settings.clientEncoding === undefined ? {} : { client_encoding: settings.clientEncoding }),
    ...(settings.keepAlive === undefined ? {} : { keepAlive: settings.keepAlive }),
    ...(settings.keepAliveIdleMs === undefined ? {} : { keepAliveInitialDelayMillis: settings.keepAliveIdleMs }),
  };
}

const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT', 'EACCES', 'EPIPE']);
// libpq's wording for what the OS said, so that the line reads as psql's would.
const SOCKET_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'Connection refused',
  ECONNRESET: 'Connection reset by peer',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  ETIMEDOUT: 'Connection timed out',
  ENOTFOUND: 'could not translate host name to address: Name or service not known',
  EAI_AGAIN: 'could not translate host name to address: Temporary failure in name resolution',
};
const UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return messageOf(error.errors[0]);
  const message = error instanceof Error ? error.message : String(error);
  return message === '' ? (codeOf(error) ?? 'unknown error') : message;
}

/** The host could not be reached at all: libpq moves on to the next host without trying the other transport. */
function unreachable(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.every(unreachable);
  const code = codeOf(error);
  return (code !== undefined && SOCKET_CODES.has(code)) || messageOf(error) === 'timeout expired';
}

/** pg_hba rejected the session for its encryption: the other transport may be the one it accepts. */
function rejectedForEncryption(error: unknown): boolean {
  return codeOf(error) === '28000' && /no pg_hba\.conf entry/u.test(messageOf(error));
}

interface Failure {
  readonly message: string;
  readonly hint?: string;
  /** A rejection that says little (the other transport's result is the telling one). */
  readonly weak: boolean;
  readonly code?: string;
}

function describeFailure(error: unknown, settings: ConnectionSettings, target: HostTarget, transport: Transport): Failure {
  const failure = describeFailureText(error, settings, target, transport);
  const code = error instanceof AggregateError ? codeOf(error.errors[0]) : codeOf(error);
  return code === undefined ? failure : { ...failure, code };
}

function describeFailureText(error: unknown, settings: ConnectionSettings, target: HostTarget, transport: Transport): Failure {
  const where = `${describeHost(target)} failed`;
  if (error instanceof ConnectionError) return { message: `${where}: ${error.message}`, ...(error.hint === undefined ? {} : { hint: error.hint }), weak: false };
  const code = codeOf(error);
  const message = messageOf(error);
  const mode = settings.ssl.mode;
  const roots = settings.ssl.rootCert === 'system' ? 'the system store' : settings.ssl.rootCert;
  if (code !== undefined && UNTRUSTED_CODES.has(code)) {
    return {
      message: `${where}: the server's certificate is not trusted (${message.replace(/\.$/u, '')}; sslmode=${mode}, root certificates from ${roots})`,
      hint: `give the CA that signed it with sslrootcert=FILE (your provider's CA bundle, see docs/managed-databases.md)${mode === 'verify-ca' || mode === 'verify-full' ? ', or sslmode=require to encrypt without verifying' : ''}`,
      weak: false,
    };
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return { message: `${where}: the server's certificate is not valid now (${message}; sslmode=${mode})`, weak: false };
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return {
      message: `${where}: the server's certificate does not match the host name "${target.host}" (sslmode=verify-full; the certificate names ${certificateNames(error)})`,
      hint: 'connect with a host name the certificate names, or use sslmode=verify-ca to check the certificate chain only',
      weak: false,
    };
  }
  if (message === 'The server does not support SSL connections') {
    return { message: `${where}: the server does not support SSL, but sslmode=${mode} requires it`, hint: 'use sslmode=prefer or disable, or enable ssl on the server', weak: mode === 'prefer' };
  }
  if (message === 'timeout expired') {
    return { message: `${where}: timeout expired`, hint: 'check the host and port, and that a firewall lets the connection through (connect_timeout sets the wait)', weak: false };
  }
  if (code !== undefined && SOCKET_CODES.has(code)) {
    return { message: `${where}: ${SOCKET_REASONS[code] ?? message}`, hint: 'check the host and port, and that the server is running', weak: false };
  }
  void transport;
  return { message: `${where}: ${message}`, weak: rejectedForEncryption(error) };
}

/** The names a certificate was issued for, from Node's host-name error: its subjectAltName, else its CN. */
function certificateNames(error: unknown): string {
  const cert = (error as { cert?: { subjectaltname?: string; subject?: { CN?: string } } }).cert;
  return cert?.subjectaltname ?? (cert?.subject?.CN === undefined ? 'other hosts' : `CN=${cert.subject.CN}`);
}

type HostOutcome = { readonly kind: 'connected'; readonly client: pg.Client; readonly config: DriverConfig } | { readonly kind: 'failed'; readonly failure: Failure };

async function openClient(config: DriverConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  // A connection that breaks later surfaces on the caller's next query; the event must not crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/**
 * Servers that answered "no SSL" to an SSLRequest lately. libpq's `prefer` goes on in the clear on the same
 * connection; node-postgres closes it, so each `prefer` connection to such a server would cost a second
 * connection (and a second backend). `prefer` never guaranteed encryption (anyone on the path can answer
 * "no"), so remembering the server's own answer for a minute loses nothing and saves that connection.
 */
const NO_SSL_MEMORY_MS = 60_000;
const answeredNoSsl = new Map<string, number>();
const serverKey = (target: HostTarget): string => `${target.hostaddr ?? target.host}:${target.port}`;

function transportsFor(settings: ConnectionSettings, target: HostTarget): readonly ('plain' | 'tls')[] {
  const order = transportOrder(settings.ssl.mode, target);
  if (settings.ssl.mode !== 'prefer') return order;
  const until = answeredNoSsl.get(serverKey(target));
  if (until === undefined) return order;
  if (until > Date.now()) return ['plain'];
  answeredNoSsl.delete(serverKey(target));
  return order;
}

/** One host, with the transports its sslmode allows, in libpq's order. */
async function connectHost(settings: ConnectionSettings, target: HostTarget, session: SessionOptions): Promise<HostOutcome> {
  const failures: Failure[] = [];
  for (const kind of transportsFor(settings, target)) {
    let transport: Transport;
    try {
      transport = kind === 'plain' ? { kind: 'plain' } : tlsOptions(settings.ssl, target);
    } catch (error) {
      failures.push(describeFailure(error, settings, target, { kind: 'plain' }));
      break;
    }
    const config = driverConfig(settings, target, transport, session);
    try {
      return { kind: 'connected', client: await openClient(config), config };
    } catch (error) {
      if (messageOf(error) === 'The server does not support SSL connections') answeredNoSsl.set(serverKey(target), Date.now() + NO_SSL_MEMORY_MS);
      failures.push(describeFailure(error, settings, target, transport));
      if (unreachable(error) || error instanceof ConnectionError) break;
    }
  }
  const telling = [...failures].reverse().find((f) => !f.weak) ?? failures[failures.length - 1];
  return { kind: 'failed', failure: telling ?? { message: `${describeHost(target)} failed: no connection attempt was possible`, weak: false } };
}

async function sessionMismatch(client: pg.Client, want: TargetSessionAttrs): Promise<string | null> {
  if (want === 'any') return null;
  const { rows } = await client.query<SessionAttributesRow>(SESSION_ATTRIBUTES_SQL);
  const row = rows[0];
  if (row === undefined) return 'could not read the session state';
  switch (want) {
    case 'read-write':
      return row.read_only ? 'session is read-only' : null;
    case 'read-only':
      return row.read_only ? null : 'session is not read-only';
    case 'primary':
      return row.in_recovery ? 'server is in hot standby mode' : null;
    case 'standby':
    case 'prefer-standby':
      return row.in_recovery ? null : 'server is not in hot standby mode';
  }
}

export interface OpenedConnection {
  readonly client: pg.Client;
  /** The driver configuration that reached a suitable server: what a pool's further connections use. */
  readonly config: DriverConfig;
}

/**
 * Tries the hosts in order, each with the transports its sslmode allows, until one accepts and matches
 * `target_session_attrs` (`prefer-standby`: a standby if any host is one, else any host).
 */
export async function openConnection(settings: ConnectionSettings, session: SessionOptions = {}): Promise<OpenedConnection> {
  const failures: Failure[] = [];
  const passes: TargetSessionAttrs[] = settings.targetSessionAttrs === 'prefer-standby' ? ['standby', 'any'] : [settings.targetSessionAttrs];
  for (const want of passes) {
    for (const target of settings.hosts) {
      const outcome = await connectHost(settings, target, session);
      if (outcome.kind === 'failed') {
        failures.push(outcome.failure);
        continue;
      }
      const mismatch = await sessionMismatch(outcome.client, want).catch((error: unknown) => messageOf(error));
      if (mismatch === null) return { client: outcome.client, config: outcome.config };
      await outcome.client.end().catch(() => undefined);
      failures.push({ message: `${describeHost(target)} failed: ${mismatch} (target_session_attrs=${settings.targetSessionAttrs})`, weak: false });
    }
  }
  const unique = failures.filter((f, i) => failures.findIndex((g) => g.message === f.message) === i);
  const hint = unique.find((f) => f.hint !== undefined)?.hint;
  throw new ConnectionError(`cannot connect to the database: ${unique.map((f) => f.message).join('; ')}`, hint, unique[unique.length - 1]?.code);
}

/** A connected client for these settings; the caller ends it. */
export async function connect(settings: ConnectionSettings, session: SessionOptions = {}): Promise<pg.Client> {
  return (await openConnection(settings, session)).client;
}

/** One attempt is all libpq would make: a single host, a single transport, any session. */
function fixedConfig(settings: ConnectionSettings, session: SessionOptions): DriverConfig | null {
  const [only] = settings.hosts;
  if (only === undefined || settings.hosts.length !== 1 || settings.targetSessionAttrs !== 'any') return null;
  const order = transportsFor(settings, only);
  if (order.length !== 1) return null;
  return driverConfig(settings, only, order[0] === 'plain' ? { kind: 'plain' } : tlsOptions(settings.ssl, only), session);
}

/**
 * A `pg.Pool` for these settings. When libpq would make a single attempt (one host, one transport) the
 * pool connects as it always does. Otherwise (several hosts, target_session_attrs, `prefer`/`allow`) the
 * first connection goes through `openConnection`, and the pool's connections go where it succeeded until
 * one fails to connect, which makes the next one search again.
 */
export function createPool(settings: ConnectionSettings, options: PoolOptions = {}): pg.Pool {
  const fixed = fixedConfig(settings, options);
  if (fixed !== null) return new pg.Pool({ ...options, ...fixed });
  return new FailoverPool(settings, options);
}

class FailoverPool extends pg.Pool {
  readonly #settings: ConnectionSettings;
  readonly #session: PoolOptions;
  readonly #chosen: { config: DriverConfig | null };
  #choosing: Promise<void> | null = null;

  constructor(settings: ConnectionSettings, options: PoolOptions) {
    const chosen: { config: DriverConfig | null } = { config: null };
    // pg-pool makes each connection with `new Client(options)`: this one connects where the search ended.
    class ChosenClient extends pg.Client {
      constructor(config: pg.ClientConfig = {}) {
        super({ ...config, ...chosen.config });
      }
    }
    super({ ...options, Client: ChosenClient });
    this.#settings = settings;
    this.#session = options;
    this.#chosen = chosen;
    this.on('error', () => {
      this.#chosen.config = null;
    });
  }

  #choose(): Promise<void> {
    if (this.#chosen.config !== null) return Promise.resolve();
    this.#choosing ??= openConnection(this.#settings, this.#session)
      .then(async ({ client, config }) => {
        this.#chosen.config = config;
        await client.end().catch(() => undefined);
      })
      .finally(() => {
        this.#choosing = null;
      });
    return this.#choosing;
  }

  override connect(): Promise<pg.PoolClient>;
  override connect(callback: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void): void;
  override connect(
    callback?: (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void,
  ): Promise<pg.PoolClient> | void {
    const forget = (error: unknown): never => {
      if (unreachable(error)) this.#chosen.config = null;
      throw error;
    };
    const connected = this.#choose().then(() => super.connect().catch(forget));
    if (callback === undefined) return connected;
    connected.then(
      (client) => callback(undefined, client, (release) => client.release(release as Error | boolean | undefined)),
      (error: unknown) => callback(error instanceof Error ? error : new Error(String(error)), undefined, () => undefined),
    );
  }
}

/**
 * What the routing library accepts for a server: a URL (resolved with libpq's rules against the
 * process's environment), resolved settings, or the application's own node-postgres configuration.
 * A configuration carrying a `connectionString` is resolved too (its other fields are session options),
 * so that the driver never reads an sslmode itself; one without is the application's own and is used as
 * it is.
 */
export type ConnectionSpec = ConnectionTarget | pg.ClientConfig;

function splitDriverConfig(config: pg.ClientConfig): { settings: ConnectionSettings; session: SessionOptions } | null {
  const { connectionString, host: _h, port: _p, user: _u, password: _pw, database: _d, ssl: _s, options: _o, client_encoding: _c, ...session } = config;
  if (connectionString === undefined) return null;
  return { settings: resolveConnection({ connectionString, env: process.env }), session };
}

/** A connected client for any spec; `session` adds to (and for a driver configuration, overrides) its options. */
export async function connectSpec(spec: ConnectionSpec, session: SessionOptions = {}): Promise<pg.Client> {
  if (typeof spec === 'string' || isConnectionSettings(spec)) return connect(settingsOf(spec), session);
  const split = splitDriverConfig(spec);
  if (split !== null) return connect(split.settings, { ...split.session, ...session });
  const client = new pg.Client({ ...spec, ...session });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/** A pool for any spec, as `connectSpec` reads it; `options` are the caller's pool and session options. */
export function createPoolFor(spec: ConnectionTarget | pg.PoolConfig, options: PoolOptions = {}): pg.Pool {
  if (typeof spec === 'string' || isConnectionSettings(spec)) return createPool(settingsOf(spec), options);
  const split = splitDriverConfig(spec);
  if (split !== null) return createPool(split.settings, { ...split.session, ...options });
  return new pg.Pool({ ...spec, ...options });
}
