import {
  EVENT_KINDS,
  INCIDENT_TITLES,
  KIND_EXPONENT,
  powerIndex,
  SERVER_EXPONENT,
  TENANT_EXPONENT,
} from './skew.ts';
import type { WorkloadContext } from './workload-context.ts';

/** A random draw in [0, 1); the workload hands each operation its own seeded stream. */
export type Draw = () => number;

/** One request the platform's API makes, with how often it comes and how its parameters are drawn. */
export interface WorkloadQuery {
  readonly name: string;
  readonly access: 'read' | 'write';
  /** Relative frequency in the mix (cards in the deck). */
  readonly weight: number;
  readonly sql: string;
  readonly values: (context: WorkloadContext, draw: Draw) => readonly unknown[];
}

const DAY_MS = 86_400_000;
const DEPLOYMENT_STATUSES = ['succeeded', 'failed', 'running', 'queued', 'rolled_back'] as const;
const SEVERITIES = ['info', 'warning', 'error', 'critical'] as const;
const METRICS = ['cpu_percent', 'memory_percent', 'disk_percent', 'latency_ms'] as const;

function pick<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at ${index} of ${items.length}`);
  return item;
}

/** A tenant with the data's skew: the big customers make most of the requests. */
function drawTenant(context: WorkloadContext, draw: Draw): string {
  return pick(context.tenantIds, powerIndex(draw(), context.tenantIds.length, TENANT_EXPONENT));
}

/** One of the tenant's servers, chatty ones first; any server if churn deleted all of the tenant's. */
function drawServer(context: WorkloadContext, tenantId: string, draw: Draw): string {
  const servers = context.serversByTenant.get(tenantId) ?? context.serverIds;
  return pick(servers, powerIndex(draw(), servers.length, SERVER_EXPONENT));
}

/** Midnight UTC `daysAgo` days before the end of the history. */
function dayStart(context: WorkloadContext, daysAgo: number): Date {
  const end = context.historyEnd.getTime();
  return new Date(end - (end % DAY_MS) - daysAgo * DAY_MS);
}

export const WORKLOAD_QUERIES: readonly WorkloadQuery[] = [
  {
    name: 'tenant_recent_events',
    access: 'read',
    weight: 12,
    sql: `SELECT id, server_id, kind, status, created_at, payload
          FROM public.events
          WHERE tenant_id = $1
          ORDER BY created_at DESC
          LIMIT 50`,
    values: (context, draw) => [drawTenant(context, draw)],
  },
  {
    name: 'server_day_events',
    access: 'read',
    weight: 6,
    sql: `SELECT id, kind, status, created_at, payload
          FROM public.events
          WHERE server_id = $1 AND created_at >= $2::timestamptz AND created_at < $2::timestamptz + interval '24 hours'
          ORDER BY created_at`,
    values: (context, draw) => {
      const tenantId = drawTenant(context, draw);
      // Mostly today and yesterday, sometimes a few weeks back.
      return [drawServer(context, tenantId, draw), dayStart(context, powerIndex(draw(), 30, 3))];
    },
  },
  {
    name: 'tenant_kind_counts_weekly',
    access: 'read',
    weight: 3,
    sql: `SELECT date_trunc('week', created_at) AS week, kind, count(*) AS events
          FROM public.events
          WHERE tenant_id = $1 AND created_at >= $2::timestamptz
          GROUP BY 1, 2
          ORDER BY 1, 2`,
    values: (context, draw) => [drawTenant(context, draw), dayStart(context, 7 * 12)],
  },
  {
    name: 'tenant_open_incidents',
    access: 'read',
    weight: 4,
    sql: `SELECT id, server_id, severity, status, title, opened_at, acknowledged_at
          FROM public.incidents
          WHERE tenant_id = $1 AND status <> 'resolved'
          ORDER BY severity, opened_at DESC
          LIMIT 100`,
    values: (context, draw) => [drawTenant(context, draw)],
  },
  {
    name: 'tenant_deployments_by_status',
    access: 'read',
    weight: 4,
    sql: `SELECT id, server_id, service, version, status, created_at, finished_at
          FROM public.deployments
          WHERE tenant_id = $1 AND status = $2
          ORDER BY created_at DESC
          LIMIT 50`,
    values: (context, draw) => [drawTenant(context, draw), pick(DEPLOYMENT_STATUSES, powerIndex(draw(), 5, 2))],
  },
  {
    name: 'insert_event',
    access: 'write',
    weight: 6,
    sql: `INSERT INTO public.events (tenant_id, server_id, kind, status, payload)
          VALUES ($1, $2, $3, 'pending', $4::jsonb)`,
    values: (context, draw) => {
      const tenantId = drawTenant(context, draw);
      const payload = {
        severity: pick(SEVERITIES, powerIndex(draw(), SEVERITIES.length, 3)),
        source: 'agent',
        metric: pick(METRICS, Math.floor(draw() * METRICS.length)),
        value: Math.floor(draw() * 100),
      };
      return [
        tenantId,
        drawServer(context, tenantId, draw),
        pick(EVENT_KINDS, powerIndex(draw(), EVENT_KINDS.length, KIND_EXPONENT)),
        JSON.stringify(payload),
      ];
    },
  },
  {
    name: 'update_deployment_status',
    access: 'write',
    weight: 2,
    sql: `UPDATE public.deployments
          SET status = $2::text,
              finished_at = CASE WHEN $2::text IN ('succeeded', 'failed', 'rolled_back') THEN now() ELSE finished_at END,
              updated_at = now()
          WHERE id = $1`,
    values: (context, draw) => [
      pick(context.deploymentIds, Math.floor(draw() * context.deploymentIds.length)),
      pick(DEPLOYMENT_STATUSES, powerIndex(draw(), 5, 2)),
    ],
  },
  {
    name: 'open_incident',
    access: 'write',
    weight: 1,
    sql: `INSERT INTO public.incidents (tenant_id, server_id, severity, status, title)
          VALUES ($1, $2, $3, 'open', $4)`,
    values: (context, draw) => {
      const tenantId = drawTenant(context, draw);
      return [
        tenantId,
        drawServer(context, tenantId, draw),
        4 - Math.floor(4 * draw() ** 3),
        pick(INCIDENT_TITLES, Math.floor(draw() * INCIDENT_TITLES.length)),
      ];
    },
  },
  {
    name: 'resolve_incident',
    access: 'write',
    weight: 1,
    // SKIP LOCKED: two workers resolving the same tenant's oldest incident must not queue behind each other.
    sql: `UPDATE public.incidents
          SET status = 'resolved', acknowledged_at = coalesce(acknowledged_at, now()), resolved_at = now()
          WHERE id = (SELECT id FROM public.incidents
                      WHERE tenant_id = $1 AND status <> 'resolved'
                      ORDER BY opened_at
                      LIMIT 1
                      FOR UPDATE SKIP LOCKED)`,
    values: (context, draw) => [drawTenant(context, draw)],
  },
];
