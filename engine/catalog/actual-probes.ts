import { addIntervals, boundLiteral, canonicalBound, intervalStart, subtractIntervals, timeKeyType } from '../diff/partition-interval.ts';
import type { DesiredState } from '../policy/desired.ts';
import { parameterMove } from '../diff/index-parameter-move.ts';
import type { Canonical } from './canonicalise.ts';
import { signatureKey, type Catalog } from './catalog.ts';
import type { DefaultRowsProbe, PartitionedTableInfo } from './partition-queries.ts';

/**
 * What `readActual()` probes beyond the catalog, decided from the desired state and what was already
 * read, so that the diff never has to ask for more. Each is a small superset of what the diff turns out
 * to use: probing a little more costs nothing measurable, while asking later would mean a second read.
 */

/** A range whose rows in the table's DEFAULT partition must be counted before a partition for it is created. */
export interface DefaultRowsRange {
  readonly schema: string;
  readonly table: string;
  readonly start: Date;
  readonly probe: DefaultRowsProbe;
}

/**
 * For each partitioning policy on a range-partitioned table that has a DEFAULT partition: every range
 * from the oldest one retention keeps up to now + premake that no aligned partition covers. (The diff
 * also skips ranges a foreign partition overlaps or whose name is taken; those are counted and unused.)
 */
export function defaultRowsRanges(desired: DesiredState, tables: readonly PartitionedTableInfo[], now: Date): DefaultRowsRange[] {
  const infos = new Map(tables.map((t) => [`${t.schema}\u0000${t.name}`, t]));
  const ranges: DefaultRowsRange[] = [];
  for (const table of desired.tables) {
    const policy = table.partitioning;
    const info = infos.get(`${table.schema}\u0000${table.name}`);
    if (policy === undefined || info === undefined || !info.partitioned || info.strategy !== 'r') continue;
    if (info.keyColumns.length !== 1 || info.keyColumns[0] !== policy.column) continue;
    const type = timeKeyType(info.columnTypes[policy.column]);
    const defaultPartition = info.partitions.find((p) => !p.detachPending && p.isDefault);
    if (type === null || defaultPartition === undefined) continue;
    const { interval } = policy;
    const cutoff = policy.retention ? subtractIntervals(now, interval, policy.retention.keep).getTime() : Number.NEGATIVE_INFINITY;
    const expired = (start: Date): boolean => addIntervals(start, interval, 1).getTime() <= cutoff;
    const present = new Set<number>();
    for (const p of info.partitions) {
      if (p.detachPending || p.isDefault || p.from === null || p.to === null) continue;
      const from = Date.parse(p.from);
      const to = Date.parse(p.to);
      if (Number.isNaN(from) || Number.isNaN(to)) continue;
      const start = new Date(from);
      if (intervalStart(start, interval).getTime() === from && p.from === canonicalBound(start) && addIntervals(start, interval, 1).getTime() === to) present.add(from);
    }
    const current = intervalStart(now, interval);
    const last = addIntervals(current, interval, policy.premake);
    const kept = [...present].filter((from) => !expired(new Date(from)));
    for (let start = new Date(Math.min(current.getTime(), ...kept)); start.getTime() <= last.getTime(); start = addIntervals(start, interval, 1)) {
      if (present.has(start.getTime()) || expired(start)) continue;
      const to = addIntervals(start, interval, 1);
      ranges.push({
        schema: info.schema,
        table: info.name,
        start,
        probe: { schema: defaultPartition.schema, table: defaultPartition.name, column: policy.column, type, from: boundLiteral(start, type), to: boundLiteral(to, type) },
      });
    }
  }
  return ranges;
}

/**
 * The live indexes a plan may change or remove, whose definitions it shows: on each declared table, every
 * top-level index except a VALID one that matches its declaration, storage parameters included (nothing
 * to do, or an adoption: none are fetched in either state), a constraint's index no policy names, and an
 * index nobody declared that pgwarden may not drop and that no missing declared index could be renamed from.
 */
export function definitionTargets(desired: DesiredState, catalog: Catalog, canonical: ReadonlyMap<string, Canonical>): { schema: string; name: string }[] {
  const tables = new Map(catalog.tables.map((t) => [`${t.schema}\u0000${t.name}`, t]));
  const managed = new Set(catalog.managed.map((m) => `${m.schema}\u0000${m.name}`));
  const byTable = new Map<number, Catalog['indexes'][number][]>();
  for (const i of catalog.indexes) {
    if (i.parentIndexOid !== null) continue;
    const list = byTable.get(i.tableOid);
    if (list) list.push(i);
    else byTable.set(i.tableOid, [i]);
  }
  const targets: { schema: string; name: string }[] = [];
  for (const table of desired.tables) {
    const actual = tables.get(`${table.schema}\u0000${table.name}`);
    if (actual === undefined) continue;
    const live = byTable.get(actual.oid) ?? [];
    const liveNames = new Set(live.map((i) => i.name));
    const declared = new Map(table.indexes.map((d) => [d.name, d]));
    // Signatures of declared indexes with no live index of their name: an undeclared twin may be renamed.
    const wanted = new Set(
      table.indexes.flatMap((d) => {
        const c = canonical.get(`${d.schema}\u0000${d.name}`);
        return !liveNames.has(d.name) && c?.ok ? [signatureKey(c.signature)] : [];
      }),
    );
    for (const index of live) {
      const ours = managed.has(`${index.schema}\u0000${index.name}`);
      const key = signatureKey(index.signature);
      const declaration = declared.get(index.name);
      if (declaration !== undefined) {
        const c = canonical.get(`${declaration.schema}\u0000${declaration.name}`);
        // Storage parameters to move may mean a replace too (engine/diff/index-diff.ts).
        const settled = parameterMove(declaration.method, declaration.with ?? {}, index.reloptions) === undefined;
        // In the steady state, or about to be adopted: the live index is the declared one, its
        // definition says nothing the policy does not (and deparsing 15,000 of them on a first plan
        // costs most of a catalog read).
        if (index.valid && settled && c?.ok && signatureKey(c.signature) === key) continue;
      } else if (index.constraintType !== null || (!ours && table.managed !== 'full' && !(index.valid && wanted.has(key)))) {
        continue;
      }
      targets.push({ schema: index.schema, name: index.name });
    }
  }
  return targets;
}
