import type pg from 'pg';
import { readTableStats, readVacuumSettings, type TableStats, type VacuumSettings } from '../catalog/table-statistics.ts';
import type { DesiredState } from '../policy/desired.ts';
import type { DesiredVacuum } from '../policy/vacuum-policy.ts';

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

// The reads moved to catalog/ (the plan reads them with the rest of the actual state); their names stay here too.
export { readTableStats, readVacuumSettings, type TableStats, type VacuumSettings };

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
  return { settings, takenAt: new Date().toISOString(), tables: tableHealthOf(settings, stats), stats, queries: 2 };
}

/** The health of every table that holds rows (partitioned tables hold none), worst first; pure. */
export function tableHealthOf(settings: VacuumSettings, stats: readonly TableStats[]): TableHealth[] {
  const byOid = new Map(stats.map((s) => [s.oid, s]));
  return stats
    .filter((s) => s.kind === 'table')
    .map((s) => {
      const parent = s.parentOid === null ? undefined : byOid.get(s.parentOid);
      return computeTableHealth(s, settings, parent === undefined ? undefined : { schema: parent.schema, name: parent.name });
    })
    .sort(byHealth);
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
