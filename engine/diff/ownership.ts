import type { Catalog } from '../catalog/catalog.ts';
import type { DesiredState, PolicyError } from '../policy/desired.ts';
import type { Change } from './change.ts';

/**
 * Changes the connecting role may not make: CREATE INDEX, ALTER TABLE, ALTER INDEX and partition DDL
 * need the table owner's rights (the owner, a member of the owning role, or a superuser). Managed
 * providers hand out roles that own some tables and not others; such a plan fails here, naming the table
 * and its owner, rather than halfway through apply. Adopting an index only writes pgwarden's own
 * registry, and replica settings are not table DDL: neither needs the owner.
 */
export function ownershipErrors(desired: DesiredState, catalog: Catalog, changes: readonly Change[]): PolicyError[] {
  const counts = new Map<string, number>();
  for (const change of changes) {
    if (change.kind === 'adopt-index' || !('table' in change)) continue;
    const key = `${change.table.schema}\u0000${change.table.name}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const errors: PolicyError[] = [];
  for (const table of desired.tables) {
    const count = counts.get(`${table.schema}\u0000${table.name}`);
    if (count === undefined) continue;
    const actual = catalog.tables.find((t) => t.schema === table.schema && t.name === table.name);
    if (actual === undefined || actual.actsAsOwner) continue;
    errors.push({
      ...table.source,
      message: `table ${table.schema}.${table.name} is owned by role "${actual.owner}", and the role pgwarden connects as may not change it (${count} change(s) planned for it need the owner's rights)`,
      hint: `run pgwarden as "${actual.owner}", or grant that role to yours: GRANT "${actual.owner}" TO <your role>`,
    });
  }
  return errors;
}
