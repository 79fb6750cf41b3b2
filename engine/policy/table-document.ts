import type {
  DesiredIndex,
  DesiredIndexKey,
  DesiredTable,
  IndexMethod,
  NullsOrder,
  PolicyError,
  SortOrder,
  SourcePos,
} from './desired.ts';
import { isMapping, positionOf, type DataPath, type DocumentSource } from './document-source.ts';
import { indexColumnSyntax, parseIndexColumn } from './index-column.ts';
import { parameterProblem, parameterText } from './index-storage-parameters.ts';
import { readPartitioning } from './partitioning-policy.ts';
import { policyValidators } from './policy-validators.ts';
import type { IndexKey, IndexPolicy, TablePolicy } from './schema.ts';
import { schemaProblems } from './schema-problem.ts';
import { readVacuum } from './vacuum-policy.ts';

/** The table a document is about, once its name can be read, with the position of its `table:` key. */
export interface TableIdentity {
  readonly schema: string;
  readonly name: string;
  readonly source: SourcePos;
}

/**
 * What one `table:` document yields. A document with mistakes still yields what can be checked
 * without them (its table, its valid indexes), so that one run reports every mistake, including the
 * ones that span files.
 */
export interface TableDocument {
  readonly errors: readonly PolicyError[];
  readonly identity?: TableIdentity;
  /** The indexes that passed every check. */
  readonly indexes: readonly DesiredIndex[];
  /** Present only when the whole document is valid. */
  readonly table?: DesiredTable;
}

// NAMEDATALEN - 1: PostgreSQL silently truncates longer identifiers, so pgwarden could never find its
// own index again under the declared name.
const maxNameBytes = 63;

// Access methods that support INCLUDE (btree since 11, gist since 12, spgist since 14).
const includeMethods: readonly IndexMethod[] = ['btree', 'gist', 'spgist'];

export function readTableDocument(data: Readonly<Record<string, unknown>>, source: DocumentSource): TableDocument {
  const { table: validateTable } = policyValidators();
  const errors: PolicyError[] = [];
  const report = (path: DataPath, message: string, hint?: string, part: 'key' | 'value' = 'value'): void => {
    errors.push({ ...positionOf(source, path, part), message, ...(hint === undefined ? {} : { hint }) });
  };

  const valid = validateTable(data);
  for (const problem of schemaProblems(validateTable.errors ?? [])) {
    report(problem.path, problem.message, problem.hint, problem.part);
  }

  const identity = tableIdentity(data, source, report);
  const indexes: DesiredIndex[] = [];
  const items = Array.isArray(data['indexes']) ? (data['indexes'] as readonly unknown[]) : [];
  for (const [i, item] of items.entries()) {
    const checked = checkIndex(item, ['indexes', i], report);
    if (checked !== undefined && identity !== undefined) {
      indexes.push(desiredIndex(checked.index, checked.keys, identity, positionOf(source, ['indexes', i])));
    }
  }

  if (!valid || errors.length > 0 || identity === undefined) {
    return { errors, indexes, ...(identity === undefined ? {} : { identity }) };
  }
  const partitioning = data.partitioning === undefined ? undefined : readPartitioning(data.partitioning, identity.name, source);
  if (partitioning !== undefined && partitioning.errors.length > 0) return { errors: partitioning.errors, identity, indexes };
  const vacuum = data.vacuum === undefined ? undefined : readVacuum(data.vacuum, ['vacuum'], source);
  if (vacuum !== undefined && vacuum.errors.length > 0) return { errors: vacuum.errors, identity, indexes };
  return {
    errors,
    identity,
    indexes,
    table: {
      schema: identity.schema,
      name: identity.name,
      managed: data.managed ?? 'partial',
      indexes,
      ...(partitioning?.partitioning === undefined ? {} : { partitioning: partitioning.partitioning }),
      ...(vacuum?.vacuum === undefined ? {} : { vacuum: vacuum.vacuum }),
      source: identity.source,
    },
  };
}

type Report = (path: DataPath, message: string, hint?: string, part?: 'key' | 'value') => void;

/**
 * `table: schema.table` or `table: table` (schema public); with `schema:` given, `table` is taken
 * verbatim so that names containing dots can be written.
 */
function tableIdentity(
  data: Readonly<Record<string, unknown>>,
  source: DocumentSource,
  report: Report,
): TableIdentity | undefined {
  const table = data['table'];
  const schema = data['schema'];
  // Wrong types and empty strings are the schema's to report.
  if (typeof table !== 'string' || table === '') return undefined;
  if (schema !== undefined && (typeof schema !== 'string' || schema === '')) return undefined;

  const position = positionOf(source, ['table'], 'key');
  const named = schema === undefined ? splitTableName(table, report) : { schema, name: table };
  if (named === undefined) return undefined;

  let ok = true;
  for (const [key, name] of [['schema', named.schema], ['table', named.name]] as const) {
    if (!fitsName(name)) {
      report([schema === undefined ? 'table' : key], tooLong(`${key} name`, name));
      ok = false;
    }
  }
  return ok ? { ...named, source: position } : undefined;
}

function splitTableName(table: string, report: Report): { schema: string; name: string } | undefined {
  const parts = table.split('.');
  const [first, second] = parts;
  if (parts.length === 1) return { schema: 'public', name: table };
  if (parts.length === 2 && first && second) return { schema: first, name: second };
  if (parts.length > 2) {
    const hint = 'for a name containing a dot, give the schema separately: `schema: ...` and `table: <name verbatim>`';
    report(['table'], `table ${JSON.stringify(table)} has more than one dot`, hint);
  } else {
    const hint = 'write `schema.table` or just `table`';
    report(['table'], `table ${JSON.stringify(table)} has an empty schema or table name`, hint);
  }
  return undefined;
}

/** A key as written, resolved, with where an explicit order or nulls was written (if it was). */
interface ResolvedKey {
  readonly key: DesiredIndexKey;
  readonly ordering?: { readonly at: DataPath; readonly written: string };
}

/**
 * Checks one index and resolves its keys. Each part is checked as far as it is well-formed, even when
 * other parts of the index are not, so that one run reports every mistake; the checks that need the
 * whole index (its method, its other keys) run only when the index passed the schema.
 */
function checkIndex(
  item: unknown,
  at: DataPath,
  report: Report,
): { index: IndexPolicy; keys: DesiredIndexKey[] } | undefined {
  const { index: validateIndex, key: validateKey } = policyValidators();
  const check = tracked(report);
  const mapping = isMapping(item) ? item : {};
  if (typeof mapping['name'] === 'string' && !fitsName(mapping['name'])) {
    check.fail([...at, 'name'], tooLong('index name', mapping['name']));
  }
  const written = Array.isArray(mapping['columns']) ? (mapping['columns'] as readonly unknown[]) : [];
  const resolved = written.map((key, j) =>
    validateKey(key) ? resolveKey(key, [...at, 'columns', j], check.fail) : undefined,
  );
  if (!validateIndex(item) || !check.ok()) return undefined;

  const index = item;
  const { fail } = check;
  const method = index.method ?? 'btree';
  if (index.unique === true && method !== 'btree') {
    const hint = 'PostgreSQL supports unique indexes only with btree';
    fail([...at, 'unique'], `"unique" needs method btree, not ${method}`, hint);
  }
  if (index.nulls_not_distinct === true && index.unique !== true) {
    const hint = 'it only changes how a unique index compares NULLs';
    fail([...at, 'nulls_not_distinct'], '"nulls_not_distinct" needs "unique: true"', hint);
  }
  if (method === 'hash' && index.columns.length > 1) {
    const hint = 'PostgreSQL hash indexes are single-column';
    fail([...at, 'columns'], `a hash index takes exactly one column, got ${index.columns.length}`, hint);
  }
  if ((index.include?.length ?? 0) > 0 && !includeMethods.includes(method)) {
    fail([...at, 'include'], `"include" needs method btree, gist or spgist, not ${method}`);
  }

  const keyColumns = new Set<string>();
  for (const [j, entry] of resolved.entries()) {
    if (entry === undefined) continue;
    // PostgreSQL rejects ASC/DESC and NULLS FIRST/LAST for access methods without ordering (all but btree).
    if (entry.ordering !== undefined && method !== 'btree') {
      fail(entry.ordering.at, `"${entry.ordering.written}" needs method btree; ${method} indexes have no sort order`);
    }
    if (entry.key.kind !== 'column') continue;
    if (keyColumns.has(entry.key.column)) {
      const message = `column ${JSON.stringify(entry.key.column)} is listed twice in index ${JSON.stringify(index.name)}`;
      fail([...at, 'columns', j], message);
    }
    keyColumns.add(entry.key.column);
  }

  const included = new Set<string>();
  for (const [k, column] of (index.include ?? []).entries()) {
    const path = [...at, 'include', k];
    if (!fitsName(column)) fail(path, tooLong('column name', column));
    if (included.has(column)) fail(path, `column ${JSON.stringify(column)} is listed twice in "include"`);
    if (keyColumns.has(column)) {
      const hint = 'remove it from include; key columns are already stored in the index';
      fail(path, `column ${JSON.stringify(column)} is both a key column and an include column`, hint);
    }
    included.add(column);
  }

  for (const name of Object.keys(index.with ?? {})) {
    const problem = parameterProblem(method, name);
    if (problem !== undefined) fail([...at, 'with', name], problem.message, problem.hint, 'key');
  }

  const keys = resolved.flatMap((entry) => (entry === undefined ? [] : [entry.key]));
  return check.ok() ? { index, keys } : undefined;
}

/** A `Report` that remembers whether it was called. */
function tracked(report: Report): { fail: Report; ok: () => boolean } {
  let failed = false;
  return {
    fail: (...args) => {
      failed = true;
      report(...args);
    },
    ok: () => !failed,
  };
}

function resolveKey(written: IndexKey, at: DataPath, fail: Report): ResolvedKey | undefined {
  if (typeof written === 'string') {
    const parsed = parseIndexColumn(written);
    if (!parsed.ok) {
      const hint = `expected ${indexColumnSyntax}; for an expression, write {expression: ...}`;
      fail(at, `index key ${JSON.stringify(written)} ${parsed.message}`, hint);
      return undefined;
    }
    const { column, order, nulls } = parsed.value;
    if (!fitsName(column)) {
      fail(at, tooLong('column name', column));
      return undefined;
    }
    return { key: { kind: 'column', column, ...ordering(order, nulls) }, ...explicitOrdering(order, nulls, at) };
  }

  const { column, expression, order, nulls, opclass, collation } = written;
  const options = {
    ...ordering(order, nulls),
    ...(opclass === undefined ? {} : { opclass }),
    ...(collation === undefined ? {} : { collation }),
  };
  const explicit = explicitOrdering(order, nulls, order === undefined ? [...at, 'nulls'] : [...at, 'order']);
  if (column !== undefined) {
    if (!fitsName(column)) {
      fail([...at, 'column'], tooLong('column name', column));
      return undefined;
    }
    return { key: { kind: 'column', column, ...options }, ...explicit };
  }
  // The schema requires exactly one of column/expression; this is the expression.
  return { key: { kind: 'expression', expression: expression ?? '', ...options }, ...explicit };
}

function explicitOrdering(
  order: SortOrder | undefined,
  nulls: NullsOrder | undefined,
  at: DataPath,
): Pick<ResolvedKey, 'ordering'> {
  if (order === undefined && nulls === undefined) return {};
  const written = [order, nulls === undefined ? undefined : `nulls ${nulls}`].filter((part) => part !== undefined);
  return { ordering: { at, written: written.join(' ') } };
}

/** PostgreSQL's defaults: NULLS LAST for ascending keys, NULLS FIRST for descending ones. */
function ordering(
  order: SortOrder | undefined,
  nulls: NullsOrder | undefined,
): Pick<DesiredIndexKey, 'order' | 'nulls'> {
  const resolved = order ?? 'asc';
  return { order: resolved, nulls: nulls ?? (resolved === 'desc' ? 'first' : 'last') };
}

function desiredIndex(
  index: IndexPolicy,
  keys: readonly DesiredIndexKey[],
  table: TableIdentity,
  source: SourcePos,
): DesiredIndex {
  return {
    schema: table.schema,
    table: table.name,
    name: index.name,
    method: index.method ?? 'btree',
    unique: index.unique ?? false,
    nullsNotDistinct: index.nulls_not_distinct ?? false,
    keys,
    include: index.include ?? [],
    ...(index.where === undefined ? {} : { where: index.where }),
    ...(index.with === undefined || Object.keys(index.with).length === 0
      ? {}
      : { with: Object.fromEntries(Object.entries(index.with).map(([name, value]) => [name, parameterText(value as boolean | number | string)])) }),
    source,
  };
}

function fitsName(name: string): boolean {
  return Buffer.byteLength(name, 'utf8') <= maxNameBytes;
}

function tooLong(what: string, name: string): string {
  const bytes = Buffer.byteLength(name, 'utf8');
  return `${what} ${JSON.stringify(name)} is ${bytes} bytes; PostgreSQL allows at most ${maxNameBytes}`;
}
