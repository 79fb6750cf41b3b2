import { query, type CatalogSession } from '../catalog/introspect.ts';
import { INDEX_DEFINITIONS_SQL } from '../catalog/queries.ts';
import type { Change, IndexRef } from '../diff/change.ts';

/**
 * Fills `actual.definition` (display only) for the indexes a plan acts on: one round trip, and only
 * when some change has a live index — never a deparse of the whole catalog.
 */
export async function withIndexDefinitions(session: CatalogSession, changes: readonly Change[]): Promise<Change[]> {
  const refs = changes.flatMap((c) => ('actual' in c && isIndexRef(c.actual) ? [c.actual] : []));
  if (refs.length === 0) return [...changes];
  const rows = await query<{ schema: string; name: string; definition: string }>(session, INDEX_DEFINITIONS_SQL, [
    refs.map((r) => r.schema),
    refs.map((r) => r.name),
  ]);
  const definitions = new Map(rows.map((r) => [`${r.schema}\u0000${r.name}`, r.definition]));
  return changes.map((c) => {
    if (!('actual' in c) || !isIndexRef(c.actual)) return c;
    const definition = definitions.get(`${c.actual.schema}\u0000${c.actual.name}`) ?? null;
    return { ...c, actual: { ...c.actual, definition } } as Change;
  });
}

function isIndexRef(value: unknown): value is IndexRef {
  return typeof value === 'object' && value !== null && 'valid' in value && 'definition' in value;
}
