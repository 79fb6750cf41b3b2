import type { Node } from 'libpg-query';
import { nodeEntry, parseStatement, visitTree, type ParsedStatement } from './sql-statement.ts';
import type { TableStatistics } from './table-statistics.ts';

/**
 * pg_stat_statements replaces every constant by `$n`, and some of its texts are statements the server
 * would have planned with the constants but refuses as they are:
 *
 * - a keyword that the grammar turned into a constant becomes a parameter: `extract(year FROM d)` is
 *   kept as `extract($1 FROM d)`, a syntax error ("at or near $1") on the server (PostgreSQL 14+ turns
 *   the field into a string constant, which the normaliser then replaces);
 * - untyped parameters on both sides of an operator leave it ambiguous:
 *   `l_discount BETWEEN $2 - $3 AND $4 + $5` fails with "operator is not unique: unknown - unknown",
 *   and so does `d < $1 + $2` for a date;
 * - an expression repeated in GROUP BY gets its own parameters (`date_trunc($1, t) ... GROUP BY
 *   date_trunc($2, t)`), so the server no longer sees the same expression ("must appear in the GROUP
 *   BY clause"): what Django's and Rails' date truncations produce.
 *
 * `plannableStatement` rewrites such a text into one the server plans the way it planned the
 * original: the field goes back as a keyword (`year`: valid for dates, timestamps and intervals),
 * repeated expressions share their parameters, and each parameter whose type the server cannot infer
 * gets a cast to the type its context says (the column it is compared with, the other operand, the
 * BETWEEN's subject). The parameters left are renumbered from $1. Each rewrite is said in `repairs`.
 */

export interface PlannableStatement {
  readonly statement: ParsedStatement;
  /** What was changed, one phrase each ("extract's field $1 read as year"). */
  readonly repairs: readonly string[];
}

/** A column's type by its name among the statement's tables (unique across them, or unknown). */
export type ColumnTypes = (column: string) => string | undefined;

export function columnTypesOf(tables: readonly TableStatistics[]): ColumnTypes {
  const types = new Map<string, Set<string>>();
  for (const t of tables) {
    for (const c of t.columnStats) types.set(c.name, new Set([...(types.get(c.name) ?? []), withoutTypmod(c.type)]));
  }
  return (column) => {
    const found = types.get(column);
    return found?.size === 1 ? [...found][0] : undefined;
  };
}

export async function plannableStatement(parsed: ParsedStatement, columnTypes: ColumnTypes): Promise<PlannableStatement> {
  try {
    return await rewrite(parsed, columnTypes);
  } catch {
    // A rewrite the parser rejects (it should not happen) leaves the text as it was: the server says why.
    return { statement: parsed, repairs: [] };
  }
}

async function rewrite(parsed: ParsedStatement, columnTypes: ColumnTypes): Promise<PlannableStatement> {
  const repairs: string[] = [];
  // The tree of a text that repairTypedLiterals rewrote is the original's: parse the repaired text again.
  let current = parsed.repaired ? await reparse(parsed.text) : parsed;

  const renumbered = renumberParameters(current.text, current.tree);
  if (renumbered.text !== current.text) {
    repairs.push(...renumbered.repairs);
    current = await reparse(renumbered.text);
  }
  const typed = typeParameters(current.text, current.tree, columnTypes);
  if (typed.text !== current.text) {
    repairs.push(...typed.repairs);
    current = await reparse(typed.text);
  }
  return { statement: { ...current, repaired: parsed.repaired || repairs.length > 0 }, repairs };
}

async function reparse(text: string): Promise<ParsedStatement> {
  const p = await parseStatement(text);
  // The rewrites replace a parameter by a keyword, a parameter or a cast of it: the text still parses.
  if (!p.ok) throw new Error(`rewriting a normalised statement broke it (${p.message}): ${text}`);
  return p;
}

interface Edit {
  /** Byte offsets in the UTF-8 text. */
  readonly start: number;
  readonly end: number;
  readonly replacement: string;
}

function applyEdits(text: string, edits: readonly Edit[]): string {
  let out = Buffer.from(text, 'utf8');
  for (const e of [...edits].sort((a, b) => b.start - a.start)) {
    out = Buffer.concat([out.subarray(0, e.start), Buffer.from(e.replacement, 'utf8'), out.subarray(e.end)]);
  }
  return out.toString('utf8');
}

interface ParamAt {
  readonly number: number;
  readonly location: number;
}

function paramRefs(tree: unknown): ParamAt[] {
  const found: ParamAt[] = [];
  visitTree(tree, (type, value) => {
    if (type === 'ParamRef' && typeof value['number'] === 'number' && typeof value['location'] === 'number') {
      found.push({ number: value['number'], location: value['location'] });
    }
  });
  return found;
}

function paramSpan(p: ParamAt): { start: number; end: number } {
  return { start: p.location, end: p.location + `$${p.number}`.length };
}

function funcName(value: Record<string, unknown>): string {
  const names = (value['funcname'] as unknown[] | undefined) ?? [];
  return names.map((n) => (nodeEntry(n)?.[1]['sval'] as string | undefined) ?? '').join('.');
}

/**
 * Fields restored as keywords, GROUP BY / ORDER BY / DISTINCT ON expressions given the parameters of
 * the output column they repeat, then every parameter numbered from $1 without gaps (PREPARE and
 * GENERIC_PLAN refuse a statement whose `$1` is absent: its type cannot be determined).
 */
function renumberParameters(text: string, tree: Node): { text: string; repairs: string[] } {
  const repairs: string[] = [];
  const keywords = new Map<number, string>();
  visitTree(tree, (type, value) => {
    if (type !== 'FuncCall' || funcName(value) !== 'pg_catalog.extract' || value['funcformat'] !== 'COERCE_SQL_SYNTAX') return;
    const first = nodeEntry((value['args'] as unknown[] | undefined)?.[0]);
    if (first?.[0] !== 'ParamRef' || typeof first[1]['location'] !== 'number') return;
    keywords.set(first[1]['location'], 'year');
    repairs.push(`extract's field $${String(first[1]['number'])} read as year`);
  });

  const alias = sharedGroupingParameters(tree);
  for (const [from, to] of alias) repairs.push(`$${from} is the same value as $${to} (a repeated output expression)`);

  const params = paramRefs(tree);
  const kept = [...new Set(params.filter((p) => !keywords.has(p.location)).map((p) => alias.get(p.number) ?? p.number))].sort((a, b) => a - b);
  const renumber = new Map(kept.map((n, i) => [n, i + 1]));
  const edits: Edit[] = [];
  for (const p of params) {
    const keyword = keywords.get(p.location);
    const target = keyword ?? `$${renumber.get(alias.get(p.number) ?? p.number) ?? p.number}`;
    if (target !== `$${p.number}`) edits.push({ ...paramSpan(p), replacement: target });
  }
  if (edits.length === 0) return { text, repairs: [] };
  if (kept.some((n, i) => n !== i + 1)) repairs.push(`parameters renumbered $1..$${kept.length}`);
  return { text: applyEdits(text, edits), repairs };
}

/**
 * For each SELECT, a GROUP BY, ORDER BY or DISTINCT ON item that is an output column's expression
 * with other parameter numbers: its numbers -> the output column's. (The original statement had the
 * same constants in both places; the normaliser gave each occurrence its own number.)
 */
function sharedGroupingParameters(tree: Node): Map<number, number> {
  const alias = new Map<number, number>();
  visitTree(tree, (type, value) => {
    if (type !== 'SelectStmt') return;
    const targets = ((value['targetList'] as unknown[] | undefined) ?? [])
      .map((t) => nodeEntry(t)?.[1]['val'])
      .filter((v) => v !== undefined && paramRefs(v).length > 0);
    const items = [
      ...((value['groupClause'] as unknown[] | undefined) ?? []),
      ...((value['distinctClause'] as unknown[] | undefined) ?? []),
      ...((value['sortClause'] as unknown[] | undefined) ?? []).map((s) => nodeEntry(s)?.[1]['node']),
    ];
    for (const item of items) {
      const itemParams = paramRefs(item);
      if (itemParams.length === 0) continue;
      const shape = shapeOf(item);
      const match = targets.find((t) => shapeOf(t) === shape);
      if (match === undefined) continue;
      const targetParams = paramRefs(match);
      itemParams.forEach((p, i) => {
        const to = targetParams[i]?.number;
        if (to !== undefined && to !== p.number) alias.set(p.number, to);
      });
    }
  });
  return alias;
}

/** The expression without its locations and parameter numbers. */
function shapeOf(node: unknown): string {
  return JSON.stringify(node, (key, v: unknown) => (key === 'location' || key === 'number' ? undefined : v));
}

const ARITHMETIC = new Set(['+', '-', '*', '/', '%', '^']);
const COMPARISON = new Set(['=', '<>', '!=', '<', '<=', '>', '>=']);

/**
 * Casts for the parameters whose type the server cannot infer: an operand of arithmetic whose other
 * operand is untyped too (another parameter) or a date/time (where `+` and `-` have several meanings),
 * and a unary minus's. The type comes from the other operand, or else from the expression's context:
 * the column it is compared with, or the subject of its BETWEEN or IN.
 */
function typeParameters(text: string, tree: Node, columnTypes: ColumnTypes): { text: string; repairs: string[] } {
  const casts = new Map<number, { p: ParamAt; type: string }>();
  const typeOf = (node: unknown): string | undefined => inferType(node, columnTypes);

  const walk = (node: unknown, expected: string | undefined): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item, expected);
      return;
    }
    const entry = nodeEntry(node);
    if (entry === undefined || !/^[A-Z]/.test(entry[0])) {
      if (typeof node === 'object' && node !== null) for (const v of Object.values(node)) walk(v, undefined);
      return;
    }
    const [type, value] = entry;
    if (type !== 'A_Expr') {
      // A BETWEEN's bounds and an IN's values come as a List: they keep the subject's type.
      for (const v of Object.values(value)) walk(v, type === 'List' ? expected : undefined);
      return;
    }
    const op = ((value['name'] as unknown[] | undefined) ?? []).map((n) => nodeEntry(n)?.[1]['sval']).join('.');
    const kind = value['kind'];
    const left = value['lexpr'];
    const right = value['rexpr'];
    if (kind === 'AEXPR_OP' && ARITHMETIC.has(op)) {
      const lt = typeOf(left);
      const rt = typeOf(right);
      const leftParam = asParam(left);
      const rightParam = asParam(right);
      if (left === undefined && rightParam !== undefined) {
        casts.set(rightParam.location, { p: rightParam, type: expected ?? 'numeric' });
        return;
      }
      if (leftParam !== undefined && (rt === undefined || isDateTime(rt))) {
        casts.set(leftParam.location, { p: leftParam, type: operandType(rt ?? expected, rt !== undefined) });
      }
      if (rightParam !== undefined && (lt === undefined || isDateTime(lt))) {
        const other = lt ?? (leftParam !== undefined ? casts.get(leftParam.location)?.type : undefined) ?? expected;
        casts.set(rightParam.location, { p: rightParam, type: operandType(other, true) });
      }
      if (leftParam === undefined) walk(left, rt ?? expected);
      if (rightParam === undefined) walk(right, lt ?? expected);
      return;
    }
    if (kind === 'AEXPR_OP' && COMPARISON.has(op)) {
      walk(left, typeOf(right));
      walk(right, typeOf(left));
      return;
    }
    if (kind === 'AEXPR_BETWEEN' || kind === 'AEXPR_NOT_BETWEEN' || kind === 'AEXPR_BETWEEN_SYM' || kind === 'AEXPR_NOT_BETWEEN_SYM' || kind === 'AEXPR_IN') {
      const subject = typeOf(left);
      walk(left, undefined);
      walk(right, subject);
      return;
    }
    walk(left, undefined);
    walk(right, undefined);
  };
  walk(tree, undefined);

  if (casts.size === 0) return { text, repairs: [] };
  const edits = [...casts.values()].map(({ p, type }): Edit => ({ ...paramSpan(p), replacement: `CAST($${p.number} AS ${type})` }));
  const repairs = [...casts.values()].sort((a, b) => a.p.number - b.p.number).map(({ p, type }) => `$${p.number} typed ${type}`);
  return { text: applyEdits(text, edits), repairs };
}

function asParam(node: unknown): ParamAt | undefined {
  const entry = nodeEntry(node);
  if (entry?.[0] !== 'ParamRef') return undefined;
  const { number, location } = entry[1];
  return typeof number === 'number' && typeof location === 'number' ? { number, location } : undefined;
}

function isDateTime(type: string): boolean {
  return type === 'date' || type.startsWith('timestamp') || type.startsWith('time');
}

/**
 * The type for an untyped operand of `+`/`-` next to (or in an expression of) `type`: a date moves by
 * whole days, a timestamp or time by an interval; numbers and intervals pair with their own type.
 * `besideIt`: the other operand has that type (false: the whole expression is expected to have it).
 */
function operandType(type: string | undefined, besideIt: boolean): string {
  if (type === undefined) return 'numeric';
  if (type === 'date') return besideIt ? 'integer' : 'date';
  if (type.startsWith('timestamp') || type.startsWith('time')) return besideIt ? 'interval' : type;
  return type;
}

/** What the server would type an expression as, as far as it matters here; undefined when unsure. */
function inferType(node: unknown, columnTypes: ColumnTypes): string | undefined {
  const entry = nodeEntry(node);
  if (entry === undefined) return undefined;
  const [type, value] = entry;
  switch (type) {
    case 'ColumnRef': {
      const fields = (value['fields'] as unknown[] | undefined) ?? [];
      const last = nodeEntry(fields[fields.length - 1])?.[1]['sval'];
      return typeof last === 'string' ? columnTypes(last) : undefined;
    }
    case 'TypeCast':
      return typeNameText(value['typeName']);
    case 'A_Const':
      if (value['ival'] !== undefined) return 'integer';
      if (value['fval'] !== undefined) return 'numeric';
      if (value['boolval'] !== undefined) return 'boolean';
      return undefined;
    case 'A_Expr': {
      const kind = value['kind'];
      const op = ((value['name'] as unknown[] | undefined) ?? []).map((n) => nodeEntry(n)?.[1]['sval']).join('.');
      if (kind !== 'AEXPR_OP' || !ARITHMETIC.has(op)) return undefined;
      const left = inferType(value['lexpr'], columnTypes);
      const right = inferType(value['rexpr'], columnTypes);
      // date + interval is a timestamp, date - date a number of days: enough to type a neighbour.
      if (left === 'date' && right === 'interval') return 'timestamp without time zone';
      if (left === 'date' && right === 'date' && op === '-') return 'integer';
      return left ?? right;
    }
    case 'FuncCall': {
      const name = funcName(value);
      if (name === 'count') return 'bigint';
      if (name === 'now' || name === 'pg_catalog.now') return 'timestamp with time zone';
      if (['sum', 'min', 'max', 'avg', 'coalesce'].includes(name)) return inferType((value['args'] as unknown[] | undefined)?.[0], columnTypes);
      return undefined;
    }
    case 'SQLValueFunction': {
      const op = String(value['op'] ?? '');
      if (op === 'SVFOP_CURRENT_DATE') return 'date';
      if (op.startsWith('SVFOP_CURRENT_TIMESTAMP') || op.startsWith('SVFOP_LOCALTIMESTAMP')) return op.startsWith('SVFOP_LOCAL') ? 'timestamp without time zone' : 'timestamp with time zone';
      return undefined;
    }
    default:
      return undefined;
  }
}

/** A cast's type as SQL: `pg_catalog.interval`, `numeric`, `text[]` (type modifiers dropped). */
function typeNameText(typeName: unknown): string | undefined {
  if (typeof typeName !== 'object' || typeName === null) return undefined;
  const t = typeName as { names?: unknown[]; arrayBounds?: unknown[] };
  const names = (t.names ?? []).map((n) => nodeEntry(n)?.[1]['sval']).filter((s): s is string => typeof s === 'string');
  if (names.length === 0) return undefined;
  const last = names[names.length - 1] as string;
  const known = INTERNAL_NAMES[last];
  const base = known ?? names.map((n) => (/^[a-z_][a-z0-9_]*$/.test(n) ? n : `"${n.replace(/"/g, '""')}"`)).join('.');
  return t.arrayBounds !== undefined && t.arrayBounds.length > 0 ? `${base}[]` : base;
}

/** The grammar's internal names for SQL's type keywords, as format_type() spells them. */
const INTERNAL_NAMES: Record<string, string> = {
  int2: 'smallint',
  int4: 'integer',
  int8: 'bigint',
  float4: 'real',
  float8: 'double precision',
  bool: 'boolean',
  numeric: 'numeric',
  date: 'date',
  interval: 'interval',
  timestamp: 'timestamp without time zone',
  timestamptz: 'timestamp with time zone',
  time: 'time without time zone',
  timetz: 'time with time zone',
  varchar: 'character varying',
  bpchar: 'character',
  text: 'text',
};

function withoutTypmod(type: string): string {
  return type.replace(/\(\d+(,\d+)?\)/g, '').replace(/\s+/g, ' ').trim();
}
