import { describe, expect, it } from 'vitest';
import { addIntervals, boundLiteral, intervalStart, partitionName, subtractIntervals, timeKeyType } from '../../engine/diff/partition-interval.ts';
import { defaultNaming } from '../../engine/policy/partitioning-policy.ts';

const at = (iso: string): Date => new Date(iso);
const iso = (d: Date): string => d.toISOString();

describe('partition bounds, computed in UTC', () => {
  it('starts weeks on Monday and quarters in January, April, July and October', () => {
    expect(iso(intervalStart(at('2026-11-25T23:59:59Z'), 'week'))).toBe('2026-11-23T00:00:00.000Z');
    expect(iso(intervalStart(at('2026-11-23T00:00:00Z'), 'week'))).toBe('2026-11-23T00:00:00.000Z');
    expect(iso(intervalStart(at('2026-11-22T23:59:59Z'), 'week'))).toBe('2026-11-16T00:00:00.000Z');
    expect(iso(intervalStart(at('2026-11-25T10:00:00Z'), 'quarter'))).toBe('2026-10-01T00:00:00.000Z');
    expect(iso(intervalStart(at('2026-03-31T23:59:59Z'), 'quarter'))).toBe('2026-01-01T00:00:00.000Z');
  });

  it('does not move at local midnight or across a DST change: only UTC counts', () => {
    // 2026-03-29 is the EU switch to summer time; 23:30 UTC on the 31st is already April in Berlin.
    expect(iso(intervalStart(at('2026-03-31T23:30:00Z'), 'month'))).toBe('2026-03-01T00:00:00.000Z');
    expect(iso(intervalStart(at('2026-03-29T01:30:00Z'), 'day'))).toBe('2026-03-29T00:00:00.000Z');
    expect(iso(addIntervals(at('2026-03-28T00:00:00Z'), 'day', 1))).toBe('2026-03-29T00:00:00.000Z');
    expect(iso(addIntervals(at('2026-03-29T00:00:00Z'), 'day', 1))).toBe('2026-03-30T00:00:00.000Z');
  });

  it('clamps month ends when retention counts back, as PostgreSQL interval arithmetic does', () => {
    expect(iso(subtractIntervals(at('2026-03-31T12:00:00Z'), 'month', 1))).toBe('2026-02-28T12:00:00.000Z');
    expect(iso(subtractIntervals(at('2024-03-31T12:00:00Z'), 'month', 1))).toBe('2024-02-29T12:00:00.000Z');
    expect(iso(subtractIntervals(at('2026-11-25T10:00:00Z'), 'month', 12))).toBe('2025-11-25T10:00:00.000Z');
    expect(iso(subtractIntervals(at('2026-11-25T10:00:00Z'), 'week', 2))).toBe('2026-11-11T10:00:00.000Z');
  });

  it('names partitions by the default patterns, ISO weeks included', () => {
    expect(partitionName(defaultNaming.month, 'events', at('2026-11-01T00:00:00Z'))).toBe('events_2026_11');
    expect(partitionName(defaultNaming.day, 'events', at('2026-11-05T00:00:00Z'))).toBe('events_2026_11_05');
    expect(partitionName(defaultNaming.quarter, 'events', at('2026-10-01T00:00:00Z'))).toBe('events_2026_q4');
    expect(partitionName(defaultNaming.year, 'events', at('2026-01-01T00:00:00Z'))).toBe('events_2026');
    // 2024-12-30 is a Monday in ISO week 1 of 2025; 2026-12-28 is in week 53 of 2026.
    expect(partitionName(defaultNaming.week, 'events', at('2024-12-30T00:00:00Z'))).toBe('events_2025_w01');
    expect(partitionName(defaultNaming.week, 'events', at('2026-12-28T00:00:00Z'))).toBe('events_2026_w53');
  });

  it('writes bound literals PostgreSQL reads the same under every DateStyle and TimeZone', () => {
    const d = at('2026-12-01T00:00:00Z');
    expect(boundLiteral(d, 'timestamptz')).toBe('2026-12-01 00:00:00+00');
    expect(boundLiteral(d, 'timestamp')).toBe('2026-12-01 00:00:00');
    expect(boundLiteral(d, 'date')).toBe('2026-12-01');
  });

  it('recognises time columns by their formatted type only', () => {
    expect(timeKeyType('timestamp(3) with time zone')).toBe('timestamptz');
    expect(timeKeyType('timestamp without time zone')).toBe('timestamp');
    expect(timeKeyType('date')).toBe('date');
    expect(timeKeyType('integer')).toBeNull();
    expect(timeKeyType('time with time zone')).toBeNull();
  });
});
