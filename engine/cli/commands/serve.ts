import { createHash } from 'node:crypto';
import path from 'node:path';
import type pg from 'pg';
import { HEALTH_SESSION_SQL, HISTORY_SIGNATURE_SQL } from '../../catalog/health-queries.ts';
import { readExternalTableHealth } from '../../live-health/external-health.ts';
import { createHealthCollector } from '../../live-health/health-collector.ts';
import { startLagSampler } from '../../replica-lag/lag-sampler.ts';
import { defaultCacheDir } from '../../serve/site-build.ts';
import { collectSiteData, latestApplyRegressions, readSiteSource, type SiteData } from '../../serve/site-data.ts';
import { createSiteKeeper } from '../../serve/site-keeper.ts';
import { startServeServer } from '../../serve/serve-server.ts';
import type { ConnectionSettings } from '../../connection/connection-settings.ts';
import { connect } from '../../connection/open-connection.ts';
import { commandConnection } from '../connect.ts';
import { CliError, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';
import { policyStandbys, standbyTargets } from '../standby-targets.ts';
import { parseDuration } from '../duration.ts';

export const DEFAULT_SERVE_PORT = 3000;
/** What the routing issue asks of every heartbeat writer, serve --write-heartbeat included. */
export const HEARTBEAT_INTERVAL_MS = 100;

export function parsePort(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be a port number from 0 to 65535, got "${value}"`);
  return port;
}

async function withDatabase<T>(connection: ConnectionSettings, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(connection, { application_name: 'pgwarden serve', connectionTimeoutMillis: 3000 });
  try {
    await client.query(HEALTH_SESSION_SQL, [30_000]);
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export const serveOptions = defineOptions({
  port: { type: 'string', value: 'PORT', byDefault: '3000', description: 'the port of the site, the live page and its API' },
  host: { type: 'string', value: 'HOST', byDefault: '127.0.0.1', description: 'the address to listen on' },
  standby: { type: 'string', multiple: true, value: 'NAME=URL', byDefault: 'the routing policy\'s replicas, else $REPLICA_URL', description: 'a standby to watch' },
  interval: { type: 'string', value: 'DURATION', byDefault: '5s', description: 'how often the live page is refreshed (1s to 5m)' },
  'cache-dir': { type: 'string', value: 'DIR', description: 'where the built site is cached' },
  'no-site': { type: 'boolean', description: 'serve the live page and API only, no report site' },
  'cors-origin': { type: 'string', value: 'ORIGIN', description: 'allow this origin to read the API (like https://docs.example.com)' },
  'write-heartbeat': { type: 'boolean', description: 'stamp the replication heartbeat every 100 ms' },
});

export async function serveCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, serveOptions);
  const url = commandConnection(values['database-url'], io);
  const port = parsePort(values.port, DEFAULT_SERVE_PORT);
  const host = values.host ?? '127.0.0.1';
  const intervalMs = values.interval ? parseDuration(values.interval, 'interval') : 5000;
  if (intervalMs < 1000 || intervalMs > 300_000) throw new CliError(`--interval must be between 1s and 5m, got "${values.interval}"`);
  const corsOrigin = values['cors-origin'] ?? null;
  if (corsOrigin !== null && !/^https?:\/\/[^/\s]+$/.test(corsOrigin)) throw new CliError(`--cors-origin must be an origin like https://docs.example.com (no path), got "${corsOrigin}"`);
  // --standby first; else the routing policy's replicas (their URLs from the environment); else REPLICA_URL.
  const fromPolicy = values.standby && values.standby.length > 0 ? null : await policyStandbys(values.policies, io);
  for (const note of fromPolicy?.notes ?? []) io.stderr(`pgwarden serve: ${note}\n`);
  const standbys = fromPolicy && fromPolicy.targets.length > 0 ? fromPolicy.targets : standbyTargets(values.standby, io.env);

  // The routing module's lag sampler: heartbeat-based lag when the router (or --write-heartbeat) keeps
  // the heartbeat row fresh, WAL positions and replay time otherwise. Serve itself stays read-only
  // unless --write-heartbeat is given; then it stamps the row every 100 ms, as the router does, while
  // sampling once a second is plenty for a page that polls every few seconds.
  const sampler =
    standbys.length > 0
      ? startLagSampler({
          primary: url,
          replicas: standbys.map((s) => ({ name: s.name, connection: s.url, ...(s.applicationName === undefined ? {} : { applicationName: s.applicationName }) })),
          intervalMs: 1000,
          heartbeat: values['write-heartbeat'] === true,
          heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        })
      : null;
  const cacheDir = values['cache-dir'] ?? defaultCacheDir(io.env);
  const collector = createHealthCollector({
    primaryUrl: url,
    standbys,
    intervalMs,
    seriesFile: seriesFileFor(cacheDir, url),
    routerLag: sampler ? async () => new Map(sampler.latest().map((l) => [l.name, { lagMs: l.lagMs, source: l.lagSource }])) : undefined,
    tableHealth: (client) => readExternalTableHealth(client),
    applyRegressions: (client) => latestApplyRegressions(client),
  });
  const collect = async (): Promise<SiteData> =>
    withDatabase(url, (client) => collectSiteData(client, { mode: 'serve', liveUrl: '', health: collector.latest() })).catch(() =>
      collectSiteData(null, { mode: 'serve', liveUrl: '', health: collector.latest() }),
    );
  const site = values['no-site']
    ? null
    : createSiteKeeper({
        cacheDir,
        historySignature: () =>
          withDatabase(url, async (client) => {
            if (!(await readSiteSource(client)).hasHistory) return 'none';
            return (await client.query<{ signature: string }>(HISTORY_SIGNATURE_SQL)).rows[0]?.signature ?? 'none';
          }),
        collect,
        log: (line) => io.stdout(`  ${line}\n`),
      });

  let server;
  try {
    server = await startServeServer({ databaseUrl: url, collector, site, host, port, corsOrigin });
  } catch (error) {
    await sampler?.stop();
    const code = (error as { code?: string }).code;
    if (code === 'EADDRINUSE') throw new CliError(`port ${port} on ${host} is already in use`, 'pass --port to choose another');
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new CliError(`cannot listen on --host ${host}: no such local address`);
    if (code === 'EACCES') throw new CliError(`not allowed to listen on port ${port}`, 'ports below 1024 need privileges; pass --port');
    throw error;
  }
  collector.start();
  io.stdout(`pgwarden serve: ${server.url}/live/\n`);
  io.stdout(`  history ${server.url}/ · API ${server.url}/api/health · stream ${server.url}/api/stream\n`);
  io.stdout(`  polling every ${intervalMs / 1000} s${standbys.length > 0 ? `; standbys: ${standbys.map((s) => s.name).join(', ')}` : ''}; read-only${host === '127.0.0.1' || host === 'localhost' || host === '::1' ? '; this machine only (--host to change)' : ''}\n`);
  const refresher = site ? setInterval(() => void site.refresh(), 60_000) : null;
  refresher?.unref();
  // Build (or reuse) the site now rather than on the first request.
  void site?.ready().then(
    () => undefined,
    (error: unknown) => io.stderr(`pgwarden: the report site could not be built: ${(error as Error).message}; the API and stream still answer\n`),
  );
  try {
    await new Promise<void>((resolve) => {
      if (!io.signal) return;
      if (io.signal.aborted) resolve();
      io.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    if (refresher) clearInterval(refresher);
    await server.close();
    await collector.stop();
    await sampler?.stop();
  }
  io.stdout('pgwarden serve: stopped\n');
  return 0;
}

/**
 * The charts' day of history, in the cache directory, one file per database served (named by a digest of
 * its hosts, port, user and database: no name or password appears in it).
 */
function seriesFileFor(cacheDir: string, target: ConnectionSettings | undefined): string {
  const where = target ? JSON.stringify([target.hosts, target.user, target.database]) : 'default';
  return path.join(cacheDir, 'series', `${createHash('sha256').update(where).digest('hex').slice(0, 16)}.jsonl`);
}
