import type { Catalog } from '../catalog/catalog.ts';
import type { CatalogSession } from '../catalog/introspect.ts';
import type { Warning } from '../diff/change.ts';
import type { SetStorageParameters } from '../diff/set-storage-parameters.ts';
import { diffStorageParameters, type ManagedSettings } from '../diff/vacuum-settings.ts';
import type { DesiredState } from '../policy/desired.ts';
import { healthFloorWarnings } from '../health/table-health.ts';

export interface StoragePlan {
  readonly changes: readonly SetStorageParameters[];
  readonly warnings: readonly Warning[];
}

/**
 * The vacuum policies' part of a plan: the storage-parameter diff (pure, on the catalog already read)
 * and, when a vacuum policy exists, one statistics query so that tables below their health floor are
 * flagged in the plan.
 */
export async function planStorage(session: CatalogSession, desired: DesiredState, catalog: Catalog): Promise<StoragePlan> {
  const managed = new Map<string, Set<string>>();
  for (const record of catalog.managedSettings ?? []) {
    const key = `${record.schema}\u0000${record.table}`;
    managed.set(key, new Set([...(managed.get(key) ?? []), record.parameter]));
  }
  const diff = diffStorageParameters(desired, catalog, managed satisfies ManagedSettings);
  const floors = await healthFloorWarnings(session, desired);
  return { changes: diff.changes, warnings: [...diff.warnings, ...floors] };
}
