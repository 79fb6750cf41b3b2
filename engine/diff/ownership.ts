import type { Catalog } from '../catalog/catalog.ts';
import type { DesiredState, PolicyError } from '../policy/desired.ts';
import type { Change } from './change.ts';

/** Changes that create a relation in the table's schema (an index, a partition, a converted table). */
const CREATES_IN_SCHEMA: ReadonlySet<Change['kind']> = new Set<Change['kind']>(['create-index', 'replace-index', 'rebuild-index', 'create-partition', 'convert-table']);

/**
 * Changes the connecting role may not make, found before apply starts. CREATE INDEX, ALTER TABLE, ALTER
 * INDEX and partition DDL need the table owner's rights (the owner, a member of the owning role, or a
 * superuser); a new index or partition also needs CREATE on the table's schema. Managed providers hand out
 * roles that own some tables and not others, and PostgreSQL 15+ no longer grants CREATE on `public` to
 * everyone. Adopting an index only writes pgwarden's own registry, and replica settings are not table DDL:
 * neither needs these rights.
 */
export function ownershipErrors(desired: DesiredState, catalog: Catalog, changes: readonly Change[]): PolicyError[] {
  const counts = new Map<string, { changes: number; creating: number }>();
  for (const change of changes) {
    if (change.kind === 'adopt-index' || !('table' in change)) continue;
    const key = `${change.table.schema}\u0000${change.table.name}`;
    const count = counts.get(key) ?? { changes: 0, creating: 0 };
    counts.set(key, { changes: count.changes + 1, creating: count.creating + (CREATES_IN_SCHEMA.has(change.kind) ? 1 : 0) });
  }
  const errors: PolicyError[] = [];
  for (const table of desired.tables) {
    const count = counts.get(`${table.schema}\u0000${table.name}`);
    const actual = catalog.tables.find((t) => t.schema === table.schema && t.name === table.name);
    if (count === undefined || actual === undefined) continue;
    if (!actual.actsAsOwner) {
      errors.push({
        ...table.source,
        message: `table ${table.schema}.${table.name} is owned by role "${actual.owner}", and the role pgwarden connects as may not change it (${count.changes} change(s) planned for it need the owner's rights)`,
        hint: `run pgwarden as "${actual.owner}", or grant that role to yours: GRANT "${actual.owner}" TO <your role>`,
      });
    } else if (count.creating > 0 && !actual.createsInSchema) {
      errors.push({
        ...table.source,
        message: `the role pgwarden connects as may not create in schema ${table.schema}, where ${count.creating} change(s) planned for table ${table.schema}.${table.name} create an index or a partition`,
        hint: `GRANT CREATE ON SCHEMA "${table.schema}" TO <your role>`,
      });
    }
  }
  return errors;
}
