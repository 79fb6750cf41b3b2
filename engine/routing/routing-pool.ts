import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { createPoolFor } from '../connection/open-connection.ts';
import { FUNCTION_VOLATILITY_SQL, PRIMARY_ONLY_RELATIONS_SQL, type FunctionVolatilityRow, type PrimaryOnlyRelationRow } from '../catalog/replica-queries.ts';
import type { OnReplicaDown, ReadTarget } from '../policy/desired-routing.ts';
import { startLagSampler, type LagPoint } from '../replica-lag/lag-sampler.ts';
import { routerIdentity, startMetricsPublisher } from './metrics-publisher.ts';
import { connectionLevel, errorLine, isConnectionFailure, isSqlError, type ConnectionSpec } from '../replica-lag/monitor-connection.ts';
import type { ReplicaLag } from '../replica-lag/replica-lag.ts';
import { initialHealth, observeFailure, observeLag, type HealthPolicy, type ReplicaHealth } from './replica-health.ts';
import {
  FALLBACK_REASONS,
  PRIMARY_STATEMENT_REASONS,
  RETRY_REASONS,
  publishedMetrics,
  zeroCounts,
  type FallbackReason,
  type HealthTransition,
  type PrimaryStatementReason,
  type RetryReason,
  type RouterMetrics,
} from './router-metrics.ts';
import { createStatementClassifier } from './statement-classifier.ts';
import { buildKnowledge, type RouteDecision } from './statement-route.ts';

export interface RouterReplica {
  readonly name: string;
  /** A URL or a pool configuration; pool sizing not given here is taken from the primary's. */
  readonly connection: string | pg.PoolConfig;
  /** The standby's `application_name` on the primary, when it cannot be told from its slot or conninfo. */
  readonly applicationName?: string;
}

export interface RouterOptions {
  readonly primary: string | pg.PoolConfig;
  readonly replicas: readonly RouterReplica[];
  /** `replica` (default): read-only statements go to a replica. `primary`: everything to the primary. */
  readonly reads?: ReadTarget;
  /** Default 1000. */
  readonly maxLagMs?: number;
  /** After a session writes, its reads stay on the primary this long. Default 1000. */
  readonly readYourWritesMs?: number;
  /**
   * Which reads count as one session's when no explicit session is open: `router` (default) makes
   * every `query()` one session, so a write is always followed by fresh reads; `session` tracks only
   * `withSession()` / `session()` scopes (use it when every request runs in one).
   */
  readonly readYourWritesScope?: 'router' | 'session';
  /** When no replica can take a read: `primary` (default) or `error`. */
  readonly onReplicaDown?: OnReplicaDown;
  /** Lag sampling interval, default 100 ms. */
  readonly lagIntervalMs?: number;
  /** Write the heartbeat row every lagIntervalMs (default true). */
  readonly heartbeat?: boolean;
  /** A replica that left comes back after this long in good health (default 1000 ms). */
  readonly recoverAfterMs?: number;
  /** ... with lag below this share of maxLagMs (default 0.5). */
  readonly recoverBelowRatio?: number;
  /** Replicas within this many ms of the least-lagged one share reads round-robin (default 10). */
  readonly equalLagMs?: number;
  /** How often the function and relation catalog is reloaded (default 30 s). */
  readonly knowledgeRefreshMs?: number;
  /**
   * Client-side limit on a read sent to a replica, when the replica's configuration sets no
   * query_timeout (default 30 s): a replica that stops answering without closing the connection would
   * otherwise hold the read for ever. A read that times out is retried on the primary.
   */
  readonly replicaQueryTimeoutMs?: number;
  /**
   * How often the metrics are published to `pgwarden.router_metrics` on the primary for `pgwarden serve`'s
   * live page (default 5000 ms; 0: never). Needs the table plan/apply creates with the routing policy.
   */
  readonly metricsIntervalMs?: number;
  /** This router's row in `pgwarden.router_metrics` (default: a random id per process). */
  readonly instanceId?: string;
  /** How the live page names this router (default: the script's file name). */
  readonly application?: string;
}

export type Route = 'primary' | 'replica';

/** `query()`'s config object, with the per-call override: `{ text, values, route: 'primary' }`. */
export interface RoutedQueryConfig<I = unknown[]> extends pg.QueryConfig<I> {
  readonly route?: Route;
}

type RoutedQuery = <R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(
  config: RoutedQueryConfig<I>,
  values?: pg.QueryConfigValues<I>,
) => Promise<pg.QueryResult<R>>;

/** Where a statement would go right now, and why (nothing is executed). */
export interface RouteExplanation {
  readonly target: 'primary' | 'replica';
  readonly replica: string | null;
  readonly reason: PrimaryStatementReason | FallbackReason | null;
  readonly detail: string;
}

/** A read-your-writes scope held by the caller: its reads stay on the primary after its own writes. */
export interface RouterSession {
  readonly query: RoutingPool['query'];
  /** Runs `fn` with every `router.query()` inside it in this session. */
  run<T>(fn: () => T): T;
  /** Counts a write the router could not see (another connection, another service). */
  markWrite(): void;
  lastWriteAt(): number | null;
}

/**
 * A `pg.Pool` to the primary whose `query()` sends read-only statements to a replica. `connect()`
 * still hands out a primary client: transactions always run on the primary.
 */
export interface RoutingPool extends pg.Pool {
  query: RoutedQuery & pg.Pool['query'];
  metrics(): RouterMetrics;
  lag(): readonly ReplicaLag[];
  lagHistory(replica: string): readonly LagPoint[];
  /** Resolves once lag has been sampled and the function catalog loaded (or after `timeoutMs`). */
  ready(timeoutMs?: number): Promise<void>;
  /** Where `text` would go now; parses it if it was never seen. */
  route(text: string, options?: { readonly route?: Route }): Promise<RouteExplanation>;
  withSession<T>(fn: () => T): T;
  session(): RouterSession;
}

/** `on_replica_down: error` and no replica can take the read. */
export class NoReplicaError extends Error {
  readonly code = 'PGWARDEN_NO_REPLICA';
}

interface SessionState {
  lastWriteAt: number | null;
}

interface ReplicaNode {
  readonly name: string;
  readonly pool: pg.Pool;
  readonly query: (...args: unknown[]) => Promise<pg.QueryResult>;
  health: ReplicaHealth;
  lag: ReplicaLag | null;
  reads: number;
}

// Pool sizing and behaviour that replicas inherit from the primary's configuration.
const INHERITED: readonly (keyof pg.PoolConfig)[] = [
  'max',
  'min',
  'idleTimeoutMillis',
  'connectionTimeoutMillis',
  'maxUses',
  'allowExitOnIdle',
  'statement_timeout',
  'query_timeout',
  'idle_in_transaction_session_timeout',
  'application_name',
  'keepAlive',
  'types',
];

// An unreachable replica must fail a read fast, so that it is retried on the primary while the
// application waits; pg's own default is to wait for ever.
const REPLICA_CONNECT_TIMEOUT_MS = 2000;
const REPLICA_QUERY_TIMEOUT_MS = 30_000;

const now = (): number => Date.now();

function poolConfig(spec: string | pg.PoolConfig): pg.PoolConfig {
  return typeof spec === 'string' ? { connectionString: spec } : spec;
}

function replicaPoolConfig(primary: pg.PoolConfig, replica: string | pg.PoolConfig, queryTimeoutMs: number): pg.PoolConfig {
  const inherited = Object.fromEntries(INHERITED.flatMap((key) => (primary[key] === undefined ? [] : [[key, primary[key]]])));
  // keepAlive: a replica behind a dead network path is noticed by the OS, not only by the timeout.
  return { connectionTimeoutMillis: REPLICA_CONNECT_TIMEOUT_MS, query_timeout: queryTimeoutMs, keepAlive: true, ...inherited, ...poolConfig(replica) };
}

function monitorSpec(config: pg.PoolConfig): ConnectionSpec {
  const { max: _max, min: _min, idleTimeoutMillis: _idle, maxUses: _uses, allowExitOnIdle: _exit, ...client } = config;
  return client;
}

function isSubmittable(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { submit?: unknown }).submit === 'function';
}

/** PostgreSQL cancels standby queries that conflict with WAL replay (SQLSTATE 40001 or 40P01, PG 9.0+). */
export function isRecoveryConflict(error: unknown): boolean {
  return isSqlError(error) && /conflict with recovery/u.test(error.message);
}

/**
 * The replica is gone, going, not there yet, not answering or refuses us (a socket error, a client-side
 * timeout, shutdown, "starting up", too many connections, its database or our role missing there).
 * Anything else thrown before the statement reached the server (a bad bind value) is the caller's
 * error, and says nothing about the replica.
 */
function replicaUnavailable(error: unknown): boolean {
  if (!isSqlError(error)) return isConnectionFailure(error);
  return connectionLevel(error) || error.code.startsWith('53') || error.code.startsWith('28') || error.code === '3D000';
}

/** The standby refused the statement as a write: the classifier was wrong, or the catalog moved. */
function standbyRefused(error: unknown): boolean {
  if (!isSqlError(error)) return false;
  if (error.code === '25006') return true; // read_only_sql_transaction
  return (error.code === '0A000' || error.code === '55000') && /recovery/u.test(error.message);
}

/**
 * A table, column or function the standby does not know yet: DDL the primary committed and the
 * standby has not replayed. The primary has the truth; if the object does not exist there either, the
 * primary's own error is what the caller gets.
 */
function notReplayedYet(error: unknown): boolean {
  return isSqlError(error) && (error.code === '42P01' || error.code === '42703' || error.code === '42883');
}

/**
 * Creates the router: a `pg.Pool` for the primary (the object itself, so `instanceof pg.Pool`, events,
 * `connect()` and the counts all behave as before), one pool per replica, a background lag sampler
 * with the heartbeat writer, and a background loader of the function catalog.
 *
 * @example
 * const db = createRouter({ primary: process.env.DATABASE_URL, replicas: [{ name: 'standby1', connection: process.env.REPLICA_URL }], maxLagMs: 250 });
 * await db.query('SELECT * FROM events WHERE tenant_id = $1', [7]);     // a replica within 250 ms
 * await db.query('UPDATE deployments SET status = $1 WHERE id = $2', ['ok', 3]); // the primary
 * await db.query({ text: 'SELECT balance FROM accounts WHERE id = $1', values: [3], route: 'primary' });
 */
export function createRouter(options: RouterOptions): RoutingPool {
  const primaryConfig = poolConfig(options.primary);
  const pool = createPoolFor(primaryConfig);
  const policy = {
    reads: options.reads ?? 'replica',
    maxLagMs: options.maxLagMs ?? 1000,
    readYourWritesMs: options.readYourWritesMs ?? 1000,
    onReplicaDown: options.onReplicaDown ?? 'primary',
  } as const;
  const healthPolicy: HealthPolicy = {
    maxLagMs: policy.maxLagMs,
    recoverBelowMs: policy.maxLagMs * (options.recoverBelowRatio ?? 0.5),
    recoverAfterMs: options.recoverAfterMs ?? 1000,
  };
  const equalLagMs = options.equalLagMs ?? 10;
  const scope = options.readYourWritesScope ?? 'router';
  const startedAt = now();

  const baseQuery = pool.query.bind(pool) as (...args: unknown[]) => Promise<pg.QueryResult>;
  // pg.Pool's own query() borrows a client through `this.connect`: while it does, `connect` must not
  // count a transaction. pg calls it synchronously from query(), so a flag set around the call is exact.
  let internal = false;
  const baseConnect = pool.connect.bind(pool);
  const baseEnd = pool.end.bind(pool);

  const replicas: ReplicaNode[] = options.replicas.map((replica) => {
    const replicaPool = createPoolFor(replicaPoolConfig(primaryConfig, replica.connection, options.replicaQueryTimeoutMs ?? REPLICA_QUERY_TIMEOUT_MS));
    const node: ReplicaNode = {
      name: replica.name,
      pool: replicaPool,
      query: replicaPool.query.bind(replicaPool) as (...args: unknown[]) => Promise<pg.QueryResult>,
      health: initialHealth(startedAt),
      lag: null,
      reads: 0,
    };
    // An idle replica connection dying (the standby stopped) is news, not a crash.
    replicaPool.on('error', () => noteFailure(node, 'unreachable'));
    return node;
  });

  const classifier = createStatementClassifier();
  const sessions = new AsyncLocalStorage<SessionState>();
  const routerSession: SessionState = { lastWriteAt: null };
  const untracked: SessionState = { lastWriteAt: null };
  const counts = {
    statements: 0,
    primary: 0,
    primaryStatements: zeroCounts(PRIMARY_STATEMENT_REASONS),
    fallbacks: zeroCounts(FALLBACK_REASONS),
    retries: zeroCounts(RETRY_REASONS),
    failedReads: 0,
  };
  const transitions: HealthTransition[] = [];
  let eligible: ReplicaNode[] = [];
  let turn = 0;
  let knowledgeAt: number | null = null;
  let knowledgeError: string | null = null;
  let knowledgeTimer: NodeJS.Timeout | null = null;
  let ending = false;

  const record = (node: ReplicaNode, previous: ReplicaHealth): void => {
    if (previous.healthy === node.health.healthy && previous.reason === node.health.reason) return;
    transitions.push({ at: now(), replica: node.name, healthy: node.health.healthy, reason: node.health.reason, lagMs: node.lag?.lagMs ?? null });
    if (transitions.length > 100) transitions.shift();
  };

  /** Healthy replicas within equalLagMs of the least-lagged one: they share reads round-robin. */
  const recomputeEligible = (): void => {
    const healthy = replicas.filter((r) => r.health.healthy);
    const best = Math.min(...healthy.map((r) => r.lag?.lagMs ?? Infinity));
    eligible = healthy.filter((r) => (r.lag?.lagMs ?? Infinity) <= best + equalLagMs);
  };

  function noteFailure(node: ReplicaNode, reason: 'unreachable' | 'recovery-conflict'): void {
    const previous = node.health;
    node.health = observeFailure(previous, reason, now());
    record(node, previous);
    recomputeEligible();
  }

  const metricsIntervalMs = options.metricsIntervalMs ?? 5000;
  const publisher =
    metricsIntervalMs > 0
      ? startMetricsPublisher({
          primary: monitorSpec(primaryConfig),
          identity: routerIdentity({
            startedAt,
            ...(options.instanceId === undefined ? {} : { instance: options.instanceId }),
            ...((options.application ?? primaryConfig.application_name) === undefined ? {} : { application: options.application ?? primaryConfig.application_name }),
          }),
          intervalMs: metricsIntervalMs,
          metrics: () => publishedMetrics(metrics()),
        })
      : null;

  const sampler = startLagSampler({
    primary: monitorSpec(primaryConfig),
    replicas: options.replicas.map((replica) => ({
      name: replica.name,
      connection: monitorSpec(poolConfig(replica.connection)),
      ...(replica.applicationName === undefined ? {} : { applicationName: replica.applicationName }),
    })),
    intervalMs: options.lagIntervalMs ?? 100,
    heartbeat: options.heartbeat ?? true,
    onSample: (lags) => {
      publisher?.tick(now());
      const at = now();
      for (const lag of lags) {
        const node = replicas.find((r) => r.name === lag.name);
        if (node === undefined) continue;
        const previous = node.health;
        node.lag = lag;
        node.health = observeLag(previous, lag, healthPolicy, at);
        record(node, previous);
      }
      recomputeEligible();
    },
  });

  const internalQuery = (...args: unknown[]): Promise<pg.QueryResult> => {
    internal = true;
    try {
      return baseQuery(...args);
    } finally {
      internal = false;
    }
  };

  const loadKnowledge = async (): Promise<void> => {
    try {
      const [functions, relations] = await Promise.all([
        internalQuery(FUNCTION_VOLATILITY_SQL) as Promise<pg.QueryResult<FunctionVolatilityRow>>,
        internalQuery(PRIMARY_ONLY_RELATIONS_SQL) as Promise<pg.QueryResult<PrimaryOnlyRelationRow>>,
      ]);
      classifier.setKnowledge(buildKnowledge(classifier.knowledge().version + 1, functions.rows, relations.rows));
      knowledgeAt = now();
      knowledgeError = null;
    } catch (error) {
      knowledgeError = errorLine(error);
    }
    if (ending) return;
    knowledgeTimer = setTimeout(() => void loadKnowledge(), knowledgeError === null ? (options.knowledgeRefreshMs ?? 30_000) : 5000);
    knowledgeTimer.unref();
  };
  const knowledgeLoaded = loadKnowledge();

  const currentSession = (): SessionState => sessions.getStore() ?? (scope === 'router' ? routerSession : untracked);

  const markWrite = (session: SessionState): void => {
    if (session !== untracked) session.lastWriteAt = now();
  };

  const onPrimary = (first: unknown, values: unknown, reason: PrimaryStatementReason | FallbackReason, session: SessionState, writes: boolean): Promise<pg.QueryResult> => {
    counts.primary += 1;
    if ((FALLBACK_REASONS as readonly string[]).includes(reason)) counts.fallbacks[reason as FallbackReason] += 1;
    else counts.primaryStatements[reason as PrimaryStatementReason] += 1;
    const result = internalQuery(first, values);
    if (!writes) return result;
    // Marked when the write is done, and when it failed too (a lost connection may still have committed).
    return result.then(
      (r) => {
        markWrite(session);
        return r;
      },
      (error: unknown) => {
        markWrite(session);
        throw error;
      },
    );
  };

  const pick = (): ReplicaNode | undefined => {
    if (eligible.length <= 1) return eligible[0];
    turn = (turn + 1) % eligible.length;
    return eligible[turn];
  };

  /** Why no replica takes reads now: the least-bad replica's reason. */
  const unavailableReason = (): FallbackReason => replicas.map((r) => r.health.reason).find((r) => r !== null) ?? 'starting';

  const onReplica = (node: ReplicaNode, first: unknown, values: unknown, text: string, session: SessionState): Promise<pg.QueryResult> => {
    node.reads += 1;
    return node.query(first, values).catch((error: unknown) => {
      node.reads -= 1;
      if (isRecoveryConflict(error)) {
        noteFailure(node, 'recovery-conflict');
        counts.retries['recovery-conflict'] += 1;
        return retryOnPrimary(first, values);
      }
      if (standbyRefused(error)) {
        classifier.learnPrimary(text, errorLine(error));
        counts.retries['standby-refused'] += 1;
        return retryOnPrimary(first, values).then((r) => {
          markWrite(session);
          return r;
        });
      }
      if (notReplayedYet(error)) {
        counts.retries['not-replayed-yet'] += 1;
        return retryOnPrimary(first, values);
      }
      if (replicaUnavailable(error)) {
        noteFailure(node, 'unreachable');
        if (policy.onReplicaDown === 'error') {
          counts.failedReads += 1;
          throw error;
        }
        counts.retries['replica-unavailable'] += 1;
        return retryOnPrimary(first, values);
      }
      throw error;
    });
  };

  const retryOnPrimary = (first: unknown, values: unknown): Promise<pg.QueryResult> => {
    counts.primary += 1;
    return internalQuery(first, values).catch((error: unknown) => {
      counts.failedReads += 1;
      throw error;
    });
  };

  const dispatch = (decision: RouteDecision, first: unknown, values: unknown, text: string, session: SessionState): Promise<pg.QueryResult> => {
    if (decision.target === 'primary') {
      return onPrimary(first, values, decision.reason, session, decision.reason !== 'relation');
    }
    return read(first, values, text, session);
  };

  const read = (first: unknown, values: unknown, text: string, session: SessionState): Promise<pg.QueryResult> => {
    if (policy.reads === 'primary') return onPrimary(first, values, 'reads-primary', session, false);
    if (session.lastWriteAt !== null && now() - session.lastWriteAt < policy.readYourWritesMs) {
      return onPrimary(first, values, 'read-your-writes', session, false);
    }
    const node = pick();
    if (node !== undefined) return onReplica(node, first, values, text, session);
    if (policy.onReplicaDown === 'error') {
      counts.failedReads += 1;
      return Promise.reject(new NoReplicaError(`no replica can take reads: ${describeReplicas(replicas, policy.maxLagMs)}`));
    }
    return onPrimary(first, values, unavailableReason(), session, false);
  };

  const routed = (first: unknown, values: unknown, session: SessionState): Promise<pg.QueryResult> => {
    counts.statements += 1;
    const config = typeof first === 'string' ? undefined : (first as RoutedQueryConfig);
    const text = config === undefined ? (first as string) : config.text;
    if (config?.route === 'primary') {
      // The override skips routing, not read-your-writes: a write sent this way still counts.
      const decided = classifier.route(text);
      const result = onPrimary(first, values, 'override', session, false);
      void Promise.resolve(decided).then((d) => {
        if (d.target === 'primary' && d.reason !== 'relation') result.then(() => markWrite(session), () => markWrite(session));
      });
      return result;
    }
    if (config?.route === 'replica') return read(first, values, text, session);
    const decision = classifier.route(text);
    if (decision instanceof Promise) return decision.then((d) => dispatch(d, first, values, text, session));
    return dispatch(decision, first, values, text, session);
  };

  /** pg.Pool's query(), in the caller's session (an explicit one, or the AsyncLocalStorage scope). */
  function queryIn(session: SessionState | null, first: unknown, second?: unknown, third?: unknown): unknown {
    // Streams and cursors (pg-query-stream, pg-cursor), and whatever pg itself rejects: the primary, as before.
    if (typeof first === 'function' || isSubmittable(first) || (typeof first !== 'string' && (typeof first !== 'object' || first === null))) {
      return internalQuery(first, second, third);
    }
    const callback = typeof third === 'function' ? third : typeof second === 'function' ? second : undefined;
    const values = typeof second === 'function' ? undefined : second;
    const result = routed(first, values, session ?? currentSession());
    if (callback === undefined) return result;
    result.then(
      (r) => (callback as (e: Error | undefined, r?: pg.QueryResult) => void)(undefined, r),
      (e: Error) => (callback as (e: Error) => void)(e),
    );
    return undefined;
  }

  function query(first: unknown, second?: unknown, third?: unknown): unknown {
    return queryIn(null, first, second, third);
  }

  type ConnectCallback = (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void;

  /** A primary client. Its release counts as a write for the session that took it: transactions write. */
  function connect(callback?: ConnectCallback): unknown {
    if (internal) return (baseConnect as (cb?: ConnectCallback) => unknown)(callback);
    const session = currentSession();
    counts.statements += 1;
    counts.primaryStatements.transaction += 1;
    const wrap = (client: pg.PoolClient): pg.PoolClient => {
      const release = client.release.bind(client);
      client.release = (err?: Error | boolean) => {
        markWrite(session);
        return release(err);
      };
      return client;
    };
    if (callback === undefined) return baseConnect().then(wrap);
    baseConnect((err, client, done) => {
      if (err !== undefined || client === undefined) {
        callback(err, client, done);
        return;
      }
      const wrapped = wrap(client);
      callback(undefined, wrapped, (release?: unknown) => wrapped.release(release as Error | boolean | undefined));
    });
    return undefined;
  }

  async function end(callback?: () => void): Promise<void> {
    ending = true;
    if (knowledgeTimer !== null) clearTimeout(knowledgeTimer);
    await Promise.all([sampler.stop(), publisher?.stop(), ...replicas.map((r) => r.pool.end().catch(() => undefined))]);
    await baseEnd();
    callback?.();
  }

  const explain = async (text: string, override?: Route): Promise<RouteExplanation> => {
    const session = currentSession();
    if (override === 'primary') return { target: 'primary', replica: null, reason: 'override', detail: 'route: primary' };
    const decision = override === 'replica' ? ({ target: 'replica' } as const) : await classifier.route(text);
    if (decision.target === 'primary') return { target: 'primary', replica: null, reason: decision.reason, detail: decision.detail };
    if (policy.reads === 'primary') return { target: 'primary', replica: null, reason: 'reads-primary', detail: 'the policy says reads: primary' };
    if (session.lastWriteAt !== null && now() - session.lastWriteAt < policy.readYourWritesMs) {
      return { target: 'primary', replica: null, reason: 'read-your-writes', detail: `this session wrote ${now() - session.lastWriteAt} ms ago` };
    }
    const candidate = eligible[0];
    if (candidate !== undefined) return { target: 'replica', replica: candidate.name, reason: null, detail: 'a read-only statement' };
    return { target: 'primary', replica: null, reason: unavailableReason(), detail: describeReplicas(replicas, policy.maxLagMs) };
  };

  const sessionHandle = (): RouterSession => {
    const state: SessionState = { lastWriteAt: null };
    const run = <T>(fn: () => T): T => sessions.run(state, fn);
    return {
      query: ((first: unknown, second?: unknown, third?: unknown) => queryIn(state, first, second, third)) as unknown as RoutingPool['query'],
      run,
      markWrite: () => markWrite(state),
      lastWriteAt: () => state.lastWriteAt,
    };
  };

  const metrics = (): RouterMetrics => ({
    at: now(),
    startedAt,
    policy,
    statements: counts.statements,
    targets: { primary: counts.primary, replicas: Object.fromEntries(replicas.map((r) => [r.name, r.reads])) },
    primaryStatements: { ...counts.primaryStatements },
    fallbacks: { ...counts.fallbacks },
    retries: { ...counts.retries },
    failedReads: counts.failedReads,
    classifier: { ...classifier.stats(), knowledgeLoaded: classifier.knowledge().loaded, knowledgeAt, knowledgeError },
    replicas: replicas.map((r) => ({
      name: r.name,
      healthy: r.health.healthy,
      reason: r.health.reason,
      since: r.health.since,
      reads: r.reads,
      lag: r.lag,
      window: sampler.stats(r.name),
      pool: { total: r.pool.totalCount, idle: r.pool.idleCount, waiting: r.pool.waitingCount },
    })),
    heartbeat: sampler.heartbeat(),
    publisher: publisher?.status() ?? null,
    primaryError: sampler.primaryError(),
    transitions: [...transitions],
  });

  const api = {
    // One implementation behind pg's overloads: TypeScript cannot check an overloaded signature
    // against a single body, so the type is asserted here and the body dispatches on the arguments.
    query: query as unknown as RoutingPool['query'],
    connect: connect as unknown as RoutingPool['connect'],
    end: end as unknown as RoutingPool['end'],
    metrics,
    lag: () => replicas.flatMap((r) => (r.lag === null ? [] : [r.lag])),
    lagHistory: (name: string) => sampler.history(name),
    async ready(timeoutMs = 5000) {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([Promise.all([sampler.ready(timeoutMs), knowledgeLoaded]), deadline]);
      clearTimeout(timer);
    },
    route: (text: string, routeOptions?: { readonly route?: Route }) => explain(text, routeOptions?.route),
    withSession: <T>(fn: () => T): T => sessions.run({ lastWriteAt: null }, fn),
    session: sessionHandle,
  };
  return Object.assign(pool, api);
}

/** "standby1 is 1,240 ms behind (max_lag_ms 250)", "standby2 is unreachable". */
function describeReplicas(replicas: readonly ReplicaNode[], maxLagMs: number): string {
  if (replicas.length === 0) return 'no replicas are configured';
  return replicas
    .map((r) => {
      const lag = r.lag?.lagMs;
      switch (r.health.reason) {
        case 'lag':
          return `${r.name} is ${lag === undefined || lag === null ? '?' : Math.round(lag).toLocaleString('en-US')} ms behind (max_lag_ms ${maxLagMs})`;
        case 'unreachable':
          return `${r.name} is unreachable${r.lag?.error ? ` (${r.lag.error})` : ''}`;
        case 'not-in-recovery':
          return `${r.name} is not in recovery (promoted, or not a standby)`;
        case 'lag-unknown':
          return `${r.name}'s lag cannot be measured`;
        case 'recovery-conflict':
          return `${r.name} cancelled a read in a recovery conflict`;
        case 'starting':
          return `${r.name} has not been sampled yet`;
        case null:
          return `${r.name} is recovering (lag must stay under ${maxLagMs / 2} ms for a while)`;
      }
      return r.name;
    })
    .join('; ');
}
