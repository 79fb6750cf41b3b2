import type { Node } from 'libpg-query';
import { columnUsage, type ColumnUsage, type TableAccess, type TableResolver, type TableShape } from './column-usage.ts';
import { nodeEntry } from './sql-statement.ts';

/**
 * A view over one table, as the advisor sees it: which of the table's columns each of the view's plain
 * columns is, and the constant predicates the view always applies. A statement that reads the view reads
 * the table (the planner inlines it), so its predicates, joins and sorts on those columns are the table's
 * and the candidates come from the table. A view over several tables, a UNION or an aggregate is left as
 * it is (nothing to index through it); so is a computed column (`lower(name) AS name_l`).
 */
export interface ViewMapping {
  readonly view: TableShape;
  readonly base: TableShape;
  /** View column → base column, for the view's plain columns only. */
  readonly columns: ReadonlyMap<string, string>;
  /** The view's own constant predicates on the base table (`deleted_at IS NULL`): in every statement through it. */
  readonly constantPredicates: TableAccess['constantPredicates'];
}

type Fields = Record<string, unknown>;

function stringValue(node: unknown): string | undefined {
  const entry = nodeEntry(node);
  if (entry?.[0] !== 'String') return undefined;
  const s = entry[1]['sval'] ?? entry[1]['str'];
  return typeof s === 'string' ? s : undefined;
}

/** The mapping of a view from its definition (pg_get_viewdef's text and parse tree); undefined when it is not a view over one table. */
export function viewMapping(view: TableShape, tree: Node, text: string, resolve: TableResolver): ViewMapping | undefined {
  const select = nodeEntry(tree);
  if (select?.[0] !== 'SelectStmt') return undefined;
  const s = select[1];
  if (s['op'] !== undefined && s['op'] !== 'SETOP_NONE') return undefined;
  if (s['groupClause'] !== undefined || s['distinctClause'] !== undefined || s['havingClause'] !== undefined || s['withClause'] !== undefined) return undefined;
  const from = s['fromClause'];
  if (!Array.isArray(from) || from.length !== 1) return undefined;
  const range = nodeEntry(from[0]);
  if (range?.[0] !== 'RangeVar') return undefined;
  const usage = columnUsage(tree, text, resolve);
  const access = usage.accesses.find((a) => a.write === undefined);
  if (usage.accesses.length !== 1 || access === undefined) return undefined;
  const base = access.table;
  const targets = Array.isArray(s['targetList']) ? s['targetList'] : [];
  const columns = new Map<string, string>();
  const names = view.columns;
  // A view's columns are its target list in order (the names may differ: CREATE VIEW v (a, b) AS ...).
  targets.forEach((target, i) => {
    const t = nodeEntry(target)?.[1] as Fields | undefined;
    const ref = nodeEntry(t?.['val']);
    if (ref?.[0] !== 'ColumnRef') return;
    const fields = Array.isArray(ref[1]['fields']) ? (ref[1]['fields'] as unknown[]) : [];
    const column = stringValue(fields[fields.length - 1]);
    const name = names[i];
    if (column === undefined || name === undefined || !base.columns.includes(column)) return;
    columns.set(name, column);
  });
  if (columns.size === 0) return undefined;
  return { view, base, columns, constantPredicates: access.constantPredicates };
}

/**
 * The usage of a statement with every access to a mapped view made an access to its base table: view
 * columns renamed to the table's, columns the view computes left out, the view's constant predicates
 * added. Parameters compared with a view column are the base column's (their values are sampled there).
 */
export function throughViews(usage: ColumnUsage, views: ReadonlyMap<string, ViewMapping>): ColumnUsage {
  if (views.size === 0) return usage;
  const mappingOf = (t: { schema: string; name: string }): ViewMapping | undefined => views.get(`${t.schema}.${t.name}`);
  const accesses = usage.accesses.map((a): TableAccess => {
    const m = mappingOf(a.table);
    if (m === undefined) return a;
    const col = (c: string): string | undefined => m.columns.get(c);
    const keep = <T extends { column: string }>(xs: readonly T[]): T[] => xs.flatMap((x) => {
      const c = col(x.column);
      return c === undefined ? [] : [{ ...x, column: c }];
    });
    const names = (xs: readonly string[]): string[] => xs.flatMap((x) => (col(x) === undefined ? [] : [col(x) as string]));
    // ORDER BY through the view: an index provides it only when every key is a plain column.
    const orderBy = a.orderBy.every((o) => col(o.column) !== undefined) ? keep(a.orderBy) : [];
    const referenced = a.allColumns ? [...m.columns.values()] : names(a.referenced);
    return {
      ...a,
      table: m.base,
      equality: keep(a.equality),
      range: keep(a.range),
      joins: keep(a.joins),
      orderBy,
      groupBy: a.groupBy.every((g) => col(g) !== undefined) ? names(a.groupBy) : [],
      constantPredicates: [...keep(a.constantPredicates), ...m.constantPredicates],
      referenced: [...new Set([...referenced, ...m.constantPredicates.map((p) => p.column)])].sort(),
      // A computed view column reads base columns this mapping does not know: no index-only scan is assumed then.
      allColumns: a.allColumns ? m.columns.size < m.view.columns.length : a.referenced.some((c) => col(c) === undefined),
      updatedColumns: names(a.updatedColumns),
    };
  });
  const parameters = usage.parameters.flatMap((p) => {
    const m = mappingOf({ schema: p.schema, name: p.table });
    if (m === undefined) return [p];
    const c = m.columns.get(p.column);
    return c === undefined ? [] : [{ ...p, schema: m.base.schema, table: m.base.name, column: c }];
  });
  return { ...usage, accesses, parameters };
}
