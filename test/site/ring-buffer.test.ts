import { describe, expect, it } from 'vitest';
import { createRingBuffer } from '../../engine/live-health/ring-buffer.ts';

describe('the ring buffer of snapshots', () => {
  it('keeps only the newest items once full, oldest first', () => {
    const ring = createRingBuffer<number>(3);
    for (let i = 1; i <= 7; i++) ring.push(i);
    expect(ring.toArray()).toEqual([5, 6, 7]);
    expect(ring.size).toBe(3);
    expect(ring.latest()).toBe(7);
  });

  it('holds an hour of 5-second polls in bounded memory', () => {
    const ring = createRingBuffer<{ seq: number }>(720);
    for (let i = 0; i < 10_000; i++) ring.push({ seq: i });
    expect(ring.size).toBe(720);
    expect(ring.toArray()[0]?.seq).toBe(10_000 - 720);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => createRingBuffer(0)).toThrow(/positive integer/);
  });
});
