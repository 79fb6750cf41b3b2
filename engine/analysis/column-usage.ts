import type { Node } from 'libpg-query';
import { nodeEntry, visitTree } from './sql-statement.ts';

/**
 * How one statement uses the columns of each table it reads, from PostgreSQL's parse tree: which
 * columns it compares for equality or ranges, joins on, sorts and groups by, which constant
 * predicates it always applies, and which columns it needs at all. Pure: a resolver that knows each
 * table's columns is passed in (aliases and unqualified columns are resolved the way PostgreSQL does:
 * the innermost scope first, and a column name must be unambiguous within it).
 */

export interface TableShape {
  readonly schema: string;
  readonly name: string;
  readonly columns: readonly string[];
}

/** Finds a table by its name as written (schema absent: the search path's choice). */
export type TableResolver = (schema: string | undefined, name: string) => TableShape | undefined;

/** What a column is compared with. */
export type Operand =
  | { readonly kind: 'param'; readonly number: number }
  | { readonly kind: 'const'; readonly sql: string }
  /** Anything without columns of the same scope: `now() - $1`, a cast, a scalar subquery. */
  | { readonly kind: 'expr' };

export interface ColumnPredicate {
  readonly column: string;
  readonly operator: string;
  readonly operand: Operand;
}

/**
 * A predicate that does not depend on parameters: the stuff partial indexes are made of. `sql` is the
 * text as written in the statement (`e.status <> 'resolved'`), for display; the structure is what a
 * partial index predicate is rebuilt from, without the statement's table aliases.
 */
export type ConstantPredicate =
  | { readonly kind: 'compare'; readonly column: string; readonly operator: string; readonly value: string; readonly sql: string }
  | { readonly kind: 'null'; readonly column: string; readonly negated: boolean; readonly sql: string }
  | { readonly kind: 'bool'; readonly column: string; readonly value: boolean; readonly sql: string };

export interface SortColumn {
  readonly column: string;
  readonly direction: 'asc' | 'desc';
  readonly nulls?: 'first' | 'last';
}

/** One occurrence of a table in a statement (a table read twice gives two). */
export interface TableAccess {
  readonly table: TableShape;
  readonly alias: string;
  readonly equality: readonly ColumnPredicate[];
  readonly range: readonly ColumnPredicate[];
  /** Columns of this table equated with a column of another table of the same scope. */
  readonly joins: readonly { readonly column: string; readonly other: string }[];
  /** ORDER BY, when every sort key is a plain column of this table (else an index cannot provide it). */
  readonly orderBy: readonly SortColumn[];
  readonly groupBy: readonly string[];
  readonly constantPredicates: readonly ConstantPredicate[];
  /** Every column of this table the statement touches anywhere. */
  readonly referenced: readonly string[];
  /** `*` or `alias.*` reads every column. */
  readonly allColumns: boolean;
  /** LIMIT of the scope: a number, 'param' for `LIMIT $n`, absent without one. */
  readonly limit?: number | 'param';
  /** INSERT / UPDATE / DELETE / MERGE target. */
  readonly write?: 'insert' | 'update' | 'delete' | 'merge';
  /** UPDATE ... SET columns: an index on any of them makes those updates non-HOT. */
  readonly updatedColumns: readonly string[];
}

/** `$n` compared with a table's column, or written to it: what values to sample for it. */
export interface ParameterColumn {
  readonly number: number;
  readonly schema: string;
  readonly table: string;
  readonly column: string;
  /** The comparison operator, or `:=` for a value an INSERT or UPDATE writes to the column. */
  readonly operator: string;
}

export interface ColumnUsage {
  readonly accesses: readonly TableAccess[];
  readonly parameters: readonly ParameterColumn[];
  /** Tables named in the statement that the resolver does not know (dropped since, say). */
  readonly unknownTables: readonly string[];
}

interface MutableAccess {
  table: TableShape;
  alias: string;
  equality: ColumnPredicate[];
  range: ColumnPredicate[];
  joins: { column: string; other: string }[];
  orderBy: SortColumn[];
  groupBy: string[];
  constantPredicates: ConstantPredicate[];
  referenced: Set<string>;
  allColumns: boolean;
  limit?: number | 'param';
  write?: 'insert' | 'update' | 'delete' | 'merge';
  updatedColumns: string[];
}

interface Scope {
  readonly accesses: MutableAccess[];
  /** Names of subqueries and CTEs in FROM: their columns belong to no table here. */
  readonly opaque: Set<string>;
  readonly parent?: Scope;
  readonly ctes: ReadonlySet<string>;
}

interface Walk {
  readonly text: Buffer;
  readonly resolve: TableResolver;
  readonly all: MutableAccess[];
  readonly parameters: ParameterColumn[];
  readonly unknown: Set<string>;
}

type Fields = Record<string, unknown>;

export function columnUsage(tree: Node, text: string, resolve: TableResolver): ColumnUsage {
  const walk: Walk = { text: Buffer.from(text, 'utf8'), resolve, all: [], parameters: [], unknown: new Set() };
  statement(walk, tree, undefined, new Set());
  const accesses = walk.all.map((a): TableAccess => ({ ...a, referenced: [...a.referenced].sort() }));
  const seen = new Set<string>();
  const parameters = walk.parameters.filter((p) => {
    const key = `${p.number}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { accesses, parameters, unknownTables: [...walk.unknown] };
}

function statement(walk: Walk, node: unknown, parent: Scope | undefined, ctes: ReadonlySet<string>): void {
  const entry = nodeEntry(node);
  if (entry === undefined) return;
  const [type, fields] = entry;
  switch (type) {
    case 'SelectStmt':
      return select(walk, fields, parent, ctes);
    case 'InsertStmt': {
      const inner = withCtes(walk, fields, parent, ctes);
      const scope = newScope(parent, inner);
      const target = addRange(walk, scope, fields['relation']);
      if (target) {
        target.write = 'insert';
        for (const col of list(fields['cols'])) {
          const name = nodeEntry(col)?.[1]['name'];
          if (typeof name === 'string') target.referenced.add(name);
        }
        insertedParameters(walk, target, fields);
      }
      statement(walk, fields['selectStmt'], parent, inner);
      return;
    }
    case 'UpdateStmt': {
      const inner = withCtes(walk, fields, parent, ctes);
      const scope = newScope(parent, inner);
      const target = addRange(walk, scope, fields['relation']);
      for (const item of list(fields['fromClause'])) fromItem(walk, scope, item);
      if (target) {
        target.write = 'update';
        for (const res of list(fields['targetList'])) {
          const name = nodeEntry(res)?.[1]['name'];
          if (typeof name === 'string') {
            target.updatedColumns.push(name);
            target.referenced.add(name);
            assigned(walk, target, name, nodeEntry(res)?.[1]['val']);
          }
          expression(walk, scope, nodeEntry(res)?.[1]['val']);
        }
      }
      where(walk, scope, fields['whereClause']);
      for (const res of list(fields['returningList'])) expression(walk, scope, res);
      return;
    }
    case 'DeleteStmt': {
      const inner = withCtes(walk, fields, parent, ctes);
      const scope = newScope(parent, inner);
      const target = addRange(walk, scope, fields['relation']);
      if (target) target.write = 'delete';
      for (const item of list(fields['usingClause'])) fromItem(walk, scope, item);
      where(walk, scope, fields['whereClause']);
      for (const res of list(fields['returningList'])) expression(walk, scope, res);
      return;
    }
    case 'MergeStmt': {
      const inner = withCtes(walk, fields, parent, ctes);
      const scope = newScope(parent, inner);
      const target = addRange(walk, scope, fields['relation']);
      if (target) target.write = 'merge';
      fromItem(walk, scope, fields['sourceRelation']);
      where(walk, scope, fields['joinCondition']);
      expression(walk, scope, fields['mergeWhenClauses']);
      return;
    }
    default:
      return;
  }
}

/**
 * `INSERT INTO t (a, b) VALUES ($1, $2)`: each `$n` is a value of the column at its position (the
 * table's own column order without a column list). Also `INSERT ... SELECT $1, $2` without FROM.
 */
function insertedParameters(walk: Walk, target: MutableAccess, fields: Fields): void {
  const named = list(fields['cols']).map((c) => nodeEntry(c)?.[1]['name']);
  const columns = named.length > 0 ? named : target.table.columns;
  const select = nodeEntry(fields['selectStmt'])?.[1];
  if (select === undefined) return;
  const rows = list(select['valuesLists']).map((row) => list(nodeEntry(row)?.[1]['items'] ?? row));
  if (rows.length === 0 && list(select['fromClause']).length === 0) {
    rows.push(list(select['targetList']).map((t) => nodeEntry(t)?.[1]['val']));
  }
  for (const row of rows) {
    for (const [i, value] of row.entries()) {
      const column = columns[i];
      if (typeof column === 'string') assigned(walk, target, column, value);
    }
  }
}

/** `column = $n` in SET, or `$n` in a column's place in VALUES: the value written there. */
function assigned(walk: Walk, target: MutableAccess, column: string, value: unknown): void {
  let entry = nodeEntry(value);
  while (entry?.[0] === 'TypeCast') entry = nodeEntry(entry[1]['arg']);
  const number = entry?.[0] === 'ParamRef' ? entry[1]['number'] : undefined;
  if (typeof number !== 'number') return;
  walk.parameters.push({ number, schema: target.table.schema, table: target.table.name, column, operator: ':=' });
}

function withCtes(walk: Walk, fields: Fields, parent: Scope | undefined, ctes: ReadonlySet<string>): ReadonlySet<string> {
  const clause = fields['withClause'] as { ctes?: unknown[] } | undefined;
  const names = new Set(ctes);
  for (const cte of clause?.ctes ?? []) {
    const c = nodeEntry(cte)?.[1];
    if (typeof c?.['ctename'] === 'string') names.add(c['ctename']);
  }
  for (const cte of clause?.ctes ?? []) statement(walk, nodeEntry(cte)?.[1]['ctequery'], parent, names);
  return names;
}

function newScope(parent: Scope | undefined, ctes: ReadonlySet<string>): Scope {
  return { accesses: [], opaque: new Set(), ctes, ...(parent === undefined ? {} : { parent }) };
}

function select(walk: Walk, fields: Fields, parent: Scope | undefined, ctes: ReadonlySet<string>): void {
  const inner = withCtes(walk, fields, parent, ctes);
  // UNION / INTERSECT / EXCEPT: each side is its own query.
  if (fields['larg'] !== undefined || fields['rarg'] !== undefined) {
    select(walk, (fields['larg'] ?? {}) as Fields, parent, inner);
    select(walk, (fields['rarg'] ?? {}) as Fields, parent, inner);
    return;
  }
  const scope = newScope(parent, inner);
  for (const item of list(fields['fromClause'])) fromItem(walk, scope, item);
  where(walk, scope, fields['whereClause']);
  const targets = list(fields['targetList']);
  for (const res of targets) {
    const val = nodeEntry(res)?.[1]['val'];
    if (isStar(val)) star(scope, val);
    else expression(walk, scope, val);
  }
  expression(walk, scope, fields['havingClause']);
  for (const v of list(fields['valuesLists'])) expression(walk, scope, v);
  groupBy(walk, scope, list(fields['groupClause']), targets);
  orderBy(walk, scope, list(fields['sortClause']), targets);
  const limit = limitOf(fields['limitCount']);
  if (limit !== undefined) for (const a of scope.accesses) a.limit = limit;
}

function fromItem(walk: Walk, scope: Scope, item: unknown): void {
  const entry = nodeEntry(item);
  if (entry === undefined) return;
  const [type, fields] = entry;
  if (type === 'RangeVar') {
    addRange(walk, scope, item);
  } else if (type === 'JoinExpr') {
    fromItem(walk, scope, fields['larg']);
    fromItem(walk, scope, fields['rarg']);
    where(walk, scope, fields['quals']);
    for (const name of list(fields['usingClause'])) usingJoin(scope, nodeEntry(name)?.[1]['sval']);
  } else if (type === 'RangeSubselect') {
    const alias = (fields['alias'] as { aliasname?: string } | undefined)?.aliasname;
    if (alias) scope.opaque.add(alias);
    // A LATERAL subquery sees this scope; a plain one only the outer ones, which is the same for resolution.
    statement(walk, fields['subquery'], scope, scope.ctes);
  } else if (type === 'RangeFunction') {
    const alias = (fields['alias'] as { aliasname?: string } | undefined)?.aliasname;
    if (alias) scope.opaque.add(alias);
    expression(walk, scope, fields['functions']);
  }
}

function addRange(walk: Walk, scope: Scope, node: unknown): MutableAccess | undefined {
  const fields = nodeEntry(node)?.[1] ?? (node as Fields | undefined);
  const relname = fields?.['relname'];
  if (typeof relname !== 'string') return undefined;
  const schema = typeof fields?.['schemaname'] === 'string' ? fields['schemaname'] : undefined;
  const alias = (fields?.['alias'] as { aliasname?: string } | undefined)?.aliasname ?? relname;
  if (schema === undefined && scope.ctes.has(relname)) {
    scope.opaque.add(alias);
    return undefined;
  }
  const table = walk.resolve(schema, relname);
  if (table === undefined) {
    walk.unknown.add(schema === undefined ? relname : `${schema}.${relname}`);
    scope.opaque.add(alias);
    return undefined;
  }
  const access: MutableAccess = {
    table,
    alias,
    equality: [],
    range: [],
    joins: [],
    orderBy: [],
    groupBy: [],
    constantPredicates: [],
    referenced: new Set(),
    allColumns: false,
    updatedColumns: [],
  };
  scope.accesses.push(access);
  walk.all.push(access);
  return access;
}

/** `JOIN ... USING (col)`: the column is a join column of every table of the scope that has it. */
function usingJoin(scope: Scope, column: unknown): void {
  if (typeof column !== 'string') return;
  const having = scope.accesses.filter((a) => a.table.columns.includes(column));
  for (const a of having) {
    a.referenced.add(column);
    for (const b of having) if (b !== a) a.joins.push({ column, other: `${b.table.schema}.${b.table.name}.${column}` });
  }
}

interface Resolved {
  readonly access: MutableAccess;
  readonly column: string;
}

/** A column reference, resolved in this scope or an enclosing one; undefined for other scopes' columns. */
function resolveColumn(scope: Scope, node: unknown): Resolved | 'outer' | undefined {
  const entry = nodeEntry(node);
  if (entry?.[0] !== 'ColumnRef') return undefined;
  const names = list(entry[1]['fields']).map((f) => nodeEntry(f)?.[1]['sval']);
  if (names.some((n) => typeof n !== 'string')) return undefined;
  const parts = names as string[];
  for (let s: Scope | undefined = scope; s !== undefined; s = s.parent) {
    const found = lookup(s, parts);
    if (found === 'opaque') return undefined;
    if (found !== undefined) return s === scope ? found : 'outer';
  }
  return undefined;
}

function lookup(scope: Scope, parts: readonly string[]): Resolved | 'opaque' | undefined {
  const column = parts[parts.length - 1] as string;
  if (parts.length === 1) {
    const having = scope.accesses.filter((a) => a.table.columns.includes(column));
    if (having.length === 1) return { access: having[0] as MutableAccess, column };
    // Ambiguous, or from a subquery/function in FROM whose columns are not tracked.
    return having.length > 1 || scope.opaque.size > 0 ? 'opaque' : undefined;
  }
  const qualifier = parts[parts.length - 2] as string;
  const schema = parts.length >= 3 ? parts[parts.length - 3] : undefined;
  if (scope.opaque.has(qualifier)) return 'opaque';
  const access = scope.accesses.find(
    (a) => a.alias === qualifier && (schema === undefined || a.table.schema === schema) && a.table.columns.includes(column),
  );
  return access === undefined ? undefined : { access, column };
}

function isStar(node: unknown): boolean {
  const entry = nodeEntry(node);
  return entry?.[0] === 'ColumnRef' && list(entry[1]['fields']).some((f) => nodeEntry(f)?.[0] === 'A_Star');
}

function star(scope: Scope, node: unknown): void {
  const fields = list(nodeEntry(node)?.[1]['fields']);
  const qualifier = fields.length > 1 ? nodeEntry(fields[fields.length - 2])?.[1]['sval'] : undefined;
  for (const a of scope.accesses) if (qualifier === undefined || a.alias === qualifier) a.allColumns = true;
}

/** Marks every column an expression mentions; subqueries inside it get their own scopes. */
function expression(walk: Walk, scope: Scope, node: unknown): void {
  if (node === undefined || node === null) return;
  if (Array.isArray(node)) {
    for (const item of node) expression(walk, scope, item);
    return;
  }
  const entry = nodeEntry(node);
  if (entry === undefined) {
    if (typeof node === 'object') for (const v of Object.values(node)) expression(walk, scope, v);
    return;
  }
  const [type, fields] = entry;
  if (type === 'ColumnRef') {
    const resolved = resolveColumn(scope, node);
    if (resolved !== undefined && resolved !== 'outer') resolved.access.referenced.add(resolved.column);
    return;
  }
  if (type === 'SubLink') {
    expression(walk, scope, fields['testexpr']);
    statement(walk, fields['subselect'], scope, scope.ctes);
    return;
  }
  if (type === 'SelectStmt') {
    statement(walk, node, scope, scope.ctes);
    return;
  }
  for (const v of Object.values(fields)) expression(walk, scope, v);
}

/** The top-level AND-ed conditions of a WHERE / ON clause. */
function conjuncts(node: unknown): unknown[] {
  const entry = nodeEntry(node);
  if (entry?.[0] === 'BoolExpr' && entry[1]['boolop'] === 'AND_EXPR') return list(entry[1]['args']).flatMap(conjuncts);
  return node === undefined || node === null ? [] : [node];
}

const RANGE_OPERATORS = new Set(['<', '<=', '>', '>=']);
const FLIPPED: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=', '=': '=', '<>': '<>', '!=': '<>' };

function where(walk: Walk, scope: Scope, node: unknown): void {
  for (const condition of conjuncts(node)) {
    expression(walk, scope, condition);
    predicate(walk, scope, condition);
  }
}

function predicate(walk: Walk, scope: Scope, condition: unknown): void {
  const entry = nodeEntry(condition);
  if (entry === undefined) return;
  const [type, fields] = entry;
  if (type === 'A_Expr') return comparison(walk, scope, condition, fields);
  if (type === 'NullTest') {
    const col = resolveColumn(scope, fields['arg']);
    if (col === undefined || col === 'outer') return;
    const negated = fields['nulltesttype'] === 'IS_NOT_NULL';
    col.access.constantPredicates.push({ kind: 'null', column: col.column, negated, sql: sourceText(walk, condition) ?? '' });
    if (fields['nulltesttype'] === 'IS_NULL') col.access.equality.push({ column: col.column, operator: 'IS NULL', operand: { kind: 'expr' } });
    return;
  }
  if (type === 'ColumnRef' || type === 'BooleanTest' || (type === 'BoolExpr' && fields['boolop'] === 'NOT_EXPR')) {
    // `WHERE active`, `WHERE NOT archived`, `WHERE active IS TRUE`: a boolean column filter.
    const inner = type === 'ColumnRef' ? condition : type === 'BooleanTest' ? fields['arg'] : list(fields['args'])[0];
    const col = resolveColumn(scope, inner);
    if (col === undefined || col === 'outer') return;
    const test = fields['booltesttype'];
    // IS NOT FALSE / IS NOT TRUE also let NULL through: not the same rows as a plain boolean filter.
    if (type === 'BooleanTest' && test !== 'IS_TRUE' && test !== 'IS_FALSE') return;
    const value = type === 'ColumnRef' || test === 'IS_TRUE';
    col.access.constantPredicates.push({ kind: 'bool', column: col.column, value, sql: sourceText(walk, condition) ?? '' });
  }
}

function comparison(walk: Walk, scope: Scope, condition: unknown, fields: Fields): void {
  const kind = fields['kind'];
  const operator = nodeEntry(list(fields['name'])[0])?.[1]['sval'];
  if (typeof operator !== 'string') return;
  let left = resolveColumn(scope, fields['lexpr']);
  let right = resolveColumn(scope, fields['rexpr']);
  let op = operator;
  let valueNode = fields['rexpr'];
  if ((left === undefined || left === 'outer') && right !== undefined && right !== 'outer' && kind === 'AEXPR_OP') {
    [left, right] = [right, left];
    op = FLIPPED[operator] ?? operator;
    valueNode = fields['lexpr'];
  }
  if (left === undefined || left === 'outer') return;
  const column = left.column;
  const access = left.access;
  if (right !== undefined && right !== 'outer') {
    // column = column: a join between two tables of this scope (or a same-table comparison: nothing to index).
    if (operator === '=' && right.access !== access) {
      access.joins.push({ column, other: `${right.access.table.schema}.${right.access.table.name}.${right.column}` });
      right.access.joins.push({ column: right.column, other: `${access.table.schema}.${access.table.name}.${column}` });
    }
    return;
  }
  const operand = operandOf(walk, scope, valueNode);
  if (operand === undefined) return;
  const record = (list: ColumnPredicate[], opName: string, value: Operand): void => {
    list.push({ column, operator: opName, operand: value });
    if (value.kind === 'param') {
      walk.parameters.push({ number: value.number, schema: access.table.schema, table: access.table.name, column, operator: opName });
    }
  };
  switch (kind) {
    case 'AEXPR_OP':
      if (op === '=') record(access.equality, '=', operand);
      else if (RANGE_OPERATORS.has(op)) record(access.range, op, operand);
      if (operand.kind === 'const') {
        access.constantPredicates.push({ kind: 'compare', column, operator: op, value: operand.sql, sql: sourceText(walk, condition) ?? '' });
      }
      return;
    case 'AEXPR_IN':
      if (op === '=') {
        access.equality.push({ column, operator: 'IN', operand: { kind: 'expr' } });
        for (const item of list(nodeEntry(fields['rexpr'])?.[1]['items'] ?? fields['rexpr'])) {
          const value = operandOf(walk, scope, item);
          if (value?.kind === 'param') walk.parameters.push({ number: value.number, schema: access.table.schema, table: access.table.name, column, operator: '=' });
        }
      }
      return;
    case 'AEXPR_OP_ANY':
      if (op === '=') access.equality.push({ column, operator: '= ANY', operand });
      return;
    case 'AEXPR_BETWEEN':
    case 'AEXPR_BETWEEN_SYM': {
      const bounds = list(nodeEntry(fields['rexpr'])?.[1]['items'] ?? fields['rexpr']);
      for (const [i, bound] of bounds.entries()) {
        const value = operandOf(walk, scope, bound) ?? { kind: 'expr' as const };
        record(access.range, i === 0 ? '>=' : '<=', value);
      }
      return;
    }
    default:
      return;
  }
}

/** What a column is compared with, or undefined when it involves columns of this scope. */
function operandOf(walk: Walk, scope: Scope, node: unknown): Operand | undefined {
  const entry = nodeEntry(node);
  if (entry === undefined) {
    // IN lists arrive as bare arrays of nodes.
    if (Array.isArray(node)) return node.every((n) => operandOf(walk, scope, n) !== undefined) ? { kind: 'expr' } : undefined;
    return undefined;
  }
  const [type, fields] = entry;
  if (type === 'ParamRef' && typeof fields['number'] === 'number') return { kind: 'param', number: fields['number'] };
  if (type === 'TypeCast') {
    const inner = operandOf(walk, scope, fields['arg']);
    if (inner?.kind === 'const') return { kind: 'const', sql: sourceText(walk, node) ?? inner.sql };
    return inner;
  }
  if (type === 'A_Const') return { kind: 'const', sql: sourceText(walk, node) ?? '' };
  // A scalar subquery is one value per execution (or per outer row, when correlated): a lookup key either way.
  if (type === 'SubLink') return { kind: 'expr' };
  let local = false;
  visitTree(node, (t, value) => {
    if (t === 'ColumnRef') {
      const resolved = resolveColumn(scope, { ColumnRef: value });
      if (resolved !== undefined && resolved !== 'outer') local = true;
    }
  });
  return local ? undefined : { kind: 'expr' };
}

function groupBy(walk: Walk, scope: Scope, items: unknown[], targets: unknown[]): void {
  for (const item of items) {
    const col = resolveColumn(scope, targetOf(item, targets));
    if (col !== undefined && col !== 'outer' && !col.access.groupBy.includes(col.column)) col.access.groupBy.push(col.column);
    expression(walk, scope, item);
  }
}

/** ORDER BY: kept for a table only when every key is one of its plain columns. */
function orderBy(walk: Walk, scope: Scope, items: unknown[], targets: unknown[]): void {
  const keys: { access: MutableAccess; sort: SortColumn }[] = [];
  let usable = items.length > 0;
  for (const item of items) {
    const sortBy = nodeEntry(item)?.[1];
    expression(walk, scope, sortBy?.['node']);
    const col = resolveColumn(scope, targetOf(sortBy?.['node'], targets));
    if (col === undefined || col === 'outer') {
      usable = false;
      continue;
    }
    const direction = sortBy?.['sortby_dir'] === 'SORTBY_DESC' ? 'desc' : 'asc';
    const nullsWord = sortBy?.['sortby_nulls'];
    const nulls = nullsWord === 'SORTBY_NULLS_FIRST' ? 'first' : nullsWord === 'SORTBY_NULLS_LAST' ? 'last' : undefined;
    keys.push({ access: col.access, sort: { column: col.column, direction, ...(nulls === undefined ? {} : { nulls }) } });
  }
  const first = keys[0]?.access;
  if (!usable || first === undefined || keys.some((k) => k.access !== first)) return;
  first.orderBy.push(...keys.map((k) => k.sort));
}

/** `ORDER BY 2` / `GROUP BY 1` name a select-list entry by position; an alias names one by name. */
function targetOf(node: unknown, targets: unknown[]): unknown {
  const entry = nodeEntry(node);
  const position = entry?.[0] === 'A_Const' ? (entry[1]['ival'] as { ival?: number } | undefined)?.ival : undefined;
  if (typeof position === 'number') return nodeEntry(targets[position - 1])?.[1]['val'];
  if (entry?.[0] === 'ColumnRef') {
    const parts = list(entry[1]['fields']);
    const name = parts.length === 1 ? nodeEntry(parts[0])?.[1]['sval'] : undefined;
    const aliased = targets.find((t) => nodeEntry(t)?.[1]['name'] === name);
    if (typeof name === 'string' && aliased !== undefined) return nodeEntry(aliased)?.[1]['val'];
  }
  return node;
}

function limitOf(node: unknown): number | 'param' | undefined {
  const entry = nodeEntry(node);
  if (entry === undefined) return undefined;
  if (entry[0] === 'A_Const') {
    const ival = (entry[1]['ival'] as { ival?: number } | undefined)?.ival;
    return typeof ival === 'number' ? ival : undefined;
  }
  if (entry[0] === 'ParamRef') return 'param';
  if (entry[0] === 'TypeCast') return limitOf(entry[1]['arg']);
  return undefined;
}

/**
 * The statement's own text for a node, from its location to the end of the last location inside it
 * (plus the token there). Good enough for predicates, which are short; undefined without locations.
 */
function sourceText(walk: Walk, node: unknown): string | undefined {
  let start = Number.POSITIVE_INFINITY;
  let end = -1;
  const mark = (value: Fields): void => {
    const at = value['location'];
    if (typeof at === 'number' && at >= 0) {
      start = Math.min(start, at);
      end = Math.max(end, at);
    }
  };
  const entry = nodeEntry(node);
  if (entry) mark(entry[1]);
  visitTree(node, (_type, value) => mark(value));
  if (end < 0) return undefined;
  const rest = walk.text.subarray(end).toString('utf8');
  // NullTest and BooleanTest are located at their IS: take the whole test.
  const test = /^IS\s+(NOT\s+)?(NULL|TRUE|FALSE|UNKNOWN)\b/iu.exec(rest)?.[0];
  // `'open'::text` is located at its `::`: take the type name too (pg_get_viewdef writes every constant so).
  const cast = /^::\s*(?:"(?:[^"]|"")*"|[\w.]+)(?:\s+(?:varying|precision|with(?:out)?\s+time\s+zone))?(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\s*\[\])*/u.exec(rest)?.[0];
  const token = test ?? cast ?? /^('(?:[^']|'')*'|"(?:[^"]|"")*"|\$\d+|[\w.$]+|\S)/u.exec(rest)?.[0] ?? '';
  const head = walk.text.subarray(start, end).toString('utf8');
  let sql = `${head}${token}`.trim();
  // `(a = 1)` parenthesised in the source: drop an unbalanced opening parenthesis.
  while (sql.startsWith('(') && count(sql, '(') > count(sql, ')')) sql = sql.slice(1).trimStart();
  return sql;
}

function count(text: string, char: string): number {
  return text.split(char).length - 1;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
