import type pg from 'pg';
import { TABLE_STATS_SQL, VACUUM_SETTINGS_SQL } from './vacuum-queries.ts';

/** The server settings that frame table health. */
export interface VacuumSettings {
  readonly database: string;
  readonly serverVersion: number;
  readonly serverVersionText: string;
  readonly inRecovery: boolean;
  readonly autovacuum: boolean;
  readonly trackCounts: boolean;
  readonly vacuumThreshold: number;
  readonly vacuumScaleFactor: number;
  readonly analyzeThreshold: number;
  readonly analyzeScaleFactor: number;
  readonly freezeMaxAge: number;
  readonly multixactFreezeMaxAge: number;
  readonly freezeTableAge: number;
  readonly multixactFreezeTableAge: number;
  readonly blockSize: number;
  /** The schema pgstattuple is installed in, or null. */
  readonly pgstattupleSchema: string | null;
}

/** One table's (or partitioned table's) counters, as read. */
export interface TableStats {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly kind: 'table' | 'partitioned';
  readonly parentOid: number | null;
  readonly live: number;
  readonly dead: number;
  readonly changed: number;
  readonly inserted: number;
  readonly lastVacuum: Date | null;
  readonly lastAnalyze: Date | null;
  readonly vacuums: number;
  readonly analyzes: number;
  /** Null for a partitioned table, which holds no rows. */
  readonly xidAge: number | null;
  readonly mxidAge: number | null;
  readonly reltuples: number;
  readonly heapBytes: number;
  readonly toastBytes: number;
  readonly indexBytes: number;
  readonly reloptions: readonly string[];
  readonly toastReloptions: readonly string[];
}

interface SettingsRow {
  database: string;
  server_version: number;
  server_version_text: string;
  in_recovery: boolean;
  autovacuum: boolean;
  track_counts: boolean;
  vacuum_threshold: number;
  vacuum_scale_factor: number;
  analyze_threshold: number;
  analyze_scale_factor: number;
  freeze_max_age: number;
  multixact_freeze_max_age: number;
  freeze_table_age: number;
  multixact_freeze_table_age: number;
  block_size: number;
  pgstattuple_schema: string | null;
}

interface StatsRow {
  oid: string;
  schema: string;
  name: string;
  kind: string;
  parent_oid: string | null;
  live: number;
  dead: number;
  changed: number;
  inserted: number;
  last_vacuum: Date | null;
  last_analyze: Date | null;
  vacuums: number;
  analyzes: number;
  xid_age: number | null;
  mxid_age: number | null;
  reltuples: number;
  heap_bytes: number;
  toast_bytes: number;
  index_bytes: number;
  reloptions: string[];
  toast_reloptions: string[];
}

export async function readVacuumSettings(client: pg.ClientBase): Promise<VacuumSettings> {
  const { rows } = await client.query<SettingsRow>(VACUUM_SETTINGS_SQL);
  const r = rows[0];
  if (!r) throw new Error('the server returned no settings');
  return {
    database: r.database,
    serverVersion: r.server_version,
    serverVersionText: r.server_version_text,
    inRecovery: r.in_recovery,
    autovacuum: r.autovacuum,
    trackCounts: r.track_counts,
    vacuumThreshold: r.vacuum_threshold,
    vacuumScaleFactor: r.vacuum_scale_factor,
    analyzeThreshold: r.analyze_threshold,
    analyzeScaleFactor: r.analyze_scale_factor,
    freezeMaxAge: r.freeze_max_age,
    multixactFreezeMaxAge: r.multixact_freeze_max_age,
    freezeTableAge: r.freeze_table_age,
    multixactFreezeTableAge: r.multixact_freeze_table_age,
    blockSize: r.block_size,
    pgstattupleSchema: r.pgstattuple_schema,
  };
}

/** Counters of every user table and partitioned table (or of `oids` only), in one round trip. */
export async function readTableStats(client: pg.ClientBase, oids?: readonly number[]): Promise<TableStats[]> {
  const { rows } = await client.query<StatsRow>(TABLE_STATS_SQL, [oids === undefined ? null : oids.map(String)]);
  return rows.map((r) => ({
    oid: Number(r.oid),
    schema: r.schema,
    name: r.name,
    kind: r.kind === 'p' ? 'partitioned' : 'table',
    parentOid: r.parent_oid === null ? null : Number(r.parent_oid),
    live: r.live,
    dead: r.dead,
    changed: r.changed,
    inserted: r.inserted,
    lastVacuum: r.last_vacuum,
    lastAnalyze: r.last_analyze,
    vacuums: r.vacuums,
    analyzes: r.analyzes,
    xidAge: r.xid_age,
    mxidAge: r.mxid_age,
    reltuples: r.reltuples,
    heapBytes: r.heap_bytes,
    toastBytes: r.toast_bytes,
    indexBytes: r.index_bytes,
    reloptions: r.reloptions,
    toastReloptions: r.toast_reloptions,
  }));
}
