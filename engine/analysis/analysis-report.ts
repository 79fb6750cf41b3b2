import type pg from 'pg';
import type { BoundParameter } from './parameter-values.ts';
import {
  explainStatement,
  ExplainFailed,
  ExplainRefused,
  planRelationFacts,
  type PlanMethod,
  type ServerFacts,
} from './explain-statement.ts';
import type { ExplainResult, PlanNode } from './explain-plan.ts';
import { formatPartitionPruning } from './partition-pruning.ts';
import { planFindings, prunedPartitions, type Finding, type RelationFacts } from './plan-finding.ts';
import { parseStatement, type StatementParse } from './sql-statement.ts';
import {
  cumulativeWindow,
  readSnapshot,
  requireStatements,
  sharesOver,
  statementDelta,
  topStatements,
  type StatementStats,
  type StatementWindow,
} from './statement-stats.ts';

/**
 * `pgwarden analyze`: the statements that cost the most, their plans and what is wrong with them.
 * Two shapes: a workload report (pg_stat_statements, top-N lists, findings for the heaviest) and a
 * query report (one statement's plan, every node, its findings).
 */

export interface PlanSummary {
  readonly method: PlanMethod;
  readonly parameters: readonly BoundParameter[];
  readonly analyzed: boolean;
  readonly rolledBack: boolean;
  /**
   * An INSERT or MERGE was executed: the values it drew from sequences (serial and identity columns)
   * are used up all the same, since nextval() is never rolled back.
   */
  readonly sequencesAdvanced: boolean;
  readonly totalCost: number;
  readonly planningMs?: number;
  readonly executionMs?: number;
}

/** "N of M partitions scanned, X% pruned", per partitioned table the plan reads. */
export interface PartitionLine {
  readonly parent: string;
  readonly scanned: number;
  readonly total: number;
  /** 0-100. */
  readonly prunedPercent: number;
  readonly text: string;
}

export interface StatementAnalysis {
  readonly statement: StatementStats;
  readonly plan?: PlanSummary;
  readonly findings: readonly Finding[];
  /** Why there is no plan: the parser or the server refused it (a dropped table, say). */
  readonly error?: string;
}

export interface WorkloadReport {
  readonly kind: 'workload';
  readonly database: string;
  readonly serverVersion: number;
  readonly window: Omit<StatementWindow, 'statements'> & { readonly statementCount: number };
  readonly top: { readonly total: readonly StatementStats[]; readonly mean: readonly StatementStats[]; readonly calls: readonly StatementStats[] };
  readonly analyses: readonly StatementAnalysis[];
  /** Statements left out of the lists: utility (BEGIN, SET, DDL), catalog-only reads, texts the user may not see. */
  readonly leftOut: { readonly utility: number; readonly catalogOnly: number; readonly hidden: number };
}

export interface QueryReport {
  readonly kind: 'query';
  readonly database: string;
  readonly serverVersion: number;
  readonly statement: string;
  readonly plan: PlanSummary;
  readonly tree: PlanNode;
  readonly explain: ExplainResult;
  readonly findings: readonly Finding[];
  readonly partitions: readonly PartitionLine[];
}

export interface WorkloadOptions {
  /** Entries per top list. */
  readonly top: number;
  /** How many of the heaviest statements (by total time) are explained for findings. */
  readonly explain: number;
  /** Take a snapshot, wait this long, take another: the window is what happened in between. */
  readonly sinceMs?: number;
  readonly analyze: boolean;
  /** statement_timeout for ANALYZE of each explained statement (`--timeout`). */
  readonly timeoutMs?: number;
  /** Keep utility and catalog-only statements in the lists. */
  readonly all: boolean;
  /** A window measured already (the demo shares one between analyze and advise). */
  readonly window?: StatementWindow;
  readonly now: () => Date;
  readonly wait: (ms: number) => Promise<void>;
  readonly onProgress?: (message: string) => void;
}

const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema', 'pgwarden']);

export async function analyzeWorkload(client: pg.ClientBase, facts: ServerFacts, options: WorkloadOptions): Promise<WorkloadReport> {
  const schema = requireStatements(facts);
  let window: StatementWindow;
  if (options.window !== undefined) {
    window = options.window;
  } else if (options.sinceMs !== undefined) {
    const before = await readSnapshot(client, schema, options.now);
    options.onProgress?.(`sampling pg_stat_statements for ${Math.round(options.sinceMs / 1000)} s (Ctrl-C ends the window early)`);
    await options.wait(options.sinceMs);
    window = statementDelta(before, await readSnapshot(client, schema, options.now));
  } else {
    window = cumulativeWindow(await readSnapshot(client, schema, options.now));
  }

  const parsed = new Map<string, StatementParse>();
  const leftOut = { utility: 0, catalogOnly: 0, hidden: 0 };
  const classify = async (s: StatementStats): Promise<'keep' | keyof typeof leftOut> => {
    if (s.query === '<insufficient privilege>') return 'hidden';
    let p = parsed.get(s.key);
    if (p === undefined) {
      p = await parseStatement(s.query);
      parsed.set(s.key, p);
    }
    if (options.all || !p.ok) return 'keep';
    if (p.kind === 'utility') return 'utility';
    const user = p.relations.filter((r) => !SYSTEM_SCHEMAS.has(r.schema ?? '') && !r.name.startsWith('pg_'));
    return user.length === 0 ? 'catalogOnly' : 'keep';
  };
  const listed: StatementStats[] = [];
  for (const s of window.statements) {
    const verdict = await classify(s);
    if (verdict === 'keep') listed.push(s);
    else leftOut[verdict] += 1;
  }
  const kept = sharesOver(listed);

  const heaviest = topStatements(kept, 'total', options.explain);
  const analyses: StatementAnalysis[] = [];
  const explained: { index: number; explain: ExplainResult; genericPlan: boolean }[] = [];
  for (const s of heaviest) {
    const p = parsed.get(s.key);
    if (p === undefined || !p.ok) {
      analyses.push({ statement: s, findings: [], error: `the parser rejects it: ${p?.ok === false ? p.message : 'not parsed'}` });
      continue;
    }
    try {
      const result = await explainStatement(client, facts, p, {
        analyze: options.analyze,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      });
      explained.push({ index: analyses.length, explain: result.explain, genericPlan: result.method === 'generic-plan' });
      analyses.push({ statement: s, plan: summary(result), findings: [] });
    } catch (error) {
      if (!(error instanceof ExplainFailed || error instanceof ExplainRefused)) throw error;
      analyses.push({ statement: s, findings: [], error: error.message });
    }
  }
  const relations = await planRelationFacts(client, explained.map((e) => e.explain));
  for (const { index, explain, genericPlan } of explained) {
    const analysis = analyses[index] as StatementAnalysis;
    analyses[index] = { ...analysis, findings: planFindings(explain, { relations, workMemKb: facts.workMemKb, genericPlan }) };
  }

  const { statements: _all, ...rest } = window;
  return {
    kind: 'workload',
    database: facts.database,
    serverVersion: facts.serverVersion,
    window: { ...rest, totalMs: kept.reduce((n, s) => n + s.totalMs, 0), calls: kept.reduce((n, s) => n + s.calls, 0), statementCount: kept.length },
    top: {
      total: topStatements(kept, 'total', options.top),
      mean: topStatements(kept, 'mean', options.top),
      calls: topStatements(kept, 'calls', options.top),
    },
    analyses,
    leftOut,
  };
}

function summary(result: Awaited<ReturnType<typeof explainStatement>>): PlanSummary {
  return {
    method: result.method,
    parameters: result.parameters,
    analyzed: result.analyzed,
    rolledBack: result.rolledBack,
    sequencesAdvanced: result.rolledBack && (result.statement.kind === 'insert' || result.statement.kind === 'merge'),
    totalCost: result.explain.plan.totalCost,
    ...(result.explain.planningMs === undefined ? {} : { planningMs: result.explain.planningMs }),
    ...(result.explain.executionMs === undefined ? {} : { executionMs: result.explain.executionMs }),
  };
}

export interface QueryOptions {
  readonly analyze: boolean;
  readonly params?: readonly string[];
  readonly timeoutMs?: number;
}

/** One statement: its plan with every node, the findings, and partition pruning per partitioned table. */
export async function analyzeQuery(client: pg.ClientBase, facts: ServerFacts, sql: string, options: QueryOptions): Promise<QueryReport> {
  const result = await explainStatement(client, facts, sql, {
    analyze: options.analyze,
    ...(options.params === undefined ? {} : { params: options.params }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  const relations = await planRelationFacts(client, [result.explain]);
  const genericPlan = result.method === 'generic-plan';
  return {
    kind: 'query',
    database: facts.database,
    serverVersion: facts.serverVersion,
    statement: result.statement.text,
    plan: summary(result),
    tree: result.explain.plan,
    explain: result.explain,
    findings: planFindings(result.explain, { relations, workMemKb: facts.workMemKb, genericPlan }),
    partitions: partitionLines(result.explain.plan, relations, genericPlan),
  };
}

/** "N of M partitions scanned, X% pruned" per partitioned table, in issue 4's words (formatPartitionPruning). */
export function partitionLines(root: PlanNode, relations: ReadonlyMap<string, RelationFacts>, genericPlan = false): PartitionLine[] {
  return prunedPartitions(root, relations, genericPlan).map(({ parent, pruning, prunedAtStartupOnParameters }) => ({
    parent: `${parent.schema}.${parent.name}`,
    scanned: pruning.scanned,
    total: pruning.total,
    prunedPercent: pruning.prunedPercent,
    text: prunedAtStartupOnParameters
      ? `${formatPartitionPruning(pruning)} in this generic plan; the partition key is compared with $n, so each execution prunes at executor startup once it has values (--param shows it)`
      : formatPartitionPruning(pruning),
  }));
}
