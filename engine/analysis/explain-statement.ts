import type pg from 'pg';
import { ANALYSIS_SERVER_SQL, PLAN_RELATIONS_SQL } from '../catalog/analysis-queries.ts';
import { ident, literal } from '../sql/ident.ts';
import { columnUsage } from './column-usage.ts';
import { readExplain, relationLabel, walkPlan, type ExplainResult } from './explain-plan.ts';
import { sampleParameters, type BoundParameter } from './parameter-values.ts';
import type { RelationFacts } from './plan-finding.ts';
import { parseStatement, type ParsedStatement } from './sql-statement.ts';
import { readTableStatistics, tableResolver, type TableStatistics } from './table-statistics.ts';

/** What `analyze` and `advise` need to know about the server before they explain anything. */
export interface ServerFacts {
  readonly database: string;
  readonly serverVersion: number;
  /** A standby: nothing can be written, so a write statement is never executed there. */
  readonly inRecovery: boolean;
  /** default_transaction_read_only (or a read-only role): the same for writes. */
  readonly readOnly: boolean;
  readonly workMemKb: number;
  /** shared_preload_libraries; null when this role may not read it. */
  readonly preload: string | null;
  readonly pgssSchema: string | null;
  readonly hypopgSchema: string | null;
  readonly hypopgVersion: string | null;
  /** When the database's statistics were last reset (the evidence window of scan counters). */
  readonly statsReset: string | null;
  readonly searchPath: readonly string[];
}

interface ServerRow {
  database: string;
  server_version: number;
  in_recovery: boolean;
  read_only: boolean;
  work_mem_kb: string;
  preload: string | null;
  pgss_schema: string | null;
  hypopg_schema: string | null;
  hypopg_version: string | null;
  stats_reset: Date | null;
  search_path: string;
}

export async function readServerFacts(client: pg.ClientBase): Promise<ServerFacts> {
  const row = (await client.query<ServerRow>(ANALYSIS_SERVER_SQL)).rows[0];
  if (row === undefined) throw new Error('the server returned no facts about itself');
  return {
    database: row.database,
    serverVersion: row.server_version,
    inRecovery: row.in_recovery,
    readOnly: row.read_only,
    workMemKb: Number(row.work_mem_kb),
    preload: row.preload,
    pgssSchema: row.pgss_schema,
    hypopgSchema: row.hypopg_schema,
    hypopgVersion: row.hypopg_version,
    statsReset: row.stats_reset === null ? null : row.stats_reset.toISOString(),
    searchPath: row.search_path === '' ? [] : row.search_path.split(','),
  };
}

/**
 * Keeps this session's own statements (catalog reads, EXPLAINs, hypopg calls) out of
 * pg_stat_statements, so that pgwarden does not show up in the workload it analyses. The setting is
 * superuser-only; for other roles it stays as it is and their statements are left out by kind instead.
 */
export async function quietStatements(client: pg.ClientBase): Promise<void> {
  await client.query("SET pg_stat_statements.track = 'none'").catch(() => undefined);
}

/** The statement cannot be explained as asked; nothing was run. */
export class ExplainRefused extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** The server refused the EXPLAIN (a table that no longer exists, a type mismatch ...). */
export class ExplainFailed extends Error {
  constructor(
    message: string,
    readonly statement: string,
  ) {
    super(message);
  }
}

/**
 * How the plan was obtained:
 * - `plain`: no parameters; `bound`: the values given with --param;
 * - `generic-plan`: EXPLAIN (GENERIC_PLAN), PostgreSQL 16+;
 * - `prepared-generic`: before 16, PREPARE and EXPLAIN EXECUTE under plan_cache_mode =
 *   force_generic_plan, with values sampled from pg_stats (they only matter to run-time pruning);
 * - `sampled`: parameters bound to values sampled from pg_stats (a custom plan; needed for ANALYZE).
 */
export type PlanMethod = 'plain' | 'bound' | 'generic-plan' | 'prepared-generic' | 'sampled';

export interface ExplainOptions {
  readonly analyze: boolean;
  /** Values for $1, $2, ... as text (`--param`). */
  readonly params?: readonly string[];
  /** statement_timeout for ANALYZE; the statement really runs. */
  readonly timeoutMs?: number;
  /** Tables already read (the advisor passes its own). */
  readonly tables?: ReadonlyMap<string, TableStatistics>;
}

export interface ExplainedStatement {
  readonly statement: ParsedStatement;
  readonly explain: ExplainResult;
  readonly method: PlanMethod;
  readonly parameters: readonly BoundParameter[];
  readonly analyzed: boolean;
  /** ANALYZE ran inside a transaction that was rolled back. */
  readonly rolledBack: boolean;
  readonly tables: ReadonlyMap<string, TableStatistics>;
}

/** Explains one statement; parses it first (refusing several statements or a syntax error). */
export async function explainStatement(
  client: pg.ClientBase,
  facts: ServerFacts,
  sql: string | ParsedStatement,
  options: ExplainOptions,
): Promise<ExplainedStatement> {
  const statement = typeof sql === 'string' ? await parseStatement(sql) : sql;
  if (!statement.ok) {
    const at = statement.position === undefined ? '' : ` at character ${statement.position + 1}`;
    throw new ExplainRefused(`the statement does not parse: ${statement.message}${at}`);
  }
  if (statement.kind === 'utility') {
    throw new ExplainRefused('only SELECT, INSERT, UPDATE, DELETE, MERGE and VALUES statements can be explained');
  }
  const given = options.params;
  if (given !== undefined && given.length > 0 && given.length !== statement.parameterCount) {
    throw new ExplainRefused(
      `the statement has ${statement.parameterCount} parameter(s) ($1..$${statement.parameterCount}) but ${given.length} --param value(s) were given`,
    );
  }
  if (options.analyze && !statement.readOnly && (facts.inRecovery || facts.readOnly)) {
    const where = facts.inRecovery ? 'a standby (the server is in recovery)' : 'a read-only session (transaction_read_only is on)';
    throw new ExplainRefused(
      `refusing to EXPLAIN ANALYZE ${article(statement.kind)} ${statement.kind.toUpperCase()} on ${where}: it would have to write`,
      'run it against the primary (it runs in a transaction that is rolled back), or drop --analyze for the plan alone',
    );
  }

  const tables = options.tables ?? (await readTableStatistics(client, statement.relations));
  const run = { client, facts, statement, tables, options };
  if (statement.parameterCount === 0) return finish(run, 'plain', [], await explainWith(run, []));
  if (given !== undefined && given.length > 0) {
    const bound = given.map((value, i): BoundParameter => ({ number: i + 1, value, source: 'given', note: 'given with --param' }));
    return finish(run, 'bound', bound, await explainWith(run, bound));
  }
  if (!options.analyze && facts.serverVersion >= 160000) {
    return finish(run, 'generic-plan', [], await explainWith(run, [], { generic: true }));
  }
  // Sampled values: the parameter types come from PREPARE, the values from pg_stats.
  const name = `pgwarden_explain_${process.pid}_${(counter += 1)}`;
  await query(run, `PREPARE ${ident(name)} AS ${statement.text}`, []);
  try {
    const types = await parameterTypes(client, name);
    const usage = columnUsage(statement.tree, statement.text, tableResolver(tables, facts.searchPath));
    const sampled = sampleParameters(statement, usage, tables, types);
    if (options.analyze) return finish(run, 'sampled', sampled, await explainWith(run, sampled));
    return finish(run, 'prepared-generic', sampled, await explainWith(run, sampled, { prepared: name }));
  } finally {
    await client.query(`DEALLOCATE ${ident(name)}`).catch(() => undefined);
  }
}

let counter = 0;

interface Run {
  readonly client: pg.ClientBase;
  readonly facts: ServerFacts;
  readonly statement: ParsedStatement;
  readonly tables: ReadonlyMap<string, TableStatistics>;
  readonly options: ExplainOptions;
}

function finish(run: Run, method: PlanMethod, parameters: readonly BoundParameter[], explain: ExplainResult): ExplainedStatement {
  return {
    statement: run.statement,
    explain,
    method,
    parameters,
    analyzed: run.options.analyze,
    rolledBack: run.options.analyze,
    tables: run.tables,
  };
}

/**
 * One EXPLAIN, always inside a transaction that is rolled back: READ ONLY for a read-only statement
 * (a function it calls cannot write either), read-write for the rest, with lock and statement
 * timeouts so that ANALYZE of a write waits for nobody for long.
 */
async function explainWith(
  run: Run,
  values: readonly BoundParameter[],
  how: { generic?: boolean; prepared?: string } = {},
): Promise<ExplainResult> {
  const { client, statement, options } = run;
  const flags = ['FORMAT JSON', 'VERBOSE', 'SETTINGS'];
  if (options.analyze) flags.push('ANALYZE', 'BUFFERS');
  if (how.generic) flags.push('GENERIC_PLAN');
  await client.query(statement.readOnly ? 'BEGIN READ ONLY' : 'BEGIN');
  try {
    await client.query('SET LOCAL lock_timeout = 5000');
    if (options.analyze) await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.round(options.timeoutMs ?? 60_000))}`);
    let rows: Record<string, unknown>[];
    if (how.prepared !== undefined) {
      // EXECUTE's arguments cannot be bind parameters (it is a utility statement): they are literals.
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      const args = values.map((v) => (v.value === null ? 'NULL' : literal(v.value))).join(', ');
      rows = await query(run, `EXPLAIN (${flags.join(', ')}) EXECUTE ${ident(how.prepared)}(${args})`, []);
    } else {
      // GENERIC_PLAN goes over the simple protocol: over the extended one the server would expect values
      // for the $n it finds, and values bound there would be planned as constants.
      const mode = how.generic ? 'simple' : 'extended';
      rows = await query(run, `EXPLAIN (${flags.join(', ')}) ${statement.text}`, values.map((v) => v.value), mode);
    }
    const value = rows[0]?.['QUERY PLAN'];
    return readExplain(value);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/**
 * Sends statement text, by default over the extended protocol, which refuses a second statement. The
 * text was checked by PostgreSQL's parser to be exactly one statement before it gets here; the simple
 * protocol is used only where the extended one cannot express the request (GENERIC_PLAN).
 */
async function query(
  run: Run,
  text: string,
  values: readonly (string | null)[],
  mode: 'extended' | 'simple' = 'extended',
): Promise<Record<string, unknown>[]> {
  // EXPLAIN's json comes back as text (no parsing by the driver): its Query Identifier is a 64-bit integer.
  const types = { getTypeParser: () => (raw: string) => raw };
  const config = mode === 'extended' ? { text, values: [...values], queryMode: 'extended' as const, types } : { text, types };
  try {
    return (await run.client.query<Record<string, unknown>>(config)).rows;
  } catch (error) {
    throw new ExplainFailed((error as Error).message, run.statement.text);
  }
}

async function parameterTypes(client: pg.ClientBase, name: string): Promise<string[]> {
  // pg_prepared_statements.parameter_types is regtype[]; as text it is the format_type() spelling.
  const r = await client.query<{ types: string[] | null }>(
    'SELECT parameter_types::text[] AS types FROM pg_catalog.pg_prepared_statements WHERE name = $1',
    [name],
  );
  return r.rows[0]?.types ?? [];
}

function article(kind: string): string {
  return /^[aeiou]/i.test(kind) ? 'an' : 'a';
}

interface RelationRow {
  schema: string;
  name: string;
  row_estimate: number;
  pages: string;
  all_visible: string;
  parent_schema: string | null;
  parent_name: string | null;
  parent_key: string | null;
  leaf_schemas: string[] | null;
  leaf_names: string[] | null;
}

/** Facts about every relation the plans read, for their findings: one round trip. */
export async function planRelationFacts(client: pg.ClientBase, explains: readonly ExplainResult[]): Promise<Map<string, RelationFacts>> {
  const names = new Map<string, { schema: string; name: string }>();
  for (const explain of explains) {
    for (const node of walkPlan(explain.plan)) {
      const label = relationLabel(node);
      if (label !== undefined && node.relation?.schema !== undefined) names.set(label, { schema: node.relation.schema, name: node.relation.name });
    }
  }
  if (names.size === 0) return new Map();
  const wanted = [...names.values()];
  const rows = (await client.query<RelationRow>(PLAN_RELATIONS_SQL, [wanted.map((w) => w.schema), wanted.map((w) => w.name)])).rows;
  return new Map(
    rows.map((r): [string, RelationFacts] => [
      `${r.schema}.${r.name}`,
      {
        schema: r.schema,
        name: r.name,
        rows: r.row_estimate,
        pages: Number(r.pages),
        allVisiblePages: Number(r.all_visible),
        ...(r.parent_schema === null || r.parent_name === null
          ? {}
          : {
              parent: {
                schema: r.parent_schema,
                name: r.parent_name,
                partitions: (r.leaf_names ?? []).map((name, i) => ({ schema: r.leaf_schemas?.[i] ?? r.parent_schema ?? '', name })),
                ...(r.parent_key === null ? {} : { key: r.parent_key }),
              },
            }),
      },
    ]),
  );
}
