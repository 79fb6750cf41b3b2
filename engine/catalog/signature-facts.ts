import type { DesiredIndex, DesiredIndexKey } from '../policy/desired.ts';
import type { IndexKeySignature, IndexSignature } from './catalog.ts';
import { query, type CatalogSession } from './introspect.ts';
import { SIGNATURE_FACTS_SQL } from './queries.ts';

/**
 * The catalog facts from which the signature of a plain-column index follows without building it:
 * what PostgreSQL's DefineIndex would store in pg_index is, for such an index, a function of each key
 * column's type and collation, the type's default operator class for the access method, and what the
 * access method supports. Everything else (expressions, predicates, explicit operator classes or
 * collations, types whose default operator class is found by coercion) is left to a scratch build
 * (engine/catalog/canonicalise.ts), which asks the server.
 */
export interface SignatureFacts {
  /** Live columns by table (`tableKey`), then by name. */
  readonly columns: ReadonlyMap<string, ReadonlyMap<string, ColumnFacts>>;
  /** Default operator class by `${type}:${method}`, present only when exactly one matches the type exactly. */
  readonly defaultOpclasses: ReadonlyMap<string, number>;
  readonly methods: ReadonlyMap<string, MethodFacts>;
}

export interface ColumnFacts {
  readonly type: number;
  /** pg_attribute.attcollation. */
  readonly collation: number;
  /** The type has a collation (pg_type.typcollation <> 0). */
  readonly collatable: boolean;
  readonly deterministic: boolean;
}

/** What an access method supports, as its handler says (pg_indexam_has_property). */
export interface MethodFacts {
  readonly canOrder: boolean;
  readonly canUnique: boolean;
  readonly canMultiColumn: boolean;
  readonly canInclude: boolean;
}

/** PostgreSQL's INDEX_MAX_KEYS: key and INCLUDE columns together (a build-time constant, 32 unless recompiled). */
const INDEX_MAX_KEYS = 32;
/** pg_index.indoption bits (src/include/catalog/pg_index.h). */
const INDOPTION_DESC = 1;
const INDOPTION_NULLS_FIRST = 2;

/** json_agg of nothing is null. */
interface FactsRow {
  columns: [schema: string, table: string, column: string, type: number, collation: number][] | null;
  collatable_types: number[] | null;
  nondeterministic_collations: number[] | null;
  default_opclasses: [type: number, method: string, opclass: number][] | null;
  methods: { name: string; can_order: boolean; can_unique: boolean; can_multi_col: boolean; can_include: boolean }[] | null;
}

function tableKey(schema: string, table: string): string {
  return `${schema}\u0000${table}`;
}

/** True when the index may have its signature derived: plain columns only, nothing the server must resolve. */
export function derivable(index: DesiredIndex): boolean {
  // NULLS NOT DISTINCT: PostgreSQL 15+ only; the scratch build lets an older server refuse it itself.
  return index.where === undefined && !index.nullsNotDistinct && index.keys.every((k) => k.kind === 'column' && k.opclass === undefined && k.collation === undefined);
}

/** One round trip, whatever the number of tables: the facts for the tables of the derivable indexes. */
export async function readSignatureFacts(session: CatalogSession, desired: readonly DesiredIndex[]): Promise<SignatureFacts> {
  const tables = new Map(desired.filter(derivable).map((i) => [tableKey(i.schema, i.table), i]));
  const methods = [...new Set(desired.map((i) => i.method))];
  const [row] = await query<FactsRow>(session, SIGNATURE_FACTS_SQL, [
    [...tables.values()].map((i) => i.schema),
    [...tables.values()].map((i) => i.table),
    methods,
  ]);
  return parseFacts(row);
}

function parseFacts(row: FactsRow | undefined): SignatureFacts {
  const collatable = new Set(row?.collatable_types ?? []);
  const nondeterministic = new Set(row?.nondeterministic_collations ?? []);
  const columns = new Map<string, Map<string, ColumnFacts>>();
  for (const [schema, table, name, type, collation] of row?.columns ?? []) {
    const key = tableKey(schema, table);
    const facts = columns.get(key) ?? new Map<string, ColumnFacts>();
    facts.set(name, { type, collation, collatable: collatable.has(type), deterministic: !nondeterministic.has(collation) });
    columns.set(key, facts);
  }
  return {
    columns,
    defaultOpclasses: new Map((row?.default_opclasses ?? []).map(([type, method, opclass]) => [`${type}:${method}`, opclass])),
    methods: new Map(
      (row?.methods ?? []).map((m) => [m.name, { canOrder: m.can_order, canUnique: m.can_unique, canMultiColumn: m.can_multi_col, canInclude: m.can_include }]),
    ),
  };
}

/**
 * The signature a build of `index` would have, or undefined when that does not follow exactly from the
 * facts — then a scratch build answers (and reports what is wrong, such as a missing column, in the
 * server's words). Anything DefineIndex would refuse is declined, never guessed at.
 */
export function deriveSignature(index: DesiredIndex, facts: SignatureFacts): IndexSignature | undefined {
  const method = facts.methods.get(index.method);
  const columns = facts.columns.get(tableKey(index.schema, index.table));
  if (!derivable(index) || !method || !columns || !supports(method, index)) return undefined;
  if (!index.include.every((name) => columns.has(name))) return undefined;
  const keys: IndexKeySignature[] = [];
  for (const key of index.keys) {
    const derived = key.kind === 'column' ? deriveKey(key, columns.get(key.column), index, facts) : undefined;
    if (!derived) return undefined;
    keys.push(derived);
  }
  return { method: index.method, unique: index.unique, nullsNotDistinct: index.nullsNotDistinct, keys, include: [...index.include], predicate: null };
}

function supports(method: MethodFacts, index: DesiredIndex): boolean {
  const width = index.keys.length + index.include.length;
  if (index.keys.length === 0 || width > INDEX_MAX_KEYS) return false;
  if (index.unique && !method.canUnique) return false;
  if (index.keys.length > 1 && !method.canMultiColumn) return false;
  if (index.include.length > 0 && !method.canInclude) return false;
  // createIndexSql writes ASC/DESC and NULLS only for btree; an ordering method it does not know
  // would get option bits it never asked for.
  return method.canOrder === (index.method === 'btree');
}

function deriveKey(key: DesiredIndexKey & { kind: 'column' }, column: ColumnFacts | undefined, index: DesiredIndex, facts: SignatureFacts): IndexKeySignature | undefined {
  if (!column) return undefined;
  const opclass = facts.defaultOpclasses.get(`${column.type}:${index.method}`);
  if (opclass === undefined) return undefined;
  // A collatable type's key takes the column's collation; a column of it always has one. A
  // nondeterministic collation is left to the server: some operator classes refuse it.
  if (column.collatable && (column.collation === 0 || !column.deterministic)) return undefined;
  if (!column.collatable && column.collation !== 0) return undefined;
  return { column: key.column, expression: null, opclass, collation: column.collation, option: index.method === 'btree' ? optionBits(key) : 0 };
}

/** As DefineIndex sets indoption for an ordering method: DESC, and NULLS FIRST (the default with DESC). */
function optionBits(key: DesiredIndexKey): number {
  return (key.order === 'desc' ? INDOPTION_DESC : 0) | (key.nulls === 'first' ? INDOPTION_NULLS_FIRST : 0);
}

/** The derived signature of each desired index (undefined where a scratch build must answer), in one round trip. */
export async function deriveSignatures(session: CatalogSession, desired: readonly DesiredIndex[]): Promise<(IndexSignature | undefined)[]> {
  const facts = await readSignatureFacts(session, desired);
  return desired.map((index) => deriveSignature(index, facts));
}
