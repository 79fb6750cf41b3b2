import { describe, expect, it } from 'vitest';
import type { RouterRow, RoutingReading } from '../../engine/live-health/health-readings.ts';
import { computeRouting, type RoutingMemory } from '../../engine/live-health/routing-health.ts';

/** The routing section's arithmetic, without a database: rows as pgwarden.router_metrics returns them. */

const T0 = Date.parse('2026-03-01T12:00:00Z');

function row(atS: number, counters: { primary: number; standby1: number; lag?: number }, options: { instance?: string; startedAtS?: number } = {}): RouterRow {
  return {
    instance: options.instance ?? 'a',
    application: 'orders-api',
    host: 'web-1',
    pid: 10,
    startedAtMs: T0 + (options.startedAtS ?? -3600) * 1000,
    updatedAtMs: T0 + atS * 1000,
    ageMs: 500,
    counters: {
      version: 1,
      policy: { reads: 'replica', maxLagMs: 250 },
      reads: { primary: counters.primary, replicas: { standby1: counters.standby1 } },
      fallbacks: { lag: counters.lag ?? 0 },
      replicas: [{ name: 'standby1', healthy: true, reason: null, lagMs: 2, lagSource: 'heartbeat', bytesBehind: 0, p99LagMs: 9 }],
    },
  };
}

const reading = (...routers: RouterRow[]): RoutingReading => ({ table: true, routers, staleRouters: 0, error: null });

function polls(...readings: RoutingReading[]): ReturnType<typeof computeRouting> {
  let memory: RoutingMemory | null = null;
  let last: ReturnType<typeof computeRouting> | null = null;
  for (const r of readings) {
    last = computeRouting(r, memory, 60_000);
    memory = last.memory;
  }
  if (last === null) throw new Error('no reading');
  return last;
}

describe('the routing section of a snapshot', () => {
  it('turns counter deltas between publications into reads per second per target', () => {
    const { routing } = polls(reading(row(0, { primary: 100, standby1: 1000 })), reading(row(10, { primary: 150, standby1: 1900, lag: 40 })));

    expect(routing?.windowMs).toBe(10_000);
    expect(routing?.targets.map((t) => [t.name, t.readsPerSecond])).toEqual([
      ['primary', 5],
      ['standby1', 90],
    ]);
    expect(routing?.replicaReadShare).toBeCloseTo(900 / 950);
    expect(routing?.fallbacks).toEqual([{ reason: 'lag', count: 40 }]);
  });

  it('counts a restarted router from zero instead of showing a negative rate', () => {
    const { routing } = polls(
      reading(row(0, { primary: 100, standby1: 5000 })),
      reading(row(5, { primary: 10, standby1: 200 }, { startedAtS: 2 })),
    );

    expect(routing?.targets.find((t) => t.name === 'standby1')?.reads).toBe(200);
    expect(routing?.targets.find((t) => t.name === 'primary')?.reads).toBe(10);
    expect(routing?.readsPerSecond).toBeGreaterThan(0);
  });

  it('gives a router that started within the window rates from its first publication', () => {
    const { routing } = polls(reading(row(10, { primary: 20, standby1: 180 }, { startedAtS: 0 })));

    expect(routing?.readsPerSecond).toBe(20);
  });

  it('has no rates for a long-running router seen once, until its next publication', () => {
    const { routing } = polls(reading(row(0, { primary: 100, standby1: 1000 })));

    expect(routing?.state).toBe('reporting');
    expect(routing?.readsPerSecond).toBeNull();
    expect(routing?.routers).toHaveLength(1);
  });

  it('adds up several routers', () => {
    const { routing } = polls(
      reading(row(0, { primary: 0, standby1: 0 }, { instance: 'a' }), row(0, { primary: 0, standby1: 0 }, { instance: 'b' })),
      reading(row(10, { primary: 10, standby1: 100 }, { instance: 'a' }), row(5, { primary: 5, standby1: 50 }, { instance: 'b' })),
    );

    expect(routing?.targets.map((t) => t.readsPerSecond)).toEqual([2, 20]);
    expect(routing?.targets[1]?.seenBy).toBe(2);
  });

  it('drops a replica that went down out of the share within seconds, while the minute keeps its fallbacks', () => {
    // Reads at 90/s on standby1 and 10/s on the primary until 30 s; then the replica is unreachable and
    // every read falls back to the primary, at the same 100/s.
    const down = (atS: number): RouterRow => {
      const r = row(atS, { primary: 300 + (atS - 30) * 100, standby1: 2700, lag: 0 });
      const counters = r.counters as { fallbacks: Record<string, number>; replicas: unknown[] };
      counters.fallbacks = { unreachable: (atS - 30) * 100 };
      counters.replicas = [{ name: 'standby1', healthy: false, reason: 'unreachable', lagMs: null, lagSource: null, bytesBehind: null, p99LagMs: null }];
      return r;
    };
    const before = [0, 5, 10, 15, 20, 25, 30].map((t) => reading(row(t, { primary: t * 10, standby1: t * 90 })));
    const { routing } = polls(...before, reading(down(35)), reading(down(40)), reading(down(45)));

    const standby = routing?.targets.find((t) => t.name === 'standby1');
    expect(standby?.readsPerSecond).toBe(0);
    expect(standby?.healthyIn).toBe(0);
    expect(standby?.reasons).toEqual(['unreachable']);
    expect(routing?.replicaReadShare).toBe(0);
    expect(routing?.readsPerSecond).toBeCloseTo(100);
    expect(routing?.ratesWindowMs).toBeLessThanOrEqual(15_000);
    // The fallbacks are counted over the minute: all of them since the replica went away.
    expect(routing?.fallbacks).toEqual([{ reason: 'unreachable', count: 1500 }]);
  });

  it('says the table is missing, or that no router published lately', () => {
    expect(computeRouting({ table: false, routers: [], staleRouters: 0, error: null }, null).routing?.state).toBe('no-table');
    expect(computeRouting({ table: true, routers: [], staleRouters: 2, error: null }, null).routing).toMatchObject({ state: 'silent', staleRouters: 2 });
  });
});
