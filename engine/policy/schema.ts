import { Type, type Static, type TString, type TUnsafe } from '@sinclair/typebox';
import type { IndexMethod, ManagedMode, NullsOrder, SortOrder } from './desired.ts';
import { IndexStorageParametersSchema } from './index-storage-parameters.ts';
import { PartitioningPolicy } from './partitioning-policy.ts';
import { RoutingPolicy } from './routing-schema.ts';
import { DefaultsPolicy, VacuumPolicy } from './vacuum-schema.ts';

/**
 * The policy format, written once: TypeBox gives both the TypeScript types (`Static<>`) and the JSON
 * Schema that ajv validates and that editors load through `# yaml-language-server: $schema=...`.
 *
 * Each object schema carries a `title`: the loader uses it as the noun in error messages
 * ("unknown key "colums" in index"), editors show it on hover.
 */

/**
 * A string enum as JSON Schema `enum`, not TypeBox's union of literals: a union becomes `anyOf`,
 * which makes ajv report one error per literal instead of one "must be one of" error.
 */
function StringEnum<T extends string>(
  values: readonly T[],
  options: { description: string; default?: NoInfer<T> },
): TUnsafe<T> {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
}

export const indexMethods: readonly IndexMethod[] = ['btree', 'hash', 'gin', 'gist', 'brin', 'spgist'];
const sortOrders: readonly SortOrder[] = ['asc', 'desc'];
const nullsOrders: readonly NullsOrder[] = ['first', 'last'];
const managedModes: readonly ManagedMode[] = ['partial', 'full'];

/** PostgreSQL names are exact here: pgwarden never folds case, so `Events` and `events` differ. */
function Name(description: string): TString {
  return Type.String({ minLength: 1, description });
}

export const IndexKeyObject = Type.Object(
  {
    column: Type.Optional(Name('Column name, exactly as in the table (case and spaces preserved, no quoting).')),
    expression: Type.Optional(
      Type.String({ minLength: 1, description: 'SQL expression to index, e.g. `lower(email)`; kept verbatim.' }),
    ),
    order: Type.Optional(StringEnum(sortOrders, { description: 'Sort order (btree only).', default: 'asc' })),
    nulls: Type.Optional(
      StringEnum(nullsOrders, { description: 'Where NULLs sort (btree only). Defaults to last for asc, first for desc.' }),
    ),
    opclass: Type.Optional(
      Type.String({ minLength: 1, description: 'Operator class, e.g. `text_pattern_ops` or `gin_trgm_ops`.' }),
    ),
    collation: Type.Optional(Type.String({ minLength: 1, description: 'Collation name, e.g. `C`.' })),
  },
  {
    title: 'index key',
    description: 'One index key: a `column` or an `expression` (exactly one), with optional ordering, operator class and collation.',
    additionalProperties: false,
    // Exactly one of column/expression, in the schema so that editors flag it too. Each branch
    // declares its key because ajv's strict mode rejects `required` of an undeclared property.
    oneOf: [
      { properties: { column: true }, required: ['column'] },
      { properties: { expression: true }, required: ['expression'] },
    ],
  },
);

export const IndexKey = Type.Union(
  [
    Type.String({
      minLength: 1,
      description:
        'A column with optional ordering: `<column> [asc|desc] [nulls first|last]`. Double-quote names with spaces or keywords ("Created At" desc).',
    }),
    IndexKeyObject,
  ],
  { description: 'A key column as a string (`created_at desc`) or a mapping with `column` or `expression`.' },
);

export const IndexPolicy = Type.Object(
  {
    name: Name('Index name, unique within the schema; at most 63 bytes (PostgreSQL NAMEDATALEN - 1).'),
    columns: Type.Array(IndexKey, {
      minItems: 1,
      description: 'Key columns in order, e.g. `[tenant_id, created_at desc]`.',
      examples: [['tenant_id', 'created_at desc'], [{ expression: 'lower(email)' }]],
    }),
    method: Type.Optional(StringEnum(indexMethods, { description: 'Index access method.', default: 'btree' })),
    unique: Type.Optional(Type.Boolean({ description: 'A unique index (btree only).', default: false })),
    nulls_not_distinct: Type.Optional(
      Type.Boolean({
        description: 'Treat NULLs as equal for uniqueness (PostgreSQL 15+). Only with `unique: true`.',
        default: false,
      }),
    ),
    where: Type.Optional(
      Type.String({ minLength: 1, description: 'Partial-index predicate, a SQL boolean expression kept verbatim.' }),
    ),
    include: Type.Optional(
      Type.Array(Name('Column name, exact.'), {
        description: 'Non-key columns stored in the index for index-only scans (INCLUDE).',
      }),
    ),
    with: Type.Optional(IndexStorageParametersSchema),
  },
  { title: 'index', description: 'An index pgwarden keeps on the table.', additionalProperties: false },
);

/**
 * One document about one table. Later table-level keys (`partitioning:`, `vacuum:`) are added here as
 * optional properties.
 */
export const TablePolicy = Type.Object(
  {
    table: Name(
      'Table name: `schema.table` or `table` (schema public). When `schema:` is given, taken verbatim (for names containing dots).',
    ),
    schema: Type.Optional(Name('Schema of the table; when given, `table` is not split on dots.')),
    managed: Type.Optional(
      StringEnum(managedModes, {
        description:
          '`partial`: indexes nobody declared are reported, never dropped. `full`: they may be dropped with `--allow-drop`.',
        default: 'partial',
      }),
    ),
    indexes: Type.Optional(Type.Array(IndexPolicy, { description: 'Indexes the table should have.' })),
    partitioning: Type.Optional(PartitioningPolicy),
    vacuum: Type.Optional(VacuumPolicy),
  },
  {
    title: 'table policy',
    description: 'The desired performance configuration of one table.',
    additionalProperties: false,
  },
);

export type IndexKeyObject = Static<typeof IndexKeyObject>;
export type IndexKey = Static<typeof IndexKey>;
export type IndexPolicy = Static<typeof IndexPolicy>;
export type TablePolicy = Static<typeof TablePolicy>;

/**
 * The kinds of policy document, keyed by the top-level key that identifies each. The loader picks a
 * document's schema by which of these keys it has; the published schema accepts any of them.
 * A `routing:` document or a `defaults:` block is one more entry here.
 */
export const documentKinds = {
  table: { noun: 'table policy', schema: TablePolicy },
  routing: { noun: 'routing policy', schema: RoutingPolicy },
  defaults: { noun: 'defaults document', schema: DefaultsPolicy },
} as const;

export type DocumentKey = keyof typeof documentKinds;

export const policySchemaId = 'https://pgwarden.dev/schema/policy.schema.json';

/** The published JSON Schema of one policy document (`schema/policy.schema.json`). */
export function policyJsonSchema(): Record<string, unknown> {
  return {
    // ajv's default class validates draft-07 without extra meta-schemas; so do most editors.
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: policySchemaId,
    title: 'pgwarden policy',
    description: 'One YAML document of a pgwarden policy file. A file may hold several documents separated by `---`.',
    anyOf: Object.values(documentKinds).map((kind) => kind.schema),
  };
}

/** The schema file's exact text: pretty, newline-terminated, keys in a fixed order. */
export function renderPolicyJsonSchema(): string {
  return `${JSON.stringify(canonicalKeyOrder(policyJsonSchema()), null, 2)}\n`;
}

// Annotations first, then the constraints, then the sub-schemas, so the file reads top-down; the
// order must not depend on how TypeBox happens to build its objects.
const keyOrder = [
  '$schema', '$id', 'title', 'description', 'type', 'enum', 'default', 'minLength', 'maxLength', 'minItems',
  'examples', 'required', 'properties', 'additionalProperties', 'items', 'anyOf', 'oneOf',
];

function canonicalKeyOrder(value: unknown, isPropertyMap = false): unknown {
  if (Array.isArray(value)) return value.map((item) => canonicalKeyOrder(item));
  if (typeof value !== 'object' || value === null) return value;
  // Object.entries skips TypeBox's symbol-keyed metadata, leaving plain JSON Schema.
  const entries = Object.entries(value);
  // Property maps keep the order they are declared in: editors list completions in that order.
  if (!isPropertyMap) entries.sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(
    entries.map(([key, item]) => [key, canonicalKeyOrder(item, !isPropertyMap && key === 'properties')]),
  );
}

function rank(key: string): number {
  const index = keyOrder.indexOf(key);
  return index === -1 ? keyOrder.length : index;
}
