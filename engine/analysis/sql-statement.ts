import { parse, type Node } from 'libpg-query';

/**
 * One SQL statement as PostgreSQL's own parser (libpg_query, WASM) reads it: what kind it is, whether it
 * only reads, which relations it names and how many `$n` it has. Also repairs the one normalisation
 * artefact of pg_stat_statements that the server itself would reject (see `repairTypedLiterals`).
 */

export type StatementKind = 'select' | 'insert' | 'update' | 'delete' | 'merge' | 'utility';

export interface RelationName {
  /** Absent when the statement leaves it to the search_path. */
  readonly schema?: string;
  readonly name: string;
}

export interface ParsedStatement {
  readonly ok: true;
  readonly kind: StatementKind;
  /** The text to send to the server: the input, or its repaired form. */
  readonly text: string;
  /** The raw parse tree of the (single) statement. */
  readonly tree: Node;
  /**
   * A SELECT without FOR UPDATE/SHARE, SELECT INTO or a data-modifying WITH. (A function it calls may
   * still write, which is why pgwarden runs even these in a read-only transaction.)
   */
  readonly readOnly: boolean;
  readonly relations: readonly RelationName[];
  /** The highest `$n`. */
  readonly parameterCount: number;
  /** `interval $1` and the like were rewritten as casts. */
  readonly repaired: boolean;
}

export interface RejectedStatement {
  readonly ok: false;
  readonly text: string;
  readonly message: string;
  /** 0-based character offset of the error, when the parser gives one. */
  readonly position?: number;
}

export type StatementParse = ParsedStatement | RejectedStatement;

/** Parses exactly one statement; several, none, or a syntax error give a RejectedStatement. */
export async function parseStatement(text: string): Promise<StatementParse> {
  let result: { stmts?: { stmt?: Node }[] };
  try {
    result = (await parse(text)) as { stmts?: { stmt?: Node }[] };
  } catch (error) {
    return rejected(text, error);
  }
  const statements = (result.stmts ?? []).flatMap((s) => (s.stmt === undefined ? [] : [s.stmt]));
  if (statements.length === 0) return { ok: false, text, message: 'no SQL statement in the text' };
  if (statements.length > 1) return { ok: false, text, message: `${statements.length} statements in one text; give one at a time` };
  const tree = statements[0] as Node;
  const repairedText = repairTypedLiterals(text, tree);
  return {
    ok: true,
    kind: statementKind(tree),
    text: repairedText,
    tree,
    readOnly: isReadOnly(tree),
    relations: relationsOf(tree),
    parameterCount: maxParameter(tree),
    repaired: repairedText !== text,
  };
}

function rejected(text: string, error: unknown): RejectedStatement {
  const message = error instanceof Error ? error.message : String(error);
  const details = typeof error === 'object' && error !== null && 'sqlDetails' in error ? (error as { sqlDetails?: { cursorPosition?: number } }).sqlDetails : undefined;
  const byte = details?.cursorPosition;
  return { ok: false, text, message, ...(typeof byte === 'number' && byte >= 0 ? { position: charOffset(text, byte) } : {}) };
}

/** The one key of a parse-tree node object: `{ SelectStmt: {...} }` -> ['SelectStmt', {...}]. */
export function nodeEntry(node: unknown): [string, Record<string, unknown>] | undefined {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const key = keys[0] as string;
  const value = (node as Record<string, unknown>)[key];
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? [key, value as Record<string, unknown>] : undefined;
}

function statementKind(tree: Node): StatementKind {
  const [type] = nodeEntry(tree) ?? [''];
  switch (type) {
    case 'SelectStmt':
      return 'select';
    case 'InsertStmt':
      return 'insert';
    case 'UpdateStmt':
      return 'update';
    case 'DeleteStmt':
      return 'delete';
    case 'MergeStmt':
      return 'merge';
    default:
      return 'utility';
  }
}

function isReadOnly(tree: Node): boolean {
  const entry = nodeEntry(tree);
  if (entry === undefined || entry[0] !== 'SelectStmt') return false;
  let writes = false;
  visitTree(tree, (type, value) => {
    if (type === 'InsertStmt' || type === 'UpdateStmt' || type === 'DeleteStmt' || type === 'MergeStmt') writes = true;
    if (type === 'SelectStmt' && (Array.isArray(value['lockingClause']) || value['intoClause'] !== undefined)) writes = true;
  });
  return !writes;
}

const WRITE_STATEMENTS = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

function relationsOf(tree: Node): RelationName[] {
  const seen = new Map<string, RelationName>();
  const ctes = new Set<string>();
  visitTree(tree, (type, value) => {
    if (type === 'CommonTableExpr' && typeof value['ctename'] === 'string') ctes.add(value['ctename']);
  });
  const targets: Record<string, unknown>[] = [];
  visitTree(tree, (type, value) => {
    // The target of INSERT / UPDATE / DELETE / MERGE is a bare RangeVar record, not a `{ RangeVar: ... }` node.
    if (WRITE_STATEMENTS.has(type) && typeof value['relation'] === 'object' && value['relation'] !== null) targets.push(value['relation'] as Record<string, unknown>);
  });
  const add = (type: string, value: Record<string, unknown>): void => {
    if (type !== 'RangeVar' || typeof value['relname'] !== 'string') return;
    const schema = typeof value['schemaname'] === 'string' ? value['schemaname'] : undefined;
    // An unqualified name that a WITH clause defines is the CTE, not a table.
    if (schema === undefined && ctes.has(value['relname'])) return;
    const relation = { ...(schema === undefined ? {} : { schema }), name: value['relname'] };
    seen.set(JSON.stringify([schema ?? null, relation.name]), relation);
  };
  visitTree(tree, add);
  for (const target of targets) add('RangeVar', target);
  // Sorted, so the list does not depend on the order the parse tree's fields come in.
  return [...seen.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
}

function maxParameter(tree: Node): number {
  let max = 0;
  visitTree(tree, (type, value) => {
    if (type === 'ParamRef' && typeof value['number'] === 'number') max = Math.max(max, value['number']);
  });
  return max;
}

/**
 * Calls `visit` for every node object of the tree, depth first, with its type name and fields.
 * Lists and the fields of each node are walked whatever their names, so no node type is missed.
 */
export function visitTree(node: unknown, visit: (type: string, value: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) {
    for (const item of node) visitTree(item, visit);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const entry = nodeEntry(node);
  // Node objects are `{ Type: {...} }` with a capitalised type; other objects are plain field records.
  if (entry !== undefined && /^[A-Z]/.test(entry[0])) {
    visit(entry[0], entry[1]);
    for (const value of Object.values(entry[1])) visitTree(value, visit);
    return;
  }
  for (const value of Object.values(node)) visitTree(value, visit);
}

/**
 * pg_stat_statements replaces the string of a typed literal (`interval '1 day'`, `date '2024-01-01'`)
 * by a parameter, giving `interval $3` — which libpg_query accepts (it is patched to read normalised
 * statements) but the server does not. Each such prefix cast becomes `CAST($3 AS interval)`, which
 * means the same. In the tree it is a TypeCast with no location of its own (the `::` form has one)
 * whose type name comes before its ParamRef; an interval's trailing fields (`hour`, `day to second`)
 * stay with the type. Offsets in the tree are UTF-8 byte offsets.
 */
export function repairTypedLiterals(text: string, tree: Node): string {
  const spans: { start: number; end: number; param: number; type: string }[] = [];
  const bytes = Buffer.from(text, 'utf8');
  visitTree(tree, (type, value) => {
    if (type !== 'TypeCast' || value['location'] !== -1) return;
    const param = nodeEntry(value['arg']);
    const typeName = value['typeName'] as { location?: number } | undefined;
    if (param?.[0] !== 'ParamRef' || typeName?.location === undefined) return;
    const paramAt = param[1]['location'];
    const number = param[1]['number'];
    if (typeof paramAt !== 'number' || typeof number !== 'number' || typeName.location >= paramAt) return;
    const paramEnd = paramAt + `$${number}`.length;
    const typeText = bytes.subarray(typeName.location, paramAt).toString('utf8').trim();
    const fields = !/interval/i.test(typeText) ? null : /^\s+(year|month|day|hour|minute|second)(\s*\(\s*\d+\s*\))?(\s+to\s+(month|hour|minute|second)(\s*\(\s*\d+\s*\))?)?\b/i.exec(
      bytes.subarray(paramEnd).toString('utf8'),
    );
    const fieldText = fields ? ` ${fields[0].trim()}` : '';
    const end = paramEnd + (fields ? Buffer.byteLength(fields[0], 'utf8') : 0);
    spans.push({ start: typeName.location, end, param: number, type: `${typeText}${fieldText}` });
  });
  if (spans.length === 0) return text;
  let out = bytes;
  for (const span of spans.sort((a, b) => b.start - a.start)) {
    const replacement = Buffer.from(`CAST($${span.param} AS ${span.type})`, 'utf8');
    out = Buffer.concat([out.subarray(0, span.start), replacement, out.subarray(span.end)]);
  }
  return out.toString('utf8');
}

/** The character offset of a UTF-8 byte offset into `text`. */
export function charOffset(text: string, byteOffset: number): number {
  return Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8').length;
}

/** The statement on one line, shortened for tables. */
export function oneLine(text: string, max = 100): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}
