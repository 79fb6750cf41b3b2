import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { SeriesPoint } from './health-snapshot.ts';

/** How far back the charts can go, and the step of the points kept for it. */
export const SERIES_KEEP_MS = 86_400_000;
export const SERIES_STEP_MS = 60_000;

/**
 * The charts' long history: one snapshot's figures a minute for the last day, kept in memory and appended
 * to a JSON-lines file, so `serve` restarted shows the day it had (the last hour at full resolution comes
 * from the collector's ring buffer while it runs). Bounded: the file is rewritten without the points
 * older than a day once it holds twice as many lines as a day needs (≈2,900 lines, about 2 MB at most).
 * A damaged line (a crash mid-write) is skipped, not fatal.
 */
export class SeriesStore {
  private points: SeriesPoint[] = [];
  private lines = 0;

  constructor(private readonly file: string) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // No file yet: a first start.
    }
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      this.lines += 1;
      try {
        const p = JSON.parse(line) as SeriesPoint;
        if (typeof p.t === 'number' && p.f && typeof p.f === 'object') this.points.push(p);
      } catch {
        // A line cut short by a crash.
      }
    }
    this.points.sort((a, b) => a.t - b.t);
  }

  /** Keeps the point if a minute has passed since the last one kept. */
  add(point: SeriesPoint): void {
    const last = this.points.at(-1);
    if (last && point.t - last.t < SERIES_STEP_MS) return;
    this.points.push(point);
    const cutoff = point.t - SERIES_KEEP_MS;
    while ((this.points[0]?.t ?? Infinity) < cutoff) this.points.shift();
    try {
      if (this.lines + 1 > 2 * (SERIES_KEEP_MS / SERIES_STEP_MS)) {
        mkdirSync(path.dirname(this.file), { recursive: true });
        const tmp = `${this.file}.tmp`;
        writeFileSync(tmp, this.points.map((p) => JSON.stringify(p)).join('\n') + '\n');
        renameSync(tmp, this.file);
        this.lines = this.points.length;
      } else {
        mkdirSync(path.dirname(this.file), { recursive: true });
        appendFileSync(this.file, JSON.stringify(point) + '\n');
        this.lines += 1;
      }
    } catch {
      // A full or read-only disk costs the history after a restart, never the live page.
    }
  }

  /** The kept points newer than `since` (ms since the epoch), oldest first. */
  since(since: number): SeriesPoint[] {
    return this.points.filter((p) => p.t >= since);
  }

  size(): number {
    return this.points.length;
  }
}
