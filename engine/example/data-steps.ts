import {
  COMPANY_WORDS,
  EVENT_KINDS,
  INCIDENT_TITLES,
  KIND_EXPONENT,
  REGIONS,
  SERVER_EXPONENT,
  SERVER_ROLES,
  SERVICES,
  TENANT_EXPONENT,
} from './skew.ts';
import type { ScaleSize } from './scale.ts';

/** One set-based statement of the load, named for progress messages and errors. */
export interface DataStep {
  readonly name: string;
  readonly sql: string;
  readonly values: readonly unknown[];
  /** Planner settings for this statement only, set around it and restored after. */
  readonly settings?: Readonly<Record<string, string>>;
}

/** What every generated value depends on: the same context gives the same rows, byte for byte. */
export interface DataContext {
  readonly seed: number;
  /** The end of the year of data: "now" of the generated history. */
  readonly endAt: Date;
  readonly size: ScaleSize;
}

/**
 * `pg_temp.example_unit(seed, n, stream)`: a uniform double in [0, 1) that depends only on its arguments.
 *
 * Why not `setseed()` + `random()`: random() returns the next value of one per-session sequence, so a row's
 * values would depend on the order the executor evaluates rows and expressions in, which a different plan
 * (a join order, a hash table's build side) changes. Hashing (n, stream) with the seed gives every row and
 * every column its own value whatever the plan. The function is a single SQL expression, so the planner
 * inlines it: no per-row function call. It lives in pg_temp, so it leaves nothing behind in the database.
 * 53 bits of the 64-bit hash fill a double's mantissa exactly; `stream` picks the column (n stays < 2^40).
 */
export const UNIT_FUNCTION_SQL = `
CREATE OR REPLACE FUNCTION pg_temp.example_unit(seed integer, n bigint, stream integer)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT ((hashint8extended(n # (stream::bigint << 40), seed) >> 11) & 9007199254740991)::double precision
         / 9007199254740992::double precision
$$`;

export const DROP_UNIT_FUNCTION_SQL = 'DROP FUNCTION IF EXISTS pg_temp.example_unit(integer, bigint, integer)';

// Times are computed as Unix epoch seconds in double precision and converted once with to_timestamp():
// that is several times faster than timestamptz and interval arithmetic per row, and, unlike
// `timestamptz - interval '1 day'` or date_trunc(), it never depends on the session's TimeZone.
// $2 is always the end of the history in epoch seconds. 31536000 s = 365 days, 86400 s = 1 day.

const TENANTS_SQL = `
INSERT INTO public.tenants (id, slug, name, plan, region, created_at)
SELECT g,
       w.word || '-' || g,
       initcap(replace(w.word, '-', ' ')) || ' ' || (ARRAY['Labs', 'Systems', 'Cloud', 'Group', 'Inc'])[1 + g % 5],
       -- tenant ids are ranks: id 1 is the largest customer
       CASE WHEN g <= ceil($3::integer * 0.1) THEN 'enterprise'
            WHEN g <= ceil($3::integer * 0.4) THEN 'team'
            ELSE 'free' END,
       ($5::text[])[1 + floor(cardinality($5::text[]) * pg_temp.example_unit($1::integer, g, 1))::integer],
       to_timestamp($2::double precision - 86400 * (400 + 1000 * pg_temp.example_unit($1::integer, g, 2)))
FROM generate_series(1, $3::integer) AS g,
     LATERAL (SELECT ($4::text[])[1 + (g - 1) % cardinality($4::text[])] AS word) AS w`;

// Servers get contiguous ids per tenant, so later steps can pick "a server of tenant t" as
// first_id + offset without a lookup per row.
const SERVERS_SQL = `
WITH sized AS (
  -- each tenant runs servers in proportion to its share of the activity, and at least one
  SELECT id AS tenant_id, slug, region,
         1 + floor(($4::integer - $3::integer)
                   * (power(id / $3::double precision, 1 / $5::double precision)
                      - power((id - 1) / $3::double precision, 1 / $5::double precision)))::integer AS server_count
  FROM public.tenants
), placed AS (
  SELECT sized.*, sum(server_count) OVER (ORDER BY tenant_id) - server_count AS first_offset
  FROM sized
)
INSERT INTO public.servers
  (id, tenant_id, hostname, region, role, status, ip_address, cpu_cores, memory_gb, created_at, updated_at, last_seen_at)
SELECT s.id, p.tenant_id,
       format('%s-%s.%s.%s.internal', v.role, lpad(k::text, 3, '0'), p.region, p.slug),
       p.region, v.role,
       CASE WHEN v.created_at > $2::double precision - 86400 THEN 'provisioning' ELSE 'active' END,
       '10.0.0.0'::inet + s.id,
       v.cores, v.cores * 4, to_timestamp(v.created_at), to_timestamp(v.created_at),
       to_timestamp($2::double precision - 60 * pg_temp.example_unit($1::integer, s.id, 13))
FROM placed AS p,
     generate_series(1, p.server_count) AS k,
     LATERAL (SELECT p.first_offset + k AS id) AS s,
     LATERAL (SELECT
       ($6::text[])[1 + floor(cardinality($6::text[]) * power(pg_temp.example_unit($1::integer, s.id, 10), 2))::integer] AS role,
       (ARRAY[2, 4, 8, 16, 32])[1 + floor(5 * power(pg_temp.example_unit($1::integer, s.id, 11), 1.5))::integer] AS cores,
       $2::double precision - 86400 * 720 * power(pg_temp.example_unit($1::integer, s.id, 12), 0.7) AS created_at
     ) AS v`;

/** The servers of each tenant as an id range: valid right after SERVERS_SQL, before churn deletes any. */
const SERVER_RANGES = `
ranges AS (
  SELECT tenant_id, min(id) AS first_id, count(*) AS server_count FROM public.servers GROUP BY tenant_id
)`;

const DEPLOYMENTS_SQL = `
WITH ${SERVER_RANGES},
drawn AS (
  SELECT g,
         1 + floor($4::integer * power(pg_temp.example_unit($1::integer, g, 20), $5::double precision))::bigint AS tenant_id,
         pg_temp.example_unit($1::integer, g, 21) AS u_server,
         -- more deployments lately: the platform grows
         $2::double precision - 31536000 * power(pg_temp.example_unit($1::integer, g, 22), 1.4) AS created_at,
         pg_temp.example_unit($1::integer, g, 23) AS u_status,
         pg_temp.example_unit($1::integer, g, 24) AS u_start,
         pg_temp.example_unit($1::integer, g, 25) AS u_duration
  FROM generate_series(1, $3::integer) AS g
), placed AS (
  SELECT d.*,
         r.first_id + floor(r.server_count * power(d.u_server, $6::double precision))::bigint AS server_id,
         CASE WHEN d.created_at > $2::double precision - 3600
                THEN CASE WHEN d.u_status < 0.3 THEN 'queued' ELSE 'running' END
              WHEN d.u_status < 0.88 THEN 'succeeded'
              WHEN d.u_status < 0.96 THEN 'failed'
              ELSE 'rolled_back' END AS status
  FROM drawn AS d JOIN ranges AS r USING (tenant_id)
)
INSERT INTO public.deployments
  (id, tenant_id, server_id, service, version, status, created_at, started_at, finished_at, updated_at)
SELECT p.g, p.tenant_id, p.server_id, v.service, v.version, p.status, to_timestamp(p.created_at),
       to_timestamp(t.started_at), to_timestamp(t.finished_at),
       to_timestamp(coalesce(t.finished_at, t.started_at, p.created_at))
FROM placed AS p,
     LATERAL (SELECT
       ($7::text[])[1 + floor(cardinality($7::text[]) * power(pg_temp.example_unit($1::integer, p.g, 26), 1.5))::integer] AS service,
       format('%s.%s.%s',
              1 + floor(3 * pg_temp.example_unit($1::integer, p.g, 27))::integer,
              floor(40 * pg_temp.example_unit($1::integer, p.g, 28))::integer,
              floor(10 * pg_temp.example_unit($1::integer, p.g, 29))::integer) AS version
     ) AS v,
     LATERAL (SELECT
       CASE WHEN p.status = 'queued' THEN NULL
            ELSE p.created_at + 5 + 55 * p.u_start END AS started_at,
       CASE WHEN p.status IN ('queued', 'running') THEN NULL
            ELSE least($2::double precision, p.created_at + 35 + 55 * p.u_start + 900 * p.u_duration) END AS finished_at
     ) AS t`;

const INCIDENTS_SQL = `
WITH ${SERVER_RANGES},
drawn AS (
  SELECT g,
         1 + floor($4::integer * power(pg_temp.example_unit($1::integer, g, 60), $5::double precision))::bigint AS tenant_id,
         pg_temp.example_unit($1::integer, g, 61) AS u_server,
         $2::double precision - 31536000 * power(pg_temp.example_unit($1::integer, g, 62), 1.2) AS opened_at,
         pg_temp.example_unit($1::integer, g, 63) AS u_status,
         pg_temp.example_unit($1::integer, g, 64) AS u_acknowledge,
         pg_temp.example_unit($1::integer, g, 65) AS u_resolve
  FROM generate_series(1, $3::integer) AS g
), placed AS (
  SELECT d.*, r.first_id, r.server_count,
         CASE WHEN d.opened_at > $2::double precision - 2 * 86400
                THEN CASE WHEN d.u_status < 0.4 THEN 'open' WHEN d.u_status < 0.7 THEN 'acknowledged' ELSE 'resolved' END
              -- a few old incidents nobody closed, as in every real tracker
              WHEN d.u_status < 0.005 THEN 'open'
              WHEN d.u_status < 0.01 THEN 'acknowledged'
              ELSE 'resolved' END AS status
  FROM drawn AS d JOIN ranges AS r USING (tenant_id)
)
INSERT INTO public.incidents
  (id, tenant_id, server_id, severity, status, title, opened_at, acknowledged_at, resolved_at)
SELECT p.g, p.tenant_id,
       -- one in ten incidents is about the tenant's whole fleet, not one server
       CASE WHEN pg_temp.example_unit($1::integer, p.g, 66) < 0.1 THEN NULL
            ELSE p.first_id + floor(p.server_count * power(p.u_server, $6::double precision))::bigint END,
       -- severity 1 (page everyone) is rare, 4 (look tomorrow) common
       4 - floor(4 * power(pg_temp.example_unit($1::integer, p.g, 67), 3))::integer,
       p.status,
       ($7::text[])[1 + floor(cardinality($7::text[]) * pg_temp.example_unit($1::integer, p.g, 68))::integer],
       to_timestamp(p.opened_at),
       CASE WHEN p.status <> 'open'
            THEN to_timestamp(least($2::double precision, p.opened_at + 60 + 1800 * p.u_acknowledge)) END,
       CASE WHEN p.status = 'resolved'
            THEN to_timestamp(least($2::double precision,
                                    p.opened_at + 660 + 1800 * p.u_acknowledge + 86400 * power(p.u_resolve, 3))) END
FROM placed AS p`;

// Events are inserted in time order with ids following it, as an append-only log has them: the heap is
// physically ordered by created_at, which is what partitioning and BRIN see on a real system.
const EVENTS_SQL = `
WITH ${SERVER_RANGES},
payloads AS MATERIALIZED (
  -- 6,400 distinct payloads, joined by key rather than built per row: jsonb_build_object costs about a
  -- microsecond per key, which would be most of the load's time at demo scale.
  SELECT key, jsonb_build_object(
           'severity', (ARRAY['info', 'warning', 'error', 'critical'])[1 + key / 1600],
           'source', (ARRAY['agent', 'api', 'scheduler', 'webhook'])[1 + key / 400 % 4],
           'metric', (ARRAY['cpu_percent', 'memory_percent', 'disk_percent', 'latency_ms'])[1 + key / 100 % 4],
           'value', key % 100) AS payload
  FROM generate_series(0, 6399) AS key
),
drawn AS (
  SELECT g,
         1 + floor($4::integer * power(pg_temp.example_unit($1::integer, g, 30), $5::double precision))::bigint AS tenant_id,
         pg_temp.example_unit($1::integer, g, 31) AS u_server,
         pg_temp.example_unit($1::integer, g, 32) AS u_burst,
         -- steady traffic grows over the year (denser lately) ...
         $2::double precision - 31536000 * power(pg_temp.example_unit($1::integer, g, 36), 1.4) AS steady_at
  FROM generate_series(1, $3::integer) AS g
), timed AS (
  SELECT d.g, d.tenant_id,
         r.first_id + floor(r.server_count * power(d.u_server, $8::double precision))::bigint AS server_id,
         -- which of the payloads: severity, source, metric and value drawn independently
         1600 * CASE WHEN k.severity < 0.8 THEN 0 WHEN k.severity < 0.94 THEN 1 WHEN k.severity < 0.99 THEN 2 ELSE 3 END
           + 400 * floor(4 * power(k.source, 2))::integer
           + 100 * floor(4 * k.metric)::integer
           + floor(100 * k.value)::integer AS payload_key,
         greatest($2::double precision - 31536000, least($2::double precision,
           CASE WHEN d.u_burst < 0.2
                -- ... while a fifth of the events come in bursts: each tenant has eight incidents a year,
                -- each a flood of events decaying over minutes (exponential, mean 10 minutes) after its start
                THEN $2::double precision - 31536000 * pg_temp.example_unit(
                       $1::integer, d.tenant_id * 8 + floor(8 * pg_temp.example_unit($1::integer, d.g, 33))::bigint, 34)
                     - 600 * ln(1 - pg_temp.example_unit($1::integer, d.g, 35))
                -- ... and a third of the steady traffic falls in office hours, 08:00-18:00 UTC
                WHEN pg_temp.example_unit($1::integer, d.g, 37) < 0.35 AND o.office_at <= $2::double precision
                  AND o.office_at >= $2::double precision - 31536000
                THEN o.office_at
                ELSE d.steady_at END)) AS at
  FROM drawn AS d
  JOIN ranges AS r USING (tenant_id),
  LATERAL (SELECT floor(d.steady_at / 86400) * 86400 + 28800 + 36000 * pg_temp.example_unit($1::integer, d.g, 38)
                  AS office_at) AS o,
  LATERAL (SELECT pg_temp.example_unit($1::integer, d.g, 42) AS severity,
                  pg_temp.example_unit($1::integer, d.g, 43) AS source,
                  pg_temp.example_unit($1::integer, d.g, 44) AS metric,
                  pg_temp.example_unit($1::integer, d.g, 45) AS value) AS k
), ordered AS (
  SELECT row_number() OVER (ORDER BY at, g) AS id, timed.*
  FROM timed
  ORDER BY at, g
)
INSERT INTO public.events (id, tenant_id, server_id, kind, status, created_at, payload)
SELECT e.id, e.tenant_id, e.server_id,
       ($6::text[])[1 + floor(cardinality($6::text[]) * power(pg_temp.example_unit($1::integer, e.g, 40), $7::double precision))::integer],
       CASE WHEN e.at < $2::double precision - 90 * 86400
              THEN CASE WHEN u.status < 0.97 THEN 'archived' ELSE 'processed' END
            WHEN e.at > $2::double precision - 120 THEN 'pending'
            WHEN u.status < 0.93 THEN 'processed'
            WHEN u.status < 0.97 THEN 'failed'
            ELSE 'pending' END,
       to_timestamp(e.at),
       p.payload
FROM ordered AS e
JOIN payloads AS p ON p.key = e.payload_key,
LATERAL (SELECT pg_temp.example_unit($1::integer, e.g, 41) AS status) AS u`;

/** The inserts, parents first. Each statement is one set-based INSERT ... SELECT. */
export function insertSteps(context: DataContext): readonly DataStep[] {
  const { seed, size } = context;
  const endEpoch = context.endAt.getTime() / 1000;
  return [
    {
      name: 'tenants',
      sql: TENANTS_SQL,
      values: [seed, endEpoch, size.tenants, COMPANY_WORDS, REGIONS],
    },
    {
      name: 'servers',
      sql: SERVERS_SQL,
      values: [seed, endEpoch, size.tenants, size.servers, TENANT_EXPONENT, SERVER_ROLES],
    },
    {
      name: 'deployments',
      sql: DEPLOYMENTS_SQL,
      values: [seed, endEpoch, size.deployments, size.tenants, TENANT_EXPONENT, SERVER_EXPONENT, SERVICES],
    },
    {
      name: 'incidents',
      sql: INCIDENTS_SQL,
      values: [seed, endEpoch, size.incidents, size.tenants, TENANT_EXPONENT, SERVER_EXPONENT, INCIDENT_TITLES],
    },
    {
      name: 'events',
      sql: EVENTS_SQL,
      values: [seed, endEpoch, size.events, size.tenants, TENANT_EXPONENT, EVENT_KINDS, KIND_EXPONENT, SERVER_EXPONENT],
      // A merge join with the payloads would re-sort the events by payload and lose the time order they
      // are inserted in; a hash join keeps it. (The rows and ids are the same either way.)
      settings: { enable_mergejoin: 'off' },
    },
  ];
}

/**
 * What months of a live application leave behind: rows updated and deleted after they were written, so
 * the tables carry dead tuples and vacuum has work. Run in a transaction of its own after the load.
 */
export function churnSteps(context: DataContext): readonly DataStep[] {
  const values = [context.seed, context.endAt.getTime() / 1000];
  return [
    {
      name: 'server heartbeats',
      sql: `UPDATE public.servers
            SET last_seen_at = to_timestamp($2::double precision - 300 * pg_temp.example_unit($1::integer, id, 50)),
                updated_at = to_timestamp($2::double precision)
            WHERE pg_temp.example_unit($1::integer, id, 51) < 0.6`,
      values,
    },
    {
      name: 'servers draining',
      sql: `UPDATE public.servers
            SET status = 'draining',
                updated_at = to_timestamp($2::double precision - 3600 * pg_temp.example_unit($1::integer, id, 52))
            WHERE status = 'active' AND pg_temp.example_unit($1::integer, id, 53) < 0.05`,
      values,
    },
    {
      name: 'servers decommissioned',
      sql: `UPDATE public.servers
            SET status = 'decommissioned',
                last_seen_at = to_timestamp($2::double precision - 30 * 86400),
                updated_at = to_timestamp($2::double precision - 30 * 86400)
            WHERE status = 'active' AND pg_temp.example_unit($1::integer, id, 54) < 0.04`,
      values,
    },
    {
      // Without an index on deployments.server_id and incidents.server_id, each deleted server makes its
      // ON DELETE actions scan both tables; a small share keeps that to a second at demo scale.
      name: 'servers deleted',
      sql: `DELETE FROM public.servers WHERE pg_temp.example_unit($1::integer, id, 55) < 0.03`,
      values: [context.seed],
    },
    {
      name: 'deployments rolled back',
      sql: `UPDATE public.deployments
            SET status = 'rolled_back',
                updated_at = least(to_timestamp($2::double precision), finished_at + interval '30 minutes')
            WHERE status = 'succeeded' AND pg_temp.example_unit($1::integer, id, 56) < 0.05`,
      values,
    },
    {
      name: 'deployments re-synced',
      sql: `UPDATE public.deployments
            SET updated_at = to_timestamp($2::double precision - 86400 * pg_temp.example_unit($1::integer, id, 57))
            WHERE pg_temp.example_unit($1::integer, id, 58) < 0.2`,
      values,
    },
    {
      name: 'deployments past retention',
      sql: `DELETE FROM public.deployments
            WHERE created_at < to_timestamp($2::double precision - 180 * 86400)
              AND (status <> 'succeeded' OR pg_temp.example_unit($1::integer, id, 59) < 0.2)`,
      values,
    },
  ];
}
