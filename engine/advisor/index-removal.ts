import type { ActualIndex, Catalog, IndexKeySignature } from '../catalog/catalog.ts';
import { signatureKey } from '../catalog/catalog.ts';
import type { DesiredState, SourcePos } from '../policy/desired.ts';

/**
 * Removing an index is advice too: one nobody scans costs every write and its disk, one that
 * duplicates another (or is a prefix of it) serves no lookup the other does not. Pure: the catalog,
 * the standby's scan counters and the policies in, advice out. Indexes that back a constraint
 * (primary key, unique, exclusion) or enforce uniqueness are never proposed: they do work beyond lookups.
 */

export type RemovalKind = 'unused' | 'duplicate' | 'redundant';

export interface RemovalAdvice {
  readonly kind: RemovalKind;
  readonly schema: string;
  readonly table: string;
  readonly index: string;
  readonly bytes: number;
  readonly scans: number;
  /** Scans on the standby, when it was checked. */
  readonly standbyScans?: number;
  /** The index that makes this one unnecessary (duplicate / redundant). */
  readonly coveredBy?: string;
  readonly reason: string;
  /** Where the index is declared, when a policy declares it: remove it there. */
  readonly declaredAt?: SourcePos;
}

export interface RemovalInput {
  readonly catalog: Catalog;
  readonly desired?: DesiredState;
  /** `schema.index` -> scans on the standby; absent when no standby was checked. */
  readonly standbyScans?: ReadonlyMap<string, number>;
  /** When the statistics behind the scan counters start (pg_stat_database.stats_reset). */
  readonly windowStart: string | null;
  /** The same on the standby, which keeps statistics of its own (null: never reset). */
  readonly standbyWindowStart?: string | null;
  readonly foreignKeys?: readonly ForeignKey[];
}

export interface ForeignKey {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly columns: readonly string[];
  readonly referenced: string;
}

/**
 * A partitioned table's index is never scanned itself: the indexes of its partitions are, and they
 * are attached to it. Its scans, standby scans and bytes are theirs, summed down the partition tree.
 */
interface IndexUsage {
  readonly scans: number;
  readonly standbyScans?: number;
  readonly bytes: number;
}

function usageOf(catalog: Catalog, standbyScans: ReadonlyMap<string, number> | undefined): (index: ActualIndex) => IndexUsage {
  const children = new Map<number, ActualIndex[]>();
  for (const i of catalog.indexes) if (i.parentIndexOid !== null) children.set(i.parentIndexOid, [...(children.get(i.parentIndexOid) ?? []), i]);
  const tree = (index: ActualIndex): ActualIndex[] => [index, ...(children.get(index.oid) ?? []).flatMap(tree)];
  return (index) => {
    const all = tree(index);
    const onStandby = standbyScans === undefined ? undefined : all.reduce((n, i) => n + (standbyScans.get(`${i.schema}.${i.name}`) ?? 0), 0);
    return {
      scans: all.reduce((n, i) => n + i.scans, 0),
      ...(onStandby === undefined ? {} : { standbyScans: onStandby }),
      bytes: all.reduce((n, i) => n + i.bytes, 0),
    };
  };
}

export function removalAdvice(input: RemovalInput): RemovalAdvice[] {
  const { catalog } = input;
  const usage = usageOf(catalog, input.standbyScans);
  const tables = new Map(catalog.tables.map((t) => [t.oid, t]));
  const declared = new Map<string, SourcePos>();
  for (const t of input.desired?.tables ?? []) for (const i of t.indexes) declared.set(`${i.schema}.${i.name}`, i.source);
  const removable = (i: ActualIndex): boolean =>
    i.valid && !i.primary && i.constraintType === null && !i.signature.unique && i.parentIndexOid === null;
  const since = input.windowStart === null ? 'since the statistics were created (never reset)' : `since ${input.windowStart}`;
  const out: RemovalAdvice[] = [];
  const reported = new Set<number>();

  const byTable = new Map<number, ActualIndex[]>();
  for (const i of catalog.indexes) byTable.set(i.tableOid, [...(byTable.get(i.tableOid) ?? []), i]);
  for (const [tableOid, indexes] of byTable) {
    const table = tables.get(tableOid);
    if (table === undefined) continue;
    const sorted = [...indexes].sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const a of sorted) {
      if (!removable(a)) continue;
      for (const b of sorted) {
        if (a === b || !b.valid || reported.has(b.oid)) continue;
        const same = signatureKey(a.signature) === signatureKey(b.signature);
        // Of two identical indexes, keep the one that backs a constraint, else the one read more
        // (primary and standby), else the first by name.
        if (same && removable(b) && !preferred(usage(b), b, usage(a), a)) continue;
        const kind: RemovalKind | undefined = same ? 'duplicate' : isPrefix(a, b) ? 'redundant' : undefined;
        if (kind === undefined) continue;
        reported.add(a.oid);
        out.push({
          kind,
          schema: a.schema,
          table: table.name,
          index: a.name,
          ...usage(a),
          coveredBy: b.name,
          reason:
            kind === 'duplicate'
              ? `same definition as ${b.name}: every write maintains both, lookups need one`
              : `its keys are a leading part of ${b.name}'s, which serves every lookup it does`,
          ...declaredAt(declared, a),
        });
        break;
      }
    }
  }

  const standbySince = input.standbyWindowStart === undefined
    ? ''
    : input.standbyWindowStart === null ? ' since its statistics were created (never reset)' : ` since ${input.standbyWindowStart}`;
  for (const i of catalog.indexes) {
    if (!removable(i) || reported.has(i.oid)) continue;
    const used = usage(i);
    if (used.scans > 0 || (used.standbyScans ?? 0) > 0) continue;
    const table = tables.get(i.tableOid);
    if (table === undefined) continue;
    if (servesForeignKey(i, table.schema, table.name, input.foreignKeys ?? [])) continue;
    const checked = input.standbyScans === undefined ? 'the standby was not checked (--standby-url)' : `none on the standby either${standbySince}`;
    const partitions = table.kind === 'partitioned' ? ' (nor any of its partitions\' indexes)' : '';
    out.push({
      kind: 'unused',
      schema: i.schema,
      table: table.name,
      index: i.name,
      ...used,
      reason: `never scanned on the primary${partitions} ${since}; ${checked}`,
      ...declaredAt(declared, i),
    });
  }
  return out.sort((a, b) => b.bytes - a.bytes || (a.index < b.index ? -1 : 1));
}

/** The index leads with a foreign key's columns (in any order): deletes on the referenced table need it. */
function servesForeignKey(index: ActualIndex, schema: string, table: string, keys: readonly ForeignKey[]): boolean {
  const leading = index.signature.keys.map((k) => k.column);
  return keys.some((fk) => {
    if (fk.schema !== schema || fk.table !== table || fk.columns.length > leading.length) return false;
    const prefix = new Set(leading.slice(0, fk.columns.length));
    return fk.columns.every((c) => prefix.has(c));
  });
}

/** `b` is the one to keep rather than `a`: read more (primary and standby), else first by name. */
function preferred(ub: IndexUsage, b: ActualIndex, ua: IndexUsage, a: ActualIndex): boolean {
  const sb = ub.scans + (ub.standbyScans ?? 0);
  const sa = ua.scans + (ua.standbyScans ?? 0);
  return sb !== sa ? sb > sa : b.name < a.name;
}

function declaredAt(declared: ReadonlyMap<string, SourcePos>, index: ActualIndex): { declaredAt?: SourcePos } {
  const at = declared.get(`${index.schema}.${index.name}`);
  return at === undefined ? {} : { declaredAt: at };
}

/** `a`'s keys are the first keys of `b` (same columns or expressions, operator classes, collations, order). */
function isPrefix(a: ActualIndex, b: ActualIndex): boolean {
  const sa = a.signature;
  const sb = b.signature;
  if (sa.method !== 'btree' || sb.method !== 'btree' || sa.predicate !== sb.predicate) return false;
  if (sa.keys.length > sb.keys.length) return false;
  if (!sa.keys.every((k, i) => sameKey(k, sb.keys[i]))) return false;
  const bColumns = new Set([...sb.keys.map((k) => k.column), ...sb.include]);
  return sa.include.every((c) => bColumns.has(c));
}

function sameKey(a: IndexKeySignature, b: IndexKeySignature | undefined): boolean {
  return b !== undefined && a.column === b.column && a.expression === b.expression && a.opclass === b.opclass && a.collation === b.collation && a.option === b.option;
}
