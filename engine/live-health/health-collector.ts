import pg from 'pg';
import { SeriesStore } from './series-store.ts';
import { StatementHistory, type StatementHistoryPoint, type StatementWindowName, type StatementWindowResult } from './statement-history.ts';
import { settingsOf, type ConnectionTarget } from '../connection/connection-settings.ts';
import { connect as openClient } from '../connection/open-connection.ts';
import { HEALTH_MARKER, HEALTH_SESSION_SQL } from '../catalog/health-queries.ts';
import { computeSnapshot, type PollMemory, type RouterLag, type StandbyPoll } from './health-compute.ts';
import {
  readDatabase,
  readRelations,
  readReplication,
  readSessions,
  readSettings,
  readSlow,
  readStandby,
  readStatements,
  readStatementTexts,
  type HealthSettings,
  type StatementCounters,
  type Timings,
} from './health-readings.ts';
import type { CollectorState, ExternalTableHealth, HealthSnapshot, SeriesPoint, SlowHealth } from './health-snapshot.ts';
import { redactQueryText } from './redact-query.ts';
import { createRingBuffer } from './ring-buffer.ts';

/**
 * Polls the primary and each standby on a fixed interval, keeps the last hour of snapshots in a ring
 * buffer, and tells subscribers about each new snapshot and each change of connection state. It never
 * throws out of its loop: a database that goes away makes the state `disconnected` (with a one-line
 * reason), and the next poll reconnects.
 *
 * @example
 *   const collector = createHealthCollector({ primaryUrl, standbys: [{ name: 'standby1', url }] });
 *   collector.subscribe((event) => console.log(event));
 *   collector.start();
 */
export interface HealthCollectorOptions {
  /** The primary: settings, or a URL resolved with libpq's rules (undefined: the PG* variables alone). */
  readonly primaryUrl: ConnectionTarget | undefined;
  readonly standbys?: readonly { readonly name: string; readonly url: string }[];
  /** Default 5 s. */
  readonly intervalMs?: number;
  /** Sizes, index flags, table health and bloat: default once a minute. */
  readonly slowIntervalMs?: number;
  /** How much history the ring buffer keeps: default one hour. */
  readonly retentionMs?: number;
  /** A file for the charts' day of history (a point a minute) that outlives a restart; none by default. */
  readonly seriesFile?: string;
  /** Per statement of the 5-second loop: default 2 s. */
  readonly statementTimeoutMs?: number;
  /** For the slow cadence's queries and the table-health hook: default 15 s. */
  readonly slowTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /**
   * How long one poll of one server may take, connecting included (default: connectTimeoutMs + 2 x
   * statementTimeoutMs). A server that stops answering without closing the connection (a network
   * partition, a hung proxy) is cut off at this deadline and reported disconnected (or down).
   */
  readonly pollTimeoutMs?: number;
  /**
   * How long the primary's snapshot waits, once the primary has answered, for a standby still being
   * polled (default 250 ms); after that the standby's previous result is shown, so a hung standby never
   * holds the primary's figures up.
   */
  readonly standbyGraceMs?: number;
  /** Router rows older than this are left out of the routing section (default one minute). */
  readonly routerFreshMs?: number;
  /** The routing section's rate window (default one minute). */
  readonly routingWindowMs?: number;
  /** Lag per standby name from the routing module's sampler (heartbeat-based); pg_stat_replication is used otherwise. */
  readonly routerLag?: () => Promise<ReadonlyMap<string, RouterLag>>;
  /** Issue 5's per-table health and bloat, run on the slow cadence under slowTimeoutMs. */
  readonly tableHealth?: (client: pg.ClientBase) => Promise<{ readonly tables: readonly ExternalTableHealth[]; readonly count: number }>;
  /** The latest apply's statements slower since it (apply-regression.ts), run on the slow cadence: findings with their revert. */
  readonly applyRegressions?: (client: pg.ClientBase) => Promise<SlowHealth['applyRegressions']>;
  readonly now?: () => Date;
}

export type CollectorEvent = { readonly type: 'snapshot'; readonly snapshot: HealthSnapshot } | { readonly type: 'state'; readonly state: CollectorState };

export interface HealthCollector {
  start(): void;
  stop(): Promise<void>;
  /** One poll now (the loop's polls never overlap with it: a poll already running is awaited). */
  pollOnce(): Promise<HealthSnapshot | null>;
  /** Resolves when the slow cadence's run in progress (if any) has finished. */
  slowSettled(): Promise<void>;
  latest(): HealthSnapshot | null;
  /** Snapshots of the last `ms` (whole ring buffer by default), oldest first. */
  snapshots(ms?: number): HealthSnapshot[];
  series(ms?: number): SeriesPoint[];
  /** The workload's statements over the last 5 s, hour or day (pgwarden's own left out), by total time. */
  statements(window: StatementWindowName): StatementWindowResult;
  /** One statement's text and its calls and mean latency per checkpoint interval (null: not known). */
  statementHistory(id: string): { id: string; query: string | null; points: StatementHistoryPoint[] } | null;
  state(): CollectorState;
  subscribe(listener: (event: CollectorEvent) => void): () => void;
}

/** One line, without a URL, host or password: what the page and API may show. */
export function describeConnectionError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const message = String(e?.message ?? error)
    .replace(/postgres(?:ql)?:\/\/\S+/g, '<url>')
    .split('\n')[0] ?? '';
  switch (e?.code) {
    case 'ECONNREFUSED':
      return 'connection refused: the server is not running or not listening';
    case 'ENOTFOUND':
      return 'host not found';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case '57P01':
      return 'the server terminated the connection (administrator command)';
    case '57P03':
      return 'the server is starting up or shutting down';
    case '3D000':
      return 'the database does not exist';
    case '28P01':
    case '28000':
      return 'authentication failed';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'the connection was lost: the server went away';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'the server cannot be reached from here (no route to it)';
    default:
      break;
  }
  // node-postgres's own wording for a client whose socket broke: say what happened, not how the driver
  // put it ("Client has encountered a connection error and is not queryable").
  if (/not queryable|Connection terminated|connection error|socket hang up|Client was closed/i.test(message)) return 'the connection was lost: the server went away';
  if (/timeout|timed out/i.test(message)) return 'no answer in time: the server is not responding';
  return message.replace(/\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?/g, '<host>');
}

interface Node {
  client: pg.Client | null;
  settings: HealthSettings | null;
}

interface StandbyNode extends Node {
  readonly name: string;
  readonly url: string;
  /** The last finished poll: what a snapshot shows while the next one is still in flight. */
  last: StandbyPoll | null;
  inFlight: Promise<StandbyPoll> | null;
}

interface ClientLimits {
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
}

// The collector is read-only by construction: every transaction it opens is read-only, and the loop's
// statements cannot queue behind a lock for long or run away. The client-side query_timeout and TCP
// keepalive catch what statement_timeout cannot: a server (or a network) that stops answering without
// closing the connection, where the server-side timer never reaches us.
function newClient(url: ConnectionTarget | undefined, name: string, limits: ClientLimits): Promise<pg.Client> {
  // The connection module ignores the client's 'error' event: a broken connection surfaces as a failed query.
  return openClient(settingsOf(url ?? ''), {
    application_name: `pgwarden health (${name})`,
    connectionTimeoutMillis: limits.connectTimeoutMs,
    query_timeout: limits.statementTimeoutMs + 1000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
}

async function setUp(client: pg.Client, statementTimeoutMs: number): Promise<void> {
  await client.query(HEALTH_SESSION_SQL, [Math.max(1, Math.round(statementTimeoutMs))]);
  // PostgreSQL 15+ copies every statistics entry read into a per-transaction cache by default; the poll
  // reads each entry once, so the copies are pure cost (about 40% of the relations query on 25,000
  // relations). The setting does not exist before 15.
  await client.query(`${HEALTH_MARKER} SELECT pg_catalog.set_config('stats_fetch_consistency', 'none', false) WHERE pg_catalog.current_setting('server_version_num')::int >= 150000`);
}

/**
 * The node's client, connected and set up; held by the node as soon as it is connected so a deadline can
 * cut it off (until then connect_timeout bounds each attempt).
 */
async function clientOf(node: Node, url: ConnectionTarget | undefined, name: string, limits: ClientLimits): Promise<pg.Client> {
  if (node.client) return node.client;
  const client = await newClient(url, name, limits);
  node.client = client;
  try {
    await setUp(client, limits.statementTimeoutMs);
    return client;
  } catch (error) {
    hangUp(node, client);
    throw error;
  }
}

async function connect(url: ConnectionTarget | undefined, name: string, limits: ClientLimits): Promise<pg.Client> {
  const client = await newClient(url, name, limits);
  try {
    await setUp(client, limits.statementTimeoutMs);
    return client;
  } catch (error) {
    client.connection.stream.destroy();
    throw error;
  }
}

/**
 * Drops the node's client (or `only` that one, if it is still the node's) without waiting for the
 * server: end() sends a Terminate and waits for an answer that a black-holed connection never gives,
 * so the socket is destroyed instead, which also fails whatever query is still waiting on it.
 */
function hangUp(node: Node, only?: pg.Client): void {
  const c = node.client;
  if (c === null || (only !== undefined && c !== only)) {
    only?.connection.stream.destroy();
    return;
  }
  node.client = null;
  node.settings = null;
  c.connection.stream.destroy();
}

/** A polite end (Terminate), or the socket destroyed if the server does not see it through within a second. */
async function endOrDestroy(client: pg.Client | null): Promise<void> {
  if (client === null) return;
  await withTimeout(client.end(), 1000, 'closing').catch(() => client.connection.stream.destroy());
}

async function close(node: Node): Promise<void> {
  const c = node.client;
  node.client = null;
  node.settings = null;
  await endOrDestroy(c);
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `promise`'s value, or `fallback()`'s if it has not settled within `ms`. */
async function orAfter<T>(promise: Promise<T>, ms: number, fallback: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback()), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const TEXT_CACHE_LIMIT = 5000;
const TEXTS_PER_POLL = 500;

export function createHealthCollector(options: HealthCollectorOptions): HealthCollector {
  const intervalMs = options.intervalMs ?? 5000;
  const slowIntervalMs = options.slowIntervalMs ?? 60_000;
  const retentionMs = options.retentionMs ?? 3_600_000;
  const statementTimeoutMs = options.statementTimeoutMs ?? 2000;
  const slowTimeoutMs = options.slowTimeoutMs ?? 15_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  const pollTimeoutMs = options.pollTimeoutMs ?? connectTimeoutMs + 2 * statementTimeoutMs;
  const standbyGraceMs = options.standbyGraceMs ?? 250;
  const limits: ClientLimits = { connectTimeoutMs, statementTimeoutMs };
  const now = options.now ?? (() => new Date());
  const ring = createRingBuffer<HealthSnapshot>(Math.max(1, Math.ceil(retentionMs / intervalMs)));
  const listeners = new Set<(event: CollectorEvent) => void>();
  const primary: Node = { client: null, settings: null };
  const standbyNodes: StandbyNode[] = (options.standbys ?? []).map((s) => ({ name: s.name, url: s.url, client: null, settings: null, last: null, inFlight: null }));
  const texts = new Map<string, string>();
  const ownKeys = new Set<string>();
  const statementHistory = new StatementHistory();
  const longSeries = options.seriesFile ? new SeriesStore(options.seriesFile) : null;
  let memory: PollMemory | null = null;
  // Whether to read the routers' rows with the replication query: the table was there at the last poll.
  let withRouters = true;
  const routerFreshMs = options.routerFreshMs ?? 60_000;
  let seq = 0;
  let slow: SlowHealth | null = null;
  let slowRunning: Promise<void> | null = null;
  let lastSlowAt = 0;
  let running: Promise<HealthSnapshot | null> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = true;
  let current: CollectorState = { state: 'connecting', since: now().toISOString(), error: null, intervalMs, lastPollAt: null };

  const emit = (event: CollectorEvent): void => {
    for (const l of listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure (a closed socket) is the listener's business, not the poll's.
      }
    }
  };

  const setState = (state: CollectorState['state'], error: string | null): void => {
    if (current.state === state && current.error === error) return;
    current = { ...current, state, error, since: current.state === state ? current.since : now().toISOString() };
    emit({ type: 'state', state: current });
  };

  async function learnTexts(client: pg.Client, schema: string, statements: readonly StatementCounters[], timings: Timings): Promise<void> {
    const previous = memory?.statements;
    // New keys first, those that moved most first: the top list needs their texts, and our own
    // statements must be recognised early so they stay out of the workload's figures.
    const unknown = statements
      .filter((s) => !texts.has(s.key))
      .map((s) => ({ key: s.key, moved: s.totalMs - (previous?.get(s.key)?.totalMs ?? 0) }))
      .sort((a, b) => b.moved - a.moved)
      .slice(0, TEXTS_PER_POLL)
      .map((s) => s.key);
    if (unknown.length === 0) return;
    const found = await readStatementTexts(client, timings, schema, unknown);
    for (const key of unknown) {
      const text = found.get(key) ?? '';
      if (text.includes(HEALTH_MARKER)) ownKeys.add(key);
      if (texts.size >= TEXT_CACHE_LIMIT) {
        const oldest = texts.keys().next().value;
        if (oldest !== undefined) texts.delete(oldest);
      }
      texts.set(key, redactQueryText(text).replace(/\s+/g, ' ').trim());
    }
  }

  async function pollStandby(node: StandbyNode, timings: Timings): Promise<StandbyPoll> {
    let client: pg.Client | null = null;
    try {
      client = await clientOf(node, node.url, node.name, limits);
      const reading = await readStandby(client, timings, node.name);
      return { name: node.name, reading, error: null };
    } catch (error) {
      hangUp(node, client ?? undefined);
      return { name: node.name, reading: null, error: describeConnectionError(error) };
    }
  }

  /** Starts a standby's poll unless one is still running; each standby has its own deadline. */
  function startStandbyPoll(node: StandbyNode, timings: Timings): void {
    if (node.inFlight) return;
    const cutOff = (): StandbyPoll => {
      hangUp(node);
      return { name: node.name, reading: null, error: `no answer within ${pollTimeoutMs} ms` };
    };
    node.inFlight = orAfter(pollStandby(node, timings), pollTimeoutMs, cutOff)
      .then((result) => (node.last = result))
      .finally(() => (node.inFlight = null));
  }

  /** Each standby's poll if it ends within the grace period, else its previous result. */
  function standbyResults(): Promise<StandbyPoll[]> {
    return Promise.all(
      standbyNodes.map((node) => {
        const previous = (): StandbyPoll => node.last ?? { name: node.name, reading: null, error: `no answer yet (polling for less than ${pollTimeoutMs} ms)` };
        return node.inFlight ? orAfter(node.inFlight, standbyGraceMs, previous) : Promise.resolve(previous());
      }),
    );
  }

  async function runSlow(): Promise<void> {
    const t0 = performance.now();
    const timings: Timings = {};
    const errors: string[] = [];
    let client: pg.Client | null = null;
    try {
      client = await connect(options.primaryUrl, 'slow', { connectTimeoutMs, statementTimeoutMs: slowTimeoutMs });
      const reading = await readSlow(client, timings);
      let tableHealth: { readonly tables: readonly ExternalTableHealth[]; readonly count: number } | null = null;
      if (options.tableHealth) {
        try {
          tableHealth = await withTimeout(options.tableHealth(client), slowTimeoutMs, 'table health');
        } catch (error) {
          errors.push(`table health: ${describeConnectionError(error)}`);
        }
      }
      let applyRegressions: SlowHealth['applyRegressions'] = null;
      if (options.applyRegressions) {
        try {
          applyRegressions = await withTimeout(options.applyRegressions(client), slowTimeoutMs, 'apply regressions');
        } catch (error) {
          errors.push(`apply regressions: ${describeConnectionError(error)}`);
        }
      }
      slow = { at: now().toISOString(), ms: performance.now() - t0, ...reading, tableHealth: tableHealth?.tables ?? null, tableHealthCount: tableHealth?.count ?? null, applyRegressions, errors };
    } catch (error) {
      slow = slow ? { ...slow, errors: [describeConnectionError(error)] } : null;
    } finally {
      // A timed-out hook may still hold the connection: ending it cancels whatever runs on it.
      await endOrDestroy(client);
    }
  }

  /** `attempt.abandoned`: the deadline passed and the poll was reported disconnected; its late result is dropped. */
  async function poll(attempt: { abandoned: boolean }): Promise<HealthSnapshot | null> {
    const at = now();
    const t0 = performance.now();
    const timings: Timings = {};
    let queries = 0;
    const count = (): number => (queries = Object.keys(timings).length);
    let client: pg.Client | null = null;
    // Standbys first and on their own: the primary's reads never wait for them (see standbyResults).
    for (const node of standbyNodes) startStandbyPoll(node, timings);
    try {
      client = await clientOf(primary, options.primaryUrl, 'primary', limits);
      primary.settings ??= await readSettings(client, timings);
      const settings = primary.settings;
      const none = new Map<string, RouterLag>();
      const routerLag = options.routerLag ? withTimeout(options.routerLag(), statementTimeoutMs, 'router lag').catch(() => none) : Promise.resolve(none);
      const database = await readDatabase(client, timings, settings.serverVersion);
      const relations = await readRelations(client, timings);
      const read = settings.statementsSchema ? await readStatements(client, timings, settings.statementsSchema, settings.statementsInfo === true) : null;
      const statements = read?.counters ?? null;
      if (statements && settings.statementsSchema) await learnTexts(client, settings.statementsSchema, statements, timings);
      const sessions = await readSessions(client, timings);
      const replication = database.inRecovery ? { standbys: [], slots: [] } : await readReplication(client, timings, { withRouters, freshMs: routerFreshMs });
      if (replication.routing) withRouters = replication.routing.table && replication.routing.error === null;
      const standbys = await standbyResults();
      const routerLags = await routerLag;
      count();
      if (!slowRunning && Date.now() - lastSlowAt >= slowIntervalMs) {
        lastSlowAt = Date.now();
        slowRunning = runSlow().finally(() => (slowRunning = null));
      }
      if (attempt.abandoned) return null;
      seq += 1;
      const { snapshot, memory: next } = computeSnapshot({
        seq,
        at,
        primary: { settings, database, relations, statements, statementsReset: read?.resetAt ?? null, sessions, replication },
        standbys,
        routerLag: routerLags,
        previous: memory,
        texts,
        ownKeys,
        slow,
        ...(options.routingWindowMs === undefined ? {} : { routingWindowMs: options.routingWindowMs }),
        poll: { wallMs: performance.now() - t0, queries, queryMs: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v * 100) / 100])) },
      });
      memory = next;
      if (statements) statementHistory.record(at.getTime(), read?.resetAt ?? null, statements);
      ring.push(snapshot);
      longSeries?.add({ t: Date.parse(snapshot.at), f: snapshot.figures });
      current = { ...current, lastPollAt: snapshot.at };
      setState('connected', null);
      emit({ type: 'snapshot', snapshot });
      return snapshot;
    } catch (error) {
      if (attempt.abandoned) return null;
      hangUp(primary, client ?? undefined);
      // Counters across an outage are not a window: the first poll after it starts afresh.
      memory = null;
      statementHistory.interrupt();
      setState('disconnected', describeConnectionError(error));
      return null;
    }
  }

  // The deadline cuts the primary's connection off (which also fails the query waiting on it) and
  // reports disconnected at once, whatever the abandoned poll is still waiting for.
  const pollWithDeadline = (): Promise<HealthSnapshot | null> => {
    const attempt = { abandoned: false };
    return orAfter(poll(attempt), pollTimeoutMs, () => {
      attempt.abandoned = true;
      hangUp(primary);
      memory = null;
      statementHistory.interrupt();
      setState('disconnected', `the primary did not answer within ${pollTimeoutMs} ms`);
      return null;
    });
  };

  const pollOnce = (): Promise<HealthSnapshot | null> => {
    running ??= pollWithDeadline().finally(() => (running = null));
    return running;
  };

  // Polls never overlap: the next one is scheduled when this one ends, on the interval's grid.
  const loop = async (): Promise<void> => {
    if (stopped) return;
    const started = Date.now();
    await pollOnce();
    if (stopped) return;
    timer = setTimeout(() => void loop(), Math.max(50, intervalMs - (Date.now() - started)));
  };

  const within = (ms: number | undefined): HealthSnapshot[] => {
    const all = ring.toArray();
    if (ms === undefined) return all;
    const cutoff = now().getTime() - ms;
    return all.filter((s) => Date.parse(s.at) >= cutoff);
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      void loop();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running?.catch(() => undefined);
      await slowRunning?.catch(() => undefined);
      await Promise.all(standbyNodes.map((node) => node.inFlight));
      await close(primary);
      for (const node of standbyNodes) await close(node);
    },
    pollOnce,
    slowSettled: async () => {
      await slowRunning?.catch(() => undefined);
    },
    latest: () => ring.latest() ?? null,
    snapshots: within,
    series: (ms) => {
      const recent = within(ms).map((s) => ({ t: Date.parse(s.at), f: s.figures }));
      if (!longSeries || ms === undefined) return recent;
      // Before the ring buffer's oldest point (an earlier run of serve, or over an hour ago): a point a minute.
      const first = recent[0]?.t ?? now().getTime();
      return [...longSeries.since(now().getTime() - ms).filter((p) => p.t < first), ...recent];
    },
    statements: (window) => statementHistory.window(window, texts, ownKeys),
    statementHistory: (id) => {
      if (ownKeys.has(id)) return null;
      const points = statementHistory.history(id);
      return points.length === 0 && !texts.has(id) ? null : { id, query: texts.get(id) ?? null, points };
    },
    state: () => current,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
