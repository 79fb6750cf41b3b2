import { describe, expect, it } from 'vitest';
import { computeSnapshot, type ComputeInput, type PrimaryPoll, type PollMemory } from '../../engine/live-health/health-compute.ts';
import type { DatabaseReading, HealthSettings, RelationsReading, StatementCounters, StandbyReading } from '../../engine/live-health/health-readings.ts';

const settings: HealthSettings = {
  database: 'app',
  serverVersion: 160000,
  maxConnections: 100,
  freezeMaxAge: 200_000_000,
  vacuumThreshold: 50,
  vacuumScaleFactor: 0.2,
  trackCounts: true,
  statementsSchema: '"public"',
  statementsReason: null,
};

function database(t: number, over: Partial<DatabaseReading> = {}): DatabaseReading {
  return {
    serverTimeMs: t,
    inRecovery: false,
    xactCommit: 0,
    xactRollback: 0,
    blksRead: 0,
    blksHit: 0,
    tupReturned: 0,
    tupFetched: 0,
    tupInserted: 0,
    tupUpdated: 0,
    tupDeleted: 0,
    deadlocks: 0,
    conflicts: 0,
    tempBytes: 0,
    statsReset: null,
    xidAge: 1000,
    backends: 10,
    clientConnections: 5,
    active: 1,
    idle: 4,
    idleInTransaction: 0,
    idleInTransactionStuck: 0,
    waitingOnLock: 0,
    longestTransactionMs: null,
    longestIdleInTransactionMs: null,
    locksWaiting: 0,
    walBytes: 0,
    ...over,
  };
}

function relations(over: Partial<RelationsReading> = {}): RelationsReading {
  return { tables: 3, seqScan: 0, idxScan: 0, idxHit: 0, idxRead: 0, heapHit: 0, heapRead: 0, live: 1000, dead: 0, worst: [], ...over };
}

const stmt = (key: string, calls: number, totalMs: number): StatementCounters => ({ key, calls, totalMs, sumSqMs: (totalMs * totalMs) / Math.max(calls, 1), rows: calls, blksHit: calls * 10, blksRead: 0 });

function poll(db: DatabaseReading, rel: RelationsReading, statements: StatementCounters[] = [], replication: PrimaryPoll['replication'] = { standbys: [], slots: [] }): PrimaryPoll {
  return { settings, database: db, relations: rel, statements, sessions: [], replication };
}

function input(primary: PrimaryPoll, previous: PollMemory | null, over: Partial<ComputeInput> = {}): ComputeInput {
  return {
    seq: 1,
    at: new Date(primary.database.serverTimeMs),
    primary,
    standbys: [],
    routerLag: new Map(),
    previous,
    texts: new Map(),
    ownKeys: new Set(),
    slow: null,
    poll: { wallMs: 10, queries: 5, queryMs: {} },
    ...over,
  };
}

describe('health snapshot from two polls', () => {
  it('computes rates over the window between polls, not totals since the stats reset', () => {
    // A database that was busy for days (large totals) and is quiet in this window.
    const first = computeSnapshot(input(poll(database(0, { xactCommit: 9_000_000, blksHit: 5e9, blksRead: 1e8 }), relations()), null));
    expect(first.snapshot.figures.tps).toBeNull();
    const second = computeSnapshot(input(poll(database(5000, { xactCommit: 9_000_050, xactRollback: 50, blksHit: 5e9 + 990, blksRead: 1e8 + 10 }), relations()), first.memory));
    expect(second.snapshot.windowMs).toBe(5000);
    expect(second.snapshot.figures.tps).toBeCloseTo(20, 6);
    expect(second.snapshot.figures.rollbackShare).toBeCloseTo(0.5, 6);
    // 990 hits of 1,000 in the window: 99%, although the totals say 98%.
    expect(second.snapshot.figures.cacheHitRatio).toBeCloseTo(0.99, 6);
  });

  it('reports no rate for a window in which the statistics were reset', () => {
    const first = computeSnapshot(input(poll(database(0, { xactCommit: 1000, blksHit: 1e6, blksRead: 10 }), relations()), null));
    const second = computeSnapshot(input(poll(database(5000, { xactCommit: 3, blksHit: 40, blksRead: 1 }), relations()), first.memory));
    expect(second.snapshot.figures.tps).toBeNull();
    expect(second.snapshot.figures.cacheHitRatio).toBeNull();
    expect(second.snapshot.primary.statsResetInWindow).toBe(true);
  });

  it('takes the index hit rate and the index-scan share from the user tables of the window', () => {
    const first = computeSnapshot(input(poll(database(0), relations({ seqScan: 100, idxScan: 0, idxHit: 0, idxRead: 0 })), null));
    const second = computeSnapshot(input(poll(database(5000), relations({ seqScan: 110, idxScan: 90, idxHit: 1980, idxRead: 20 })), first.memory));
    expect(second.snapshot.figures.indexScanShare).toBeCloseTo(0.9, 6);
    expect(second.snapshot.figures.indexHitRatio).toBeCloseTo(0.99, 6);
  });

  it('leaves the collector’s own statements out of the workload and counts them as the poll’s database time', () => {
    const before = [stmt('10:1', 100, 100), stmt('10:own', 10, 5)];
    const after = [stmt('10:1', 150, 600), stmt('10:own', 17, 12), stmt('10:2', 50, 50)];
    const first = computeSnapshot(input(poll(database(0), relations(), before), null));
    const second = computeSnapshot(input(poll(database(5000), relations(), after), first.memory, { ownKeys: new Set(['10:own']), texts: new Map([['10:1', 'SELECT 1']]) }));
    const s = second.snapshot;
    expect(s.statements.callsInWindow).toBe(100);
    expect(s.statements.top.map((q) => q.id)).toEqual(['10:1', '10:2']);
    expect(s.statements.top[0]?.meanMs).toBeCloseTo(10, 6);
    expect(s.statements.top[0]?.query).toBe('SELECT 1');
    expect(s.poll.databaseMs).toBeCloseTo(7, 6);
    expect(s.figures.callsPerSecond).toBeCloseTo(20, 6);
    // pgwarden's own statements (the heartbeat's writes among them) are counted apart: 7 calls in 5 s.
    expect(s.figures.ownStatementsPerSecond).toBeCloseTo(7 / 5, 6);
    expect(s.figures.latencyMeanMs).toBeCloseTo(550 / 100, 6);
  });

  it('reads a paused standby’s lag from its own replay time, which keeps growing', () => {
    const standby: StandbyReading = {
      serverTimeMs: 5000,
      inRecovery: true,
      replayPaused: true,
      receiverStatus: 'streaming',
      receiverSlot: null,
      senderName: 'standby1',
      unreplayedBytes: 8192,
      lastReplayAgeMs: 4200,
      xactCommit: 0,
      xactRollback: 0,
      blksRead: 0,
      blksHit: 0,
      conflicts: 0,
      clientConnections: 1,
      maxConnections: 100,
    };
    const replication = {
      standbys: [{ name: 'standby1', state: 'streaming', syncState: 'async', sentBytes: 0, replayBytes: 8192, writeLagMs: 1, flushLagMs: 1, replayLagMs: 3, replyAgeMs: 10 }],
      slots: [],
    };
    const r = computeSnapshot(input(poll(database(5000), relations(), [], replication), null, { standbys: [{ name: 'standby1', reading: standby, error: null }] }));
    const s = r.snapshot.standbys[0];
    expect(s?.state).toBe('replay-paused');
    expect(s?.lagMs).toBe(4200);
    expect(s?.lagSource).toBe('standby');
    expect(r.snapshot.figures.replicaLagMs).toBe(4200);
    expect(r.snapshot.findings.some((f) => f.kind === 'replay-paused' && f.fixSql === 'SELECT pg_catalog.pg_wal_replay_resume();')).toBe(true);
  });

  it('does not report a standby that stopped receiving WAL as 0 ms behind', () => {
    const standby: StandbyReading = {
      serverTimeMs: 5000,
      inRecovery: true,
      replayPaused: false,
      receiverStatus: null,
      receiverSlot: null,
      senderName: null,
      unreplayedBytes: 0,
      lastReplayAgeMs: 60_000,
      xactCommit: 0,
      xactRollback: 0,
      blksRead: 0,
      blksHit: 0,
      conflicts: 0,
      clientConnections: 0,
      maxConnections: 100,
    };
    const r = computeSnapshot(input(poll(database(5000), relations()), null, { standbys: [{ name: 'standby1', reading: standby, error: null }] }));
    expect(r.snapshot.standbys[0]?.state).toBe('not-streaming');
    expect(r.snapshot.standbys[0]?.lagMs).toBeNull();
  });

  it('shows a configured standby that is down as red replica lag, with a finding that says what to check', () => {
    const r = computeSnapshot(input(poll(database(5000), relations()), null, { standbys: [{ name: 'standby1', reading: null, error: 'connection refused: the server is not running or not listening' }] }));
    expect(r.snapshot.standbys[0]?.state).toBe('down');
    expect(r.snapshot.figures.replicaLagMs).toBeNull();
    expect(r.snapshot.figures.standbysDown).toBe(1);
    expect(r.snapshot.status.replicaLagMs?.level).toBe('critical');
    const finding = r.snapshot.findings.find((f) => f.kind === 'standby-down');
    expect(finding).toMatchObject({ level: 'critical', subject: 'standby1', runOn: 'primary' });
    expect(finding?.message).toMatch(/connection refused.*start its server/);
    expect(finding?.fixSql).toContain('pg_catalog.pg_stat_replication');
  });

  it('shows a standby that is up but not receiving WAL as red too, and says to check primary_conninfo', () => {
    const standby: StandbyReading = {
      serverTimeMs: 5000, inRecovery: true, replayPaused: false, receiverStatus: null, receiverSlot: null, senderName: null, unreplayedBytes: 0, lastReplayAgeMs: 60_000,
      xactCommit: 0, xactRollback: 0, blksRead: 0, blksHit: 0, conflicts: 0, clientConnections: 0, maxConnections: 100,
    };
    const r = computeSnapshot(input(poll(database(5000), relations()), null, { standbys: [{ name: 'standby1', reading: standby, error: null }] }));
    expect(r.snapshot.status.replicaLagMs?.level).toBe('critical');
    expect(r.snapshot.findings.find((f) => f.kind === 'standby-not-streaming')).toMatchObject({ level: 'critical', runOn: 'standby1' });
    expect(r.snapshot.findings.find((f) => f.kind === 'standby-not-streaming')?.message).toMatch(/primary_conninfo/);
  });

  it('shows a standby whose walsender is named walreceiver once, under its configured name, with the primary’s view', () => {
    const standby: StandbyReading = {
      serverTimeMs: 5000, inRecovery: true, replayPaused: false, receiverStatus: 'streaming', receiverSlot: null, senderName: 'walreceiver',
      unreplayedBytes: 0, lastReplayAgeMs: 100, xactCommit: 0, xactRollback: 0, blksRead: 0, blksHit: 0, conflicts: 0, clientConnections: 0, maxConnections: 100,
    };
    const sender = (name: string, slot: string | null) => ({ name, slot, state: 'streaming', syncState: 'async', sentBytes: 0, replayBytes: 0, writeLagMs: null, flushLagMs: null, replayLagMs: 1, replyAgeMs: 10 });
    const two = { standbys: [sender('walreceiver', null), sender('walreceiver', 'other_slot')], slots: [] };
    const polled = [{ name: 'standby1', reading: { ...standby, receiverSlot: 'standby1_slot' }, error: null }, { name: 'standby2', reading: { ...standby, receiverSlot: 'other_slot' }, error: null }];

    const one = computeSnapshot(input(poll(database(5000), relations(), [], { standbys: [sender('walreceiver', null)], slots: [] }), null, { standbys: [{ name: 'standby1', reading: standby, error: null }] }));
    const bySlot = computeSnapshot(input(poll(database(5000), relations(), [], two), null, { standbys: polled }));

    expect(one.snapshot.standbys.map((s) => s.name)).toEqual(['standby1']);
    expect(one.snapshot.standbys[0]?.primaryView?.replayLagMs).toBe(1);
    // Two standbys, both connecting as walreceiver: the slot tells standby2's, and the one left is standby1's.
    expect(bySlot.snapshot.standbys.map((s) => [s.name, s.primaryView?.replayLagMs])).toEqual([['standby1', 1], ['standby2', 1]]);
  });

  it('prefers the routing module’s heartbeat lag when it has one', () => {
    const replication = { standbys: [{ name: 'standby1', state: 'streaming', syncState: 'async', sentBytes: 0, replayBytes: 0, writeLagMs: null, flushLagMs: null, replayLagMs: null, replyAgeMs: 10 }], slots: [] };
    const r = computeSnapshot(input(poll(database(5000), relations(), [], replication), null, { routerLag: new Map([['standby1', { lagMs: 42, source: 'heartbeat' }]]) }));
    expect(r.snapshot.standbys[0]?.lagMs).toBe(42);
    expect(r.snapshot.standbys[0]?.lagSource).toBe('heartbeat');
  });

  it('names the table past its autovacuum trigger with the VACUUM that fixes it', () => {
    const worst = [
      { schema: 'public', name: 'Queue', why: 'dead' as const, live: 1000, dead: 4000, modSinceAnalyze: 0, rowEstimate: 1000, xidAge: 10, lastVacuum: null, lastAnalyze: null, vacuumThreshold: null, vacuumScaleFactor: null, autovacuumEnabled: false },
    ];
    const r = computeSnapshot(input(poll(database(0), relations({ worst })), null));
    expect(r.snapshot.figures.tableHealth).toBeCloseTo(0.2, 6);
    expect(r.snapshot.tables.worst[0]?.autovacuumTrigger).toBe(50 + 0.2 * 1000);
    const fixes = r.snapshot.findings.map((f) => f.fixSql);
    expect(fixes).toContain('VACUUM (ANALYZE) "public"."Queue";');
    expect(fixes).toContain('ALTER TABLE "public"."Queue" RESET (autovacuum_enabled);');
  });
});
