import { describe, expect, it } from 'vitest';
import type { Figures } from '../../engine/live-health/health-snapshot.ts';
import { levelOf, nextStatus, THRESHOLDS, type StatusBoard } from '../../engine/live-health/health-status.ts';

const threshold = (figure: string) => {
  const t = THRESHOLDS.find((x) => x.figure === figure);
  if (!t) throw new Error(`no threshold for ${figure}`);
  return t;
};

function figures(over: Partial<Figures> = {}): Figures {
  return {
    latencyMeanMs: 1,
    latencyP50Ms: 1,
    latencyP95Ms: 5,
    latencyP99Ms: 9,
    callsPerSecond: 10,
    tps: 10,
    ownStatementsPerSecond: 1,
    checkpointsTimed: 0,
    checkpointsRequested: 0,
    rollbackShare: 0,
    deadlocks: 0,
    cacheHitRatio: 0.999,
    indexHitRatio: 0.999,
    indexScanShare: 0.9,
    replicaLagMs: 2,
    replicaLagBytes: 0,
    tableHealth: 1,
    connections: 5,
    maxConnections: 100,
    connectionsShare: 0.05,
    idleInTransaction: 0,
    longestTransactionMs: null,
    locksWaiting: 0,
    xidAgeShare: 0.001,
    standbysDown: 0,
    walBytesPerSecond: 100,
    pollMs: 10,
    ...over,
  };
}

describe('status thresholds', () => {
  it('shows cache hit green at 99% or more, amber down to 98%, red below', () => {
    const t = threshold('cacheHitRatio');
    expect(levelOf(t, 0.99)).toBe('ok');
    expect(levelOf(t, 0.995)).toBe('ok');
    expect(levelOf(t, 0.989)).toBe('warn');
    expect(levelOf(t, 0.98)).toBe('warn');
    expect(levelOf(t, 0.979)).toBe('critical');
  });

  it('turns connections amber above half of max_connections and red above three quarters', () => {
    const t = threshold('connectionsShare');
    expect(levelOf(t, 0.5)).toBe('ok');
    expect(levelOf(t, 0.51)).toBe('warn');
    expect(levelOf(t, 0.75)).toBe('warn');
    expect(levelOf(t, 0.76)).toBe('critical');
  });

  it('says unknown when there is nothing to measure (no traffic, no replica)', () => {
    expect(levelOf(threshold('replicaLagMs'), null)).toBe('unknown');
  });
});

describe('status hysteresis', () => {
  it('changes colour only after three polls in a row in breach', () => {
    let board: StatusBoard = nextStatus(null, figures(), 't0');
    expect(board.cacheHitRatio?.level).toBe('ok');
    board = nextStatus(board, figures({ cacheHitRatio: 0.97 }), 't1');
    expect(board.cacheHitRatio?.level).toBe('ok');
    expect(board.cacheHitRatio?.raw).toBe('critical');
    board = nextStatus(board, figures({ cacheHitRatio: 0.97 }), 't2');
    expect(board.cacheHitRatio?.level).toBe('ok');
    board = nextStatus(board, figures({ cacheHitRatio: 0.97 }), 't3');
    expect(board.cacheHitRatio?.level).toBe('critical');
    expect(board.cacheHitRatio?.since).toBe('t3');
  });

  it('does not flicker when a single poll dips below the threshold', () => {
    let board: StatusBoard = nextStatus(null, figures(), 't0');
    for (const [i, v] of [0.999, 0.97, 0.999, 0.97, 0.999, 0.97].entries()) board = nextStatus(board, figures({ cacheHitRatio: v }), `t${i + 1}`);
    expect(board.cacheHitRatio?.level).toBe('ok');
  });

  it('needs the same new level three times: warn, critical, warn does not count as three', () => {
    let board: StatusBoard = nextStatus(null, figures(), 't0');
    board = nextStatus(board, figures({ latencyP95Ms: 200 }), 't1');
    board = nextStatus(board, figures({ latencyP95Ms: 900 }), 't2');
    board = nextStatus(board, figures({ latencyP95Ms: 200 }), 't3');
    expect(board.latencyP95Ms?.level).toBe('ok');
    board = nextStatus(board, figures({ latencyP95Ms: 200 }), 't4');
    board = nextStatus(board, figures({ latencyP95Ms: 200 }), 't5');
    expect(board.latencyP95Ms?.level).toBe('warn');
  });

  it('returns to green only after three good polls', () => {
    let board: StatusBoard = nextStatus(null, figures({ replicaLagMs: 5000 }), 't0');
    expect(board.replicaLagMs?.level).toBe('critical');
    board = nextStatus(board, figures({ replicaLagMs: 3 }), 't1');
    board = nextStatus(board, figures({ replicaLagMs: 3 }), 't2');
    expect(board.replicaLagMs?.level).toBe('critical');
    board = nextStatus(board, figures({ replicaLagMs: 3 }), 't3');
    expect(board.replicaLagMs?.level).toBe('ok');
  });
});
