import type pg from 'pg';
import type { CatalogSession } from '../catalog/introspect.ts';
import { TABLE_STATS_SQL, VACUUM_SETTINGS_SQL } from '../catalog/vacuum-queries.ts';
import type { Warning } from '../diff/change.ts';
import type { DesiredState } from '../policy/desired.ts';
import { DEFAULT_MIN_HEALTH, type DesiredVacuum } from '../policy/vacuum-policy.ts';

/**
 * Table health: one number per table in [0, 1] built from what a plain `VACUUM (ANALYZE)` restores.
 *
 *   live share   n_live / (n_live + n_dead)                        dead tuples VACUUM removes
 *   freshness    1 - 0.2 x min(1, changed since ANALYZE / n_live)  statistics ANALYZE refreshes
 *                (0.8 for a table with rows that was never analyzed)
 *   wraparound   1 while the transaction-ID age (and multixact age) is at most autovacuum_freeze_max_age,
 *                then falling linearly to 0 at 2^31, where PostgreSQL stops accepting writes
 *   health       the lowest of the three; `limitedBy` names it
 *
 * Bloat (free space only a rewrite returns) is not in the score: VACUUM cannot give it back. It is
 * reported beside it by bloat.ts, with its remedy.
 */

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

export type HealthFactor = 'dead tuples' | 'statistics' | 'transaction ID age';

export interface TableHealth {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** The partitioned table this is a partition of. */
  readonly partitionOf: { readonly schema: string; readonly name: string } | null;
  readonly liveTuples: number;
  readonly deadTuples: number;
  /** dead / (live + dead). */
  readonly deadRatio: number;
  readonly changedSinceAnalyze: number;
  /** Changed rows since the last ANALYZE per live row, capped at 1 (1 when never analyzed). */
  readonly changedShare: number;
  readonly insertedSinceVacuum: number;
  readonly lastVacuum: string | null;
  readonly lastAnalyze: string | null;
  readonly xidAge: number;
  readonly mxidAge: number;
  /** autovacuum_freeze_max_age as it applies to this table (a table setting can only lower the server's). */
  readonly freezeMaxAge: number;
  readonly multixactFreezeMaxAge: number;
  readonly heapBytes: number;
  readonly toastBytes: number;
  readonly indexBytes: number;
  readonly autovacuum: {
    readonly enabled: boolean;
    /** Dead tuples at which autovacuum vacuums: threshold + scale_factor x reltuples, table settings honoured. */
    readonly vacuumAt: number;
    /** Changed rows at which autovacuum analyzes. */
    readonly analyzeAt: number;
  };
  readonly components: { readonly liveShare: number; readonly freshness: number; readonly wraparound: number };
  readonly health: number;
  /** The lowest component when health is below 1. */
  readonly limitedBy: HealthFactor | null;
}

/** Where wraparound stops writes: 2^31 transactions (PostgreSQL refuses new XIDs ~3M before). */
export const WRAPAROUND_AGE = 2 ** 31;
/** How much fully stale statistics take off the score. */
export const STALE_STATISTICS_WEIGHT = 0.2;

function reloptionNumber(options: readonly string[], name: string): number | undefined {
  const found = options.find((o) => o.startsWith(`${name}=`));
  if (found === undefined) return undefined;
  const value = Number(found.slice(name.length + 1));
  return Number.isFinite(value) ? value : undefined;
}

function reloptionBool(options: readonly string[], name: string): boolean | undefined {
  const found = options.find((o) => o.startsWith(`${name}=`));
  if (found === undefined) return undefined;
  return /^(t|tr|tru|true|y|ye|yes|on|1)$/iu.test(found.slice(name.length + 1));
}

/** 1 while age <= maxAge, then linearly to 0 at wraparound. */
export function wraparoundMargin(age: number, maxAge: number): number {
  if (age <= maxAge) return 1;
  return Math.max(0, 1 - (age - maxAge) / (WRAPAROUND_AGE - maxAge));
}

/** The score of one table; pure. `stats.kind` must be 'table'. */
export function computeTableHealth(stats: TableStats, settings: VacuumSettings, parent?: { schema: string; name: string }): TableHealth {
  const live = Math.max(0, stats.live);
  const dead = Math.max(0, stats.dead);
  const liveShare = live + dead > 0 ? live / (live + dead) : 1;
  const neverAnalyzed = stats.lastAnalyze === null && stats.analyzes === 0;
  const changedShare = live > 0 ? (neverAnalyzed ? 1 : Math.min(1, stats.changed / live)) : stats.changed > 0 ? 1 : 0;
  const freshness = 1 - STALE_STATISTICS_WEIGHT * changedShare;
  // A table setting can only lower the freeze age at which autovacuum forces a vacuum.
  const freezeMaxAge = Math.min(reloptionNumber(stats.reloptions, 'autovacuum_freeze_max_age') ?? Infinity, settings.freezeMaxAge);
  const multixactFreezeMaxAge = Math.min(
    reloptionNumber(stats.reloptions, 'autovacuum_multixact_freeze_max_age') ?? Infinity,
    settings.multixactFreezeMaxAge,
  );
  const xidAge = stats.xidAge ?? 0;
  const mxidAge = stats.mxidAge ?? 0;
  const wraparound = Math.min(wraparoundMargin(xidAge, freezeMaxAge), wraparoundMargin(mxidAge, multixactFreezeMaxAge));
  const components = { liveShare, freshness, wraparound };
  const health = Math.min(liveShare, freshness, wraparound);
  const limitedBy: HealthFactor | null =
    health >= 1 ? null : health === wraparound ? 'transaction ID age' : health === liveShare ? 'dead tuples' : 'statistics';
  const rows = Math.max(0, stats.reltuples);
  const number = (name: string, fallback: number): number => reloptionNumber(stats.reloptions, name) ?? fallback;
  return {
    oid: stats.oid,
    schema: stats.schema,
    name: stats.name,
    partitionOf: parent ?? null,
    liveTuples: live,
    deadTuples: dead,
    deadRatio: live + dead > 0 ? dead / (live + dead) : 0,
    changedSinceAnalyze: stats.changed,
    changedShare,
    insertedSinceVacuum: stats.inserted,
    lastVacuum: stats.lastVacuum?.toISOString() ?? null,
    lastAnalyze: stats.lastAnalyze?.toISOString() ?? null,
    xidAge,
    mxidAge,
    freezeMaxAge,
    multixactFreezeMaxAge,
    heapBytes: stats.heapBytes,
    toastBytes: stats.toastBytes,
    indexBytes: stats.indexBytes,
    autovacuum: {
      enabled: settings.autovacuum && (reloptionBool(stats.reloptions, 'autovacuum_enabled') ?? true),
      vacuumAt: Math.round(number('autovacuum_vacuum_threshold', settings.vacuumThreshold) + number('autovacuum_vacuum_scale_factor', settings.vacuumScaleFactor) * rows),
      analyzeAt: Math.round(number('autovacuum_analyze_threshold', settings.analyzeThreshold) + number('autovacuum_analyze_scale_factor', settings.analyzeScaleFactor) * rows),
    },
    components,
    health,
    limitedBy,
  };
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

export interface HealthReading {
  readonly settings: VacuumSettings;
  readonly takenAt: string;
  /** Tables and partitions that hold rows, worst first. */
  readonly tables: readonly TableHealth[];
  /** Every relation read, partitioned tables included (for `maintain`'s ANALYZE of parents). */
  readonly stats: readonly TableStats[];
  /** Round trips used: constant, whatever the number of tables. */
  readonly queries: number;
}

/** Worst first; ties by name, so the order is stable. */
export function byHealth(a: TableHealth, b: TableHealth): number {
  return a.health - b.health || b.deadTuples - a.deadTuples || (a.schema < b.schema ? -1 : a.schema > b.schema ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * The health of every user table, in two round trips (settings, then counters) whatever the number
 * of tables. A standby has its own, mostly empty activity statistics (they are not replicated):
 * `settings.inRecovery` says so, and callers refuse to judge a table by them.
 */
export async function readTableHealth(client: pg.ClientBase, options: { readonly oids?: readonly number[] } = {}): Promise<HealthReading> {
  const settings = await readVacuumSettings(client);
  const stats = await readTableStats(client, options.oids);
  const byOid = new Map(stats.map((s) => [s.oid, s]));
  const tables = stats
    .filter((s) => s.kind === 'table')
    .map((s) => {
      const parent = s.parentOid === null ? undefined : byOid.get(s.parentOid);
      return computeTableHealth(s, settings, parent === undefined ? undefined : { schema: parent.schema, name: parent.name });
    })
    .sort(byHealth);
  return { settings, takenAt: new Date().toISOString(), tables, stats, queries: 2 };
}

/** The vacuum policy governing a relation, and the table whose policy it is (a partition's root). */
export interface Governance {
  readonly vacuum: DesiredVacuum;
  readonly root: { readonly schema: string; readonly name: string };
}

/**
 * Which vacuum policy governs each relation: its root table's own (the partitions of a partitioned
 * table follow it), else the `defaults:` document's, else none.
 */
export function governance(desired: DesiredState, stats: readonly TableStats[]): Map<number, Governance> {
  const byOid = new Map(stats.map((s) => [s.oid, s]));
  const named = new Map(desired.tables.map((t) => [`${t.schema}\u0000${t.name}`, t]));
  const result = new Map<number, Governance>();
  for (const s of stats) {
    let root = s;
    for (let hops = 0; root.parentOid !== null && hops < 64; hops += 1) {
      const parent = byOid.get(root.parentOid);
      if (parent === undefined) break;
      root = parent;
    }
    const policy = named.get(`${root.schema}\u0000${root.name}`);
    const vacuum = policy === undefined ? desired.vacuumDefaults : policy.vacuum;
    if (vacuum !== undefined) result.set(s.oid, { vacuum, root: { schema: root.schema, name: root.name } });
  }
  return result;
}

export function hasVacuumPolicies(desired: DesiredState): boolean {
  return desired.vacuumDefaults !== undefined || desired.tables.some((t) => t.vacuum !== undefined);
}

/** Words for why a table scores what it does: `29% dead tuples`. */
export function healthReason(h: TableHealth): string {
  switch (h.limitedBy) {
    case 'dead tuples':
      return `${percent(h.deadRatio)} dead tuples`;
    case 'statistics':
      return h.lastAnalyze === null ? 'never analyzed' : `${percent(h.changedShare)} of rows changed since the last ANALYZE`;
    case 'transaction ID age':
      return `transaction ID age ${Math.round(h.xidAge).toLocaleString('en-US')} past autovacuum_freeze_max_age ${h.freezeMaxAge.toLocaleString('en-US')}`;
    case null:
      return 'healthy';
  }
}

function percent(share: number): string {
  return `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`;
}

const MAX_FLOOR_WARNINGS = 20;

/**
 * The plan's warnings for governed tables below their health floor: one statistics read (two round
 * trips, counted on the session) when any vacuum policy exists, none otherwise.
 */
export async function healthFloorWarnings(session: CatalogSession, desired: DesiredState): Promise<Warning[]> {
  if (!hasVacuumPolicies(desired)) return [];
  const report = await readTableHealth(session.client);
  session.roundTrips += report.queries;
  const governed = governance(desired, report.stats);
  const below = report.tables.flatMap((h) => {
    const g = governed.get(h.oid);
    const floor = g?.vacuum.minHealth ?? DEFAULT_MIN_HEALTH;
    return g !== undefined && h.health < floor ? [{ h, g, floor }] : [];
  });
  const warnings: Warning[] = below.slice(0, MAX_FLOOR_WARNINGS).map(({ h, g, floor }) => ({
    address: `health:${h.schema}.${h.name}`,
    source: g.vacuum.source,
    message: `${h.schema}.${h.name} has health ${h.health.toFixed(2)}, below its floor ${floor.toFixed(2)} (${healthReason(h)}); \`pgwarden maintain\` restores it`,
  }));
  if (below.length > MAX_FLOOR_WARNINGS) {
    warnings.push({ address: 'health:*', message: `${below.length - MAX_FLOOR_WARNINGS} more tables are below their health floor; \`pgwarden health\` lists them all` });
  }
  return warnings;
}
