import type pg from 'pg';
import {
  exactIndexBloatSql,
  exactTableBloatSql,
  INDEX_BLOAT_INPUTS_SQL,
  TABLE_BLOAT_INPUTS_SQL,
} from '../catalog/vacuum-queries.ts';
import { ident, qualified } from '../sql/ident.ts';

/**
 * Bloat: space in a table or index beyond what its live rows need (at its fillfactor). VACUUM turns
 * dead rows into free space that new rows reuse, but the file only shrinks by a rewrite — pg_repack
 * online, or VACUUM FULL / REINDEX in a maintenance window — so bloat is reported beside the health
 * score, never in it.
 *
 * Methods, each figure saying which produced it:
 *   pgstattuple         exact: reads the whole table (tables under `approxAboveBytes`; from 128 kB up)
 *   pgstattuple_approx  reads only pages the visibility map does not mark all-visible (larger tables)
 *   pgstatindex         exact, for btree indexes
 *   estimate            from pg_stats row widths and the page count: no I/O, about +-15%; needs ANALYZE.
 *                       The btree estimate ignores deduplication (PostgreSQL 13+), so it under-reports
 *                       on indexes with many duplicate keys.
 * The exact methods run when the pgstattuple extension is installed in the database, within a time
 * budget, largest suspected waste first; whatever the budget leaves keeps its estimate.
 */

export type TableBloatMethod = 'pgstattuple' | 'pgstattuple_approx' | 'estimate';
export type IndexBloatMethod = 'pgstatindex' | 'estimate';

export interface TableBloat {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** The main fork's size. */
  readonly bytes: number;
  /** null when nothing could measure it (a table never analyzed, and no pgstattuple). */
  readonly method: TableBloatMethod | null;
  readonly wastedBytes: number | null;
  /** wasted / bytes. */
  readonly ratio: number | null;
  /** Why there is no figure, or why the exact method was not used. */
  readonly note?: string;
}

export interface IndexBloat {
  readonly oid: number;
  readonly tableOid: number;
  readonly schema: string;
  readonly name: string;
  readonly table: string;
  readonly bytes: number;
  readonly method: IndexBloatMethod | null;
  readonly wastedBytes: number | null;
  readonly ratio: number | null;
  readonly note?: string;
}

export interface BloatReport {
  readonly tables: readonly TableBloat[];
  readonly indexes: readonly IndexBloat[];
  readonly exact: {
    /** The schema pgstattuple is installed in; null when it is not. */
    readonly extensionSchema: string | null;
    readonly tablesMeasured: number;
    readonly indexesMeasured: number;
    /** The time budget ran out before every relation was measured exactly. */
    readonly budgetExhausted: boolean;
    readonly note?: string;
  };
  readonly queries: number;
  readonly ms: number;
}

export interface BloatOptions {
  /** Table oids to measure; all user tables when absent. */
  readonly oids?: readonly number[];
  /** Use pgstattuple / pgstatindex when installed (default true). */
  readonly exact?: boolean;
  /** Time for the exact methods, all batches together (default 10 s). The estimates always run. */
  readonly budgetMs?: number;
  /** Tables at least this large get pgstattuple_approx instead of pgstattuple (default 64 MiB). */
  readonly approxAboveBytes?: number;
}

const MAXALIGN = 8;
const PAGE_HEADER = 24;
const ITEM_ID = 4;
const HEAP_TUPLE_HEADER = 23;
const INDEX_TUPLE_HEADER = 8;
const BTREE_SPECIAL = 16;
/** Relations per exact-measurement query, and bytes: a batch is cancelled whole when the budget ends. */
const BATCH_RELATIONS = 200;
const BATCH_BYTES = 256 * 1024 * 1024;
/** Smaller relations keep their estimate: a few pages of slack are no bloat worth a read. */
const EXACT_MIN_BYTES = 128 * 1024;

const align = (n: number): number => Math.ceil(n / MAXALIGN) * MAXALIGN;

export interface TableBloatInputs {
  readonly bytes: number;
  readonly live: number;
  readonly columns: number;
  readonly analyzed: number;
  readonly hasNulls: boolean;
  readonly dataWidth: number;
  readonly fillfactor: number;
}

/** Wasted bytes of a heap from its statistics: the pages it has minus the pages its live rows need. */
export function estimateTableWaste(t: TableBloatInputs, blockSize: number): number | null {
  if (t.bytes === 0) return 0;
  if (t.columns === 0 || t.analyzed < t.columns) return null;
  const header = align(HEAP_TUPLE_HEADER + (t.hasNulls ? Math.ceil(t.columns / 8) : 0));
  const tuple = header + align(Math.ceil(t.dataWidth));
  const usable = ((blockSize - PAGE_HEADER) * t.fillfactor) / 100;
  const maxPerPage = Math.floor((blockSize - PAGE_HEADER) / (align(HEAP_TUPLE_HEADER) + ITEM_ID));
  const perPage = Math.max(1, Math.min(maxPerPage, Math.floor(usable / (tuple + ITEM_ID))));
  const expectedPages = Math.ceil(Math.max(0, t.live) / perPage);
  const pages = Math.ceil(t.bytes / blockSize);
  return Math.max(0, pages - expectedPages) * blockSize;
}

export interface IndexBloatInputs {
  readonly bytes: number;
  readonly tuples: number;
  readonly columns: number;
  readonly analyzed: number;
  readonly hasNulls: boolean;
  readonly dataWidth: number;
  readonly fillfactor: number;
}

/** Wasted bytes of a btree index from its key widths: its pages minus meta page plus leaf pages needed. */
export function estimateBtreeWaste(i: IndexBloatInputs, blockSize: number): number | null {
  if (i.tuples < 0 || i.columns === 0 || i.analyzed < i.columns) return null;
  const tuple = align(INDEX_TUPLE_HEADER + (i.hasNulls ? 4 : 0)) + align(Math.ceil(i.dataWidth));
  const usable = ((blockSize - PAGE_HEADER - BTREE_SPECIAL) * i.fillfactor) / 100;
  const perPage = Math.max(1, Math.floor(usable / (tuple + ITEM_ID)));
  const expectedPages = 1 + Math.ceil(i.tuples / perPage);
  const pages = Math.ceil(i.bytes / blockSize);
  return Math.max(0, pages - expectedPages) * blockSize;
}

/** Exact figures from pgstattuple: dead rows and free space, less the room fillfactor keeps free on purpose. */
export function exactTableWaste(r: { bytes: number; deadBytes: number; freeBytes: number }, fillfactor: number): number {
  return Math.max(0, r.deadBytes + r.freeBytes - ((100 - fillfactor) / 100) * r.bytes);
}

/** Exact figures from pgstatindex: leaf pages below the fillfactor's density, plus empty and deleted pages. */
export function exactIndexWaste(r: { leafPages: number; emptyPages: number; deletedPages: number; density: number }, fillfactor: number, blockSize: number): number {
  const density = Number.isFinite(r.density) ? r.density : fillfactor;
  const sparse = r.leafPages * Math.max(0, 1 - density / fillfactor);
  return Math.max(0, (sparse + r.emptyPages + r.deletedPages) * blockSize);
}

interface TableInputRow {
  oid: string;
  schema: string;
  name: string;
  bytes: number;
  live: number;
  columns: number;
  analyzed: number;
  has_nulls: boolean;
  data_width: number;
  fillfactor: number;
}

interface IndexInputRow {
  oid: string;
  table_oid: string;
  schema: string;
  name: string;
  table_name: string;
  method: string;
  valid: boolean;
  bytes: number;
  tuples: number;
  columns: number;
  analyzed: number;
  has_nulls: boolean;
  data_width: number;
  fillfactor: number;
}

interface PgError {
  code?: string;
  message: string;
}

/** Mutable while measuring; frozen into the report. */
interface Entry<T> {
  value: T;
  readonly fillfactor: number;
  /** Suspected waste, to measure the worst first. */
  readonly suspect: number;
}

/**
 * Table and index bloat of every user table (or of `options.oids`): two estimate queries always,
 * then, where pgstattuple is installed, exact measurements in batches until the time budget runs out.
 */
export async function measureBloat(client: pg.ClientBase, blockSize: number, extensionSchema: string | null, options: BloatOptions = {}): Promise<BloatReport> {
  const started = performance.now();
  const oids = options.oids === undefined ? null : options.oids.map(String);
  let queries = 0;
  const tableRows = (await client.query<TableInputRow>(TABLE_BLOAT_INPUTS_SQL, [oids])).rows;
  const indexRows = (await client.query<IndexInputRow>(INDEX_BLOAT_INPUTS_SQL, [oids])).rows;
  queries += 2;

  const tables: Entry<TableBloat>[] = tableRows.map((r) => {
    const waste = estimateTableWaste(
      { bytes: r.bytes, live: r.live, columns: r.columns, analyzed: r.analyzed, hasNulls: r.has_nulls, dataWidth: r.data_width, fillfactor: r.fillfactor },
      blockSize,
    );
    const base = { oid: Number(r.oid), schema: r.schema, name: r.name, bytes: r.bytes };
    const value: TableBloat =
      waste === null
        ? { ...base, method: null, wastedBytes: null, ratio: null, note: 'no statistics yet (run ANALYZE)' }
        : { ...base, method: 'estimate', wastedBytes: waste, ratio: r.bytes > 0 ? waste / r.bytes : 0 };
    return { value, fillfactor: r.fillfactor, suspect: waste ?? r.bytes };
  });
  const btree = new Set(indexRows.filter((r) => r.method === 'btree').map((r) => Number(r.oid)));
  const indexes: Entry<IndexBloat>[] = indexRows.map((r) => {
    const base = { oid: Number(r.oid), tableOid: Number(r.table_oid), schema: r.schema, name: r.name, table: r.table_name, bytes: r.bytes };
    if (r.method !== 'btree') {
      return { value: { ...base, method: null, wastedBytes: null, ratio: null, note: `no estimate for ${r.method} indexes` }, fillfactor: r.fillfactor, suspect: 0 };
    }
    const waste = estimateBtreeWaste(
      { bytes: r.bytes, tuples: r.tuples, columns: r.columns, analyzed: r.analyzed, hasNulls: r.has_nulls, dataWidth: r.data_width, fillfactor: r.fillfactor },
      blockSize,
    );
    const value: IndexBloat =
      waste === null
        ? { ...base, method: null, wastedBytes: null, ratio: null, note: 'no statistics yet (run ANALYZE)' }
        : { ...base, method: 'estimate', wastedBytes: waste, ratio: r.bytes > 0 ? waste / r.bytes : 0 };
    // pgstatindex refuses an INVALID index; its size says nothing either.
    return { value, fillfactor: r.fillfactor, suspect: r.valid ? (waste ?? r.bytes) : -1 };
  });

  const exact = { extensionSchema, tablesMeasured: 0, indexesMeasured: 0, budgetExhausted: false, note: undefined as string | undefined };
  if (extensionSchema !== null && options.exact !== false) {
    const deadline = performance.now() + (options.budgetMs ?? 10_000);
    const schema = ident(extensionSchema);
    const approxAbove = options.approxAboveBytes ?? 64 * 1024 * 1024;
    const original = (await client.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows[0]?.statement_timeout ?? '0';
    queries += 1;
    try {
      const run = async <R extends pg.QueryResultRow>(sql: string, batch: readonly number[]): Promise<R[] | 'budget' | 'denied' | PgError> => {
        const left = Math.floor(deadline - performance.now());
        if (left <= 0) return 'budget';
        try {
          await client.query(`SELECT pg_catalog.set_config('statement_timeout', $1, false)`, [`${left}ms`]);
          queries += 2;
          return (await client.query<R>(sql, [batch.map(String)])).rows;
        } catch (error) {
          const e = error as PgError;
          if (e.code === '57014') return 'budget';
          if (e.code === '42501') return 'denied';
          return e;
        }
      };
      const stop = (outcome: 'budget' | 'denied' | PgError): boolean => {
        if (outcome === 'budget') {
          exact.budgetExhausted = true;
          return true;
        }
        if (outcome === 'denied') {
          exact.note = 'pgstattuple is installed but this role may not use it (grant pg_stat_scan_tables): estimates only';
          return true;
        }
        return false;
      };

      for (const approx of [false, true]) {
        if (exact.budgetExhausted || exact.note !== undefined) break;
        const todo = tables.filter((t) => t.value.bytes >= EXACT_MIN_BYTES && (t.value.bytes >= approxAbove) === approx).sort((a, b) => b.suspect - a.suspect);
        for (const batch of batches(todo, (t) => t.value.bytes)) {
          const rows = await run<{ oid: string; bytes: number; live_bytes: number; dead_bytes: number; free_bytes: number }>(
            exactTableBloatSql(schema, approx),
            batch.map((t) => t.value.oid),
          );
          if (rows === 'budget' || rows === 'denied') {
            stop(rows);
            break;
          }
          if (!Array.isArray(rows)) {
            // A table dropped meanwhile fails its whole batch: those keep their estimates.
            for (const t of batch) t.value = { ...t.value, note: `pgstattuple failed: ${rows.message}` };
            continue;
          }
          for (const row of rows) {
            const t = batch.find((e) => e.value.oid === Number(row.oid));
            if (!t) continue;
            const wasted = exactTableWaste({ bytes: row.bytes, deadBytes: row.dead_bytes, freeBytes: row.free_bytes }, t.fillfactor);
            const { note: _estimateNote, ...estimated } = t.value;
            t.value = { ...estimated, bytes: row.bytes, method: approx ? 'pgstattuple_approx' : 'pgstattuple', wastedBytes: wasted, ratio: row.bytes > 0 ? wasted / row.bytes : 0 };
            exact.tablesMeasured += 1;
          }
        }
      }
      const todo = indexes.filter((i) => btree.has(i.value.oid) && i.suspect >= 0 && i.value.bytes >= EXACT_MIN_BYTES).sort((a, b) => b.suspect - a.suspect);
      for (const batch of exact.budgetExhausted || exact.note !== undefined ? [] : batches(todo, (i) => i.value.bytes)) {
        const rows = await run<{ oid: string; bytes: number; leaf_pages: number; empty_pages: number; deleted_pages: number; density: number }>(
          exactIndexBloatSql(schema),
          batch.map((i) => i.value.oid),
        );
        if (rows === 'budget' || rows === 'denied') {
          stop(rows);
          break;
        }
        if (!Array.isArray(rows)) {
          for (const i of batch) i.value = { ...i.value, note: `pgstatindex failed: ${rows.message}` };
          continue;
        }
        for (const row of rows) {
          const i = batch.find((e) => e.value.oid === Number(row.oid));
          if (!i) continue;
          const wasted = exactIndexWaste({ leafPages: row.leaf_pages, emptyPages: row.empty_pages, deletedPages: row.deleted_pages, density: row.density }, i.fillfactor, blockSize);
          const { note: _estimateNote, ...estimated } = i.value;
          i.value = { ...estimated, bytes: row.bytes, method: 'pgstatindex', wastedBytes: wasted, ratio: row.bytes > 0 ? wasted / row.bytes : 0 };
          exact.indexesMeasured += 1;
        }
      }
    } finally {
      await client.query(`SELECT pg_catalog.set_config('statement_timeout', $1, false)`, [original]).catch(() => undefined);
      queries += 1;
    }
  }
  return {
    tables: tables.map((t) => t.value),
    indexes: indexes.map((i) => i.value),
    exact: { ...exact, ...(exact.note === undefined ? {} : { note: exact.note }) },
    queries,
    ms: performance.now() - started,
  };
}

function* batches<T>(items: readonly T[], size: (item: T) => number): Generator<T[]> {
  let batch: T[] = [];
  let bytes = 0;
  for (const item of items) {
    if (batch.length > 0 && (batch.length >= BATCH_RELATIONS || bytes + size(item) > BATCH_BYTES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size(item);
  }
  if (batch.length > 0) yield batch;
}

/** Bloat worth a rewrite: a quarter of the relation and at least 1 MiB. */
const REMEDY_RATIO = 0.25;
const REMEDY_BYTES = 1024 * 1024;

/** What to do about a table's bloat, or null when it is not worth a rewrite. */
export function tableRemedy(t: Pick<TableBloat, 'schema' | 'name' | 'ratio' | 'wastedBytes'>): string | null {
  if (t.ratio === null || t.wastedBytes === null || t.ratio < REMEDY_RATIO || t.wastedBytes < REMEDY_BYTES) return null;
  return 'pg_repack (online), or VACUUM FULL in a maintenance window (ACCESS EXCLUSIVE lock while it rewrites the table)';
}

export function indexRemedy(i: Pick<IndexBloat, 'schema' | 'name' | 'ratio' | 'wastedBytes'>): string | null {
  if (i.ratio === null || i.wastedBytes === null || i.ratio < REMEDY_RATIO || i.wastedBytes < REMEDY_BYTES) return null;
  return `REINDEX INDEX CONCURRENTLY ${qualified(i.schema, i.name)}`;
}
