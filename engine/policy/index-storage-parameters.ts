import { Type, type TObject, type TSchema } from '@sinclair/typebox';
import type { IndexMethod } from './desired.ts';

/**
 * Index storage parameters (`CREATE INDEX ... WITH (...)`), written once: the table below gives the
 * JSON Schema of an index's `with:` block, the per-access-method check of the loader, the way the diff
 * reads pg_class.reloptions, and whether a change is an `ALTER INDEX ... SET` or needs a rebuild.
 * As PostgreSQL 14–17 define them (src/backend/access/common/reloptions.c).
 */

export type IndexParameterType =
  | { readonly kind: 'boolean' }
  | { readonly kind: 'integer'; readonly min: number; readonly max: number }
  | { readonly kind: 'real'; readonly min: number; readonly max: number }
  | { readonly kind: 'enum'; readonly values: readonly string[] };

export interface IndexParameterSpec {
  readonly name: string;
  readonly type: IndexParameterType;
  /**
   * The access methods that take it, each with PostgreSQL's default: an unset parameter equals it.
   * null: "not set" has no value of its own (the reloption's -1 means "use the server setting"), so
   * only an unset parameter equals an unset one.
   */
  readonly methods: Readonly<Partial<Record<IndexMethod, boolean | number | string | null>>>;
  /**
   * ALTER INDEX accepts it but the index keeps working with the old value until it is rebuilt (BRIN
   * reads pages_per_range from its metapage): a change is a replace, never an ALTER.
   */
  readonly rebuild: boolean;
  /** The lock ALTER INDEX ... SET takes on the index (the table is not locked). */
  readonly lock: 'SHARE UPDATE EXCLUSIVE' | 'ACCESS EXCLUSIVE';
  readonly description: string;
}

const INT_MAX = 2_147_483_647;
const fillfactor = { kind: 'integer', min: 10, max: 100 } as const;

export const INDEX_STORAGE_PARAMETERS: readonly IndexParameterSpec[] = [
  {
    name: 'fillfactor',
    type: fillfactor,
    methods: { btree: 90, hash: 75, gist: 90, spgist: 80 },
    rebuild: false,
    lock: 'SHARE UPDATE EXCLUSIVE',
    description: 'Percent of each leaf page filled by a build (btree 90, hash 75, gist 90, spgist 80). A change applies to pages split from then on; REINDEX to repack.',
  },
  {
    name: 'deduplicate_items',
    type: { kind: 'boolean' },
    methods: { btree: true },
    rebuild: false,
    lock: 'SHARE UPDATE EXCLUSIVE',
    description: 'btree: merge duplicate keys into posting lists (default true).',
  },
  {
    name: 'vacuum_cleanup_index_scale_factor',
    type: { kind: 'real', min: 0, max: 1e10 },
    methods: { btree: null },
    rebuild: false,
    lock: 'SHARE UPDATE EXCLUSIVE',
    description: 'btree: deprecated, accepted and ignored by PostgreSQL 14+.',
  },
  {
    name: 'buffering',
    type: { kind: 'enum', values: ['auto', 'on', 'off'] },
    methods: { gist: 'auto' },
    rebuild: false,
    lock: 'ACCESS EXCLUSIVE',
    description: 'gist: buffered build (auto, on, off; default auto). Matters only while the index is built.',
  },
  {
    name: 'fastupdate',
    type: { kind: 'boolean' },
    methods: { gin: true },
    rebuild: false,
    lock: 'ACCESS EXCLUSIVE',
    description: 'gin: collect new entries in a pending list first (default true). Turning it off does not flush the list; VACUUM does.',
  },
  {
    name: 'gin_pending_list_limit',
    type: { kind: 'integer', min: 64, max: INT_MAX },
    methods: { gin: null },
    rebuild: false,
    lock: 'ACCESS EXCLUSIVE',
    description: 'gin: kilobytes the pending list may grow to (unset: the server setting gin_pending_list_limit).',
  },
  {
    name: 'pages_per_range',
    type: { kind: 'integer', min: 1, max: 131_072 },
    methods: { brin: 128 },
    rebuild: true,
    lock: 'ACCESS EXCLUSIVE',
    description: 'brin: table pages summarised by one index entry (default 128). Changing it rebuilds the index.',
  },
  {
    name: 'autosummarize',
    type: { kind: 'boolean' },
    methods: { brin: false },
    rebuild: false,
    lock: 'ACCESS EXCLUSIVE',
    description: 'brin: summarise a page range as soon as the next one is filled (default false).',
  },
];

export function indexParameterSpec(name: string): IndexParameterSpec | undefined {
  return INDEX_STORAGE_PARAMETERS.find((p) => p.name === name);
}

/** The parameters an access method takes, by name. */
export function parametersOf(method: IndexMethod): string[] {
  return INDEX_STORAGE_PARAMETERS.filter((p) => method in p.methods).map((p) => p.name);
}

function parameterSchema(spec: IndexParameterSpec): TSchema {
  const methods = Object.keys(spec.methods).join(', ');
  const description = `${spec.description} (${methods})`;
  switch (spec.type.kind) {
    case 'boolean':
      // `on`/`off` too: that is how pg_dump and most schemas spell it, and pgwarden writes it back as written.
      return Type.Unsafe<boolean | string>({ anyOf: [{ type: 'boolean' }, { type: 'string', enum: ['on', 'off'] }], description });
    case 'integer':
      return Type.Integer({ title: spec.name, minimum: spec.type.min, maximum: spec.type.max, description });
    case 'real':
      return Type.Number({ title: spec.name, minimum: spec.type.min, maximum: spec.type.max, description });
    case 'enum':
      return Type.Unsafe<string>({ type: 'string', enum: [...spec.type.values], description });
  }
}

export const IndexStorageParametersSchema: TObject = Type.Object(
  Object.fromEntries(INDEX_STORAGE_PARAMETERS.map((p) => [p.name, Type.Optional(parameterSchema(p))])),
  {
    title: 'index storage parameters',
    description: 'Storage parameters of the index (`WITH (...)`); which ones an index takes depends on its method. A change is an `ALTER INDEX ... SET` where that suffices, a rebuild otherwise.',
    additionalProperties: false,
  },
);

export type IndexParameterValue = boolean | number | string;

/** The text of a declared value as it goes into `WITH (...)` and, from there, pg_class.reloptions. */
export function parameterText(value: IndexParameterValue): string {
  return typeof value === 'string' ? value : String(value);
}

/** parse_bool: true/false/yes/no/on/off/1/0, any case, and prefixes of all but on/off ("t", "n", "of"). */
function parseBool(text: string): boolean | undefined {
  const v = text.toLowerCase();
  if (v === '') return undefined;
  if ('true'.startsWith(v) || 'yes'.startsWith(v) || v === 'on' || v === '1') return true;
  if ('false'.startsWith(v) || 'no'.startsWith(v) || (v.length >= 2 && 'off'.startsWith(v)) || v === '0') return false;
  return undefined;
}

/**
 * parse_int without units (reloptions take none): strtol with base 0 (so `0x40` and octal `010`), a
 * decimal or exponent rounded (PostgreSQL 12+), surrounding whitespace allowed.
 */
function parseInteger(text: string): number | undefined {
  const t = text.trim();
  const hex = /^([-+]?)0[xX]([0-9a-fA-F]+)$/u.exec(t);
  if (hex) return (hex[1] === '-' ? -1 : 1) * Number.parseInt(hex[2] ?? '', 16);
  const octal = /^([-+]?)0([0-7]+)$/u.exec(t);
  if (octal) return (octal[1] === '-' ? -1 : 1) * Number.parseInt(octal[2] ?? '', 8);
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/u.test(t)) return undefined;
  const n = Number(t);
  // rint(): halves to even.
  const floor = Math.floor(n);
  const diff = n - floor;
  return diff === 0.5 ? (floor % 2 === 0 ? floor : floor + 1) : Math.round(n);
}

function parseReal(text: string): number | undefined {
  const t = text.trim();
  return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/u.test(t) ? Number(t) : undefined;
}

/** What PostgreSQL makes of a reloption's text: a boolean, a number, or an enum value in lower case. */
export function parameterValue(spec: IndexParameterSpec, text: string): boolean | number | string | undefined {
  switch (spec.type.kind) {
    case 'boolean':
      return parseBool(text);
    case 'integer':
      return parseInteger(text);
    case 'real':
      return parseReal(text);
    case 'enum': {
      const v = text.toLowerCase();
      return spec.type.values.includes(v) ? v : undefined;
    }
  }
}

/**
 * Why a declared value does not fit `method`, or undefined when it does. Types and ranges the schema
 * checks already; what remains is whether the method takes the parameter at all.
 */
export function parameterProblem(method: IndexMethod, name: string): { message: string; hint: string } | undefined {
  const spec = indexParameterSpec(name);
  if (spec !== undefined && method in spec.methods) return undefined;
  const takes = parametersOf(method);
  const list = takes.length > 0 ? `${method} takes ${takes.join(', ')}` : `${method} takes none`;
  const owners = spec === undefined ? '' : ` (it belongs to ${Object.keys(spec.methods).join(', ')})`;
  return { message: `"${name}" is not a storage parameter of ${method} indexes${owners}`, hint: list };
}

/** `name=value` entries of pg_class.reloptions, as a map in stored order. */
export function readReloptions(reloptions: readonly string[]): Map<string, string> {
  return new Map(
    reloptions.map((entry) => {
      const eq = entry.indexOf('=');
      return eq < 0 ? [entry, ''] : [entry.slice(0, eq), entry.slice(eq + 1)];
    }),
  );
}

