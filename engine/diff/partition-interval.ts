import type { TimeKeyType } from '../catalog/partition-queries.ts';
import type { PartitionInterval } from '../policy/partitioning-policy.ts';

/**
 * Calendar arithmetic for partition bounds, always in UTC: a bound never depends on the server's or
 * the machine's time zone, so a plan does not flap around midnight or a DST change. A `date` or
 * `timestamp` (without time zone) key is read as UTC wall-clock time.
 */

const DAY_MS = 86_400_000;

/** The start of the interval that contains `at`. Weeks start on Monday (ISO 8601), quarters in Jan/Apr/Jul/Oct. */
export function intervalStart(at: Date, interval: PartitionInterval): Date {
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth();
  switch (interval) {
    case 'day':
      return new Date(Date.UTC(y, m, at.getUTCDate()));
    case 'week': {
      const day = new Date(Date.UTC(y, m, at.getUTCDate()));
      const sinceMonday = (day.getUTCDay() + 6) % 7;
      return new Date(day.getTime() - sinceMonday * DAY_MS);
    }
    case 'month':
      return new Date(Date.UTC(y, m, 1));
    case 'quarter':
      return new Date(Date.UTC(y, m - (m % 3), 1));
    case 'year':
      return new Date(Date.UTC(y, 0, 1));
  }
}

/** `start` moved by `n` intervals; `start` must be an interval start (so months never clamp). */
export function addIntervals(start: Date, interval: PartitionInterval, n: number): Date {
  const y = start.getUTCFullYear();
  const m = start.getUTCMonth();
  const d = start.getUTCDate();
  switch (interval) {
    case 'day':
      return new Date(Date.UTC(y, m, d + n));
    case 'week':
      return new Date(Date.UTC(y, m, d + 7 * n));
    case 'month':
      return new Date(Date.UTC(y, m + n, d));
    case 'quarter':
      return new Date(Date.UTC(y, m + 3 * n, d));
    case 'year':
      return new Date(Date.UTC(y + n, m, d));
  }
}

/**
 * `at` moved back by `n` intervals of calendar time (for retention: "older than 12 months"). Month ends
 * clamp as PostgreSQL's interval arithmetic does: 31 March minus one month is 28 (or 29) February.
 */
export function subtractIntervals(at: Date, interval: PartitionInterval, n: number): Date {
  const months = interval === 'month' ? n : interval === 'quarter' ? 3 * n : interval === 'year' ? 12 * n : 0;
  if (months === 0) return new Date(at.getTime() - (interval === 'week' ? 7 : 1) * n * DAY_MS);
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth() - months;
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  const timeOfDay = at.getTime() - Date.UTC(y, at.getUTCMonth(), at.getUTCDate());
  return new Date(Date.UTC(y, m, Math.min(at.getUTCDate(), lastDay)) + timeOfDay);
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** The ISO 8601 week-numbering year and week of a Monday. */
function isoWeek(monday: Date): { year: number; week: number } {
  // The Thursday of the week decides its year.
  const thursday = new Date(monday.getTime() + 3 * DAY_MS);
  const year = thursday.getUTCFullYear();
  const firstThursday = intervalStart(new Date(Date.UTC(year, 0, 4)), 'week').getTime() + 3 * DAY_MS;
  return { year, week: 1 + Math.round((thursday.getTime() - firstThursday) / (7 * DAY_MS)) };
}

/** The partition name the pattern gives the interval starting at `start`. */
export function partitionName(pattern: string, table: string, start: Date): string {
  const week = isoWeek(start);
  const fields: Record<string, string> = {
    table,
    YYYY: pad(start.getUTCFullYear(), 4),
    MM: pad(start.getUTCMonth() + 1),
    DD: pad(start.getUTCDate()),
    Q: String(Math.floor(start.getUTCMonth() / 3) + 1),
    IYYY: pad(week.year, 4),
    IW: pad(week.week),
  };
  return pattern.replace(/\{(table|YYYY|MM|DD|Q|IYYY|IW)\}/gu, (_, field: string) => fields[field] ?? '');
}

/** The form the catalog reports bounds in (`partition-queries.ts`): UTC, microseconds. */
export function canonicalBound(at: Date): string {
  return `${at.toISOString().slice(0, 19)}.${pad(at.getUTCMilliseconds() * 1000, 6)}Z`;
}

/** A bound as a SQL literal's text for the key column's type; unambiguous under every DateStyle. */
export function boundLiteral(at: Date, type: TimeKeyType): string {
  const iso = at.toISOString();
  const date = iso.slice(0, 10);
  const time = iso.slice(11, 19);
  switch (type) {
    case 'date':
      return date;
    case 'timestamp':
      return `${date} ${time}`;
    case 'timestamptz':
      return `${date} ${time}+00`;
  }
}

/** `timestamp with time zone` and friends, as format_type() names them, to the key types pgwarden manages. */
export function timeKeyType(formatted: string | undefined): TimeKeyType | null {
  if (formatted === undefined) return null;
  if (formatted === 'date') return 'date';
  if (/^timestamp(\(\d\))? with time zone$/u.test(formatted)) return 'timestamptz';
  if (/^timestamp(\(\d\))? without time zone$/u.test(formatted)) return 'timestamp';
  return null;
}
