import type pg from 'pg';
import type { DesiredState } from '../policy/desired.ts';
import { DEFAULT_MAX_DEAD_RATIO, DEFAULT_MIN_HEALTH } from '../policy/vacuum-policy.ts';
import { indexRemedy, measureBloat, tableRemedy, type BloatOptions, type BloatReport, type IndexBloat, type TableBloat } from './bloat.ts';
import { governance, readTableHealth, type TableHealth, type VacuumSettings } from './table-health.ts';

/** One table of `pgwarden health`: its score, its floor, its bloat and what to do about it. */
export interface VacuumHealthRow extends TableHealth {
  /** The health floor of the governing vacuum policy; null when no policy governs the table. */
  readonly floor: number | null;
  readonly maxDeadRatio: number | null;
  readonly belowFloor: boolean;
  /** The table whose vacuum policy governs this one (a partition's partitioned table). */
  readonly governedBy: string | null;
  readonly bloat: Omit<TableBloat, 'oid' | 'schema' | 'name'> & { readonly remedy: string | null };
  readonly indexes: readonly (Omit<IndexBloat, 'oid' | 'tableOid' | 'schema' | 'table'> & { readonly remedy: string | null })[];
  /** Same as bloat.wastedBytes and bloat.method: the fields the live health collector reads. */
  readonly bloatBytes: number | null;
  readonly bloatMethod: string | null;
}

export interface VacuumHealthReport {
  readonly database: string;
  readonly serverVersion: string;
  readonly takenAt: string;
  readonly settings: VacuumSettings;
  /** Worst first. */
  readonly tables: readonly VacuumHealthRow[];
  readonly bloat: BloatReport['exact'] & { readonly ms: number };
  /** Round trips: 4 for the scores and estimates whatever the number of tables, plus the exact batches. */
  readonly queries: number;
  readonly ms: number;
}

export class StandbyError extends Error {}

/**
 * Health and bloat of every user table, with the floors of the vacuum policies when `desired` is given.
 * Refuses a standby: its activity statistics are its own, not the primary's.
 */
export async function vacuumHealthReport(client: pg.ClientBase, desired: DesiredState | undefined, options: BloatOptions = {}): Promise<VacuumHealthReport> {
  const started = performance.now();
  const reading = await readTableHealth(client, options.oids === undefined ? {} : { oids: options.oids });
  if (reading.settings.inRecovery) {
    throw new StandbyError('this server is a read-only standby (in recovery): its activity statistics are its own and nearly empty, so table health cannot be judged there');
  }
  const bloat = await measureBloat(client, reading.settings.blockSize, reading.settings.pgstattupleSchema, options);
  const governed = desired === undefined ? new Map() : governance(desired, reading.stats);
  const tableBloat = new Map(bloat.tables.map((t) => [t.oid, t]));
  const indexesOf = new Map<number, IndexBloat[]>();
  for (const i of bloat.indexes) indexesOf.set(i.tableOid, [...(indexesOf.get(i.tableOid) ?? []), i]);
  const tables = reading.tables.map((h): VacuumHealthRow => {
    const g = governed.get(h.oid);
    const floor = g === undefined ? null : (g.vacuum.minHealth ?? DEFAULT_MIN_HEALTH);
    const b = tableBloat.get(h.oid);
    const { oid: _o, schema: _s, name: _n, ...rest } = b ?? { oid: h.oid, schema: h.schema, name: h.name, bytes: h.heapBytes, method: null, wastedBytes: null, ratio: null };
    return {
      ...h,
      floor,
      maxDeadRatio: g === undefined ? null : (g.vacuum.maxDeadRatio ?? DEFAULT_MAX_DEAD_RATIO),
      belowFloor: floor !== null && h.health < floor,
      governedBy: g === undefined ? null : `${g.root.schema}.${g.root.name}`,
      bloat: { ...rest, wastedBytes: rest.wastedBytes === null ? null : Math.round(rest.wastedBytes), remedy: tableRemedy({ ...h, ...rest }) },
      indexes: (indexesOf.get(h.oid) ?? []).map(({ oid: _io, tableOid: _t, schema: _is, table: _tn, ...i }) => ({
        ...i,
        wastedBytes: i.wastedBytes === null ? null : Math.round(i.wastedBytes),
        remedy: indexRemedy({ schema: h.schema, ...i }),
      })),
      bloatBytes: rest.wastedBytes === null ? null : Math.round(rest.wastedBytes),
      bloatMethod: rest.method,
    };
  });
  return {
    database: reading.settings.database,
    serverVersion: reading.settings.serverVersionText,
    takenAt: reading.takenAt,
    settings: reading.settings,
    tables,
    bloat: { ...bloat.exact, ms: bloat.ms },
    queries: reading.queries + bloat.queries,
    ms: performance.now() - started,
  };
}

/**
 * For the live health collector's slow cadence: each table's score and bloat, estimates only unless a
 * budget for pgstattuple is given (its reads are not free on a large database).
 */
export async function tableHealthForCollector(
  client: pg.ClientBase,
  options: { readonly desired?: DesiredState; readonly exactBudgetMs?: number } = {},
): Promise<VacuumHealthRow[]> {
  const report = await vacuumHealthReport(client, options.desired, {
    exact: options.exactBudgetMs !== undefined && options.exactBudgetMs > 0,
    ...(options.exactBudgetMs === undefined ? {} : { budgetMs: options.exactBudgetMs }),
  });
  return [...report.tables];
}
