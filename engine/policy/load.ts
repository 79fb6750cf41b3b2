import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { isScalar, LineCounter, parseAllDocuments, visit, type Document, type YAMLError } from 'yaml';
import { ident } from '../sql/ident.ts';
import type { DesiredIndex, DesiredState, DesiredTable, PolicyError } from './desired.ts';
import { isMapping, positionAt, type DocumentSource } from './document-source.ts';
import { documentKinds, type DocumentKey } from './schema.ts';
import { readTableDocument, type TableDocument, type TableIdentity } from './table-document.ts';
import { readRoutingDocument, singleRouting } from './routing-document.ts';
import type { DesiredRouting } from './desired-routing.ts';
import { readDefaultsDocument, singleDefaults, withVacuumDefaults, type DefaultsDocument } from './vacuum-policy.ts';

export interface LoadedPolicies {
  /** Only meaningful when `errors` is empty: documents with mistakes contribute nothing to it. */
  readonly desired: DesiredState;
  /** Every mistake of the run, sorted by file, line and column. */
  readonly errors: PolicyError[];
}

/**
 * Reads every `*.yaml` / `*.yml` under `dir` (recursively, sorted), validates each document and
 * builds the desired state. Mistakes in the files are returned, all of them, never thrown.
 * File names in errors and source positions are `dir` as the caller wrote it joined with the file's
 * relative path (`policies/events.yaml`); `desired.files` is relative to `dir`.
 *
 * @example
 * const { desired, errors } = await loadPolicies('policies');
 * for (const error of errors) console.error(formatPolicyError(error));
 * // policies/events.yaml:7:7: unknown key "colums" in index (expected one of: name, columns, ...) (did you mean "columns"?)
 */
export async function loadPolicies(dir: string, options: { readonly displayDir?: string } = {}): Promise<LoadedPolicies> {
  const listing = await policyFiles(dir);
  if (!listing.ok) return { desired: { tables: [], files: [] }, errors: [{ ...listing.error, file: options.displayDir ?? listing.error.file }] };

  const errors: PolicyError[] = [];
  const documents: TableDocument[] = [];
  const routings: DesiredRouting[] = [];
  const defaultsDocuments: DefaultsDocument[] = [];
  for (const file of listing.files) {
    // `displayDir`: how the user wrote the directory, when `dir` had to be made absolute to be read.
    const shown = path.join(options.displayDir ?? dir, file);
    const text = readText(path.join(dir, file));
    if (typeof text !== 'string') {
      errors.push({ file: shown, line: 1, col: 1, message: `cannot read the file: ${text.reason}` });
      continue;
    }
    for (const result of readFileDocuments(shown, text)) {
      errors.push(...result.errors);
      documents.push(...(result.document === undefined ? [] : [result.document]));
      if (result.routing !== undefined) routings.push(result.routing);
      if (result.defaults !== undefined) defaultsDocuments.push(result.defaults);
    }
  }
  errors.push(...crossDocumentErrors(documents));

  const defaults = singleDefaults(defaultsDocuments);
  errors.push(...defaults.errors);
  const tables = withVacuumDefaults(documents.flatMap(({ table }): DesiredTable[] => (table === undefined ? [] : [table])), defaults.vacuum);
  const { routing, errors: routingErrors } = singleRouting(routings);
  errors.push(...routingErrors);
  const vacuumDefaults = defaults.vacuum === undefined ? {} : { vacuumDefaults: defaults.vacuum };
  return { desired: { tables, files: listing.files, ...(routing === undefined ? {} : { routing }), ...vacuumDefaults }, errors: sortErrors(errors) };
}

type Listing = { readonly ok: true; readonly files: string[] } | { readonly ok: false; readonly error: PolicyError };

async function policyFiles(dir: string): Promise<Listing> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    const files = entries
      .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && /\.ya?ml$/u.test(entry.name))
      // Relative, with `/` on every platform: these names end up in plans and reports.
      .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
      // Code-unit order, not the locale's: the same files load in the same order everywhere.
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return { ok: true, files };
  } catch (error) {
    const message = `cannot read the policy directory: ${fsReason(error)}`;
    return { ok: false, error: { file: dir, line: 1, col: 1, message } };
  }
}

// Synchronous on purpose: a repository of 1,000 small policy files is read in a few milliseconds this
// way, while one awaited promise per file cost more than the reading (issue 14).
function readText(file: string): string | { reason: string } {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    return { reason: fsReason(error) };
  }
}

function fsReason(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  if (code === 'ENOENT') return 'it does not exist';
  if (code === 'ENOTDIR') return 'it is not a directory';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}

interface DocumentResult {
  readonly errors: readonly PolicyError[];
  readonly document?: TableDocument;
  readonly routing?: DesiredRouting;
  readonly defaults?: DefaultsDocument;
}

function readFileDocuments(file: string, text: string): DocumentResult[] {
  const lineCounter = new LineCounter();
  // `prettyErrors: false` keeps yaml's messages one plain sentence; the position is added here.
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  return [...documents].map((document) => readDocument({ file, document, lineCounter }, text));
}

function readDocument(source: DocumentSource, text: string): DocumentResult {
  const { document } = source;
  if (document.errors.length > 0) {
    return { errors: document.errors.map((error) => yamlError(source, error, text)) };
  }
  const contents = document.contents;
  // A document holding only comments (or `---` alone) parses to an empty scalar: nothing to load.
  if (contents === null || (isScalar(contents) && contents.value === null)) return { errors: [] };

  const start = positionAt(source, contents.range?.[0] ?? 0);
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { errors: [{ ...start, message: `cannot read the document: ${reason}` }] };
  }

  const key = isMapping(data) ? documentKey(data) : undefined;
  if (!isMapping(data) || key === undefined) return { errors: [{ ...start, ...expectedDocument(data) }] };
  switch (key) {
    case 'table': {
      const table = readTableDocument(data, source);
      return { errors: table.errors, document: table };
    }
    case 'routing': {
      const routing = readRoutingDocument(data, source);
      return { errors: routing.errors, ...(routing.routing === undefined ? {} : { routing: routing.routing }) };
    }
    case 'defaults': {
      const defaults = readDefaultsDocument(data, source);
      return { errors: defaults.errors, defaults };
    }
  }
}

/** The kind of a document is the first of the known top-level keys it has. */
function documentKey(data: Readonly<Record<string, unknown>>): DocumentKey | undefined {
  return (Object.keys(documentKinds) as DocumentKey[]).find((key) => Object.hasOwn(data, key));
}

function expectedDocument(data: unknown): { message: string; hint: string } {
  const kinds = Object.entries(documentKinds);
  const or = (items: readonly string[]): string => (items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1) ?? ''}`);
  const expected = or(kinds.map(([, kind]) => kind.noun));
  const keys = or(kinds.map(([key]) => `\`${key}:\``));
  const hint = 'a policy document is a mapping that starts with `table: <schema.table>`';
  if (typeof data !== 'object' || data === null) return { message: `expected a ${expected}, got ${shape(data)}`, hint };
  if (Array.isArray(data)) return { message: `expected a ${expected}, got a list`, hint };
  return { message: `expected a ${expected}: ${keys} is missing`, hint };
}

function shape(value: unknown): string {
  return typeof value === 'string' ? `the text ${JSON.stringify(value)}` : `the value ${String(value)}`;
}

function yamlError(source: DocumentSource, error: YAMLError, text: string): PolicyError {
  const position = positionAt(source, error.pos[0]);
  if (error.code === 'DUPLICATE_KEY') {
    const key = keyAt(source.document, error.pos[0]) ?? text.slice(error.pos[0], error.pos[1]);
    const hint = 'each key may appear once in a mapping';
    return { ...position, message: `duplicate key ${JSON.stringify(key)}`, hint };
  }
  const { message } = error;
  return { ...position, message: `invalid YAML: ${message.charAt(0).toLowerCase()}${message.slice(1)}` };
}

function keyAt(document: Document.Parsed, offset: number): string | undefined {
  let found: string | undefined;
  visit(document, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        found = String(pair.key.value);
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/**
 * Checks that need every document: one policy per table, and index names unique per schema (in
 * PostgreSQL indexes and tables share one namespace per schema, so an index name may also not be a
 * table's).
 */
function crossDocumentErrors(documents: readonly TableDocument[]): PolicyError[] {
  const errors: PolicyError[] = [];
  const tables = new Map<string, TableIdentity>();
  for (const { identity } of documents) {
    if (identity === undefined) continue;
    const key = relationKey(identity.schema, identity.name);
    const first = tables.get(key);
    if (first === undefined) {
      tables.set(key, identity);
      continue;
    }
    errors.push({
      ...identity.source,
      message: `table ${displayName(identity)} has two policies: here and at ${at(first.source)}`,
      hint: 'merge them into one document',
    });
  }

  const indexes = new Map<string, DesiredIndex>();
  for (const index of documents.flatMap((document) => document.indexes)) {
    const key = relationKey(index.schema, index.name);
    const name = JSON.stringify(index.name);
    const first = indexes.get(key);
    const table = tables.get(key);
    if (table !== undefined) {
      errors.push({
        ...index.source,
        message: `index ${name} has the name of table ${displayName(table)} (${at(table.source)})`,
        hint: 'tables and indexes share one namespace per schema in PostgreSQL',
      });
    } else if (first !== undefined) {
      errors.push({
        ...index.source,
        message: `index ${name} is declared twice in schema ${JSON.stringify(index.schema)}: here and at ${at(first.source)}`,
        hint: 'index names are unique per schema in PostgreSQL, not per table',
      });
    } else {
      indexes.set(key, index);
    }
  }
  return errors;
}

function relationKey(schema: string, name: string): string {
  // NUL cannot occur in a PostgreSQL identifier, so the pair maps to one key and back.
  return `${schema}\u0000${name}`;
}

function at(position: { file: string; line: number; col: number }): string {
  return `${position.file}:${position.line}:${position.col}`;
}

/** `public.events`, with a part quoted only when it would not read back as the same name. */
function displayName({ schema, name }: TableIdentity): string {
  const part = (value: string): string => (/^[a-z_][a-z0-9_$]*$/u.test(value) ? value : ident(value));
  return `${part(schema)}.${part(name)}`;
}

function sortErrors(errors: readonly PolicyError[]): PolicyError[] {
  return [...errors].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.col - b.col));
}
