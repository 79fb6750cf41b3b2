import { describe, expect, it } from 'vitest';
import { flaggedSpans, yScale } from '../../site/src/lib/chart-scale.ts';

describe("the live charts' scale", () => {
  it('keeps fifteen minutes readable through a five-second spike: the spike goes off the scale and is named', () => {
    const values = Array.from({ length: 180 }, (_, i) => (i === 90 ? 560 : 40 + (i % 7)));
    const scale = yScale(values);
    expect(scale.clipped).toBe(560);
    expect(scale.hi).toBeLessThan(100);
    expect(scale.hi).toBeGreaterThan(46);
  });

  it('follows the highest value when the load really rose', () => {
    const values = Array.from({ length: 180 }, (_, i) => (i < 120 ? 40 : 400));
    expect(yScale(values)).toEqual({ hi: 400 * 1.15, clipped: null });
  });

  it('keeps a threshold line on the scale', () => {
    expect(yScale([1, 2, 3], 250).hi).toBeCloseTo(250 * 1.15);
  });

  it('calls nothing off the scale when a threshold line holds the scale above the spike', () => {
    const values = Array.from({ length: 60 }, (_, i) => (i === 30 ? 165 : 5));
    expect(yScale(values, 250)).toEqual({ hi: 250 * 1.15, clipped: null });
  });
});

describe('the spans a chart marks', () => {
  it('covers the polls that found a standby down, from the poll before the first', () => {
    const points = [0, 5, 10, 15, 20, 25].map((s, i) => ({ t: s * 1000, down: i === 2 || i === 3 }));
    expect(flaggedSpans(points, (p) => p.down)).toEqual([{ from: 5000, to: 20_000 }]);
  });

  it('leaves a span open to the last point while it lasts', () => {
    const points = [0, 5, 10].map((s) => ({ t: s * 1000, down: s > 0 }));
    expect(flaggedSpans(points, (p) => p.down)).toEqual([{ from: 0, to: 10_000 }]);
  });
});
