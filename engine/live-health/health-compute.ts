import { findingsFor } from './finding.ts';
import type {
  ExternalTableHealth,
  Figures,
  HealthSnapshot,
  LagSource,
  SlowHealth,
  StandbyHealth,
  StatementHealth,
  TableHealthRow,
  TopStatement,
  SessionInfo,
} from './health-snapshot.ts';
import { nextStatus, type StatusBoard } from './health-status.ts';
import type { DatabaseReading, HealthSettings, RelationsReading, ReplicationReading, StandbyReading, StatementCounters } from './health-readings.ts';
import { statementP95, summariseLatency, type StatementWindow } from './latency-distribution.ts';
import { computeRouting, type RoutingMemory } from './routing-health.ts';

/**
 * From two polls' cumulative counters to one snapshot of rates: pure, so every rule here is tested
 * without a database. A delta is null when there is no previous value or the counter went backwards
 * (pg_stat_reset, a restart, a statement evicted and re-added): a reset must read as "no data for this
 * window", never as a negative rate or as the total since the reset.
 */

export interface PrimaryPoll {
  readonly settings: HealthSettings;
  readonly database: DatabaseReading;
  readonly relations: RelationsReading;
  /** null when pg_stat_statements cannot be used (the reason is in settings). */
  readonly statements: readonly StatementCounters[] | null;
  /** pg_stat_statements_info.stats_reset (PostgreSQL 14+), when known. */
  readonly statementsReset?: string | null;
  readonly sessions: readonly SessionInfo[];
  readonly replication: ReplicationReading;
}

/** The routing module's lag for one standby (heartbeat, WAL positions and replay time combined). */
export interface RouterLag {
  readonly lagMs: number | null;
  readonly source: string;
}

export interface StandbyPoll {
  readonly name: string;
  readonly reading: StandbyReading | null;
  readonly error: string | null;
}

/** What the next poll subtracts from. */
export interface PollMemory {
  readonly database: DatabaseReading;
  readonly relations: RelationsReading;
  readonly statements: ReadonlyMap<string, StatementCounters>;
  readonly statementsReset?: string | null;
  readonly standbys: ReadonlyMap<string, StandbyReading>;
  readonly status: StatusBoard;
  /** The routers' publications of the routing window. */
  readonly routing?: RoutingMemory;
}

export interface ComputeInput {
  readonly seq: number;
  readonly at: Date;
  readonly primary: PrimaryPoll;
  readonly standbys: readonly StandbyPoll[];
  /** Lag per standby name from the routing module's sampler, when it runs. */
  readonly routerLag: ReadonlyMap<string, RouterLag>;
  readonly previous: PollMemory | null;
  readonly texts: ReadonlyMap<string, string>;
  /** The collector's own statements: left out of the workload's figures, counted as the poll's database time. */
  readonly ownKeys: ReadonlySet<string>;
  readonly slow: SlowHealth | null;
  /** The window of the routing section's rates (default one minute). */
  readonly routingWindowMs?: number;
  readonly poll: { readonly wallMs: number; readonly queries: number; readonly queryMs: Readonly<Record<string, number>> };
}

const WRAPAROUND = 2 ** 31;
const TOP_STATEMENTS = 10;

function delta(current: number, previous: number | undefined): number | null {
  if (previous === undefined) return null;
  const d = current - previous;
  return d >= 0 ? d : null;
}

function ratio(part: number | null, whole: number | null): number | null {
  if (part === null || whole === null || whole <= 0) return null;
  return part / whole;
}

function hitRatio(hit: number | null, read: number | null): number | null {
  if (hit === null || read === null) return null;
  return ratio(hit, hit + read);
}

function perSecond(d: number | null, windowMs: number | null): number | null {
  if (d === null || windowMs === null || windowMs <= 0) return null;
  return (d * 1000) / windowMs;
}

interface StatementDelta {
  readonly key: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly sumSqMs: number;
  readonly rows: number;
  readonly blksHit: number;
  readonly blksRead: number;
}

function statementDeltas(current: readonly StatementCounters[], previous: ReadonlyMap<string, StatementCounters> | null): StatementDelta[] {
  if (previous === null) return [];
  const out: StatementDelta[] = [];
  for (const s of current) {
    const p = previous.get(s.key);
    // A statement first seen in this window counts from zero: its entry was created inside the window.
    const base = p ?? { calls: 0, totalMs: 0, sumSqMs: 0, rows: 0, blksHit: 0, blksRead: 0 };
    const calls = s.calls - base.calls;
    if (calls <= 0 || s.totalMs < base.totalMs) continue;
    out.push({
      key: s.key,
      calls,
      totalMs: s.totalMs - base.totalMs,
      sumSqMs: Math.max(0, s.sumSqMs - base.sumSqMs),
      rows: Math.max(0, s.rows - base.rows),
      blksHit: Math.max(0, s.blksHit - base.blksHit),
      blksRead: Math.max(0, s.blksRead - base.blksRead),
    });
  }
  return out;
}

/** The increase of a cumulative counter over the window; null without both readings or across a reset. */
function counterDelta(now: number | null | undefined, before: number | null | undefined): number | null {
  if (now === null || now === undefined || before === null || before === undefined || now < before) return null;
  return now - before;
}

function toWindow(d: StatementDelta): StatementWindow {
  const mean = d.totalMs / d.calls;
  const variance = Math.max(0, d.sumSqMs / d.calls - mean * mean);
  return { calls: d.calls, meanMs: mean, stddevMs: Math.sqrt(variance) };
}

function statementHealth(input: ComputeInput, windowMs: number | null): { health: StatementHealth; ownMs: number | null; ownCalls: number | null; latency: ReturnType<typeof summariseLatency> } {
  const current = input.primary.statements;
  const empty = { meanMs: null, p50Ms: null, p95Ms: null, p99Ms: null, buckets: [] };
  if (current === null) {
    return {
      health: { available: false, reason: input.primary.settings.statementsReason, callsInWindow: 0, timeInWindowMs: 0, buckets: [], top: [] },
      ownMs: null,
      ownCalls: null,
      latency: empty,
    };
  }
  // pg_stat_statements was reset inside the window (pg_stat_statements_reset(), or a Neon compute that
  // suspended): every entry counts from zero, rather than the ones whose counters went backwards dropping out.
  const previousReset = input.previous?.statementsReset ?? null;
  const currentReset = input.primary.statementsReset ?? null;
  const resetInWindow = input.previous !== null && previousReset !== null && currentReset !== null && currentReset !== previousReset ? currentReset : null;
  const deltas = statementDeltas(current, resetInWindow !== null ? new Map() : (input.previous?.statements ?? null));
  const own = deltas.filter((d) => input.ownKeys.has(d.key));
  const workload = deltas.filter((d) => !input.ownKeys.has(d.key));
  const calls = workload.reduce((n, d) => n + d.calls, 0);
  const timeMs = workload.reduce((n, d) => n + d.totalMs, 0);
  const latency = summariseLatency(workload.map(toWindow));
  const top: TopStatement[] = [...workload]
    .sort((a, b) => b.totalMs - a.totalMs)
    .slice(0, TOP_STATEMENTS)
    .map((d) => {
      const w = toWindow(d);
      return {
        id: d.key,
        query: input.texts.get(d.key) ?? null,
        calls: d.calls,
        callsPerSecond: perSecond(d.calls, windowMs) ?? 0,
        meanMs: w.meanMs,
        p95Ms: statementP95(w),
        rowsPerCall: d.rows / d.calls,
        timeShare: timeMs > 0 ? d.totalMs / timeMs : 0,
        cacheHitRatio: hitRatio(d.blksHit, d.blksRead),
      };
    });
  return {
    health: { available: true, reason: null, callsInWindow: calls, timeInWindowMs: timeMs, buckets: latency.buckets, top, ...(resetInWindow === null ? {} : { resetAt: resetInWindow }) },
    ownMs: input.previous ? own.reduce((n, d) => n + d.totalMs, 0) : null,
    ownCalls: input.previous ? own.reduce((n, d) => n + d.calls, 0) : null,
    latency,
  };
}

type Sender = ReplicationReading['standbys'][number];

/**
 * Which walsender on the primary feeds each polled standby: the one streaming from its slot, else the
 * one with the application_name it connects with, else one named like it; with a single standby
 * configured, the single walsender left. A standby that connects as 'walreceiver' is then shown once,
 * under its configured name, rather than twice.
 */
function matchSenders(polled: readonly StandbyPoll[], senders: readonly Sender[]): Map<string, Sender> {
  const matched = new Map<string, Sender>();
  const used = new Set<Sender>();
  const claim = (name: string, sender: Sender | undefined): void => {
    if (sender === undefined || used.has(sender) || matched.has(name)) return;
    matched.set(name, sender);
    used.add(sender);
  };
  const only = (list: readonly Sender[]): Sender | undefined => (list.length === 1 ? list[0] : undefined);
  for (const p of polled) {
    const slot = p.reading?.receiverSlot ?? null;
    if (slot !== null) claim(p.name, senders.find((s) => s.slot === slot));
  }
  for (const p of polled) {
    const named = p.reading?.senderName ?? null;
    if (named !== null) claim(p.name, only(senders.filter((s) => s.name === named && !used.has(s))));
  }
  for (const p of polled) claim(p.name, only(senders.filter((s) => s.name === p.name && !used.has(s))));
  const left = senders.filter((s) => !used.has(s));
  const first = polled[0];
  if (polled.length === 1 && first !== undefined && left.length === 1) claim(first.name, left[0]);
  return matched;
}

function standbyHealth(input: ComputeInput, windowMs: number | null): StandbyHealth[] {
  const senders = input.primary.replication.standbys;
  const matched = matchSenders(input.standbys, senders);
  const claimed = new Set(matched.values());
  const fromPrimary = new Map<string, Sender>(matched);
  // Walsenders of standbys the collector does not poll are shown under their own names.
  for (const s of senders) if (!claimed.has(s) && !fromPrimary.has(s.name)) fromPrimary.set(s.name, s);
  const names = [...new Set([...input.standbys.map((s) => s.name), ...fromPrimary.keys()])];
  return names.map((name): StandbyHealth => {
    const pv = fromPrimary.get(name) ?? null;
    const polled = input.standbys.find((s) => s.name === name) ?? null;
    const own = polled?.reading ?? null;
    const prev = input.previous?.standbys.get(name);
    const ownWindow = own && prev ? own.serverTimeMs - prev.serverTimeMs : null;
    const primaryView = pv
      ? { state: pv.state, syncState: pv.syncState, writeLagMs: pv.writeLagMs, flushLagMs: pv.flushLagMs, replayLagMs: pv.replayLagMs, replayBytes: pv.replayBytes }
      : null;
    const ownView = own
      ? {
          receiverStatus: own.receiverStatus,
          replayPaused: own.replayPaused,
          unreplayedBytes: own.unreplayedBytes,
          lastReplayAgeMs: own.lastReplayAgeMs,
          tps: perSecond(prev ? delta(own.xactCommit + own.xactRollback, prev.xactCommit + prev.xactRollback) : null, ownWindow),
          cacheHitRatio: prev ? hitRatio(delta(own.blksHit, prev.blksHit), delta(own.blksRead, prev.blksRead)) : null,
          connections: own.clientConnections,
          maxConnections: own.maxConnections,
          conflicts: prev ? delta(own.conflicts, prev.conflicts) : null,
        }
      : null;
    let lagMs: number | null = null;
    let lagSource: LagSource | null = null;
    const router = input.routerLag.get(name);
    const notStreaming = (own !== null && own.receiverStatus !== 'streaming') || (own === null && pv === null);
    if (router !== undefined && router.lagMs !== null) {
      lagMs = router.lagMs;
      lagSource = router.source;
    } else if (!notStreaming) {
      // pg_stat_replication's replay_lag turns NULL once the standby has caught up, and stops moving while
      // replay is paused; the standby's own view covers both: nothing unreplayed means 0, something
      // unreplayed means "as old as the last transaction it replayed".
      const primaryLag = pv ? (pv.replayBytes === 0 ? 0 : pv.replayLagMs) : null;
      const behind = own !== null && (own.replayPaused || (own.unreplayedBytes ?? 0) > 0);
      const ownLag = own === null ? null : behind ? (own.lastReplayAgeMs ?? null) : 0;
      if (ownLag !== null && (primaryLag === null || ownLag > primaryLag)) {
        lagMs = ownLag;
        lagSource = 'standby';
      } else if (primaryLag !== null) {
        lagMs = primaryLag;
        lagSource = pv?.lagSource ?? 'pg_stat_replication';
      }
    }
    const state: StandbyHealth['state'] = polled?.error
      ? 'down'
      : own?.replayPaused
        ? 'replay-paused'
        : notStreaming
          ? 'not-streaming'
          : pv || own
            ? 'streaming'
            : 'unknown';
    return {
      name,
      state,
      lagMs,
      lagSource,
      lagBytes: pv?.replayBytes ?? own?.unreplayedBytes ?? null,
      primaryView,
      ownView,
      error: polled?.error ?? null,
    };
  });
}

function tableRows(relations: RelationsReading, settings: HealthSettings, slow: SlowHealth | null): TableHealthRow[] {
  const external = new Map<string, ExternalTableHealth>((slow?.tableHealth ?? []).map((h) => [`${h.schema}.${h.name}`, h]));
  const rows = new Map<string, TableHealthRow>();
  // Issue 5's worst tables (slow cadence) first; this poll's counters then replace their counts.
  for (const h of external.values()) {
    rows.set(`${h.schema}.${h.name}`, {
      schema: h.schema,
      name: h.name,
      liveRows: h.liveRows,
      deadRows: h.deadRows,
      deadShare: h.liveRows + h.deadRows > 0 ? h.deadRows / (h.liveRows + h.deadRows) : 0,
      autovacuumTrigger: h.autovacuumTrigger,
      autovacuumEnabled: h.autovacuumEnabled,
      modifiedSinceAnalyze: h.modifiedSinceAnalyze,
      rowEstimate: h.rowEstimate,
      xidAge: h.xidAge,
      lastVacuum: h.lastVacuum,
      lastAnalyze: h.lastAnalyze,
      health: h.health,
      limitedBy: h.limitedBy,
    });
  }
  for (const w of relations.worst) {
    const key = `${w.schema}.${w.name}`;
    const total = w.live + w.dead;
    rows.set(key, {
      schema: w.schema,
      name: w.name,
      liveRows: w.live,
      deadRows: w.dead,
      deadShare: total > 0 ? w.dead / total : 0,
      autovacuumTrigger: (w.vacuumThreshold ?? settings.vacuumThreshold) + (w.vacuumScaleFactor ?? settings.vacuumScaleFactor) * Math.max(w.rowEstimate, 0),
      autovacuumEnabled: w.autovacuumEnabled ?? true,
      modifiedSinceAnalyze: w.modSinceAnalyze,
      rowEstimate: w.rowEstimate,
      xidAge: w.xidAge,
      lastVacuum: w.lastVacuum,
      lastAnalyze: w.lastAnalyze,
      health: external.get(key)?.health ?? null,
      limitedBy: external.get(key)?.limitedBy ?? null,
    });
  }
  const score = (r: TableHealthRow): number => r.health ?? 1 - r.deadShare;
  return [...rows.values()].sort((a, b) => score(a) - score(b) || b.deadRows - a.deadRows).slice(0, 15);
}

function worstTableHealth(rows: readonly TableHealthRow[], relations: RelationsReading, slow: SlowHealth | null): number | null {
  if (relations.tables === 0) return null;
  const scores = (slow?.tableHealth ?? []).map((h) => h.health);
  if (scores.length > 0) return Math.min(...scores);
  // Without issue 5's score: the live-tuple share of the worst table big enough to rank (see WORST_TABLES).
  const shares = rows.filter((r) => r.liveRows + r.deadRows >= 1000).map((r) => 1 - r.deadShare);
  return shares.length > 0 ? Math.min(...shares) : 1;
}

export function computeSnapshot(input: ComputeInput): { snapshot: HealthSnapshot; memory: PollMemory } {
  const { primary, previous } = input;
  const db = primary.database;
  const pdb = previous?.database;
  const windowMs = pdb ? db.serverTimeMs - pdb.serverTimeMs : null;
  const d = (k: keyof DatabaseReading): number | null => {
    const c = db[k];
    const p = pdb?.[k];
    return typeof c === 'number' && (typeof p === 'number' || p === undefined) ? delta(c, p as number | undefined) : null;
  };
  const resetInWindow = pdb !== undefined && (['xactCommit', 'xactRollback', 'blksHit', 'blksRead'] as const).some((k) => db[k] < pdb[k]);
  const commits = d('xactCommit');
  const rollbacks = d('xactRollback');
  const ended = commits !== null && rollbacks !== null ? commits + rollbacks : null;
  const rel = primary.relations;
  const prel = previous?.relations;
  const rd = (k: 'seqScan' | 'idxScan' | 'idxHit' | 'idxRead'): number | null => delta(rel[k], prel?.[k]);
  const idxScans = rd('idxScan');
  const seqScans = rd('seqScan');
  const statements = statementHealth(input, windowMs);
  const standbys = standbyHealth(input, windowMs);
  const lags = standbys.map((s) => s.lagMs).filter((v): v is number => v !== null);
  const lagBytes = standbys.map((s) => s.lagBytes).filter((v): v is number => v !== null);
  const tables = tableRows(rel, primary.settings, input.slow);
  const routing = computeRouting(primary.replication.routing, previous?.routing ?? null, input.routingWindowMs);
  const figures: Figures = {
    latencyMeanMs: statements.latency.meanMs,
    latencyP50Ms: statements.latency.p50Ms,
    latencyP95Ms: statements.latency.p95Ms,
    latencyP99Ms: statements.latency.p99Ms,
    callsPerSecond: primary.statements === null || !previous ? null : perSecond(statements.health.callsInWindow, windowMs),
    tps: perSecond(ended, windowMs),
    ownStatementsPerSecond: statements.ownCalls === null ? null : perSecond(statements.ownCalls, windowMs),
    rollbackShare: ratio(rollbacks, ended),
    deadlocks: d('deadlocks'),
    cacheHitRatio: hitRatio(d('blksHit'), d('blksRead')),
    indexHitRatio: hitRatio(rd('idxHit'), rd('idxRead')),
    indexScanShare: idxScans !== null && seqScans !== null ? ratio(idxScans, idxScans + seqScans) : null,
    replicaLagMs: lags.length > 0 ? Math.max(...lags) : null,
    replicaLagBytes: lagBytes.length > 0 ? Math.max(...lagBytes) : null,
    standbysDown: standbys.filter((s) => s.state === 'down' || s.state === 'not-streaming').length,
    tableHealth: worstTableHealth(tables, rel, input.slow),
    connections: db.clientConnections,
    maxConnections: primary.settings.maxConnections,
    connectionsShare: primary.settings.maxConnections > 0 ? db.clientConnections / primary.settings.maxConnections : 0,
    idleInTransaction: db.idleInTransactionStuck,
    longestTransactionMs: db.longestTransactionMs,
    locksWaiting: db.locksWaiting,
    xidAgeShare: db.xidAge / WRAPAROUND,
    checkpointsTimed: counterDelta(db.checkpointsTimed, pdb?.checkpointsTimed),
    checkpointsRequested: counterDelta(db.checkpointsRequested, pdb?.checkpointsRequested),
    walBytesPerSecond: db.walBytes !== null && pdb?.walBytes !== null && pdb?.walBytes !== undefined ? perSecond(delta(db.walBytes, pdb.walBytes), windowMs) : null,
    pollMs: input.poll.wallMs,
  };
  const at = input.at.toISOString();
  const status = nextStatus(previous?.status ?? null, figures, at);
  const rate = (k: keyof DatabaseReading): number => perSecond(d(k), windowMs) ?? 0;
  const snapshot: HealthSnapshot = {
    version: 1,
    seq: input.seq,
    at,
    windowMs,
    database: primary.settings.database,
    serverVersion: primary.settings.serverVersion,
    figures,
    status,
    primary: {
      serverTime: new Date(db.serverTimeMs).toISOString(),
      maxConnections: primary.settings.maxConnections,
      connections: { total: db.clientConnections, active: db.active, idle: db.idle, idleInTransaction: db.idleInTransaction, waitingOnLock: db.waitingOnLock },
      backends: db.backends,
      xidAge: db.xidAge,
      freezeMaxAge: primary.settings.freezeMaxAge,
      statsReset: db.statsReset,
      statsResetInWindow: resetInWindow,
      tupleRates: windowMs === null ? null : { returned: rate('tupReturned'), fetched: rate('tupFetched'), inserted: rate('tupInserted'), updated: rate('tupUpdated'), deleted: rate('tupDeleted') },
      tempBytesPerSecond: perSecond(d('tempBytes'), windowMs),
    },
    standbys,
    routing: routing.routing,
    statements: statements.health,
    tables: { count: rel.tables, deadRows: rel.dead, liveRows: rel.live, worst: tables },
    sessions: primary.sessions,
    slow: input.slow,
    findings: findingsFor({
      tables,
      freezeMaxAge: primary.settings.freezeMaxAge,
      sessions: primary.sessions,
      slots: primary.replication.slots,
      standbys,
      slow: input.slow,
    }),
    poll: { ...input.poll, databaseMs: statements.ownMs },
  };
  const memory: PollMemory = {
    database: db,
    relations: rel,
    statements: new Map((primary.statements ?? []).map((s) => [s.key, s])),
    statementsReset: primary.statementsReset ?? input.previous?.statementsReset ?? null,
    standbys: new Map(input.standbys.flatMap((s) => (s.reading ? [[s.name, s.reading] as const] : []))),
    status,
    routing: routing.memory,
  };
  return { snapshot, memory };
}
