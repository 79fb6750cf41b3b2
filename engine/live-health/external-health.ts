import type pg from 'pg';
import { measureBloat, tableRemedy } from '../vacuum-health/bloat.ts';
import type { ExternalTableHealth } from './health-snapshot.ts';
import { readTableHealth } from '../vacuum-health/table-health.ts';

/**
 * The slow cadence's table health: issue 5's score for every table (two round trips) and its
 * statistics-based bloat estimate (two more), kept to the worst `limit` tables so a snapshot stays
 * small on a 5,000-table catalog. pgstattuple's exact measurement reads whole tables: it is left to
 * `pgwarden health`, never run from the live loop.
 */
export async function readExternalTableHealth(client: pg.ClientBase, limit = 20): Promise<{ tables: ExternalTableHealth[]; count: number }> {
  const report = await readTableHealth(client);
  if (report.settings.inRecovery) return { tables: [], count: 0 };
  const worst = report.tables.slice(0, limit);
  const bloat = await measureBloat(client, report.settings.blockSize, null, { exact: false, oids: worst.map((t) => t.oid) });
  const bloatByOid = new Map(bloat.tables.map((b) => [b.oid, b]));
  const tables = worst.map((t): ExternalTableHealth => {
    const b = bloatByOid.get(t.oid);
    return {
      schema: t.schema,
      name: t.name,
      health: t.health,
      limitedBy: t.limitedBy,
      liveRows: t.liveTuples,
      deadRows: t.deadTuples,
      autovacuumTrigger: t.autovacuum.vacuumAt,
      autovacuumEnabled: t.autovacuum.enabled,
      modifiedSinceAnalyze: t.changedSinceAnalyze,
      rowEstimate: t.liveTuples,
      xidAge: t.xidAge,
      lastVacuum: t.lastVacuum,
      lastAnalyze: t.lastAnalyze,
      bloatBytes: b?.wastedBytes ?? null,
      bloatRatio: b?.ratio ?? null,
      bloatMethod: b?.method ?? null,
      bloatRemedy: b ? tableRemedy(b) : null,
    };
  });
  return { tables, count: report.tables.length };
}
