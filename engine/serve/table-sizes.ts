import type pg from 'pg';
import { SITE_TABLE_SIZES_SQL } from '../catalog/size-queries.ts';
import { measureBloat } from '../vacuum-health/bloat.ts';

/** One table's figures; a partitioned table's are the sums of its partitions'. */
export interface SizeFigures {
  readonly totalBytes: number;
  readonly heapBytes: number;
  readonly indexBytes: number;
  readonly toastBytes: number;
  /** Statistics-based estimate of the heap's wasted bytes (null: not analyzed yet). */
  readonly bloatBytes: number | null;
  readonly rows: number;
  readonly seqScans: number;
  readonly seqRows: number;
  readonly indexScans: number;
}

export interface TableSize extends SizeFigures {
  readonly schema: string;
  readonly name: string;
  readonly kind: 'table' | 'partitioned' | 'materialized view';
  /** The partitions (leaves of the tree, largest first), for a partitioned table; empty otherwise. */
  readonly partitions: readonly (SizeFigures & { readonly schema: string; readonly name: string })[];
  /** Read whole often (seqScanHeavy), partitions counted together: `pgwarden advise` is the next step. */
  readonly seqScanHeavy: boolean;
}

/**
 * A table read whole often: at least this many rows, and more sequential scans than index scans
 * (PgHero's "missing index" rule). Each scan then reads the table; `pgwarden advise` says which index ends it.
 */
export const SEQ_SCAN_MIN_ROWS = 10_000;

export function seqScanHeavy(t: SizeFigures): boolean {
  return t.rows >= SEQ_SCAN_MIN_ROWS && t.seqScans > t.indexScans && t.seqScans > 0;
}

interface SizeRow {
  oid: string;
  schema: string;
  name: string;
  kind: string;
  root_schema: string | null;
  root_name: string | null;
  total_bytes: number;
  heap_bytes: number;
  index_bytes: number;
  toast_bytes: number;
  row_estimate: number;
  live: number;
  seq_scans: number;
  seq_rows: number;
  index_scans: number;
  block_size: number;
}

const EMPTY: SizeFigures = { totalBytes: 0, heapBytes: 0, indexBytes: 0, toastBytes: 0, bloatBytes: null, rows: 0, seqScans: 0, seqRows: 0, indexScans: 0 };

function add(a: SizeFigures, b: SizeFigures): SizeFigures {
  return {
    totalBytes: a.totalBytes + b.totalBytes,
    heapBytes: a.heapBytes + b.heapBytes,
    indexBytes: a.indexBytes + b.indexBytes,
    toastBytes: a.toastBytes + b.toastBytes,
    bloatBytes: a.bloatBytes === null && b.bloatBytes === null ? null : (a.bloatBytes ?? 0) + (b.bloatBytes ?? 0),
    rows: a.rows + b.rows,
    seqScans: a.seqScans + b.seqScans,
    seqRows: a.seqRows + b.seqRows,
    indexScans: a.indexScans + b.indexScans,
  };
}

/**
 * Every user table's size, largest first, with partitions rolled up into their partitioned table, in a
 * fixed number of queries whatever the number of tables: one for sizes and counters, two for the bloat
 * estimate (engine/vacuum-health/bloat.ts, statistics only, never pgstattuple).
 */
export async function readTableSizes(client: pg.ClientBase, limit = 5000): Promise<TableSize[]> {
  const rows = (await client.query<SizeRow>(SITE_TABLE_SIZES_SQL, [limit])).rows;
  if (rows.length === 0) return [];
  const bloat = await measureBloat(client, rows[0]!.block_size, null, { exact: false });
  const wasted = new Map(bloat.tables.map((b) => [b.oid, b.wastedBytes]));
  const figures = (r: SizeRow): SizeFigures => ({
    totalBytes: r.total_bytes,
    heapBytes: r.heap_bytes,
    indexBytes: r.index_bytes,
    toastBytes: r.toast_bytes,
    bloatBytes: r.kind === 'p' ? null : (wasted.get(Number(r.oid)) ?? null),
    // The live count once the table has statistics, else the planner's estimate.
    rows: r.live > 0 ? r.live : r.row_estimate,
    seqScans: r.seq_scans,
    seqRows: r.seq_rows,
    indexScans: r.index_scans,
  });
  const key = (schema: string, name: string): string => `${schema}\u0000${name}`;
  const parts = new Map<string, (SizeFigures & { schema: string; name: string })[]>();
  for (const r of rows) {
    if (r.root_schema === null || r.root_name === null) continue;
    const k = key(r.root_schema, r.root_name);
    parts.set(k, [...(parts.get(k) ?? []), { schema: r.schema, name: r.name, ...figures(r) }]);
  }
  const tables: TableSize[] = rows
    .filter((r) => r.root_name === null)
    .map((r) => {
      const own = figures(r);
      const partitions = parts.get(key(r.schema, r.name)) ?? [];
      const kind = r.kind === 'p' ? 'partitioned' : r.kind === 'm' ? 'materialized view' : 'table';
      // Rows, bytes and scans are all counted on the partitions (a scan of the parent scans each of them).
      const rolled = partitions.reduce<SizeFigures>((sum, p) => add(sum, p), EMPTY);
      const total = kind === 'partitioned' ? { ...rolled, totalBytes: rolled.totalBytes + own.totalBytes } : own;
      return { schema: r.schema, name: r.name, kind, ...total, partitions, seqScanHeavy: seqScanHeavy(total) };
    });
  return tables.sort((a, b) => b.totalBytes - a.totalBytes || a.schema.localeCompare(b.schema) || a.name.localeCompare(b.name));
}
