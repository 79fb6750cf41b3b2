import type pg from 'pg';
import { columnUsage, type ColumnUsage } from '../analysis/column-usage.ts';
import { columnTypesOf, plannableStatement } from '../analysis/plannable-statement.ts';
import { parseStatement, type ParsedStatement, type RelationName } from '../analysis/sql-statement.ts';
import type { StatementStats } from '../analysis/statement-stats.ts';
import { readTableStatistics, tableResolver, type TableStatistics } from '../analysis/table-statistics.ts';
import { throughViews, viewMapping, type ViewMapping } from '../analysis/view-mapping.ts';
import { VIEW_DEFINITIONS_SQL } from '../catalog/analysis-queries.ts';

/**
 * The workload the advisor optimises: the statements of a pg_stat_statements window, parsed by
 * PostgreSQL's parser, with how each uses its tables. Statements the parser rejects, or that name
 * a table that no longer exists, are kept aside with the reason — the rest go on.
 */

export interface WorkloadStatement {
  readonly key: string;
  readonly queryId: string;
  /** As pg_stat_statements holds it (normalised). */
  readonly query: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly meanMs: number;
  readonly rowsPerCall: number;
  /** The text planned: the normalised one, rewritten where the server would refuse it as it is. */
  readonly statement: ParsedStatement;
  /** What the rewrite changed ("extract's field $1 read as year"); empty when nothing. */
  readonly repairs: readonly string[];
  readonly usage: ColumnUsage;
}

export interface SkippedStatement {
  readonly key: string;
  readonly queryId: string;
  readonly query: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly reason: 'unparseable' | 'missing-table' | 'unexplainable';
  readonly message: string;
}

export interface Workload {
  readonly statements: readonly WorkloadStatement[];
  readonly skipped: readonly SkippedStatement[];
  readonly tables: ReadonlyMap<string, TableStatistics>;
  /** Utility statements and reads of system catalogs only: nothing to index for. */
  readonly ignored: number;
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema', 'pgwarden']);

function userRelations(relations: readonly RelationName[]): RelationName[] {
  return relations.filter((r) => !SYSTEM_SCHEMAS.has(r.schema ?? '') && !(r.schema === undefined && r.name.startsWith('pg_')));
}

export async function buildWorkload(
  client: pg.ClientBase,
  stats: readonly StatementStats[],
  searchPath: readonly string[],
): Promise<Workload> {
  const parsed: { stats: StatementStats; statement: ParsedStatement }[] = [];
  const skipped: SkippedStatement[] = [];
  let ignored = 0;
  for (const s of stats) {
    if (s.query === '<insufficient privilege>') {
      ignored += 1;
      continue;
    }
    const p = await parseStatement(s.query);
    if (!p.ok) {
      const at = p.position === undefined ? '' : ` at character ${p.position + 1}`;
      skipped.push({ ...skippedBase(s), reason: 'unparseable', message: `the parser rejects it: ${p.message}${at}` });
      continue;
    }
    if (p.kind === 'utility' || userRelations(p.relations).length === 0) {
      ignored += 1;
      continue;
    }
    parsed.push({ stats: s, statement: p });
  }
  const relations = parsed.flatMap((p) => userRelations(p.statement.relations));
  const unique = [...new Map(relations.map((r) => [`${r.schema ?? ''}.${r.name}`, r])).values()];
  const named = await readTableStatistics(client, unique);
  const { tables, views } = await withViewBases(client, named, searchPath);
  const resolve = tableResolver(tables, searchPath);

  const statements: WorkloadStatement[] = [];
  for (const { stats: s, statement: original } of parsed) {
    const own = userRelations(original.relations).flatMap((r) => {
      const shape = resolve(r.schema, r.name);
      const table = shape === undefined ? undefined : tables.get(`${shape.schema}.${shape.name}`);
      return table === undefined ? [] : [table];
    });
    const { statement, repairs } = await plannableStatement(original, columnTypesOf(own));
    const usage = throughViews(columnUsage(statement.tree, statement.text, resolve), views);
    const missing = usage.unknownTables.filter((name) => !isSystemName(name));
    if (missing.length > 0) {
      const names = missing.join(', ');
      skipped.push({ ...skippedBase(s), reason: 'missing-table', message: `table ${names} does not exist (any more)` });
      continue;
    }
    // Only views, foreign tables and system catalogs (pgwarden's own queries, say): nothing to index.
    if (!usage.accesses.some((a) => indexable(tables.get(`${a.table.schema}.${a.table.name}`)?.kind))) {
      ignored += 1;
      continue;
    }
    statements.push({
      key: s.key,
      queryId: s.queryId,
      query: s.query,
      calls: s.calls,
      totalMs: s.totalMs,
      meanMs: s.meanMs,
      rowsPerCall: s.rowsPerCall,
      statement,
      repairs,
      usage,
    });
  }
  return { statements, skipped, tables, ignored };
}

/**
 * The views the workload reads, with the tables under them read too: a statement through a view over one
 * table gets its candidates from that table (view-mapping.ts). The definitions come from pg_get_viewdef,
 * parsed by the same parser as the statements.
 */
async function withViewBases(
  client: pg.ClientBase,
  named: Map<string, TableStatistics>,
  searchPath: readonly string[],
): Promise<{ tables: Map<string, TableStatistics>; views: Map<string, ViewMapping> }> {
  const views = [...named.values()].filter((t) => t.kind === 'view');
  if (views.length === 0) return { tables: named, views: new Map() };
  const rows = (await client.query<{ schema: string; name: string; definition: string }>(VIEW_DEFINITIONS_SQL, [views.map((v) => v.oid)])).rows;
  const parsed = (await Promise.all(rows.map(async (r) => ({ r, p: await parseStatement(r.definition) })))).flatMap(({ r, p }) => (p.ok ? [{ r, p }] : []));
  const bases = parsed.flatMap(({ p }) => userRelations(p.relations)).filter((b) => b.schema === undefined || !named.has(`${b.schema}.${b.name}`));
  const tables = new Map([...named, ...(bases.length === 0 ? [] : await readTableStatistics(client, bases))]);
  const resolve = tableResolver(tables, searchPath);
  const out = new Map<string, ViewMapping>();
  for (const { r, p } of parsed) {
    const view = tables.get(`${r.schema}.${r.name}`);
    const m = view === undefined ? undefined : viewMapping(view, p.tree, p.text, resolve);
    if (m !== undefined && m.base !== view && indexable(tables.get(`${m.base.schema}.${m.base.name}`)?.kind)) out.set(`${r.schema}.${r.name}`, m);
  }
  return { tables, views: out };
}

function isSystemName(name: string): boolean {
  const [first] = name.split('.');
  return name.startsWith('pg_') || SYSTEM_SCHEMAS.has(first ?? '');
}

function indexable(kind: TableStatistics['kind'] | undefined): boolean {
  return kind === 'table' || kind === 'partitioned' || kind === 'matview';
}

function skippedBase(s: StatementStats): Pick<SkippedStatement, 'key' | 'queryId' | 'query' | 'calls' | 'totalMs'> {
  return { key: s.key, queryId: s.queryId, query: s.query, calls: s.calls, totalMs: s.totalMs };
}
