import type pg from 'pg';
import { ConnectionError } from '../connection/connection-error.ts';
import { resolveConnection, type ConnectionSettings } from '../connection/connection-settings.ts';
import { connect, type SessionOptions } from '../connection/open-connection.ts';
import { CliError, type Io } from './context.ts';

/** The variables that, without a URL, say which database libpq would connect to. */
const LIBPQ_TARGET_VARIABLES = ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGSERVICE'];

/** A connection problem as the CLI's one-line error. */
export function connectionCliError(error: unknown, prefix = 'cannot connect to the database'): CliError {
  if (error instanceof ConnectionError) {
    const message = error.message.startsWith('cannot connect to the database') ? error.message : `${prefix}: ${error.message}`;
    return new CliError(message, error.hint);
  }
  return new CliError(`${prefix}: ${error instanceof Error ? error.message : String(error)}`, 'check DATABASE_URL; `pgwarden status` shows the embedded cluster');
}

/**
 * The command's database, with libpq's meanings: `--database-url`, else `DATABASE_URL` (a URL or
 * `keyword=value` pairs), either one completed by the service file, the `PG*` variables and the defaults.
 */
export function commandConnection(flag: string | undefined, io: Io): ConnectionSettings {
  const given = flag ?? io.env['DATABASE_URL'];
  const source = flag !== undefined ? '--database-url' : 'DATABASE_URL';
  if ((given === undefined || given.trim() === '') && !LIBPQ_TARGET_VARIABLES.some((name) => (io.env[name] ?? '') !== '')) {
    throw new CliError('no database given', 'pass --database-url or set DATABASE_URL (`pgwarden up` prints one for the embedded cluster); the PG* variables and PGSERVICE work too');
  }
  try {
    return resolveConnection({ ...(given === undefined ? {} : { connectionString: given }), env: io.env, source });
  } catch (error) {
    throw connectionCliError(error, 'cannot use the connection');
  }
}

/** Runs `fn` with a connected client and ends it afterwards. */
export async function withClient<T>(settings: ConnectionSettings, io: Io, fn: (client: pg.Client) => Promise<T>, session: SessionOptions = {}): Promise<T> {
  void io;
  let client: pg.Client;
  try {
    client = await connect(settings, { application_name: 'pgwarden', connectionTimeoutMillis: 10_000, ...session });
  } catch (error) {
    throw connectionCliError(error);
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
