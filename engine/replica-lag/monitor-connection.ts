import type pg from 'pg';
import { ConnectionError } from '../connection/connection-error.ts';
import { connectSpec, type ConnectionSpec } from '../connection/open-connection.ts';

/** A URL, resolved connection settings, or a node-postgres client configuration. */
export type { ConnectionSpec };

/**
 * One dedicated connection for background monitoring, reconnected on demand. Monitoring never borrows
 * from the application's pool (a busy pool must not delay a lag sample), and a stopped server costs a
 * refused connection per attempt, at most one attempt per `retryMs`.
 */
export interface MonitorConnection {
  query<R extends pg.QueryResultRow>(text: string, values?: readonly unknown[]): Promise<pg.QueryResult<R>>;
  /** True while a query is in flight: a tick skips a server that has not answered the previous one. */
  busy(): boolean;
  close(): Promise<void>;
}

export function monitorConnection(
  spec: ConnectionSpec,
  options: { readonly applicationName: string; readonly timeoutMs: number; readonly retryMs?: number; readonly setup?: string },
): MonitorConnection {
  const retryMs = options.retryMs ?? 500;
  let client: pg.Client | null = null;
  let connecting: Promise<pg.Client> | null = null;
  let lastFailure: { at: number; error: Error } | null = null;
  let inFlight = 0;
  let closed = false;

  const drop = (broken: pg.Client): void => {
    if (client === broken) client = null;
    void broken.end().catch(() => undefined);
  };

  const connect = async (): Promise<pg.Client> => {
    if (client !== null) return client;
    if (connecting !== null) return connecting;
    if (lastFailure !== null && Date.now() - lastFailure.at < retryMs) throw lastFailure.error;
    connecting = (async () => {
      let fresh: pg.Client | null = null;
      try {
        fresh = await connectSpec(spec, {
          application_name: options.applicationName,
          connectionTimeoutMillis: options.timeoutMs,
          statement_timeout: options.timeoutMs,
          // Client-side too: a server that stopped answering (not refusing) must not hang the monitor.
          query_timeout: options.timeoutMs * 2,
        });
        const opened = fresh;
        // A server going away must surface as a failed query, not as an unhandled 'error' event.
        opened.on('error', () => drop(opened));
        opened.on('end', () => {
          if (client === opened) client = null;
        });
        if (options.setup !== undefined) await fresh.query(options.setup);
        lastFailure = null;
        client = fresh;
        return fresh;
      } catch (error) {
        lastFailure = { at: Date.now(), error: error instanceof Error ? error : new Error(String(error)) };
        void fresh?.end().catch(() => undefined);
        throw lastFailure.error;
      } finally {
        connecting = null;
      }
    })();
    return connecting;
  };

  return {
    async query<R extends pg.QueryResultRow>(text: string, values: readonly unknown[] = []) {
      if (closed) throw new Error('the monitor connection is closed');
      inFlight += 1;
      try {
        const c = await connect();
        try {
          return await c.query<R>(text, [...values]);
        } catch (error) {
          // Any error outside SQL (a dropped connection, a client-side timeout) poisons the connection.
          if (!isSqlError(error) || connectionLevel(error)) drop(c);
          throw error;
        }
      } finally {
        inFlight -= 1;
      }
    },
    busy: () => inFlight > 0,
    async close() {
      closed = true;
      const c = client ?? (await connecting?.catch(() => null)) ?? null;
      client = null;
      await c?.end().catch(() => undefined);
    },
  };
}

/** One line of what went wrong, for metrics and the live page: never a URL, so never a password. */
export function errorLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  const text = message.replace(/postgres(?:ql)?:\/\/\S+/gu, '<url>').split('\n')[0] ?? '';
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}

/** An error the server reported (it has a SQLSTATE), as opposed to a socket or a client-side timeout. */
export function isSqlError(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/u.test(code);
}

// Socket errors (also on an AggregateError from Node's address racing), and node-postgres's and pg-pool's
// own messages for a connection that broke, never came up, or stopped answering (query_timeout).
const SOCKET_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN']);
const CONNECTION_FAILURE_MESSAGE =
  /^(?:Connection terminated|Connection ended|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Client was closed|The server does not support SSL|self[- ]signed certificate|unable to verify)/iu;

/**
 * An error outside SQL that says the server could not be reached or the connection broke — as opposed to
 * one the client raised before sending anything (a bad bind value, a wrong argument), which says nothing
 * about the server.
 */
export function isConnectionFailure(error: unknown): boolean {
  if (error instanceof ConnectionError) return true;
  const e = error as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && SOCKET_ERROR_CODES.has(e.code)) return true;
  return typeof e.message === 'string' && CONNECTION_FAILURE_MESSAGE.test(e.message);
}

/** Class 08 (connection exception) and 57P (operator intervention: shutdown, crash, starting up). */
export function connectionLevel(error: Error & { code: string }): boolean {
  return error.code.startsWith('08') || error.code.startsWith('57P');
}
