import type { TableHealth } from '../vacuum-health/table-health.ts';
import type { SourcePos } from '../policy/desired.ts';
import { qualified } from '../sql/ident.ts';

/**
 * What `maintain` does to one table. Never VACUUM FULL (an ACCESS EXCLUSIVE rewrite): only what runs
 * beside reads and writes under SHARE UPDATE EXCLUSIVE.
 *   vacuum   VACUUM (ANALYZE): dead tuples removed, statistics refreshed
 *   freeze   VACUUM (FREEZE, ANALYZE): also freezes every row, so relfrozenxid advances now, at a time
 *            of pgwarden's choosing, before autovacuum is forced into an anti-wraparound vacuum
 *   analyze  ANALYZE: only the statistics were stale
 */
export type MaintenanceAction = 'vacuum' | 'freeze' | 'analyze';

export interface MaintenanceTask {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** A partitioned table is only ever analyzed (autovacuum never analyzes one; its planner statistics are pgwarden's to keep). */
  readonly kind: 'table' | 'partitioned';
  readonly action: MaintenanceAction;
  /** Why it is due, in words, one per rule that fired. */
  readonly reasons: readonly string[];
  /** Health when it was picked; null for a partitioned table. */
  readonly before: TableHealth | null;
  /** The table whose vacuum policy made it due (a partition's partitioned table) and where that policy is. */
  readonly policy: { readonly schema: string; readonly name: string; readonly source: SourcePos };
  /** The floor and ratio that applied, for the summary. */
  readonly minHealth: number;
  readonly maxDeadRatio: number;
}

export interface SqlOptions {
  /** PostgreSQL 16+: leave datfrozenxid to one VACUUM (ONLY_DATABASE_STATS) at the end of the run. */
  readonly skipDatabaseStats: boolean;
}

/**
 * @example maintenanceSql(task, { skipDatabaseStats: false }) // VACUUM (ANALYZE) "public"."deployments"
 */
export function maintenanceSql(task: Pick<MaintenanceTask, 'schema' | 'name' | 'action'>, options: SqlOptions): string {
  const table = qualified(task.schema, task.name);
  const skip = options.skipDatabaseStats ? ', SKIP_DATABASE_STATS' : '';
  switch (task.action) {
    case 'vacuum':
      return `VACUUM (ANALYZE${skip}) ${table}`;
    case 'freeze':
      return `VACUUM (FREEZE, ANALYZE${skip}) ${table}`;
    case 'analyze':
      return `ANALYZE ${table}`;
  }
}

export function actionWords(action: MaintenanceAction): string {
  return { vacuum: 'VACUUM (ANALYZE)', freeze: 'VACUUM (FREEZE, ANALYZE)', analyze: 'ANALYZE' }[action];
}
