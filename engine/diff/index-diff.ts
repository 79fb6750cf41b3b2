import type { ActualIndex, ActualTable, Catalog, IndexSignature } from '../catalog/catalog.ts';
import { sameSignature } from '../catalog/catalog.ts';
import type { Canonical } from '../catalog/canonicalise.ts';
import type { DesiredIndex, DesiredState, DesiredTable, PolicyError } from '../policy/desired.ts';
import { parameterMove, type IndexParameterMove } from './index-parameter-move.ts';
import {
  indexAddress,
  partitionIndexName,
  replacementName,
  REPLACEMENT_SUFFIX,
  type Change,
  type IndexRef,
  type PartitionIndex,
  type PartitionRef,
  type TableRef,
  type Warning,
} from './change.ts';

export interface IndexDiff {
  readonly changes: readonly Change[];
  readonly warnings: readonly Warning[];
  /** Policy mistakes only the live catalog reveals (a missing table or column); reported with locations. */
  readonly errors: readonly PolicyError[];
}

/** Canonical signatures of the desired indexes, keyed by `desiredKey()`. */
export type CanonicalIndexes = ReadonlyMap<string, Canonical>;

export function desiredKey(index: Pick<DesiredIndex, 'schema' | 'name'>): string {
  return `${index.schema}\u0000${index.name}`;
}

interface CatalogView {
  readonly tableByName: ReadonlyMap<string, ActualTable>;
  readonly partitionsOf: ReadonlyMap<number, readonly ActualTable[]>;
  readonly indexesOf: ReadonlyMap<number, readonly ActualIndex[]>;
  readonly childIndexesOf: ReadonlyMap<number, readonly ActualIndex[]>;
  /** Every index by schema and name (index names are unique per schema). */
  readonly indexByName: ReadonlyMap<string, ActualIndex>;
  readonly indexByOid: ReadonlyMap<number, ActualIndex>;
  readonly managed: ReadonlySet<string>;
}

function groupBy<T, K>(items: readonly T[], key: (item: T) => K | null): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    if (k === null) continue;
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

function view(catalog: Catalog): CatalogView {
  return {
    tableByName: new Map(catalog.tables.map((t) => [`${t.schema}\u0000${t.name}`, t])),
    partitionsOf: groupBy(catalog.tables, (t) => t.parentOid),
    indexesOf: groupBy(catalog.indexes, (i) => i.tableOid),
    childIndexesOf: groupBy(catalog.indexes, (i) => i.parentIndexOid),
    indexByName: new Map(catalog.indexes.map((i) => [`${i.schema}\u0000${i.name}`, i])),
    indexByOid: new Map(catalog.indexes.map((i) => [i.oid, i])),
    managed: new Set(catalog.managed.map((m) => `${m.schema}\u0000${m.name}`)),
  };
}

/** The partitions at the bottom of `table`'s partition tree: the ones holding rows. */
function leavesOf(table: ActualTable, v: CatalogView): ActualTable[] {
  return (v.partitionsOf.get(table.oid) ?? []).flatMap((p) => (p.kind === 'partitioned' ? leavesOf(p, v) : [p]));
}

function tableRef(table: ActualTable, v: CatalogView): TableRef {
  const partitions = (v.partitionsOf.get(table.oid) ?? []).map(
    (p): PartitionRef => ({ schema: p.schema, name: p.name, partitioned: p.kind === 'partitioned' }),
  );
  // Rows and bytes live in the leaves. PostgreSQL 14+ ANALYZE gives a partitioned table (at any level)
  // reltuples of its own, the sum over its partitions: counting those too would count rows twice.
  const leaves = table.kind === 'partitioned' ? leavesOf(table, v) : [table];
  return {
    schema: table.schema,
    name: table.name,
    partitioned: table.kind === 'partitioned',
    bytes: leaves.reduce((sum, p) => sum + p.bytes, 0),
    rowEstimate: leaves.reduce((sum, p) => sum + p.rowEstimate, 0),
    partitions,
  };
}

function indexRef(index: ActualIndex): IndexRef {
  // The definition is display-only and filled in by the planner for the few indexes a plan touches.
  return { schema: index.schema, name: index.name, valid: index.valid, definition: null, bytes: index.bytes };
}

interface PartitionIndexRequest {
  readonly index: DesiredIndex;
  /** The partitioned index being built (the declared name, or a replace's temporary name). */
  readonly name: string;
  readonly signature: IndexSignature;
  /** Partitioned indexes dropped before the build: every index attached under them, at any depth, goes with them. */
  readonly dropped: ReadonlySet<number>;
  /** The partitioned index a replace drops after the build: the names its partitions' indexes hold are taken until then. */
  readonly replaced: number | null;
}

/** Where a partition's part is worked out: the catalog, and the errors found on the way (collected, not thrown). */
interface PartContext {
  readonly catalog: Catalog;
  readonly v: CatalogView;
  readonly errors: PolicyError[];
}

/** True when `index` is, or hangs (at any depth) under, one of the indexes a change drops first. */
function goesWithDrop(index: ActualIndex, dropped: ReadonlySet<number>, v: CatalogView): boolean {
  for (let at: ActualIndex | undefined = index; at; at = at.parentIndexOid === null ? undefined : v.indexByOid.get(at.parentIndexOid)) {
    if (dropped.has(at.oid)) return true;
  }
  return false;
}

/** What each partition of `table` needs for the partitioned index being built. */
function partitionIndexes(request: PartitionIndexRequest, table: ActualTable, ctx: PartContext): PartitionIndex[] {
  return (ctx.v.partitionsOf.get(table.oid) ?? []).flatMap((p) => partitionIndex(request, p, ctx) ?? []);
}

/**
 * The unfinished parts of `finishing`, an INVALID partitioned index of the declared definition on `table`:
 * partitions with no index attached to it, and sub-partitioned ones whose attached index is itself
 * unfinished (a build interrupted at a lower level). null when no build can finish it: nothing is
 * missing below yet it is INVALID, or an INVALID leaf index is attached under it (PostgreSQL, <= 17,
 * accepts that in ATTACH, and validates a partitioned index only at an ATTACH, never at a REINDEX).
 * Only dropping it and building it again helps then.
 */
function unfinishedParts(request: PartitionIndexRequest, table: ActualTable, finishing: ActualIndex, ctx: PartContext): PartitionIndex[] | null {
  const attached = new Map((ctx.v.childIndexesOf.get(finishing.oid) ?? []).map((c) => [c.tableOid, c]));
  const items: PartitionIndex[] = [];
  for (const p of ctx.v.partitionsOf.get(table.oid) ?? []) {
    const standing = attached.get(p.oid);
    if (!standing) {
      const item = partitionIndex(request, p, ctx);
      if (item) items.push(item);
      continue;
    }
    if (standing.valid) continue;
    if (p.kind !== 'partitioned') return null;
    const below = unfinishedParts(request, p, standing, ctx);
    if (below === null) return null;
    items.push({ partition: { schema: p.schema, name: p.name, partitioned: true }, name: standing.name, existing: 'incomplete', attached: true, partitionIndexes: below });
  }
  return items.length > 0 ? items : null;
}

/** `unfinishedParts` with its own error list: a tree that cannot be finished is rebuilt, and what was found on the way is moot. */
function finish(request: PartitionIndexRequest, table: ActualTable, finishing: ActualIndex, ctx: PartContext): PartitionIndex[] | null {
  const attempt: PartContext = { ...ctx, errors: [] };
  const items = unfinishedParts(request, table, finishing, attempt);
  if (items !== null) ctx.errors.push(...attempt.errors);
  return items;
}

/**
 * `<partition>_<index>`. A replace builds under `<index>_pgwarden_new`, and its partitions' indexes keep
 * that name once the old tree is dropped and the new root renamed: the next replace would want those names
 * again while the tree holding them is still live. It takes the alternate `<partition>_<index>_pgwarden_new2`
 * then (and the one after that the first name, freed by then).
 */
function partitionName(request: PartitionIndexRequest, p: ActualTable, v: CatalogView): string {
  const name = partitionIndexName(p.name, request.name);
  const holder = v.indexByName.get(`${p.schema}\u0000${name}`);
  if (request.replaced === null || !holder || !goesWithDrop(holder, new Set([request.replaced]), v)) return name;
  return partitionIndexName(p.name, `${request.name}2`);
}

/**
 * What one partition needs: a build, an ATTACH of the index already standing under its name (VALID and
 * of the declared definition, compared from the raw catalog signature like every index here), a rebuild
 * of an INVALID one there, or, for a sub-partitioned partition, the rest of an INVALID partitioned index
 * of the declared definition. A VALID index of another definition under that name, or a name some other
 * relation holds, is reported and left alone: building the partition's index would fail on it, and it is
 * not pgwarden's to drop.
 */
function partitionIndex(request: PartitionIndexRequest, p: ActualTable, ctx: PartContext): PartitionIndex | null {
  const { index } = request;
  const { v } = ctx;
  const partitioned = p.kind === 'partitioned';
  const partition: PartitionRef = { schema: p.schema, name: p.name, partitioned };
  const name = partitionName(request, p, v);
  const existing = v.indexByName.get(`${p.schema}\u0000${name}`);
  const conflict = (what: string, hint: string): null => {
    ctx.errors.push({ ...index.source, message: `index ${index.name}: the index of partition ${p.schema}.${p.name} would be named ${name}, but ${what}`, hint });
    return null;
  };
  const part = (existingState: PartitionIndex['existing'], below: () => PartitionIndex[]): PartitionIndex => ({
    partition,
    name,
    existing: existingState,
    attached: false,
    partitionIndexes: partitioned ? below() : [],
  });
  if (!existing || goesWithDrop(existing, request.dropped, v)) {
    if (!existing && ctx.catalog.relationNames.get(p.schema)?.has(name)) {
      return conflict(`another relation in schema ${p.schema} has that name`, 'rename that relation; pgwarden names a partition\'s index <partition>_<index>');
    }
    return part('none', () => partitionIndexes(request, p, ctx));
  }
  if (existing.tableOid !== p.oid || existing.parentIndexOid !== null) {
    return conflict(existing.tableOid !== p.oid ? 'an index of another table has that name' : 'that index is attached to another partitioned index', 'rename that index; pgwarden leaves it alone');
  }
  const matches = sameSignature(existing.signature, request.signature);
  const unfinished = !existing.valid && partitioned && matches ? finish(request, p, existing, ctx) : null;
  if (unfinished !== null) return part('incomplete', () => unfinished);
  if (!existing.valid) {
    // Dropped first: a partitioned one takes what is attached under it along.
    return part('invalid', () => partitionIndexes({ ...request, dropped: new Set([...request.dropped, existing.oid]) }, p, ctx));
  }
  if (matches) return part('valid', () => []);
  return conflict('an index of another definition has that name (not attached to any partitioned index)', `drop or rename ${p.schema}.${name} if it is a leftover; pgwarden leaves it alone`);
}

/**
 * From (desired, actual) to the changes that make the catalog match the policies. Pure: the catalog and
 * the canonical signatures were read before; nothing here touches the database.
 */
export function diffIndexes(desired: DesiredState, catalog: Catalog, canonical: CanonicalIndexes): IndexDiff {
  const v = view(catalog);
  const changes: Change[] = [];
  const warnings: Warning[] = [];
  const errors: PolicyError[] = [];
  for (const table of desired.tables) {
    const actual = v.tableByName.get(`${table.schema}\u0000${table.name}`);
    if (!actual) {
      errors.push({
        ...table.source,
        message: `table ${table.schema}.${table.name} does not exist in database ${catalog.database}`,
        hint: 'create it with your migrations first; pgwarden manages performance settings, not tables',
      });
      continue;
    }
    const result = diffTable(table, actual, catalog, canonical, v);
    changes.push(...result.changes);
    warnings.push(...result.warnings);
    errors.push(...result.errors);
  }
  return { changes, warnings, errors };
}

function diffTable(table: DesiredTable, actual: ActualTable, catalog: Catalog, canonical: CanonicalIndexes, v: CatalogView): IndexDiff {
  const changes: Change[] = [];
  const warnings: Warning[] = [];
  const errors: PolicyError[] = [];
  const ref = tableRef(actual, v);
  // A partition's own index attached to a partitioned index belongs to the parent's definition.
  const live = (v.indexesOf.get(actual.oid) ?? []).filter((i) => i.parentIndexOid === null);
  const byName = new Map(live.map((i) => [i.name, i]));
  const declaredNames = new Set(table.indexes.map((i) => i.name));
  const claimed = new Set<string>();
  const pending: { index: DesiredIndex; signature: IndexSignature }[] = [];
  // null when a partition's index name is in the way (at any level): the error says which, and the index waits.
  const builds = (request: PartitionIndexRequest, finishing: ActualIndex | null = null): PartitionIndex[] | null => {
    if (actual.kind !== 'partitioned') return [];
    const ctx: PartContext = { catalog, v, errors: [] };
    const items = finishing ? (finish(request, actual, finishing, ctx) ?? []) : partitionIndexes(request, actual, ctx);
    errors.push(...ctx.errors);
    return ctx.errors.length > 0 ? null : items;
  };

  for (const index of table.indexes) {
    const address = indexAddress(table.schema, table.name, index.name);
    const canon = canonical.get(desiredKey(index));
    if (!canon || !canon.ok) {
      errors.push({ ...index.source, message: `index ${index.name}: ${canon ? canon.error : 'was not checked against the database'}` });
      continue;
    }
    const same = byName.get(index.name);
    if (!same) {
      const taken = catalog.relationNames.get(index.schema)?.has(index.name) ?? false;
      if (taken) {
        errors.push({
          ...index.source,
          message: `index name ${index.name} is already used by another relation in schema ${index.schema}`,
          hint: 'index names are unique per schema in PostgreSQL; pick another name',
        });
        continue;
      }
      pending.push({ index, signature: canon.signature });
      continue;
    }
    claimed.add(same.name);
    const base = { address, table: ref, source: index.source, index, signature: canon.signature, actual: indexRef(same) };
    const move = parameterMove(index.method, index.with ?? {}, same.reloptions);
    const alterable = move === undefined || byAlter(move, actual);
    const matches = sameSignature(same.signature, canon.signature);
    if (!same.valid) {
      const request = { index, name: index.name, signature: canon.signature, dropped: new Set<number>(), replaced: null };
      // Same definition: finish what the interrupted build left, at every level of the partition tree
      // (null: a name in the way, reported); an empty list: nothing a build can finish, so rebuild it all.
      const unfinished = matches && actual.kind === 'partitioned' ? builds(request, same) : [];
      const resume = unfinished === null || unfinished.length > 0;
      const parts = resume ? unfinished : builds({ ...request, dropped: new Set([same.oid]) });
      if (parts === null) continue;
      changes.push({
        ...base,
        kind: 'rebuild-index',
        definitionMatches: matches,
        resume,
        partitionIndexes: parts,
        reason: matches
          ? 'the index is INVALID (a concurrent build failed or was interrupted); PostgreSQL maintains it but never uses it'
          : 'the index is INVALID and its definition differs from the policy',
      });
    } else if (!matches || !alterable) {
      const next = replacementName(index.name);
      const leftover = v.indexByName.get(`${index.schema}\u0000${next}`);
      // pgwarden's own leftover of an interrupted replace is dropped first (below), with what is attached to it.
      const dropped = new Set(leftover && leftover.tableOid === actual.oid && v.managed.has(desiredKey(leftover)) ? [leftover.oid] : []);
      const parts = builds({ index, name: next, signature: canon.signature, dropped, replaced: same.oid });
      if (parts === null) continue;
      const reason = matches ? `the storage parameters differ (${rebuildReason(move, actual)})` : 'the definition in the policy differs from the live index';
      changes.push({ ...base, kind: 'replace-index', partitionIndexes: parts, reason });
    } else {
      if (!v.managed.has(desiredKey(index))) {
        changes.push({ ...base, kind: 'adopt-index', reason: 'an identical index already exists; pgwarden records it as managed' });
      }
      if (move !== undefined) changes.push(setParameters(index, same, move, ref));
    }
  }

  // Only now look for renames, so a name the policy claims is never taken as someone's old name.
  for (const { index, signature } of pending) {
    const twin = live.find(
      (i) =>
        i.valid &&
        !claimed.has(i.name) &&
        !declaredNames.has(i.name) &&
        i.constraintType === null &&
        sameSignature(i.signature, signature) &&
        byAlterOrSame(parameterMove(index.method, index.with ?? {}, i.reloptions), actual),
    );
    const address = indexAddress(table.schema, table.name, index.name);
    if (twin) {
      claimed.add(twin.name);
      changes.push({
        kind: 'rename-index',
        address,
        table: ref,
        source: index.source,
        index,
        signature,
        actual: indexRef(twin),
        reason: `an equivalent index exists as ${twin.name}; renaming it avoids a rebuild`,
      });
      const move = parameterMove(index.method, index.with ?? {}, twin.reloptions);
      if (move !== undefined) changes.push(setParameters(index, twin, move, ref));
      continue;
    }
    const parts = builds({ index, name: index.name, signature, dropped: new Set(), replaced: null });
    if (parts === null) continue;
    changes.push({ kind: 'create-index', address, table: ref, source: index.source, index, signature, partitionIndexes: parts, reason: 'declared in the policy and missing' });
  }

  const leftovers: Change[] = [];
  for (const index of live) {
    if (claimed.has(index.name) || declaredNames.has(index.name) || index.constraintType !== null) continue;
    const address = indexAddress(table.schema, table.name, index.name);
    const actualRef = indexRef(index);
    const ours = v.managed.has(`${index.schema}\u0000${index.name}`);
    if (ours && index.name.endsWith(REPLACEMENT_SUFFIX)) {
      // First: the replace it was part of builds under that name again.
      leftovers.push({ kind: 'drop-index', address, table: ref, actual: actualRef, destructive: false, reason: 'left over from an interrupted replace by pgwarden' });
    } else if (ours || table.managed === 'full') {
      changes.push({
        kind: 'drop-index',
        address,
        table: ref,
        actual: actualRef,
        destructive: true,
        reason: ours ? 'created by pgwarden and no longer declared' : 'not declared, and the table is fully managed',
        source: table.source,
      });
    } else {
      warnings.push({
        address,
        source: table.source,
        message: `index ${index.name} is not declared in any policy; pgwarden leaves it alone (declare it, or set managed: full to let --allow-drop remove it)`,
      });
    }
  }
  return { changes: [...leftovers, ...changes], warnings, errors };
}

/**
 * An ALTER INDEX makes the parameters true: not on a partitioned index (PostgreSQL <= 17 refuses SET
 * there), and not for a parameter the index reads only when it is built.
 */
function byAlter(move: IndexParameterMove, table: ActualTable): boolean {
  return !move.rebuild && table.kind !== 'partitioned';
}

function byAlterOrSame(move: IndexParameterMove | undefined, table: ActualTable): boolean {
  return move === undefined || byAlter(move, table);
}

function rebuildReason(move: IndexParameterMove | undefined, table: ActualTable): string {
  if (table.kind === 'partitioned') return 'PostgreSQL cannot alter them on a partitioned index';
  const names = move === undefined ? [] : [...Object.keys(move.set), ...move.reset];
  return `${names.join(', ')} takes effect only when the index is built`;
}

/** The ALTER INDEX for a declared index, under its declared name (a rename comes first). */
function setParameters(index: DesiredIndex, live: ActualIndex, move: IndexParameterMove, ref: TableRef): Change {
  const moved = [...Object.keys(move.set), ...move.reset];
  return {
    kind: 'set-index-parameters',
    address: indexAddress(index.schema, index.table, index.name),
    table: ref,
    source: index.source,
    index: { schema: index.schema, name: index.name },
    before: live.reloptions,
    set: move.set,
    reset: move.reset,
    lock: move.lock,
    reason: `the storage parameters in the policy differ from the index's (${moved.join(', ')})`,
  };
}
