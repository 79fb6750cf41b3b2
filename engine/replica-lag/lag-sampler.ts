import type pg from 'pg';
import {
  HEARTBEAT_TABLE_EXISTS_SQL,
  PRIMARY_REPLICATION_SQL,
  REPLICA_STATE_SQL,
  REPLICA_STATE_WITH_HEARTBEAT_SQL,
  type PrimaryReplicationRow,
  type ReplicaStateRow,
} from '../catalog/replica-queries.ts';
import { startHeartbeat, type HeartbeatStatus, type HeartbeatWriter } from './heartbeat.ts';
import { errorLine, monitorConnection, type ConnectionSpec, type MonitorConnection } from './monitor-connection.ts';
import { primarySample, replicaLag, type PrimaryPosition, type PrimarySample, type ReplicaLag } from './replica-lag.ts';

/**
 * Replication lag, sampled in the background: every `intervalMs` one query on the primary
 * (pg_stat_replication, its clock and WAL position) and one on each replica (replay position and time,
 * receiver state, the replayed heartbeat), in parallel, each bounded by a timeout. Usable on its own —
 * `pgwarden serve` runs one for the live page without any router — and by the router, which never
 * measures lag on a query's path.
 *
 * @example
 * const sampler = startLagSampler({ primary: process.env.DATABASE_URL, replicas: [{ name: 'standby1', connection: process.env.REPLICA_URL }] });
 * await sampler.ready();
 * sampler.latest(); // [{ name: 'standby1', lagMs: 3.2, lagSource: 'heartbeat', bytesBehind: 0, ... }]
 * sampler.stats('standby1'); // { p50Ms: 1.1, p99Ms: 14.8, maxMs: 40.2, samples: 600, windowMs: 60000 }
 */
export interface ReplicaTarget {
  readonly name: string;
  readonly connection: ConnectionSpec;
  readonly applicationName?: string;
}

export interface LagSamplerOptions {
  readonly primary: ConnectionSpec;
  readonly replicas: readonly ReplicaTarget[];
  /** Default 100 ms. */
  readonly intervalMs?: number;
  /** Write the heartbeat row too (default true); `false` when another process writes it. */
  readonly heartbeat?: boolean;
  readonly heartbeatIntervalMs?: number;
  /** How much history is kept, for percentiles and for turning WAL positions into time (default 60 s). */
  readonly historyMs?: number;
  /** A server slower than this to answer counts as unreachable for that tick (default 1000 ms). */
  readonly sampleTimeoutMs?: number;
  readonly onSample?: (lags: readonly ReplicaLag[]) => void;
}

/** One replica's sample, reduced for charts. */
export interface LagPoint {
  readonly at: number;
  readonly lagMs: number | null;
  readonly heartbeatLagMs: number | null;
  readonly replayLagMs: number | null;
  readonly bytesBehind: number | null;
}

export interface LagStats {
  readonly samples: number;
  readonly windowMs: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** Samples with no lag figure (unreachable, unknown). */
  readonly missing: number;
}

export interface LagSampler {
  latest(): readonly ReplicaLag[];
  history(name: string): readonly LagPoint[];
  stats(name: string): LagStats;
  heartbeat(): HeartbeatStatus | null;
  /** The primary's last sample error, if the last tick could not read it. */
  primaryError(): string | null;
  /** Resolves after the first complete tick (or after `timeoutMs`). */
  ready(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const now = (): number => performance.timeOrigin + performance.now();

export function startLagSampler(options: LagSamplerOptions): LagSampler {
  const intervalMs = options.intervalMs ?? 100;
  const historyMs = options.historyMs ?? 60_000;
  const timeoutMs = options.sampleTimeoutMs ?? 1000;
  const primary = monitorConnection(options.primary, { applicationName: 'pgwarden lag sampler', timeoutMs });
  const replicas = options.replicas.map((target) => ({
    target,
    connection: monitorConnection(target.connection, { applicationName: 'pgwarden lag sampler', timeoutMs }),
    withHeartbeat: true,
    // Not "now": a receiver already stopped when sampling begins has been silent for an unknown time.
    lastStreamingAt: null as number | null,
    points: [] as LagPoint[],
  }));
  const heartbeat: HeartbeatWriter | null =
    options.heartbeat === false ? null : startHeartbeat({ primary: options.primary, intervalMs: options.heartbeatIntervalMs ?? intervalMs });
  const positions: PrimaryPosition[] = [];
  let latest: ReplicaLag[] = [];
  let primaryError: string | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let firstTick: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (firstTick = resolve));

  const samplePrimary = async (): Promise<PrimarySample | null> => {
    if (primary.busy()) {
      primaryError = 'the primary has not answered the previous sample yet';
      return null;
    }
    const sent = now();
    try {
      const r = await withTimeout(primary.query<PrimaryReplicationRow>(PRIMARY_REPLICATION_SQL), timeoutMs);
      const row = r.rows[0];
      primaryError = null;
      return row === undefined ? null : primarySample(row, (sent + now()) / 2);
    } catch (error) {
      primaryError = errorLine(error);
      return null;
    }
  };

  const sampleReplica = async (replica: (typeof replicas)[number]): Promise<{ at: number; row: ReplicaStateRow } | { at: number; error: string }> => {
    if (replica.connection.busy()) return { at: now(), error: `no answer within ${timeoutMs} ms` };
    const sent = now();
    try {
      const sql = replica.withHeartbeat ? REPLICA_STATE_WITH_HEARTBEAT_SQL : REPLICA_STATE_SQL;
      const r = await withTimeout(replica.connection.query<ReplicaStateRow>(sql), timeoutMs);
      const row = r.rows[0];
      if (row === undefined) return { at: now(), error: 'no row' };
      // Switch variants when the table appears or goes (plan/apply creates it).
      replica.withHeartbeat = row.heartbeat_table;
      return { at: (sent + now()) / 2, row };
    } catch (error) {
      if ((error as { code?: unknown }).code === '42P01') replica.withHeartbeat = false;
      return { at: now(), error: errorLine(error) };
    }
  };

  const tick = async (): Promise<void> => {
    // All servers at once: every bound is on the primary's clock, so the order of the answers does not
    // matter, and sampling in parallel keeps the "caught up" bound as tight as one round trip.
    const [primarySampled, ...observed] = await Promise.all([samplePrimary(), ...replicas.map(sampleReplica)]);
    if (primarySampled) {
      positions.push({ at: primarySampled.at, primaryMs: primarySampled.primaryMs, lsn: primarySampled.lsn });
      trim(positions, primarySampled.at - historyMs);
    }
    const soleReplica = replicas.length === 1;
    latest = replicas.map((replica, i) => {
      const replicaInput = observed[i] ?? { at: now(), error: 'not sampled' };
      const lag = replicaLag({
        name: replica.target.name,
        ...(replica.target.applicationName === undefined ? {} : { applicationName: replica.target.applicationName }),
        soleReplica,
        primary: primarySampled ?? null,
        history: positions,
        replica: replicaInput,
        lastStreamingAt: replica.lastStreamingAt,
      });
      if (lag.streaming === true || (lag.streaming === null && lag.reachable)) replica.lastStreamingAt = lag.sampledAt;
      replica.points.push({
        at: lag.sampledAt,
        lagMs: lag.lagMs,
        heartbeatLagMs: lag.heartbeatLagMs,
        replayLagMs: lag.primaryView?.replayLagMs ?? null,
        bytesBehind: lag.bytesBehind,
      });
      trim(replica.points, lag.sampledAt - historyMs);
      return lag;
    });
    options.onSample?.(latest);
  };

  const loop = async (): Promise<void> => {
    const started = now();
    try {
      await tick();
    } catch {
      // A bug in a callback must not stop measuring; the next tick tries again.
    }
    firstTick();
    if (stopped) return;
    timer = setTimeout(() => void loop(), Math.max(0, intervalMs - (now() - started)));
    timer.unref();
  };
  void loop();

  return {
    latest: () => latest,
    history: (name) => replicas.find((r) => r.target.name === name)?.points ?? [],
    stats: (name) => lagStats(replicas.find((r) => r.target.name === name)?.points ?? []),
    heartbeat: () => heartbeat?.status() ?? null,
    primaryError: () => primaryError,
    async ready(timeout = 5000) {
      let timeoutTimer: NodeJS.Timeout | undefined;
      await Promise.race([first, new Promise<void>((resolve) => (timeoutTimer = setTimeout(resolve, timeout)))]);
      clearTimeout(timeoutTimer);
    },
    async stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      await Promise.all([primary.close(), ...replicas.map((r) => r.connection.close()), heartbeat?.stop()]);
    },
  };
}

/** Drops entries older than `before` (the arrays are in time order). */
function trim<T extends { readonly at: number }>(items: T[], before: number): void {
  let drop = 0;
  while (drop < items.length && (items[drop]?.at ?? Infinity) < before) drop += 1;
  if (drop > 0) items.splice(0, drop);
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** p50 / p99 / max of the lag figures in a window (nearest-rank percentiles). */
export function lagStats(points: readonly LagPoint[]): LagStats {
  const values = points.flatMap((p) => (p.lagMs === null ? [] : [p.lagMs])).sort((a, b) => a - b);
  const rank = (q: number): number | null => (values.length === 0 ? null : (values[Math.min(values.length - 1, Math.ceil(q * values.length) - 1)] ?? null));
  const first = points[0];
  const last = points.at(-1);
  return {
    samples: values.length,
    windowMs: first !== undefined && last !== undefined ? last.at - first.at : 0,
    p50Ms: rank(0.5),
    p99Ms: rank(0.99),
    maxMs: values.at(-1) ?? null,
    missing: points.length - values.length,
  };
}

/**
 * One sample, on connections the caller holds (for `pgwarden health` and plan-time verification):
 * no history, so "caught up", the heartbeat and the replay timestamp are the bounds used.
 */
export async function sampleLagOnce(
  primaryClient: pg.ClientBase,
  replicaClients: readonly { readonly name: string; readonly client: pg.ClientBase; readonly applicationName?: string }[],
  /** `soleReplica`: a lone walsender is this replica's (default: when only one client is given). */
  options: { readonly soleReplica?: boolean } = {},
): Promise<ReplicaLag[]> {
  // In parallel, as the sampler does: every bound is on the primary's clock, so order does not matter.
  const readPrimary = async (): Promise<PrimarySample | null> => {
    const sent = now();
    const row = (await primaryClient.query<PrimaryReplicationRow>(PRIMARY_REPLICATION_SQL)).rows[0];
    return row === undefined ? null : primarySample(row, (sent + now()) / 2);
  };
  const readReplica = async (client: pg.ClientBase): Promise<{ at: number; row: ReplicaStateRow } | { at: number; error: string }> => {
    try {
      // Whether the heartbeat table exists decides the query; asked first, so the sample itself is one query.
      const probe = (await client.query<{ t: boolean }>(HEARTBEAT_TABLE_EXISTS_SQL)).rows[0];
      const sent = now();
      const state = (await client.query<ReplicaStateRow>(probe?.t ? REPLICA_STATE_WITH_HEARTBEAT_SQL : REPLICA_STATE_SQL)).rows[0];
      return state === undefined ? { at: now(), error: 'no row' } : { at: (sent + now()) / 2, row: state };
    } catch (error) {
      return { at: now(), error: errorLine(error) };
    }
  };
  const [primary, ...replicas] = await Promise.all([readPrimary(), ...replicaClients.map(({ client }) => readReplica(client))]);
  return replicaClients.map(({ name, applicationName }, i) => {
    const replica = replicas[i] ?? { at: now(), error: 'not sampled' };
    return replicaLag({
      name,
      ...(applicationName === undefined ? {} : { applicationName }),
      soleReplica: options.soleReplica ?? replicaClients.length === 1,
      primary,
      history: [],
      replica,
      // One sample has no past: a replica not streaming now has been silent for an unknown time.
      lastStreamingAt: null,
    });
  });
}
