import type { PrimaryReplicationRow, ReplicaStateRow, WalSenderRow } from '../catalog/replica-queries.ts';
import { lsnDiff, parseLsn, type Lsn } from './lsn.ts';

/**
 * How far behind a replica is, measured two ways and combined, as a plain serialisable value (the
 * live page and `pgwarden health` show it as is).
 *
 * `lagMs` is an upper bound on staleness: the replica has everything the primary had committed
 * `lagMs` ago. It is the tightest of several bounds, all on the primary's clock (so clock skew between
 * the servers does not enter): the replayed heartbeat's timestamp, the commit time of the last
 * replayed transaction, and the time the primary's WAL position was last at or below the replica's
 * replay position. A heartbeat alone is up to one heartbeat interval stale; a replay timestamp alone
 * grows without meaning while the primary is idle; WAL positions tell "caught up" exactly.
 */
export interface ReplicaLag {
  readonly name: string;
  /** When the replica was sampled (this process's clock, epoch ms). */
  readonly sampledAt: number;
  readonly reachable: boolean;
  readonly error: string | null;
  readonly inRecovery: boolean | null;
  /** The WAL receiver is streaming; null when the role may not see pg_stat_wal_receiver's details. */
  readonly streaming: boolean | null;
  readonly replayPaused: boolean | null;
  readonly lagMs: number | null;
  readonly lagSource: LagSource;
  /** Age of the replayed heartbeat on the primary's clock (includes up to one heartbeat interval). */
  readonly heartbeatLagMs: number | null;
  /** The primary's current WAL position minus the replica's replay position. */
  readonly bytesBehind: number | null;
  /** Received by the standby but not yet replayed (replay paused, or replay slower than the stream). */
  readonly receivedNotReplayedBytes: number | null;
  /** This standby in the primary's pg_stat_replication; null when the primary could not be sampled. */
  readonly primaryView: PrimaryView | null;
}

export type LagSource =
  /** The replica had replayed the primary's WAL position of this very tick. */
  | 'caught-up'
  | 'heartbeat'
  | 'replay-timestamp'
  | 'wal-position'
  /** The receiver stopped: at least the time since it was last seen streaming. */
  | 'not-receiving'
  /** The primary could not be sampled: the replica's own clock against its replayed timestamps. */
  | 'replica-clock'
  | 'unknown';

export interface PrimaryView {
  /** A walsender for this standby is connected to the primary. */
  readonly connected: boolean;
  readonly state: string | null;
  readonly syncState: string | null;
  readonly writeLagMs: number | null;
  readonly flushLagMs: number | null;
  /** pg_stat_replication.replay_lag; 0 when caught up (PostgreSQL shows NULL once nothing is in flight). */
  readonly replayLagMs: number | null;
  /** pg_wal_lsn_diff(sent_lsn, replay_lsn). */
  readonly sentReplayBytes: number | null;
}

/** The primary's clock and WAL position at one instant: a point on the LSN-to-time curve. */
export interface PrimaryPosition {
  /** This process's clock, epoch ms (the midpoint of the round trip). */
  readonly at: number;
  /** The primary's clock_timestamp(), epoch ms. */
  readonly primaryMs: number;
  readonly lsn: Lsn;
}

export interface PrimarySample extends PrimaryPosition {
  readonly walSenders: readonly WalSenderRow[];
}

export interface ReplicaObservation {
  readonly at: number;
  readonly row: ReplicaStateRow;
}

export function primarySample(row: PrimaryReplicationRow, at: number): PrimarySample | null {
  const lsn = parseLsn(row.current_lsn);
  return lsn === null ? null : { at, primaryMs: row.now_ms, lsn, walSenders: row.standbys };
}

export interface LagInput {
  readonly name: string;
  /** The standby's `application_name` as the policy gives it, when it does. */
  readonly applicationName?: string;
  /** Only one replica is configured: a lone walsender is then taken to be it. */
  readonly soleReplica: boolean;
  readonly primary: PrimarySample | null;
  /** Earlier primary positions, oldest first. */
  readonly history: readonly PrimaryPosition[];
  readonly replica: ReplicaObservation | { readonly at: number; readonly error: string };
  /**
   * When the replica was last seen streaming; null when it has not been since watching began (a
   * single sample, or a receiver already stopped when the sampler started): its silence cannot be dated.
   */
  readonly lastStreamingAt: number | null;
}

export function replicaLag(input: LagInput): ReplicaLag {
  const { replica, primary } = input;
  if ('error' in replica) {
    return {
      name: input.name,
      sampledAt: replica.at,
      reachable: false,
      error: replica.error,
      inRecovery: null,
      streaming: null,
      replayPaused: null,
      lagMs: null,
      lagSource: 'unknown',
      heartbeatLagMs: null,
      bytesBehind: null,
      receivedNotReplayedBytes: null,
      primaryView: primary === null ? null : { ...disconnected },
    };
  }
  const { row } = replica;
  const sender = primary === null ? undefined : matchWalSender(input, row, primary.walSenders);
  const primaryView = primary === null ? null : sender === undefined ? { ...disconnected } : viewOf(sender);
  const streaming = receiverStreaming(row) ?? primaryView?.connected ?? null;
  const replay = parseLsn(row.replay_lsn);
  const received = parseLsn(row.receive_lsn);
  const base = {
    name: input.name,
    sampledAt: replica.at,
    reachable: true,
    error: null,
    inRecovery: row.in_recovery,
    streaming,
    replayPaused: row.replay_paused,
    bytesBehind: primary !== null && replay !== null ? Math.max(0, lsnDiff(primary.lsn, replay)) : null,
    // pg_last_wal_receive_lsn() restarts at a segment boundary after a reconnect, below the replay position.
    receivedNotReplayedBytes: received !== null && replay !== null ? Math.max(0, lsnDiff(received, replay)) : null,
    primaryView,
  };
  if (!row.in_recovery) return { ...base, lagMs: null, lagSource: 'unknown', heartbeatLagMs: null };

  if (primary === null) {
    // No primary clock: the replica's own clock against what it replayed, skew and all.
    const replayed = Math.max(row.heartbeat_ms ?? -Infinity, row.last_replay_ms ?? -Infinity);
    const lagMs = Number.isFinite(replayed) ? Math.max(0, row.now_ms - replayed) : null;
    return { ...base, lagMs, lagSource: lagMs === null ? 'unknown' : 'replica-clock', heartbeatLagMs: null };
  }

  // The primary's clock at the moment the replica was read: its sample, moved on by our own clock.
  const primaryNow = primary.primaryMs + (replica.at - primary.at);
  const bounds: { readonly ms: number; readonly source: LagSource }[] = [];
  // WAL positions say "it has everything up to here", which stays true only while WAL keeps arriving: a
  // replica whose receiver stopped on an idle primary has replayed everything there is, and will miss
  // the next write. Without a receiver, only what it replayed (heartbeat, commit times) and how long it
  // has been silent count.
  const receiving = streaming !== false;
  if (receiving && replay !== null && replay >= primary.lsn) bounds.push({ ms: primary.primaryMs, source: 'caught-up' });
  if (row.heartbeat_ms !== null) bounds.push({ ms: row.heartbeat_ms, source: 'heartbeat' });
  if (row.last_replay_ms !== null) bounds.push({ ms: row.last_replay_ms, source: 'replay-timestamp' });
  const position = replay === null || !receiving ? undefined : latestAtOrBelow(input.history, replay);
  if (position !== undefined) bounds.push({ ms: position.primaryMs, source: 'wal-position' });

  const heartbeatLagMs = row.heartbeat_ms === null ? null : Math.max(0, primaryNow - row.heartbeat_ms);
  const best = bounds.reduce<(typeof bounds)[number] | undefined>((a, b) => (a === undefined || b.ms > a.ms ? b : a), undefined);
  let lagMs = best === undefined ? null : Math.max(0, primaryNow - best.ms);
  let lagSource: LagSource = best?.source ?? 'unknown';
  // A replica that stopped receiving cannot know what it misses: at least as old as its silence and
  // what it last replayed, unknown when neither can be dated, and never current.
  if (!receiving) {
    const silentMs = input.lastStreamingAt === null ? null : Math.max(0, replica.at - input.lastStreamingAt);
    if (silentMs !== null && (lagMs === null || silentMs > lagMs)) lagMs = silentMs;
    lagSource = 'not-receiving';
  }
  return { ...base, lagMs, lagSource, heartbeatLagMs };
}

const disconnected: PrimaryView = {
  connected: false,
  state: null,
  syncState: null,
  writeLagMs: null,
  flushLagMs: null,
  replayLagMs: null,
  sentReplayBytes: null,
};

function receiverStreaming(row: ReplicaStateRow): boolean | null {
  if (!row.in_recovery) return null;
  if (row.receiver_pid === null) return false;
  if (row.receiver_status === null) return null;
  return row.receiver_status === 'streaming';
}

function toNumber(value: number | string | null): number | null {
  if (value === null) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

function viewOf(sender: WalSenderRow): PrimaryView {
  const sentReplayBytes = toNumber(sender.sent_replay_bytes);
  const behind = toNumber(sender.behind_bytes);
  return {
    connected: true,
    state: sender.state,
    syncState: sender.sync_state,
    writeLagMs: sender.write_lag_ms,
    flushLagMs: sender.flush_lag_ms,
    replayLagMs: sender.replay_lag_ms ?? (behind === 0 ? 0 : null),
    sentReplayBytes,
  };
}

/** `application_name=standby1` out of the standby's (password-masked) primary_conninfo. */
export function conninfoApplicationName(conninfo: string | null): string | null {
  if (conninfo === null) return null;
  const m = /(?:^|\s)application_name=('(?:[^'\\]|\\.)*'|\S+)/u.exec(conninfo);
  if (!m?.[1]) return null;
  const value = m[1];
  return value.startsWith("'") ? value.slice(1, -1).replace(/\\(.)/gu, '$1') : value;
}

/**
 * Which walsender on the primary feeds this standby: by replication slot, else by application_name,
 * else the only walsender when only one replica is configured.
 */
function matchWalSender(input: LagInput, row: ReplicaStateRow, senders: readonly WalSenderRow[]): WalSenderRow | undefined {
  if (row.receiver_slot !== null) {
    const bySlot = senders.find((s) => s.slot_name === row.receiver_slot);
    if (bySlot !== undefined) return bySlot;
  }
  const name = input.applicationName ?? conninfoApplicationName(row.conninfo);
  if (name !== null) {
    const byName = senders.filter((s) => s.application_name === name);
    if (byName.length === 1) return byName[0];
  }
  const physical = senders.filter((s) => s.state !== null);
  return input.soleReplica && physical.length === 1 ? physical[0] : undefined;
}

/** The most recent primary position the replica has replayed past (binary search; oldest first). */
function latestAtOrBelow(history: readonly PrimaryPosition[], lsn: Lsn): PrimaryPosition | undefined {
  let lo = 0;
  let hi = history.length - 1;
  let found: PrimaryPosition | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const entry = history[mid];
    if (entry === undefined) break;
    if (entry.lsn <= lsn) {
      found = entry;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}
