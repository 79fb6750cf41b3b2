import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { settingsOf, type ConnectionTarget } from '../connection/connection-settings.ts';
import { createPool } from '../connection/open-connection.ts';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { HEALTH_SESSION_SQL } from '../catalog/health-queries.ts';
import { STATEMENT_WINDOWS, type StatementWindowName } from '../live-health/statement-history.ts';
import { describeConnectionError, type HealthCollector } from '../live-health/health-collector.ts';
import { THRESHOLDS } from '../live-health/health-status.ts';
import { createEventStream } from './event-stream.ts';
import { CONTENT_TYPES, metricsFormat, renderMetrics } from './open-metrics.ts';
import { pgwardenSchemaHint } from '../store/schema.ts';
import { readHistory, readRun } from './site-data.ts';
import type { SiteKeeper } from './site-keeper.ts';
import { markStale, resolveStatic, sendFile } from './static-files.ts';

/**
 * `pgwarden serve`'s HTTP side, on one port: the built site, the JSON API and the event stream.
 *
 *   GET /api/health                 the collector's state and the latest snapshot
 *   GET /api/health/series?minutes  the figures of the last N minutes (1..60), for the charts
 *   GET /api/history?limit          history records, newest first, without plans
 *   GET /api/plans/:id              one record with its plan (SQL, locks, reasons)
 *   GET /api/statements/history?id one statement's calls and mean latency per checkpoint interval
 *   GET /api/statements?window     the workload's statements over the last 5s, 1h or 24h, by total time
 *   GET /api/stream                 Server-Sent Events: `snapshot` per poll, `state` per connection change
 *   GET /metrics                    the live figures for Prometheus (OpenMetrics, or the classic text format)
 *
 * Read-only: only GET and HEAD are answered, and the database sessions it opens are read-only. No answer
 * carries a connection string, a host or a password.
 */
export interface ServeServerOptions {
  readonly databaseUrl: ConnectionTarget | undefined;
  readonly collector: HealthCollector;
  readonly site: SiteKeeper | null;
  readonly host: string;
  readonly port: number;
  /** An origin allowed to read the API from a browser (a published report site); none by default. */
  readonly corsOrigin?: string | null;
  readonly statementTimeoutMs?: number;
}

export interface ServeServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function securityHeaders(res: ServerResponse): void {
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('x-frame-options', 'DENY');
  // Astro's island loader is an inline script; everything else comes from this origin.
  res.setHeader('content-security-policy', "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'");
}

/**
 * Bound to loopback, only requests addressed to loopback names are answered: a web page elsewhere
 * cannot reach the server through DNS rebinding (a name of its own resolving to 127.0.0.1).
 */
function hostAllowed(req: IncomingMessage, boundHost: string): boolean {
  if (!LOOPBACK.has(boundHost)) return true;
  const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return LOOPBACK.has(host);
}

export async function startServeServer(options: ServeServerOptions): Promise<ServeServer> {
  const { collector } = options;
  const stream = createEventStream();
  const unsubscribe = collector.subscribe((event) => {
    if (event.type === 'snapshot') stream.broadcast('snapshot', event.snapshot);
    else stream.broadcast('state', event.state);
  });
  const timeout = options.statementTimeoutMs ?? 5000;
  // The API's own sessions: few, short, read-only. The collector has its own.
  const pool = createPool(settingsOf(options.databaseUrl ?? ''), { max: 2, application_name: 'pgwarden serve', connectionTimeoutMillis: 3000, idleTimeoutMillis: 30_000 });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  // Each new session gets its timeouts and read-only mode before its first query, awaited: a query fired
  // from the pool's 'connect' event would overlap the request's own, which node-postgres warns about on stderr.
  const prepared = new WeakSet<pg.PoolClient>();
  const withSession = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    try {
      if (!prepared.has(client)) {
        await client.query(HEALTH_SESSION_SQL, [timeout]);
        prepared.add(client);
      }
      return await fn(client);
    } finally {
      client.release();
    }
  };

  // A role that may read the database but not pgwarden's schema (a read-only role) is not an unreachable
  // database: 403 with the grants that fix it; the live figures and /metrics do not need them.
  const historyFailed = (res: ServerResponse, error: unknown): void => {
    const hint = pgwardenSchemaHint(error);
    if (hint !== undefined) json(res, 403, { error: `${describeConnectionError(error)}: ${hint}` });
    else json(res, 503, { error: `database unreachable: ${describeConnectionError(error)}` });
  };

  const api = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    if (options.corsOrigin) {
      res.setHeader('access-control-allow-origin', options.corsOrigin);
      res.setHeader('vary', 'origin');
    }
    const route = url.pathname.replace(/\/+$/, '');
    if (route === '/api/health') {
      json(res, 200, { collector: collector.state(), snapshot: collector.latest(), thresholds: THRESHOLDS });
      return;
    }
    if (route === '/api/health/series') {
      const minutes = Number(url.searchParams.get('minutes') ?? '15');
      if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 1440) {
        json(res, 400, { error: 'minutes must be a number from 1 to 1440' });
        return;
      }
      json(res, 200, { collector: collector.state(), points: collector.series(minutes * 60_000) });
      return;
    }
    if (route === '/api/statements/history') {
      const id = url.searchParams.get('id') ?? '';
      if (!/^-?\d+:-?\d+$/.test(id)) {
        json(res, 400, { error: 'id must be a statement id, userid:queryid' });
        return;
      }
      const found = collector.statementHistory(id);
      if (!found) json(res, 404, { error: 'no such statement in serve\'s history' });
      else json(res, 200, found);
      return;
    }
    if (route === '/api/statements') {
      const window = url.searchParams.get('window') ?? '5s';
      if (!Object.hasOwn(STATEMENT_WINDOWS, window)) {
        json(res, 400, { error: 'window must be 5s, 1h or 24h' });
        return;
      }
      json(res, 200, collector.statements(window as StatementWindowName));
      return;
    }
    if (route === '/api/stream') {
      const latest = collector.latest();
      const initial = [{ event: 'state', data: collector.state() }, ...(latest ? [{ event: 'snapshot', data: latest }] : [])];
      if (!stream.add(res, initial)) json(res, 503, { error: 'too many open streams' });
      return;
    }
    if (route === '/api/history') {
      const limit = Number(url.searchParams.get('limit') ?? '100');
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
        json(res, 400, { error: 'limit must be an integer from 1 to 1000' });
        return;
      }
      try {
        json(res, 200, { runs: await withSession((client) => readHistory(client, limit)) });
      } catch (error) {
        historyFailed(res, error);
      }
      return;
    }
    const plan = /^\/api\/plans\/([^/]+)$/.exec(route);
    if (plan) {
      const id = plan[1] ?? '';
      if (!/^[1-9][0-9]{0,17}$/.test(id)) {
        json(res, 400, { error: `"${id.slice(0, 40)}" is not a history id (a positive integer)` });
        return;
      }
      try {
        const run = await withSession((client) => readRun(client, Number(id)));
        if (run) json(res, 200, run);
        else json(res, 404, { error: `no history record ${id}` });
      } catch (error) {
        historyFailed(res, error);
      }
      return;
    }
    json(res, 404, { error: `no such endpoint: ${route}` });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    securityHeaders(res);
    if (!hostAllowed(req, options.host)) {
      json(res, 421, { error: 'this server answers only requests addressed to localhost (see --host)' });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'OPTIONS' && options.corsOrigin && url.pathname.startsWith('/api/')) {
      res.writeHead(204, { 'access-control-allow-origin': options.corsOrigin, 'access-control-allow-methods': 'GET, HEAD', 'access-control-max-age': '600' });
      res.end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: 'read-only: only GET and HEAD are answered' }));
      return;
    }
    if (url.pathname === '/metrics') {
      const format = metricsFormat(req.headers.accept);
      res.writeHead(200, { 'content-type': CONTENT_TYPES[format], 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : renderMetrics(collector.latest(), collector.state(), format));
      return;
    }
    if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      await api(req, res, url);
      return;
    }
    if (!options.site) {
      json(res, 404, { error: 'this server was started without the site (--no-site)' });
      return;
    }
    let root: string;
    try {
      root = path.resolve(await options.site.ready());
    } catch (error) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`The report site could not be built: ${(error as Error).message}\nThe API still answers under /api/.\n`);
      return;
    }
    const file = await resolveStatic(root, url.pathname);
    if (file) {
      const head = req.method === 'HEAD';
      // The live page reads the API; every other page shows the history, which must not pass for current
      // while a newer one is being built (a whole build takes tens of seconds on a busy machine).
      if (!file.endsWith('.html') || url.pathname.startsWith('/live')) {
        await sendFile(req, res, file, { head });
        return;
      }
      const freshness = await options.site.freshness();
      if (freshness.kind === 'current') {
        await sendFile(req, res, file, { head, headers: { 'x-pgwarden-site': 'current' } });
        return;
      }
      const message =
        freshness.kind === 'rebuilding'
          ? 'The history changed since this page was built: it is being rebuilt, and shows the history as it was at the last build. It reloads by itself.'
          : `The history changed since this page was built, and the rebuild failed (${freshness.error}); it shows the history as it was at the last build.`;
      await sendFile(req, res, file, { head, headers: { 'x-pgwarden-site': freshness.kind }, transformHtml: (html) => markStale(html, message) });
      return;
    }
    const notFound = await resolveStatic(root, '/404.html');
    res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' });
    res.end(notFound ? undefined : `<!doctype html><title>Not found</title><p>Nothing at ${url.pathname.replace(/[<>&"]/g, '')}. <a href="/">History</a> · <a href="/live/">Live</a></p>`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: describeConnectionError(error) });
      else res.destroy();
    });
  });
  // Idle keep-alive sockets must not hold close() up; streams are ended by stream.close().
  server.keepAliveTimeout = 5000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost === '0.0.0.0' || shownHost === '[::]' ? '127.0.0.1' : shownHost}:${address.port}`,
    port: address.port,
    async close() {
      unsubscribe();
      stream.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pool.end().catch(() => undefined);
    },
  };
}
