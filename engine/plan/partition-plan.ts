import type { CatalogSession } from '../catalog/introspect.ts';
import { countDefaultRows, introspectPartitions, retiredPartitions } from '../catalog/partition-queries.ts';
import { defaultRowProbes, diffPartitions, type PartitionDiff } from '../diff/partition-diff.ts';
import type { DesiredState, DesiredTable } from '../policy/desired.ts';

const NOTHING: PartitionDiff = { before: [], after: [], warnings: [], errors: [] };

/**
 * The partition half of a plan: one catalog round trip for the tables with a `partitioning:` policy (one
 * or two more for `then: drop` policies: the partitions detached for a drop that did not run), the pure diff, and, only when a range is about to get a partition on a table with a default partition, one
 * more round trip counting the default partition's rows of those ranges; then the diff again with them.
 */
export async function planPartitions(
  session: CatalogSession,
  desired: DesiredState,
  now: Date,
  storageParametersFor?: (table: DesiredTable) => Record<string, string>,
): Promise<PartitionDiff> {
  const named = desired.tables.filter((t) => t.partitioning !== undefined).map((t) => ({ schema: t.schema, name: t.name }));
  if (named.length === 0) return NOTHING;
  const tables = await introspectPartitions(session, named);
  // Only policies that drop can have left a detached table behind to drop.
  const dropping = desired.tables.filter((t) => t.partitioning?.retention?.then === 'drop').map((t) => ({ schema: t.schema, name: t.name }));
  const retired = await retiredPartitions(session, dropping);
  const input = { desired, tables, now, retired, ...(storageParametersFor ? { storageParametersFor } : {}) };
  const first = diffPartitions(input);
  const probes = defaultRowProbes(first);
  if (probes.length === 0 || first.errors.length > 0) return first;
  const counts = await countDefaultRows(session, probes.map((p) => p.probe));
  return diffPartitions({ ...input, defaultRows: new Map(probes.map((p, i) => [p.address, counts[i] ?? 0])) });
}
