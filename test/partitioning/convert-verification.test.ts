import { describe, expect, it } from 'vitest';
import { compareVerification } from '../../engine/apply/convert/verification.ts';
import type { ConvertTable } from '../../engine/diff/convert-change.ts';

/** Only what naming the partitions needs. */
const change = {
  partitions: [
    { name: 'events_2026_10', from: '2026-10-01 00:00:00+00', to: '2026-11-01 00:00:00+00' },
    { name: 'events_2026_11', from: '2026-11-01 00:00:00+00', to: '2026-12-01 00:00:00+00' },
  ],
  defaultPartition: 'events_default',
} as unknown as ConvertTable;

const side = (rows: [string | null, string, string][]) => rows.map(([bucket, n, checksum]) => ({ bucket, rows: n, checksum }));

describe('verification before the swap', () => {
  it('passes when every partition range has the same rows and checksum on both sides', () => {
    const rows = side([['2026-10-01', '10', '123'], ['2026-11-01', '5', '-7'], [null, '1', '9']]);
    expect(compareVerification(change, rows, rows)).toBeNull();
  });

  it('names the partition whose count or contents differ, and rows on one side only', () => {
    const old = side([['2026-10-01', '10', '123'], ['2026-11-01', '5', '-7']]);
    const fresh = side([['2026-10-01', '10', '124'], ['2026-11-01', '4', '-8'], [null, '1', '9']]);
    expect(compareVerification(change, old, fresh)).toBe(
      'events_2026_10: 10 row(s) on both sides, but their contents differ; events_2026_11: 5 row(s) in the old table, 4 in the new one; NULL keys: 1 row(s) in the new table only',
    );
  });
});
