import { describe, expect, it } from 'vitest';
import type { ReplicaStateRow, SettingRow, WalSenderRow } from '../../engine/catalog/replica-queries.ts';
import { canonicalSetting, showSetting } from '../../engine/diff/setting-value.ts';
import { lagStats } from '../../engine/replica-lag/lag-sampler.ts';
import { parseLsn } from '../../engine/replica-lag/lsn.ts';
import { initialHealth, observeFailure, observeLag, type HealthPolicy } from '../../engine/routing/replica-health.ts';
import { conninfoApplicationName, replicaLag, type LagInput, type PrimarySample, type ReplicaLag } from '../../engine/replica-lag/replica-lag.ts';

const T0 = 1_700_000_000_000;

function lsn(text: string): bigint {
  const value = parseLsn(text);
  if (value === null) throw new Error(`bad lsn ${text}`);
  return value;
}

const sender: WalSenderRow = {
  pid: 1,
  application_name: 'standby1',
  client_addr: '127.0.0.1/32',
  state: 'streaming',
  sync_state: 'async',
  slot_name: 'slot1',
  sent_lsn: '0/3000000',
  write_lsn: '0/3000000',
  flush_lsn: '0/3000000',
  replay_lsn: '0/2000000',
  write_lag_ms: 1,
  flush_lag_ms: 1,
  replay_lag_ms: 40,
  sent_replay_bytes: 16777216,
  behind_bytes: 16777216,
};

function primary(at: number, lsnText: string, walSenders: readonly WalSenderRow[] = [sender]): PrimarySample {
  return { at, primaryMs: at + 5_000, lsn: lsn(lsnText), walSenders };
}

function replicaRow(overrides: Partial<ReplicaStateRow> = {}): ReplicaStateRow {
  return {
    now_ms: T0,
    in_recovery: true,
    receive_lsn: '0/3000000',
    replay_lsn: '0/2000000',
    last_replay_ms: null,
    replay_paused: false,
    receiver_pid: 42,
    receiver_status: 'streaming',
    receiver_slot: 'slot1',
    sender_host: '127.0.0.1',
    sender_port: 5432,
    conninfo: "user=postgres application_name='standby1' host=127.0.0.1",
    heartbeat_table: true,
    heartbeat_ms: null,
    ...overrides,
  };
}

function lagOf(input: Partial<LagInput> & { row?: Partial<ReplicaStateRow>; at?: number }): ReplicaLag {
  const at = input.at ?? T0 + 10;
  return replicaLag({
    name: 'standby1',
    soleReplica: true,
    primary: input.primary === undefined ? primary(T0, '0/3000000') : input.primary,
    history: input.history ?? [],
    replica: input.replica ?? { at, row: replicaRow(input.row) },
    lastStreamingAt: input.lastStreamingAt === undefined ? at : input.lastStreamingAt,
  });
}

describe('replica lag, measured on the primary’s clock', () => {
  it('is the time since the replica had everything: the newest of heartbeat, replay time and WAL position', () => {
    // Primary clock = local + 5000. Replica sampled 10 ms after the primary; heartbeat stamped 150 ms before.
    const lag = lagOf({ row: { heartbeat_ms: T0 + 5_000 - 150, last_replay_ms: T0 + 5_000 - 400 } });

    expect(lag.lagMs).toBeCloseTo(160, 6);
    expect(lag.lagSource).toBe('heartbeat');
    expect(lag.heartbeatLagMs).toBeCloseTo(160, 6);
    expect(lag.bytesBehind).toBe(16 * 1024 * 1024);
  });

  it('tightens the bound with earlier primary WAL positions the replica has replayed past', () => {
    const history = [
      { at: T0 - 300, primaryMs: T0 + 5_000 - 300, lsn: lsn('0/1000000') },
      { at: T0 - 100, primaryMs: T0 + 5_000 - 100, lsn: lsn('0/2000000') },
      { at: T0 - 50, primaryMs: T0 + 5_000 - 50, lsn: lsn('0/2800000') },
    ];
    const lag = lagOf({ history, row: { heartbeat_ms: T0 + 5_000 - 150 } });

    expect(lag.lagSource).toBe('wal-position');
    expect(lag.lagMs).toBeCloseTo(110, 6);
  });

  it('is the sampling gap, not the heartbeat’s age, when the replica has replayed the primary’s current position', () => {
    const lag = lagOf({ row: { replay_lsn: '0/3000000', heartbeat_ms: T0 + 5_000 - 90 } });

    expect(lag.lagSource).toBe('caught-up');
    expect(lag.lagMs).toBeCloseTo(10, 6);
  });

  it('never reports a replica whose WAL receiver stopped as current: it is at least as old as the silence', () => {
    const lag = lagOf({
      at: T0 + 10,
      lastStreamingAt: T0 - 2_000,
      row: { replay_lsn: '0/3000000', receiver_pid: null, receiver_status: null },
      primary: primary(T0, '0/3000000', []),
    });

    expect(lag.streaming).toBe(false);
    expect(lag.lagSource).toBe('not-receiving');
    expect(lag.lagMs).toBe(2_010);
    expect(lag.primaryView).toMatchObject({ connected: false });
  });

  it('does not call a replica never seen streaming caught up on an idle primary: its lag is unknown', () => {
    const lag = lagOf({
      lastStreamingAt: null,
      row: { replay_lsn: '0/3000000', receiver_pid: null, receiver_status: null, last_replay_ms: null, heartbeat_ms: null },
      primary: primary(T0, '0/3000000', []),
    });

    expect(lag).toMatchObject({ streaming: false, lagMs: null, lagSource: 'not-receiving' });
  });

  it('bounds a replica never seen streaming by what it last replayed, never by "caught up" or its WAL position', () => {
    const lag = lagOf({
      lastStreamingAt: null,
      row: { replay_lsn: '0/3000000', receiver_pid: null, receiver_status: null, last_replay_ms: T0 + 5_000 - 30_000, heartbeat_ms: null },
      primary: primary(T0, '0/3000000', []),
    });

    expect(lag.lagSource).toBe('not-receiving');
    expect(lag.lagMs).toBeCloseTo(30_010, 6);
  });

  it('reports an unreachable replica with no lag at all, rather than a number', () => {
    const lag = lagOf({ replica: { at: T0, error: 'connect ECONNREFUSED 127.0.0.1:5433' } });

    expect(lag).toMatchObject({ reachable: false, lagMs: null, lagSource: 'unknown', error: 'connect ECONNREFUSED 127.0.0.1:5433' });
  });

  it('reports a server that is not in recovery with no lag, for the router to refuse it', () => {
    const lag = lagOf({ row: { in_recovery: false } });

    expect(lag).toMatchObject({ inRecovery: false, lagMs: null });
  });

  it('falls back to the replica’s own clock when the primary cannot be sampled', () => {
    const lag = lagOf({ primary: null, row: { now_ms: T0, heartbeat_ms: T0 - 80 } });

    expect(lag).toMatchObject({ lagSource: 'replica-clock', lagMs: 80, primaryView: null });
  });

  it('matches the walsender by slot, then by application_name, and shows pg_stat_replication as the primary sees it', () => {
    const other: WalSenderRow = { ...sender, pid: 2, slot_name: 'slot2', application_name: 'standby2', replay_lag_ms: 900 };
    expect(lagOf({ primary: primary(T0, '0/3000000', [other, sender]) }).primaryView?.replayLagMs).toBe(40);
    expect(lagOf({ primary: primary(T0, '0/3000000', [other, { ...sender, slot_name: null }]), row: { receiver_slot: null } }).primaryView?.replayLagMs).toBe(40);
    expect(conninfoApplicationName("host=x application_name='it\\'s x' port=1")).toBe("it's x");
    expect(conninfoApplicationName('host=x application_name=walreceiver')).toBe('walreceiver');
  });

  it('summarises a window as p50, p99 and max', () => {
    const points = Array.from({ length: 100 }, (_, i) => ({ at: T0 + i * 100, lagMs: i + 1, heartbeatLagMs: null, replayLagMs: null, bytesBehind: null }));
    const stats = lagStats([...points, { at: T0 + 10_000, lagMs: null, heartbeatLagMs: null, replayLagMs: null, bytesBehind: null }]);

    expect(stats).toEqual({ samples: 100, windowMs: 10_000, p50Ms: 50, p99Ms: 99, maxMs: 100, missing: 1 });
  });
});

describe('replica health, with hysteresis', () => {
  const policy: HealthPolicy = { maxLagMs: 250, recoverBelowMs: 125, recoverAfterMs: 1000 };
  const sample = (lagMs: number | null, extra: Partial<ReplicaLag> = {}): ReplicaLag => ({ ...lagOf({}), lagMs, ...extra });

  it('takes reads from the first good sample on', () => {
    expect(observeLag(initialHealth(T0), sample(20), policy, T0 + 100)).toMatchObject({ healthy: true, reason: null });
  });

  it('stops at once above max_lag_ms, and comes back only after staying below half of it for recoverAfterMs', () => {
    let health = observeLag(initialHealth(T0), sample(20), policy, T0);
    health = observeLag(health, sample(300), policy, T0 + 100);
    expect(health).toMatchObject({ healthy: false, reason: 'lag' });

    // Back under the limit but not under half of it: still out (no flapping around 250 ms).
    health = observeLag(health, sample(200), policy, T0 + 200);
    expect(health.healthy).toBe(false);
    health = observeLag(health, sample(100), policy, T0 + 300);
    health = observeLag(health, sample(100), policy, T0 + 1_200);
    expect(health.healthy).toBe(false);
    // One bad sample restarts the clock.
    health = observeLag(health, sample(200), policy, T0 + 1_250);
    health = observeLag(health, sample(50), policy, T0 + 1_300);
    health = observeLag(health, sample(50), policy, T0 + 2_299);
    expect(health.healthy).toBe(false);
    health = observeLag(health, sample(50), policy, T0 + 2_300);
    expect(health).toMatchObject({ healthy: true, reason: null, since: T0 + 2_300 });
  });

  it('takes an unreachable, promoted or unmeasurable replica out with the reason', () => {
    const healthy = observeLag(initialHealth(T0), sample(5), policy, T0);
    expect(observeLag(healthy, sample(null, { reachable: false }), policy, T0 + 1)).toMatchObject({ healthy: false, reason: 'unreachable' });
    expect(observeLag(healthy, sample(null, { inRecovery: false }), policy, T0 + 1)).toMatchObject({ healthy: false, reason: 'not-in-recovery' });
    expect(observeLag(healthy, sample(null), policy, T0 + 1)).toMatchObject({ healthy: false, reason: 'lag-unknown' });
  });

  it('acts on a failure seen by a query at once, and on a recovery conflict until things stay quiet', () => {
    const healthy = observeLag(initialHealth(T0), sample(5), policy, T0);
    const conflicted = observeFailure(healthy, 'recovery-conflict', T0 + 10);
    expect(conflicted).toMatchObject({ healthy: false, reason: 'recovery-conflict', lastConflictAt: T0 + 10 });
    expect(observeLag(conflicted, sample(5), policy, T0 + 500).healthy).toBe(false);
    const quiet = observeLag(conflicted, sample(5), policy, T0 + 1_010);
    expect(observeLag(quiet, sample(5), policy, T0 + 2_010).healthy).toBe(true);
  });
});

describe('standby setting values, compared as PostgreSQL reads them', () => {
  const row = (overrides: Partial<SettingRow>): SettingRow => ({
    name: 'x',
    setting: '0',
    unit: null,
    vartype: 'integer',
    context: 'sighup',
    enumvals: null,
    min_val: null,
    max_val: null,
    pending_restart: false,
    ...overrides,
  });
  const delay = row({ name: 'max_standby_streaming_delay', setting: '30000', unit: 'ms', min_val: '-1', max_val: '2147483647' });
  const buffers = row({ name: 'shared_buffers', setting: '16384', unit: '8kB', min_val: '16', max_val: '1073741823', context: 'postmaster' });

  it('converts units to the base unit of the setting', () => {
    expect(canonicalSetting('30s', delay)).toEqual({ ok: true, canonical: '30000' });
    expect(canonicalSetting('0.5min', delay)).toEqual({ ok: true, canonical: '30000' });
    expect(canonicalSetting('30000', delay)).toEqual({ ok: true, canonical: '30000' });
    expect(canonicalSetting('-1', delay)).toEqual({ ok: true, canonical: '-1' });
    expect(canonicalSetting('128MB', buffers)).toEqual({ ok: true, canonical: '16384' });
  });

  it('reads booleans and enums the way PostgreSQL does', () => {
    const feedback = row({ name: 'hot_standby_feedback', vartype: 'bool', setting: 'off' });
    expect(canonicalSetting('on', feedback)).toEqual({ ok: true, canonical: 'on' });
    expect(canonicalSetting('TRUE', feedback)).toEqual({ ok: true, canonical: 'on' });
    expect(canonicalSetting('of', feedback)).toEqual({ ok: true, canonical: 'off' });
    expect(canonicalSetting('o', feedback).ok).toBe(false);
    const level = row({ name: 'log_min_messages', vartype: 'enum', enumvals: ['debug1', 'info', 'warning'] });
    expect(canonicalSetting('WARNING', level)).toEqual({ ok: true, canonical: 'warning' });
  });

  it('explains a wrong unit, a value out of range and a wrong word', () => {
    expect(canonicalSetting('64mb', buffers)).toEqual({ ok: false, message: 'invalid unit "mb" for shared_buffers (valid units: B, kB, MB, GB and TB; memory units are case-sensitive)' });
    expect(canonicalSetting('-5', delay)).toEqual({ ok: false, message: 'max_standby_streaming_delay must be between -1 and 2147483647 (in ms), got -5' });
    expect(canonicalSetting('soon', delay)).toEqual({ ok: false, message: '"soon" is not a number' });
  });

  it('shows current values as SHOW does', () => {
    expect(showSetting(delay)).toBe('30s');
    expect(showSetting(buffers)).toBe('128MB');
    expect(showSetting(row({ setting: '250', unit: 'ms' }))).toBe('250ms');
  });
});
