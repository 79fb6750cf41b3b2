import type pg from 'pg';
import { loadModule } from 'libpg-query';
import { ExplainFailed, ExplainRefused, type ServerFacts } from '../analysis/explain-statement.ts';
import {
  cumulativeWindow,
  readSnapshot,
  requireStatements,
  statementDelta,
  type StatementWindow,
} from '../analysis/statement-stats.ts';
import { tableKey, type TableStatistics } from '../analysis/table-statistics.ts';
import { FOREIGN_KEYS_SQL, INDEX_PLAIN_KEYS_SQL } from '../catalog/analysis-queries.ts';
import type { ActualIndex, Catalog } from '../catalog/catalog.ts';
import { catalogSession, introspect } from '../catalog/introspect.ts';
import type { DesiredIndex, DesiredState } from '../policy/desired.ts';
import { createIndexSql } from '../sql/ddl.ts';
import type { Evaluator, StatementCost } from './evaluator.ts';
import { hypopgEvaluator } from './hypopg-evaluator.ts';
import { candidateId, candidateIndex, generateCandidates, withKeyPrefixes, type CandidateKey, type IndexCandidate } from './index-candidate.ts';
import { indexName } from './index-name.ts';
import { removalAdvice, type ForeignKey, type RemovalAdvice } from './index-removal.ts';
import { selectIndexes } from './select-indexes.ts';
import { statisticsEvaluator } from './statistics-evaluator.ts';
import {
  readWriteCounters,
  unusedWriteCounters,
  writeCounterDelta,
  writeCountersSinceReset,
  type WriteCounterWindow,
} from './table-write-counters.ts';
import { tableWrites, writeCost, type WriteCost } from './write-cost.ts';
import { buildWorkload, type SkippedStatement, type Workload, type WorkloadStatement } from './workload.ts';
import type { WorkloadFileStatement } from './workload-file.ts';
import { verifyIndexes, type IndexVerification } from './verify-advice.ts';

/**
 * `pgwarden advise`: from the workload (pg_stat_statements) to the few indexes that save the most
 * time, each with its evidence, plus the indexes that could go.
 */

export type EvidenceMethod = 'hypopg' | 'statistics';

export interface StatementEvidence {
  readonly queryId: string;
  readonly query: string;
  readonly calls: number;
  readonly meanMs: number;
  readonly costBefore: number;
  readonly costAfter: number;
  /** meanMs scaled by the cost ratio: what the planner's numbers predict. */
  readonly estimatedMeanMs: number;
  /** Over the window: calls x (mean - estimated mean). */
  readonly savedMs: number;
  readonly accessBefore: string;
  readonly accessAfter: string;
}

export interface IndexAdvice {
  readonly name: string;
  readonly schema: string;
  readonly table: string;
  readonly keys: readonly CandidateKey[];
  readonly include: readonly string[];
  readonly where?: string;
  /** What `apply` will run for it. */
  readonly sql: string;
  /** The size model's estimate (cost-model.ts estimateIndexBytes: pg_stats widths, btree page layout). */
  readonly estimatedBytes: number;
  /** With --budget: the budget left after this index and those listed before it. */
  readonly budgetLeftBytes?: number;
  readonly method: EvidenceMethod;
  readonly savedMs: number;
  readonly writeMs: number;
  readonly netMs: number;
  /** Updates that stop being HOT because the index covers a column they set. */
  readonly hotLostRows: number;
  readonly statements: readonly StatementEvidence[];
}

/** `--budget`: bytes, or a share of the workload's tables' size (`0.25x`). */
export type StorageBudget = { readonly kind: 'bytes'; readonly bytes: number } | { readonly kind: 'share'; readonly share: number };

export interface NotAdvised {
  readonly schema: string;
  readonly table: string;
  readonly keys: readonly CandidateKey[];
  readonly include: readonly string[];
  readonly where?: string;
  /** not-measured-faster: `--verify` built it and measured no gain, or a statement slower with it. */
  readonly reason: 'write-cost' | 'limit' | 'budget' | 'not-measured-faster';
  readonly savedMs: number;
  readonly writeMs: number;
  readonly estimatedBytes: number;
}

export interface RewrittenStatement {
  readonly queryId: string;
  readonly query: string;
  /** The text planned. */
  readonly planned: string;
  readonly repairs: readonly string[];
}

export interface AdviceReport {
  readonly database: string;
  readonly serverVersion: number;
  readonly method: EvidenceMethod;
  readonly window: Omit<StatementWindow, 'statements'> & { readonly statementCount: number };
  readonly indexes: readonly IndexAdvice[];
  /** `--verify`: every advised index built in a rolled-back transaction and its statements measured. */
  readonly verification?: readonly IndexVerification[];
  readonly notAdvised: readonly NotAdvised[];
  readonly removals: readonly RemovalAdvice[];
  /** Candidates generated, and how many an existing or declared index already covers. */
  readonly candidates: number;
  readonly covered: number;
  readonly evaluations: number;
  /** The workload's tables' size, what a `0.25x` budget is a share of. */
  readonly dataBytes: number;
  /** With --budget: the storage the advice may take, and what it takes. */
  readonly budget?: { readonly bytes: number; readonly usedBytes: number };
  /** How long the advice took to compute. */
  readonly adviseMs: number;
  readonly skipped: readonly SkippedStatement[];
  /** Statements planned as rewritten, because the server refuses their normalised text as it is. */
  readonly rewritten: readonly RewrittenStatement[];
  /** Utility statements and catalog-only reads: nothing to index for. */
  readonly ignored: number;
  readonly standbyChecked: boolean;
  readonly statsReset: string | null;
  /** The standby's statistics window, when it was checked (null: never reset). */
  readonly standbyStatsReset?: string | null;
  /** How the table statistics' write counters entered the write cost. */
  readonly writeCounters: Omit<WriteCounterWindow, 'tables'>;
}

/**
 * What one unit of planner cost is taken to take, for a workload file's statements without a
 * `-- mean_ms:`. Only the ratios between statements steer the choice; this scale sets how a read's
 * saving compares with the write cost (ms) and the minimum net gain. One cost unit is one sequential
 * page read (seq_page_cost = 1): about 10 µs on a cached, loaded server.
 */
export const MS_PER_COST_UNIT = 0.01;

export interface AdviseOptions {
  readonly maxIndexes: number;
  readonly budget?: StorageBudget;
  /** `--verify` (staging only: each build holds a SHARE lock on its table while it runs). */
  readonly verify?: { readonly timeoutMs: number };
  /** `--workload FILE`: the statements to advise for, instead of pg_stat_statements. */
  readonly workload?: { readonly file: string; readonly statements: readonly WorkloadFileStatement[] };
  /** Net time an index must save over the window; default 0.1% of the workload's time, at least 1 ms. */
  readonly minNetMs?: number;
  readonly sinceMs?: number;
  /** A window measured already (the demo shares one between analyze and advise). */
  readonly window?: StatementWindow;
  /** `statistics` forces the estimate even where hypopg is installed. */
  readonly method?: 'auto' | 'statistics';
  readonly desired?: DesiredState;
  /** `schema.index` -> scans, read on the standby. */
  readonly standbyScans?: ReadonlyMap<string, number>;
  /** When the standby's own statistics were last reset (null: never), read with its scans. */
  readonly standbyStatsReset?: string | null;
  readonly now: () => Date;
  readonly wait: (ms: number) => Promise<void>;
  readonly onProgress?: (message: string) => void;
}

/**
 * Everything the choice works from: the workload parsed and made plannable, the candidates, and the
 * evaluator (whose session state the caller must `close()`). Statements the server cannot plan are in
 * `skipped`. The evaluation benchmark (bench/advisor-eval.ts) costs other selections with the same.
 */
export interface AdviceInputs {
  readonly window: StatementWindow;
  readonly counters: WriteCounterWindow;
  readonly workload: Workload;
  readonly catalog: Catalog;
  readonly generated: readonly IndexCandidate[];
  readonly candidates: readonly IndexCandidate[];
  readonly evaluator: Evaluator;
  readonly statements: readonly WorkloadStatement[];
  readonly skipped: readonly SkippedStatement[];
  readonly dataBytes: number;
  readonly writeCost: (candidate: IndexCandidate) => WriteCost;
}

export async function adviceInputs(client: pg.ClientBase, facts: ServerFacts, options: AdviseOptions): Promise<AdviceInputs> {
  await loadModule();
  let window: StatementWindow;
  let counters: WriteCounterWindow;
  const untimed = new Set((options.workload?.statements ?? []).filter((s) => !s.timed).map((s) => s.stats.key));
  if (options.workload !== undefined) {
    const stats = options.workload.statements.map((s) => s.stats);
    window = { kind: 'cumulative', to: options.now().toISOString(), statements: stats, totalMs: 0, calls: stats.reduce((n, s) => n + s.calls, 0) };
    counters = unusedWriteCounters(`the workload is the file ${options.workload.file}: its own INSERT/UPDATE/DELETE statements are the writes`);
  } else if (options.window !== undefined) {
    window = options.window;
    counters = unusedWriteCounters('the workload window was measured before advise started');
  } else if (options.sinceMs !== undefined) {
    const schema = requireStatements(facts);
    const before = await readSnapshot(client, schema, options.now);
    const writesBefore = await readWriteCounters(client, options.now);
    options.onProgress?.(`sampling pg_stat_statements for ${Math.round(options.sinceMs / 1000)} s`);
    await options.wait(options.sinceMs);
    window = statementDelta(before, await readSnapshot(client, schema, options.now));
    counters = writeCounterDelta(writesBefore, await readWriteCounters(client, options.now));
  } else {
    window = cumulativeWindow(await readSnapshot(client, requireStatements(facts), options.now));
    counters = writeCountersSinceReset(await readWriteCounters(client, options.now), facts.statsReset, window.from);
  }

  const workload = await buildWorkload(client, window.statements, facts.searchPath);
  const named = [...workload.tables.values()].map((t) => ({ schema: t.schema, name: t.name }));
  const catalog = await introspect(catalogSession(client), [...named, ...(options.desired?.tables ?? []).map((t) => ({ schema: t.schema, name: t.name }))]);
  const declaredNotBuilt = notYetBuilt(options.desired, catalog);

  const accesses = workload.statements.flatMap((s) => s.usage.accesses.map((access) => ({ statementKey: s.key, access })));
  const generated = withKeyPrefixes(generateCandidates(accesses, workload.tables));
  const plainKeys = await readPlainKeys(client, catalog);
  const existing = indexesByTable(catalog, plainKeys);
  const declared = declaredByTable(options.desired);
  const candidates = generated.filter((c) => !coveredBy(c, existing.get(tableKey(c.schema, c.table)) ?? [], declared.get(tableKey(c.schema, c.table)) ?? []));

  const useHypopg = facts.hypopgSchema !== null && options.method !== 'statistics';
  const evaluator: Evaluator = useHypopg
    ? hypopgEvaluator(client, facts, facts.hypopgSchema as string, workload.tables, declaredNotBuilt)
    : await statisticsEvaluator(client, facts, workload.tables, declaredNotBuilt.flatMap(asCandidate), existingCandidates(catalog, plainKeys));
  try {
    // Statements the server cannot plan (a type it cannot infer, a function gone) are set aside.
    const skipped = [...workload.skipped];
    const statements: WorkloadStatement[] = [];
    for (const s of workload.statements) {
      try {
        const baseline = await evaluator.cost(s, []);
        // A file's statement without a measured time: its plan cost stands for it (see MS_PER_COST_UNIT).
        const meanMs = untimed.has(s.key) ? baseline.cost * MS_PER_COST_UNIT : s.meanMs;
        statements.push(untimed.has(s.key) ? { ...s, meanMs, totalMs: meanMs * s.calls } : s);
      } catch (error) {
        if (!(error instanceof ExplainFailed || error instanceof ExplainRefused)) throw error;
        const missing = /relation "([^"]+)" does not exist/.exec(error.message);
        skipped.push({
          key: s.key,
          queryId: s.queryId,
          query: s.query,
          calls: s.calls,
          totalMs: s.totalMs,
          reason: missing ? 'missing-table' : 'unexplainable',
          message: missing ? `table ${missing[1]} does not exist (any more)` : `the server cannot plan it: ${error.message}`,
        });
      }
    }
    const writes = tableWrites(workload, indexedColumns(catalog), counters.tables);
    return {
      window,
      counters,
      workload,
      catalog,
      generated,
      candidates,
      evaluator,
      statements,
      skipped,
      dataBytes: workloadDataBytes(workload.tables),
      writeCost: (c) => writeCost(c, writes.get(tableKey(c.schema, c.table))),
    };
  } catch (error) {
    await evaluator.close();
    throw error;
  }
}

export async function advise(client: pg.ClientBase, facts: ServerFacts, options: AdviseOptions): Promise<AdviceReport> {
  const started = Date.now();
  const { window, counters, workload, catalog, generated, candidates, evaluator, statements, skipped, dataBytes, writeCost: costOfWrites } = await adviceInputs(client, facts, options);
  try {

    const workloadMs = statements.reduce((sum, s) => sum + s.totalMs, 0);
    const budgetBytes = options.budget === undefined ? undefined : options.budget.kind === 'bytes' ? options.budget.bytes : Math.round(options.budget.share * dataBytes);
    const selection = await selectIndexes({
      ...(budgetBytes === undefined ? {} : { budgetBytes }),
      statements,
      candidates,
      evaluator,
      writeCost: costOfWrites,
      maxIndexes: options.maxIndexes,
      minNetMs: options.minNetMs ?? Math.max(1, workloadMs * 0.001),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    });

    const taken = takenNames(catalog, options.desired);
    const indexes: IndexAdvice[] = [];
    for (const chosen of selection.selected) {
      const c = chosen.candidate;
      const name = indexName(c.table, c.keys.map((k) => k.column), c.where !== undefined, taken.get(c.schema) ?? new Set());
      taken.set(c.schema, new Set([...(taken.get(c.schema) ?? []), name]));
      const used = statements.filter((s) => selection.final.get(s.key)?.uses.includes(c.id));
      const evidence = (used.length > 0 ? used : chosen.gains.map((g) => g.statement))
        .map((s) => statementEvidence(s, selection.baseline.get(s.key), selection.final.get(s.key)))
        .filter((e): e is StatementEvidence => e !== undefined)
        .sort((a, b) => b.savedMs - a.savedMs);
      indexes.push({
        name,
        schema: c.schema,
        table: c.table,
        keys: c.keys,
        include: c.include,
        ...(c.where === undefined ? {} : { where: c.where }),
        sql: createIndexSql(candidateIndex(c, name), { schema: c.schema, table: c.table, name, concurrently: true }),
        estimatedBytes: chosen.bytes,
        ...(chosen.budgetLeftBytes === undefined ? {} : { budgetLeftBytes: chosen.budgetLeftBytes }),
        method: evaluator.method,
        savedMs: chosen.savedMs,
        writeMs: chosen.write.ms,
        netMs: chosen.netMs,
        hotLostRows: chosen.write.hotLostRows,
        statements: evidence,
      });
    }

    let verification: IndexVerification[] | undefined;
    let verified = indexes;
    const refuted: NotAdvised[] = [];
    if (options.verify !== undefined && indexes.length > 0) {
      await evaluator.close();
      const targets = indexes.map((a) => ({
        name: a.name,
        schema: a.schema,
        table: a.table,
        buildSql: createIndexSql(candidateIndex({ ...a, id: a.name, sources: [] }, a.name), { schema: a.schema, table: a.table, name: a.name }),
      }));
      verification = await verifyIndexes(client, facts, targets, statements, workload.tables, {
        timeoutMs: options.verify.timeoutMs,
        ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      });
      const kept = new Set(verification.filter((v) => v.kept).map((v) => v.index));
      verified = indexes.filter((a) => kept.has(a.name));
      for (const a of indexes.filter((x) => !kept.has(x.name))) {
        refuted.push({
          schema: a.schema,
          table: a.table,
          keys: a.keys,
          include: a.include,
          ...(a.where === undefined ? {} : { where: a.where }),
          reason: 'not-measured-faster',
          savedMs: a.savedMs,
          writeMs: a.writeMs,
          estimatedBytes: a.estimatedBytes,
        });
      }
    }

    const { statements: _all, ...rest } = window;
    const considered = [...statements, ...skipped];
    return {
      database: facts.database,
      serverVersion: facts.serverVersion,
      method: evaluator.method,
      // The workload as analysed: utility statements and catalog reads (pgwarden's own among them) left out.
      window: {
        ...rest,
        statementCount: considered.length,
        calls: considered.reduce((n, s) => n + s.calls, 0),
        totalMs: considered.reduce((n, s) => n + s.totalMs, 0),
      },
      indexes: verified,
      ...(verification === undefined ? {} : { verification }),
      notAdvised: [...refuted, ...selection.rejected.map((r) => ({
        schema: r.candidate.schema,
        table: r.candidate.table,
        keys: r.candidate.keys,
        include: r.candidate.include,
        ...(r.candidate.where === undefined ? {} : { where: r.candidate.where }),
        reason: r.reason,
        savedMs: r.savedMs,
        writeMs: r.write.ms,
        estimatedBytes: r.bytes,
      }))],
      removals: removalAdvice({
        catalog,
        ...(options.desired === undefined ? {} : { desired: options.desired }),
        ...(options.standbyScans === undefined ? {} : { standbyScans: options.standbyScans, standbyWindowStart: options.standbyStatsReset ?? null }),
        windowStart: facts.statsReset,
        foreignKeys: (await client.query<ForeignKey>(FOREIGN_KEYS_SQL)).rows,
      }),
      candidates: generated.length,
      covered: generated.length - candidates.length,
      evaluations: selection.evaluations,
      dataBytes,
      ...(budgetBytes === undefined ? {} : { budget: { bytes: budgetBytes, usedBytes: selection.bytes } }),
      adviseMs: Date.now() - started,
      skipped,
      rewritten: statements
        .filter((s) => s.repairs.length > 0)
        .map((s) => ({ queryId: s.queryId, query: s.query, planned: s.statement.text, repairs: s.repairs })),
      ignored: workload.ignored,
      standbyChecked: options.standbyScans !== undefined,
      statsReset: facts.statsReset,
      ...(options.standbyScans === undefined ? {} : { standbyStatsReset: options.standbyStatsReset ?? null }),
      writeCounters: { source: counters.source, note: counters.note },
    };
  } finally {
    await evaluator.close();
  }
}

function statementEvidence(s: WorkloadStatement, before: StatementCost | undefined, after: StatementCost | undefined): StatementEvidence | undefined {
  if (before === undefined || after === undefined || before.cost <= 0) return undefined;
  const ratio = Math.min(1, after.cost / before.cost);
  return {
    queryId: s.queryId,
    query: s.query,
    calls: s.calls,
    meanMs: s.meanMs,
    costBefore: before.cost,
    costAfter: after.cost,
    estimatedMeanMs: s.meanMs * ratio,
    savedMs: s.calls * s.meanMs * (1 - ratio),
    accessBefore: before.access,
    accessAfter: after.access,
  };
}

/**
 * The heap size of the workload's tables: pg_relation_size, or for a partitioned table (whose own
 * size is zero) its rows times their average width plus the tuple header.
 */
function workloadDataBytes(tables: ReadonlyMap<string, TableStatistics>): number {
  let total = 0;
  for (const t of tables.values()) {
    if (t.kind === 'view' || t.kind === 'foreign') continue;
    const width = t.columnStats.reduce((sum, c) => sum + (c.avgWidth ?? Math.max(0, c.length)), 0);
    total += t.bytes > 0 ? t.bytes : Math.round(t.rows * (28 + width));
  }
  return total;
}

/** Declared in a policy, on a table that exists, but not (yet) in the catalog under its name. */
function notYetBuilt(desired: DesiredState | undefined, catalog: Catalog): DesiredIndex[] {
  if (desired === undefined) return [];
  const tables = new Set(catalog.tables.map((t) => tableKey(t.schema, t.name)));
  const indexes = new Set(catalog.indexes.map((i) => tableKey(i.schema, i.name)));
  return desired.tables
    .filter((t) => tables.has(tableKey(t.schema, t.name)))
    .flatMap((t) => t.indexes)
    .filter((i) => !indexes.has(tableKey(i.schema, i.name)));
}

function asCandidate(index: DesiredIndex): IndexCandidate[] {
  if (index.method !== 'btree' || index.keys.some((k) => k.kind !== 'column')) return [];
  const keys = index.keys.map((k) => ({ column: k.kind === 'column' ? k.column : '', order: k.order }));
  const shape = { schema: index.schema, table: index.table, keys, include: index.include, ...(index.where === undefined ? {} : { where: index.where }) };
  return [{ ...shape, id: candidateId(shape), sources: [] }];
}

/**
 * Valid btree indexes on plain columns, as candidates: what the statistics-based estimate compares with.
 * One with a key of another operator class or collation is left out: the estimate would take it for
 * an ordinary index on the column, which it is not for ranges and ORDER BY.
 */
function existingCandidates(catalog: Catalog, plainKeys: PlainKeys): IndexCandidate[] {
  const tables = new Map(catalog.tables.map((t) => [t.oid, t]));
  return catalog.indexes.flatMap((i): IndexCandidate[] => {
    const t = tables.get(i.tableOid);
    const s = i.signature;
    // A partial index's predicate is PostgreSQL's deparse, not comparable with a statement's text: left out.
    if (t === undefined || !i.valid || s.method !== 'btree' || s.predicate !== null || s.keys.some((k) => k.column === null)) return [];
    if (!(plainKeys.get(i.oid) ?? []).every((plain) => plain)) return [];
    const shape = {
      schema: t.schema,
      table: t.name,
      keys: s.keys.map((k): CandidateKey => ({ column: k.column as string, order: (k.option & 1) === 1 ? 'desc' : 'asc' })),
      include: s.include,
    };
    return [{ ...shape, id: candidateId(shape), sources: [] }];
  });
}

export interface KeyShape {
  readonly columns: readonly (string | null)[];
  /** true: descending. */
  readonly desc: readonly boolean[];
  /**
   * true: the key orders its column as a candidate's would (the type's default operator class, the
   * column's collation); false for `text_pattern_ops`, a `COLLATE "C"` key on a column of another
   * collation, an expression.
   */
  readonly plain: readonly boolean[];
  readonly include: readonly string[];
  readonly predicate: string | null;
}

/** Index oid -> for each key, whether it is plain (INDEX_PLAIN_KEYS_SQL). */
export type PlainKeys = ReadonlyMap<number, readonly boolean[]>;

export async function readPlainKeys(client: pg.ClientBase, catalog: Catalog): Promise<PlainKeys> {
  const btree = catalog.indexes.filter((i) => i.signature.method === 'btree').map((i) => i.oid);
  if (btree.length === 0) return new Map();
  const rows = (await client.query<{ oid: string; plain: boolean[] }>(INDEX_PLAIN_KEYS_SQL, [btree])).rows;
  return new Map(rows.map((r) => [Number(r.oid), r.plain]));
}

/** Valid btree indexes of the catalog's tables by `schema.table`, as coveredBy() compares them. */
export function indexesByTable(catalog: Catalog, plainKeys: PlainKeys): Map<string, KeyShape[]> {
  const tables = new Map(catalog.tables.map((t) => [t.oid, t]));
  const out = new Map<string, KeyShape[]>();
  for (const i of catalog.indexes) {
    const t = tables.get(i.tableOid);
    if (t === undefined || !i.valid || i.signature.method !== 'btree') continue;
    const key = tableKey(t.schema, t.name);
    out.set(key, [...(out.get(key) ?? []), actualShape(i, plainKeys.get(i.oid) ?? [])]);
  }
  return out;
}

function actualShape(i: ActualIndex, plain: readonly boolean[]): KeyShape {
  return {
    columns: i.signature.keys.map((k) => k.column),
    desc: i.signature.keys.map((k) => (k.option & 1) === 1),
    plain: i.signature.keys.map((_, n) => plain[n] ?? false),
    include: i.signature.include,
    predicate: i.signature.predicate,
  };
}

function declaredByTable(desired: DesiredState | undefined): Map<string, KeyShape[]> {
  const out = new Map<string, KeyShape[]>();
  for (const t of desired?.tables ?? []) {
    for (const i of t.indexes) {
      if (i.method !== 'btree') continue;
      const key = tableKey(t.schema, t.name);
      out.set(key, [
        ...(out.get(key) ?? []),
        {
          columns: i.keys.map((k) => (k.kind === 'column' ? k.column : null)),
          desc: i.keys.map((k) => k.order === 'desc'),
          // Declared, not built: PostgreSQL has not said what the named class or collation is, so any
          // named one counts as different (at worst an equivalent candidate is evaluated, not skipped).
          plain: i.keys.map((k) => k.kind === 'column' && k.opclass === undefined && k.collation === undefined),
          include: i.include,
          predicate: i.where ?? null,
        },
      ]);
    }
  }
  return out;
}

/**
 * The candidate's keys are the first keys of an index that is there or declared (in the same
 * relative directions), its INCLUDE columns are in that index — or its keys are exactly that index's
 * keys — and that index is not partial (or has the same predicate, compared loosely: PostgreSQL
 * deparses `status <> 'x'` as `(status <> 'x'::text)`). The keys it shares with the candidate must be
 * plain: a `text_pattern_ops` or `COLLATE "C"` key sorts differently, so it cannot serve the
 * candidate's ranges or ORDER BY (its keys past the candidate's are not used and may be anything).
 *
 * The same keys with more INCLUDE columns is not a new index: it would be a second copy of the same
 * btree, maintained by every write, for a heap fetch saved. Whether such a covering variant is
 * generated at all hangs on avg_width from a sampled ANALYZE (index-candidate.ts), so counting it as
 * new made advice flip between runs for an index just built.
 */
export function coveredBy(candidate: IndexCandidate, existing: readonly KeyShape[], declared: readonly KeyShape[]): boolean {
  return [...existing, ...declared].some((index) => {
    if (candidate.keys.length > index.columns.length) return false;
    const flip = (index.desc[0] ?? false) !== (candidate.keys[0]?.order === 'desc');
    const keysMatch = candidate.keys.every(
      (k, i) => index.columns[i] === k.column && (index.plain[i] ?? false) && ((index.desc[i] ?? false) !== (k.order === 'desc')) === flip,
    );
    if (!keysMatch) return false;
    const stored = new Set([...index.columns, ...index.include]);
    const sameKeys = candidate.keys.length === index.columns.length;
    if (!sameKeys && !candidate.include.every((c) => stored.has(c))) return false;
    if (index.predicate === null) return true;
    return candidate.where !== undefined && loose(candidate.where) === loose(index.predicate);
  });
}

function loose(predicate: string): string {
  return predicate.replace(/::[\w ]+/g, '').replace(/[()"\s]/g, '').toLowerCase();
}

function indexedColumns(catalog: Catalog): Map<string, Set<string>> {
  const tables = new Map(catalog.tables.map((t) => [t.oid, t]));
  const out = new Map<string, Set<string>>();
  for (const i of catalog.indexes) {
    const t = tables.get(i.tableOid);
    if (t === undefined) continue;
    const key = tableKey(t.schema, t.name);
    const set = out.get(key) ?? new Set<string>();
    for (const k of i.signature.keys) if (k.column !== null) set.add(k.column);
    for (const c of i.signature.include) set.add(c);
    out.set(key, set);
  }
  return out;
}

/** Every relation name of each schema, plus every index name the policies declare. */
function takenNames(catalog: Catalog, desired: DesiredState | undefined): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (schema: string, name: string): void => {
    const set = out.get(schema) ?? new Set<string>();
    set.add(name);
    out.set(schema, set);
  };
  for (const t of catalog.tables) add(t.schema, t.name);
  for (const i of catalog.indexes) add(i.schema, i.name);
  for (const [schema, names] of catalog.relationNames) for (const n of names) add(schema, n);
  for (const t of desired?.tables ?? []) for (const i of t.indexes) add(i.schema, i.name);
  return out;
}
