import { parse } from 'libpg-query';

/** A function or relation as the statement names it: `schema` only when written. */
export interface SqlName {
  readonly schema: string | null;
  readonly name: string;
}

/**
 * What PostgreSQL's own parser (libpg-query, the server's grammar compiled to WASM) says about one
 * statement text, before anything about the database is known. Cached per text by the classifier;
 * whether the functions and relations it names are safe on a standby is decided later, against what
 * the primary's catalog says (statement-route.ts).
 */
export type StatementFacts =
  | { readonly kind: 'read'; readonly functions: readonly SqlName[]; readonly relations: readonly SqlName[] }
  | { readonly kind: 'write'; readonly why: string }
  | { readonly kind: 'unparseable'; readonly error: string };

type Node = Readonly<Record<string, unknown>>;

const isNode = (value: unknown): value is Node => typeof value === 'object' && value !== null && !Array.isArray(value);

const DATA_MODIFYING: Readonly<Record<string, string>> = {
  InsertStmt: 'INSERT',
  UpdateStmt: 'UPDATE',
  DeleteStmt: 'DELETE',
  MergeStmt: 'MERGE',
};

const LOCK_STRENGTH: Readonly<Record<string, string>> = {
  LCS_FORKEYSHARE: 'FOR KEY SHARE',
  LCS_FORSHARE: 'FOR SHARE',
  LCS_FORNOKEYUPDATE: 'FOR NO KEY UPDATE',
  LCS_FORUPDATE: 'FOR UPDATE',
};

/** Statement kinds a hot standby serves. Everything else (SET, BEGIN, DDL, COPY, LISTEN...) is the primary's. */
const READ_STATEMENTS = new Set(['SelectStmt', 'VariableShowStmt', 'ExplainStmt']);

export async function statementFacts(text: string): Promise<StatementFacts> {
  let tree: unknown;
  try {
    tree = await parse(text);
  } catch (error) {
    return { kind: 'unparseable', error: error instanceof Error ? error.message : String(error) };
  }
  const stmts = isNode(tree) && Array.isArray(tree['stmts']) ? (tree['stmts'] as readonly unknown[]) : [];
  if (stmts.length === 0) return { kind: 'write', why: 'an empty statement' };

  const functions: SqlName[] = [];
  const relations: SqlName[] = [];
  for (const raw of stmts) {
    const stmt = isNode(raw) && isNode(raw['stmt']) ? raw['stmt'] : {};
    const [type] = Object.keys(stmt);
    if (type === undefined || !READ_STATEMENTS.has(type)) return { kind: 'write', why: statementWords(type) };
    const body = stmt[type];
    // EXPLAIN runs its statement (with ANALYZE) or at least names it: it is what it explains.
    const inner = type === 'ExplainStmt' && isNode(body) && isNode(body['query']) ? body['query'] : undefined;
    if (inner !== undefined) {
      const [innerType] = Object.keys(inner);
      if (innerType !== 'SelectStmt') return { kind: 'write', why: `EXPLAIN of ${statementWords(innerType)}` };
    }
    const found = walk(body, functions, relations);
    if (found !== null) return { kind: 'write', why: found };
  }
  return { kind: 'read', functions: unique(functions), relations: unique(relations) };
}

/**
 * Visits every node of a read statement. Returns why it writes or locks, if it does: a data-modifying
 * WITH, SELECT INTO, or a locking clause anywhere (a subquery's FOR UPDATE locks too).
 */
function walk(value: unknown, functions: SqlName[], relations: SqlName[]): string | null {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = walk(item, functions, relations);
      if (found !== null) return found;
    }
    return null;
  }
  if (!isNode(value)) return null;
  for (const [key, child] of Object.entries(value)) {
    const modifying = DATA_MODIFYING[key];
    if (modifying !== undefined) return `a data-modifying WITH (${modifying})`;
    if (key === 'LockingClause' && isNode(child)) return `SELECT ... ${LOCK_STRENGTH[String(child['strength'])] ?? 'FOR UPDATE'}`;
    if (key === 'intoClause') return 'SELECT INTO (creates a table)';
    if (key === 'FuncCall' && isNode(child)) {
      const name = nameOf(child['funcname']);
      if (name !== null) functions.push(name);
    }
    if (key === 'RangeVar' && isNode(child) && typeof child['relname'] === 'string') {
      relations.push({ schema: typeof child['schemaname'] === 'string' ? child['schemaname'] : null, name: child['relname'] });
    }
    const found = walk(child, functions, relations);
    if (found !== null) return found;
  }
  return null;
}

/** `funcname` is a list of String nodes: [name] or [schema, name] (or [catalog, schema, name]). */
function nameOf(list: unknown): SqlName | null {
  if (!Array.isArray(list)) return null;
  const parts = list.map((part) => (isNode(part) && isNode(part['String']) ? part['String']['sval'] : undefined));
  if (!parts.every((part): part is string => typeof part === 'string') || parts.length === 0) return null;
  const name = parts.at(-1) ?? '';
  return { schema: parts.length >= 2 ? (parts.at(-2) ?? null) : null, name };
}

function unique(names: readonly SqlName[]): SqlName[] {
  const seen = new Map<string, SqlName>();
  for (const n of names) seen.set(`${n.schema ?? ''}\u0000${n.name}`, n);
  return [...seen.values()];
}

/** `InsertStmt` -> "INSERT", `TransactionStmt` -> "transaction control", for metrics and explanations. */
function statementWords(type: string | undefined): string {
  if (type === undefined) return 'an unknown statement';
  const modifying = DATA_MODIFYING[type];
  if (modifying !== undefined) return modifying;
  const known: Readonly<Record<string, string>> = {
    TransactionStmt: 'transaction control',
    VariableSetStmt: 'SET',
    CopyStmt: 'COPY',
    CallStmt: 'CALL',
    DoStmt: 'DO',
    LockStmt: 'LOCK',
    ListenStmt: 'LISTEN',
    NotifyStmt: 'NOTIFY',
    DeclareCursorStmt: 'DECLARE CURSOR',
    PrepareStmt: 'PREPARE',
    ExecuteStmt: 'EXECUTE',
    CreateTableAsStmt: 'CREATE TABLE AS',
  };
  return known[type] ?? `a ${type.replace(/Stmt$/u, '').replace(/([a-z])([A-Z])/gu, '$1 $2').toUpperCase()} statement`;
}
