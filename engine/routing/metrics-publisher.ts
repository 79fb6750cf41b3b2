import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { HEALTH_MARKER } from '../catalog/health-queries.ts';
import { errorLine, isSqlError, monitorConnection, type ConnectionSpec } from '../replica-lag/monitor-connection.ts';
import type { PublishedRouterMetrics } from './router-metrics.ts';

/**
 * The router's metrics, published to `pgwarden.router_metrics` on the primary so that `pgwarden serve`
 * (another process, maybe another machine) can show them: one row per router instance, upserted every
 * `intervalMs` (default 5 s) from the router's background lag tick — never on a query's path. Failures
 * are counted and otherwise ignored; while the table is missing (the routing policy not applied yet) the
 * router looks again once a minute and never creates it: tables are plan/apply's business.
 */
export interface RouterIdentity {
  /** Stable for the router's life; give one (a pod name) to keep a row across restarts. */
  readonly instance: string;
  readonly application: string;
  readonly host: string;
  readonly pid: number;
  /** Epoch ms. */
  readonly startedAt: number;
}

export interface MetricsPublisherStatus {
  readonly state: 'starting' | 'publishing' | 'missing-table' | 'failing' | 'stopped';
  readonly intervalMs: number;
  readonly instance: string;
  readonly publications: number;
  readonly failures: number;
  /** This process's clock, epoch ms. */
  readonly lastPublishedAt: number | null;
  readonly error: string | null;
}

export interface MetricsPublisher {
  /** Called on every lag tick: publishes when the interval has passed and no publication is in flight. */
  tick(at: number): void;
  status(): MetricsPublisherStatus;
  /** Removes this instance's row (a router that ended is not "reporting") and closes the connection. */
  stop(): Promise<void>;
}

export const ROUTER_METRICS_UPSERT_SQL = `${HEALTH_MARKER}
INSERT INTO pgwarden.router_metrics AS m (instance, application, host, pid, started_at, updated_at, counters)
VALUES ($1, $2, $3, $4, pg_catalog.to_timestamp($5::float8 / 1000), pg_catalog.clock_timestamp(), $6::jsonb)
ON CONFLICT (instance) DO UPDATE
   SET application = EXCLUDED.application, host = EXCLUDED.host, pid = EXCLUDED.pid,
       started_at = EXCLUDED.started_at, updated_at = EXCLUDED.updated_at, counters = EXCLUDED.counters`;

// Rows of routers gone for an hour: each publisher sweeps now and then, so the table stays small.
export const ROUTER_METRICS_SWEEP_SQL = `${HEALTH_MARKER}
DELETE FROM pgwarden.router_metrics WHERE updated_at < pg_catalog.clock_timestamp() - interval '1 hour'`;

export const ROUTER_METRICS_DELETE_SQL = `${HEALTH_MARKER}
DELETE FROM pgwarden.router_metrics WHERE instance = $1`;

const MISSING_RETRY_MS = 60_000;
const SWEEP_EVERY_MS = 10 * 60_000;

export function routerIdentity(options: { readonly instance?: string; readonly application?: string; readonly startedAt: number }): RouterIdentity {
  return {
    instance: options.instance ?? randomUUID(),
    application: options.application ?? (process.argv[1] === undefined ? process.title : process.argv[1].split(/[\\/]/u).at(-1) ?? process.title),
    host: hostname(),
    pid: process.pid,
    startedAt: options.startedAt,
  };
}

export function startMetricsPublisher(options: {
  readonly primary: ConnectionSpec;
  readonly identity: RouterIdentity;
  readonly intervalMs: number;
  readonly metrics: () => PublishedRouterMetrics;
}): MetricsPublisher {
  const { identity, intervalMs } = options;
  // synchronous_commit = local, as for the heartbeat: a synchronous standby that is down must not hold
  // the router's bookkeeping up. Connected on the first publication, not before.
  const connection = monitorConnection(options.primary, {
    applicationName: 'pgwarden router metrics',
    timeoutMs: 2000,
    setup: `${HEALTH_MARKER} SET synchronous_commit = local`,
  });
  let status: MetricsPublisherStatus = { state: 'starting', intervalMs, instance: identity.instance, publications: 0, failures: 0, lastPublishedAt: null, error: null };
  let nextAt = 0;
  let sweptAt = 0;
  let inFlight: Promise<void> | null = null;
  let stopped = false;

  const publish = async (at: number): Promise<void> => {
    try {
      const m = options.metrics();
      await connection.query(ROUTER_METRICS_UPSERT_SQL, [identity.instance, identity.application, identity.host, identity.pid, identity.startedAt, JSON.stringify(m)]);
      status = { ...status, state: 'publishing', publications: status.publications + 1, lastPublishedAt: Date.now(), error: null };
      nextAt = at + intervalMs;
      if (at - sweptAt >= SWEEP_EVERY_MS) {
        sweptAt = at;
        await connection.query(ROUTER_METRICS_SWEEP_SQL);
      }
    } catch (error) {
      const missing = isSqlError(error) && (error.code === '42P01' || error.code === '3F000');
      status = missing
        ? { ...status, state: 'missing-table', error: 'pgwarden.router_metrics does not exist: run `pgwarden apply` with the routing policy' }
        : { ...status, state: 'failing', failures: status.failures + 1, error: errorLine(error) };
      nextAt = at + (missing ? MISSING_RETRY_MS : intervalMs);
    }
  };

  return {
    tick(at) {
      if (stopped || inFlight !== null || at < nextAt) return;
      inFlight = publish(at).finally(() => (inFlight = null));
    },
    status: () => status,
    async stop() {
      stopped = true;
      await inFlight;
      if (status.publications > 0) await connection.query(ROUTER_METRICS_DELETE_SQL, [identity.instance]).catch(() => undefined);
      await connection.close();
      status = { ...status, state: 'stopped' };
    },
  };
}
