import type { Actual } from '../catalog/actual.ts';
import type { DesiredState, PolicyError } from '../policy/desired.ts';
import { missingVariableMessage } from '../routing/router-options.ts';
import type { Change, IndexRef, Warning } from './change.ts';
import { healthFloorWarnings } from './health-floor.ts';
import { diffIndexes } from './index-diff.ts';
import { partitionAddress } from './partition-change.ts';
import { diffPartitions } from './partition-diff.ts';
import { partitionName } from './partition-interval.ts';
import type { RoutingReport } from './routing-change.ts';
import { diffRouting } from './routing-diff.ts';
import { diffStorageParameters, storageParametersFor, type ManagedSettings } from './vacuum-settings.ts';
import { diffConversions } from './convert-diff.ts';
import { NO_CONVERSIONS } from '../catalog/read-conversions.ts';

export interface Diff {
  /** In the order they run. */
  readonly changes: readonly Change[];
  readonly warnings: readonly Warning[];
  /** Policy mistakes only the live state reveals; when there is any, there is no plan. */
  readonly errors: readonly PolicyError[];
  readonly routing?: RoutingReport;
}

/**
 * From (desired, actual, now) to every change a plan makes: indexes, partitions, storage parameters and
 * routing. Pure: `readActual()` read everything first, including what only the desired state says is
 * needed, and the clock is an argument.
 */
export function diffAll(desired: DesiredState, actual: Actual, now: Date): Diff {
  const indexes = diffIndexes(desired, actual.catalog, actual.canonical);
  const partitions = diffPartitions({
    desired,
    tables: actual.partitions,
    now,
    retired: actual.retired,
    defaultRows: defaultRowsByAddress(desired, actual),
    storageParametersFor,
  });
  const routing = routingDiff(desired, actual);
  const conversions = diffConversions(desired, actual.conversions ?? NO_CONVERSIONS, now, storageParametersFor);
  const errors = [...indexes.errors, ...partitions.errors, ...routing.errors, ...conversions.errors];
  if (errors.length > 0) return { changes: [], warnings: [], errors };
  const storage = diffStorageParameters(desired, actual.catalog, managedSettings(actual));
  // Interrupted detaches finish first; new partitions come after the index changes, so ATTACH gives
  // them every index the parent has by then.
  // A table being converted gets its declared indexes from the conversion, not built on the plain table.
  const indexChanges = indexes.changes.filter((c) => !('table' in c) || !conversions.converting.has(`${c.table.schema}\u0000${c.table.name}`));
  const changes = [...partitions.before, ...indexChanges, ...storage.changes, ...conversions.changes, ...partitions.after, ...routing.changes].map((c) =>
    withDefinition(c, actual.indexDefinitions),
  );
  const warnings = [
    ...indexes.warnings,
    ...partitions.warnings,
    ...storage.warnings,
    ...healthFloorWarnings(desired, actual.tableStatistics),
    ...routing.warnings,
    ...conversions.warnings,
  ];
  return { changes, warnings, errors: [], ...(routing.report === undefined ? {} : { routing: routing.report }) };
}

/** The counts readActual took, keyed as the partition diff looks them up: by the address of the partition it would create. */
function defaultRowsByAddress(desired: DesiredState, actual: Actual): Map<string, number> {
  const naming = new Map(desired.tables.flatMap((t) => (t.partitioning ? [[`${t.schema}\u0000${t.name}`, t.partitioning.naming] as const] : [])));
  const rows = new Map<string, number>();
  for (const r of actual.defaultRows) {
    const pattern = naming.get(`${r.schema}\u0000${r.table}`);
    if (pattern !== undefined) rows.set(partitionAddress(r.schema, r.table, partitionName(pattern, r.table, r.start)), r.rows);
  }
  return rows;
}

function routingDiff(desired: DesiredState, actual: Actual): { changes: readonly Change[]; warnings: readonly Warning[]; errors: readonly PolicyError[]; report?: RoutingReport } {
  if (desired.routing === undefined || actual.routing === null) return { changes: [], warnings: [], errors: [] };
  // A replica whose URL variable is not set is an error where the policy names the variable.
  const unset = new Set(actual.routing.replicas.filter((r) => r.state === 'unset').map((r) => r.name));
  const missing = desired.routing.replicas.filter((r) => unset.has(r.name)).map((r): PolicyError => ({ ...r.urlEnvSource, ...missingVariableMessage(r) }));
  const diff = diffRouting(desired.routing, actual.routing);
  return { changes: diff.changes, warnings: diff.warnings, errors: [...missing, ...diff.errors], report: diff.report };
}

function managedSettings(actual: Actual): ManagedSettings {
  const managed = new Map<string, Set<string>>();
  for (const record of actual.catalog.managedSettings ?? []) {
    const key = `${record.schema}\u0000${record.table}`;
    managed.set(key, new Set([...(managed.get(key) ?? []), record.parameter]));
  }
  return managed;
}

/** Fills `actual.definition` (display only) from the definitions readActual fetched. */
function withDefinition(change: Change, definitions: ReadonlyMap<string, string>): Change {
  if (!('actual' in change) || !isIndexRef(change.actual)) return change;
  const definition = definitions.get(`${change.actual.schema}\u0000${change.actual.name}`) ?? null;
  return { ...change, actual: { ...change.actual, definition } } as Change;
}

function isIndexRef(value: unknown): value is IndexRef {
  return typeof value === 'object' && value !== null && 'valid' in value && 'definition' in value;
}
