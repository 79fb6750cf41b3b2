import type { ConvertTable } from '../../diff/convert-change.ts';

/** One partition range's rows and checksum on one side (`bucket`: the range's start day, null for NULL keys). */
export interface VerifyRow {
  readonly bucket: string | null;
  readonly rows: string;
  readonly checksum: string | null;
}

/**
 * Null when both sides hold the same rows per partition range (counts, and the sum of each row's
 * 64-bit hash: order-independent), else the first ranges that differ, named by the partition they
 * belong to.
 */
export function compareVerification(change: ConvertTable, oldRows: readonly VerifyRow[], newRows: readonly VerifyRow[]): string | null {
  const key = (r: VerifyRow): string => r.bucket ?? 'NULL';
  const byBucket = new Map(newRows.map((r) => [key(r), r]));
  const partitionOf = (bucket: string): string => change.partitions.find((p) => p.from.startsWith(bucket))?.name ?? change.defaultPartition ?? `the range of ${bucket}`;
  const problems: string[] = [];
  for (const o of oldRows) {
    const n = byBucket.get(key(o));
    byBucket.delete(key(o));
    const name = o.bucket === null ? (change.defaultPartition ?? 'NULL keys') : partitionOf(o.bucket);
    if (!n) problems.push(`${name}: ${o.rows} row(s) in the old table, none in the new one`);
    else if (n.rows !== o.rows) problems.push(`${name}: ${o.rows} row(s) in the old table, ${n.rows} in the new one`);
    else if (n.checksum !== o.checksum) problems.push(`${name}: ${o.rows} row(s) on both sides, but their contents differ`);
  }
  for (const n of byBucket.values()) problems.push(`${n.bucket === null ? 'NULL keys' : partitionOf(n.bucket)}: ${n.rows} row(s) in the new table only`);
  if (problems.length === 0) return null;
  return problems.slice(0, 3).join('; ') + (problems.length > 3 ? `; and ${problems.length - 3} more` : '');
}
