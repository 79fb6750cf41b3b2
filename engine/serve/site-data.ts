import { createHash } from 'node:crypto';
import type pg from 'pg';
import { applyRegressions, type ApplyRegression } from '../live-health/apply-regression.ts';
import { HISTORY_LIST_SQL, HISTORY_PLAN_SQL, SITE_SOURCE_SQL, SITE_TABLES_SQL, siteIndexesSql, STATEMENTS_SCHEMA_SQL, statementsNowSql } from '../catalog/health-queries.ts';
import type { RecordedDetails } from '../live-health/apply-details.ts';
import { redactQueryText } from '../live-health/redact-query.ts';
import type { HealthSnapshot } from '../live-health/health-snapshot.ts';
import { THRESHOLDS, type Threshold } from '../live-health/health-status.ts';
import type { Plan } from '../plan/plan.ts';
import { ident, qualified } from '../sql/ident.ts';
import { readTableSizes, type TableSize } from './table-sizes.ts';

/**
 * Everything the static site shows, gathered once and handed to `astro build` as one JSON file: the
 * pages read it at build time, so the published site is plain HTML that needs no database and no
 * JavaScript (the live page aside).
 */
export interface SiteData {
  readonly version: 1;
  readonly generatedAt: string;
  /** `report`: a published copy; `serve`: served by `pgwarden serve`, whose API the live page uses. */
  readonly mode: 'report' | 'serve';
  readonly database: string | null;
  readonly serverVersion: number | null;
  /** Where the live page finds a running `pgwarden serve` ('' = the same origin; null = none configured). */
  readonly liveUrl: string | null;
  readonly runs: readonly SiteRun[];
  readonly indexes: readonly LedgerIndex[];
  readonly tables: readonly VacuumTable[];
  /** Table sizes with partitions rolled up, largest first (the sizes page). */
  readonly sizes: readonly TableSize[];
  readonly health: HealthSnapshot | null;
  readonly thresholds: readonly Threshold[];
  /** Things the reader should know about this build ("no history yet", "database unreachable"). */
  readonly notes: readonly string[];
}

export interface SiteRun {
  /** History id, or `plan-<hash>` for a saved plan file given with --plans. */
  readonly id: string;
  readonly source: 'history' | 'plan-file';
  readonly kind: string;
  readonly outcome: string;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly durationMs: number | null;
  readonly actor: string | null;
  readonly gitCommit: string | null;
  readonly gitBranch: string | null;
  readonly fingerprint: string | null;
  readonly summary: { readonly add: number; readonly change: number; readonly destroy: number } | null;
  readonly changeCount: number;
  readonly error: string | null;
  /** The plan as applied (null for a record without one, and in `/api/history` lists). */
  readonly plan: Plan | null;
  /** A `maintain` run's tables, each with what was done and its figures before and after. */
  readonly maintenance: readonly MaintainedTable[] | null;
  /** Per-change timings and the statements on the changed tables, before and since the apply. */
  readonly details: RunDetails | null;
}

export interface MaintainedTable {
  readonly table: string;
  readonly action: string;
  readonly sql: string;
  readonly outcome: string;
  readonly ms: number | null;
  readonly reasons: readonly string[];
  readonly message: string | null;
  readonly before: TableFiguresRecord | null;
  readonly after: TableFiguresRecord | null;
}

export interface TableFiguresRecord {
  readonly health: number;
  readonly deadTuples: number;
  readonly liveTuples: number;
}

/** The `plan` column of a maintain record, as engine/maintain writes it; anything else is no maintenance. */
function maintenanceOf(value: unknown): MaintainedTable[] | null {
  if (!Array.isArray(value)) return null;
  const figures = (f: unknown): TableFiguresRecord | null => {
    const x = f as Partial<TableFiguresRecord> | null;
    return x && typeof x.health === 'number' ? { health: x.health, deadTuples: Number(x.deadTuples ?? 0), liveTuples: Number(x.liveTuples ?? 0) } : null;
  };
  return value.map((entry: Record<string, unknown>) => ({
    table: String(entry['table'] ?? ''),
    action: String(entry['action'] ?? ''),
    sql: String(entry['sql'] ?? ''),
    outcome: String(entry['outcome'] ?? ''),
    ms: typeof entry['ms'] === 'number' ? entry['ms'] : null,
    reasons: Array.isArray(entry['reasons']) ? entry['reasons'].map(String) : [],
    message: typeof entry['message'] === 'string' ? redactQueryText(entry['message']) : null,
    before: figures(entry['before']),
    after: figures(entry['after']),
  }));
}

/** An apply's plan; a maintain record's `plan` column holds its tables instead. */
function planOf(value: unknown): Plan | null {
  return value !== null && typeof value === 'object' && Array.isArray((value as { changes?: unknown }).changes) ? (value as Plan) : null;
}

export interface RunDetails {
  readonly changes: RecordedDetails['changes'];
  readonly statementsAt: string | null;
  readonly statements: readonly {
    readonly id: string;
    readonly query: string;
    readonly callsBefore: number;
    /** Mean over every call up to the apply (pg_stat_statements keeps no older window). */
    readonly meanBeforeMs: number;
    /** Calls and mean since the apply; null when none ran since, or the statistics were reset. */
    readonly callsSince: number | null;
    readonly meanSinceMs: number | null;
    readonly stddevBeforeMs: number | null;
  }[];
  /** Statements slower since the apply beyond their noise band, with the revert (apply-regression.ts). */
  readonly regressions: readonly ApplyRegression[];
}

export interface LedgerIndex {
  readonly schema: string;
  readonly name: string;
  readonly table: string;
  readonly method: string;
  readonly definition: string;
  readonly bytes: number;
  readonly scans: number;
  readonly lastScan: string | null;
  readonly valid: boolean;
  readonly unique: boolean;
  readonly backsConstraint: boolean;
  readonly managed: boolean;
  readonly managedSince: string | null;
  readonly policyFile: string | null;
  /** The index this one duplicates (the one kept). */
  readonly duplicateOf: string | null;
  readonly flags: readonly ('unused' | 'duplicate' | 'invalid')[];
  /** The statement that fixes what the flags say (null when nothing needs fixing). */
  readonly fixSql: string | null;
}

export interface VacuumTable {
  readonly schema: string;
  readonly name: string;
  readonly bytes: number;
  readonly rowEstimate: number;
  readonly liveRows: number;
  readonly deadRows: number;
  readonly autovacuumTrigger: number;
  readonly autovacuumEnabled: boolean;
  readonly modifiedSinceAnalyze: number;
  readonly xidAge: number;
  readonly freezeMaxAge: number;
  readonly lastVacuum: string | null;
  readonly lastAutovacuum: string | null;
  readonly lastAnalyze: string | null;
  readonly lastAutoanalyze: string | null;
  readonly vacuumRuns: number;
  readonly analyzeRuns: number;
  readonly settings: readonly string[];
  readonly fixSql: string | null;
}

export interface SiteDataOptions {
  readonly mode: 'report' | 'serve';
  readonly liveUrl: string | null;
  /** How many history records; default 1,000. */
  readonly historyLimit?: number;
  readonly plans?: readonly Plan[];
  readonly health?: HealthSnapshot | null;
  readonly now?: () => Date;
}

interface HistoryRow {
  id: number;
  kind: string;
  started_at: Date;
  finished_at: Date | null;
  duration_ms: number | null;
  outcome: string;
  actor: string | null;
  git_commit: string | null;
  git_branch: string | null;
  fingerprint: string | null;
  summary: { add: number; change: number; destroy: number; details?: RecordedDetails } | null;
  error: string | null;
  change_count?: number;
  plan?: unknown;
}

function withoutSince(d: RecordedDetails): RunDetails {
  return {
    changes: d.changes,
    statementsAt: d.statementsAt,
    statements: d.statements.map((st) => ({ id: st.id, query: redactQueryText(st.query), callsBefore: st.calls, meanBeforeMs: st.calls > 0 ? st.totalMs / st.calls : 0, callsSince: null, meanSinceMs: null, stddevBeforeMs: st.stddevMs ?? null })),
    regressions: [],
  };
}

/** The latest apply's statements slower since it beyond their noise band: for `pgwarden health`. */
export async function latestApplyRegressions(client: pg.ClientBase): Promise<{ runId: string; regressions: readonly ApplyRegression[] } | null> {
  const source = await readSiteSource(client);
  if (!source.hasHistory) return null;
  const runs = await readRunsWithPlans(client, 20);
  const latest = runs.find((r) => r.kind === 'apply' && r.details !== null);
  return latest === undefined ? null : { runId: latest.id, regressions: latest.details?.regressions ?? [] };
}

export function runFromRow(r: HistoryRow): SiteRun {
  return {
    id: String(r.id),
    source: 'history',
    kind: r.kind,
    outcome: r.outcome,
    startedAt: r.started_at.toISOString(),
    finishedAt: r.finished_at ? r.finished_at.toISOString() : null,
    durationMs: r.duration_ms,
    actor: r.actor,
    gitCommit: r.git_commit,
    gitBranch: r.git_branch,
    fingerprint: r.fingerprint,
    // A maintain run's summary counts tables, not changes: no +~- for it.
    summary: r.summary && typeof r.summary.add === 'number' ? { add: r.summary.add, change: r.summary.change, destroy: r.summary.destroy } : null,
    changeCount: r.change_count ?? planOf(r.plan)?.changes.length ?? maintenanceOf(r.plan)?.length ?? 0,
    // Records written before redaction existed, and errors that quote a statement, are redacted on the way out.
    error: r.error === null ? null : redactQueryText(r.error),
    plan: planOf(r.plan),
    maintenance: maintenanceOf(r.plan),
    details: r.summary?.details ? withoutSince(r.summary.details) : null,
  };
}

export function runFromPlanFile(plan: Plan): SiteRun {
  const id = `plan-${createHash('sha256').update(JSON.stringify(plan)).digest('hex').slice(0, 12)}`;
  return {
    id,
    source: 'plan-file',
    kind: 'plan',
    outcome: 'planned',
    startedAt: plan.createdAt,
    finishedAt: null,
    durationMs: null,
    actor: null,
    gitCommit: null,
    gitBranch: null,
    fingerprint: plan.fingerprint,
    summary: plan.summary,
    changeCount: plan.changes.length,
    error: null,
    plan,
    maintenance: null,
    details: null,
  };
}

export interface SiteSource {
  readonly database: string;
  readonly serverVersion: number;
  readonly hasHistory: boolean;
  readonly hasRegistry: boolean;
}

/** A client or a pool: both answer query(). */
type Queryable = pg.ClientBase | pg.Pool;

export async function readSiteSource(client: Queryable): Promise<SiteSource> {
  const r = await client.query<{ database: string; server_version: number; has_history: boolean; has_registry: boolean }>(SITE_SOURCE_SQL);
  const row = r.rows[0];
  if (!row) throw new Error('the database did not describe itself');
  return { database: row.database, serverVersion: row.server_version, hasHistory: row.has_history, hasRegistry: row.has_registry };
}

/** History records without their plans, newest first: what `/api/history` returns. */
export async function readHistory(client: Queryable, limit: number): Promise<SiteRun[]> {
  const source = await readSiteSource(client);
  if (!source.hasHistory) return [];
  const r = await client.query<HistoryRow>(HISTORY_LIST_SQL, [limit]);
  return r.rows.map(runFromRow);
}

/** One history record with its plan, or null. */
export async function readRun(client: Queryable, id: number): Promise<SiteRun | null> {
  const source = await readSiteSource(client);
  if (!source.hasHistory) return null;
  const r = await client.query<HistoryRow>(HISTORY_PLAN_SQL, [id]);
  const row = r.rows[0];
  return row ? runFromRow(row) : null;
}

async function readRunsWithPlans(client: pg.ClientBase, limit: number): Promise<SiteRun[]> {
  // One round trip for the list and one for all the plans: never one per record.
  const list = await client.query<HistoryRow>(HISTORY_LIST_SQL, [limit]);
  const ids = list.rows.map((r) => r.id);
  const plans = await client.query<{ id: number; plan: unknown }>('SELECT h.id::float8 AS id, h.plan FROM pgwarden.history h WHERE h.id = ANY ($1::bigint[])', [ids]);
  const byId = new Map(plans.rows.map((p) => [p.id, p.plan]));
  return withSince(client, list.rows.map((r) => runFromRow({ ...r, plan: byId.get(r.id) ?? null })));
}

/**
 * Fills in each run's "since the apply" latency from the current pg_stat_statements counters, in one
 * query for all runs: (total now - total then) / (calls now - calls then). Counters lower than at the
 * apply mean the statistics were reset since: no figure rather than a wrong one.
 */
async function withSince(client: Queryable, runs: SiteRun[]): Promise<SiteRun[]> {
  const ids = [...new Set(runs.flatMap((r) => r.details?.statements.map((s) => s.id) ?? []))];
  if (ids.length === 0) return runs;
  const where = await client.query<{ schema: string | null; loaded: boolean }>(STATEMENTS_SCHEMA_SQL).catch(() => null);
  const schema = where?.rows[0]?.loaded ? where.rows[0].schema : null;
  if (!schema) return runs;
  const now = await client.query<{ id: string; calls: number; total_ms: number }>(statementsNowSql(ident(schema)), [ids]).catch(() => null);
  if (!now) return runs;
  const current = new Map(now.rows.map((r) => [r.id, r]));
  return runs.map((run) => {
    const d = run.details;
    if (!d) return run;
    const statements = d.statements.map((s) => {
      const c = current.get(s.id);
      const totalThen = s.callsBefore * s.meanBeforeMs;
      if (!c || c.calls <= s.callsBefore || c.total_ms < totalThen) return s;
      return { ...s, callsSince: c.calls - s.callsBefore, meanSinceMs: (c.total_ms - totalThen) / (c.calls - s.callsBefore) };
    });
    return { ...run, details: { ...d, statements, regressions: applyRegressions(run.plan, statements) } };
  });
}

interface IndexRow {
  schema: string;
  name: string;
  table_name: string;
  method: string;
  valid: boolean;
  is_unique: boolean;
  is_primary: boolean;
  backs_constraint: boolean;
  scans: number;
  last_scan: Date | null;
  bytes: number;
  definition: string;
  managed_since: Date | null;
  policy_file: string | null;
  shape: string;
}

function ledgerIndex(r: IndexRow, duplicateOf: string | null): LedgerIndex {
  const flags: LedgerIndex['flags'][number][] = [];
  if (!r.valid) flags.push('invalid');
  if (duplicateOf !== null) flags.push('duplicate');
  if (r.valid && r.scans === 0 && !r.is_unique && !r.backs_constraint) flags.push('unused');
  const name = qualified(r.schema, r.name);
  // A declared index is the policy's to drop: by hand, the next apply would only build it again.
  const declared = r.policy_file !== null;
  const fixSql = flags.includes('invalid')
    ? `REINDEX INDEX CONCURRENTLY ${name};`
    : flags.length > 0 && !r.backs_constraint
      ? declared
        ? `-- ${flags.join(' and ')}; declared in ${r.policy_file}: remove it from that file to drop it`
        : `DROP INDEX CONCURRENTLY ${name};`
      : null;
  return {
    schema: r.schema,
    name: r.name,
    table: r.table_name,
    method: r.method,
    definition: r.definition,
    bytes: r.bytes,
    scans: r.scans,
    lastScan: r.last_scan ? r.last_scan.toISOString() : null,
    valid: r.valid,
    unique: r.is_unique,
    backsConstraint: r.backs_constraint,
    managed: r.managed_since !== null,
    managedSince: r.managed_since ? r.managed_since.toISOString() : null,
    policyFile: r.policy_file,
    duplicateOf,
    flags,
    fixSql,
  };
}

export async function readIndexLedger(client: pg.ClientBase, source: SiteSource, limit = 2000): Promise<LedgerIndex[]> {
  const r = await client.query<IndexRow>(siteIndexesSql(source.serverVersion, source.hasRegistry), [limit]);
  // Of indexes with the same shape (table, keys, operator classes, options, expressions, predicate), the
  // one a primary key or constraint needs is kept, else a unique one, else the first by name.
  const keeperOf = new Map<string, IndexRow>();
  for (const row of r.rows) {
    const kept = keeperOf.get(row.shape);
    const rank = (x: IndexRow): number => (x.is_primary ? 3 : x.backs_constraint ? 2 : x.is_unique ? 1 : 0);
    if (!row.valid) continue;
    if (!kept || rank(row) > rank(kept) || (rank(row) === rank(kept) && row.name < kept.name)) keeperOf.set(row.shape, row);
  }
  return r.rows.map((row) => {
    const keeper = keeperOf.get(row.shape);
    return ledgerIndex(row, row.valid && keeper && keeper !== row ? keeper.name : null);
  });
}

interface TableRow {
  schema: string;
  name: string;
  row_estimate: number;
  bytes: number;
  live: number;
  dead: number;
  mod_since_analyze: number;
  xid_age: number;
  last_vacuum: Date | null;
  last_autovacuum: Date | null;
  last_analyze: Date | null;
  last_autoanalyze: Date | null;
  vacuum_runs: number;
  analyze_runs: number;
  autovacuum_enabled: boolean;
  reloptions: string[];
  autovacuum_trigger: number;
  freeze_max_age: number;
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export async function readVacuumTables(client: pg.ClientBase, limit = 2000): Promise<VacuumTable[]> {
  const r = await client.query<TableRow>(SITE_TABLES_SQL, [limit]);
  return r.rows.map((t) => {
    const name = qualified(t.schema, t.name);
    const fixSql =
      t.xid_age > t.freeze_max_age
        ? `VACUUM (FREEZE, ANALYZE) ${name};`
        : t.dead > t.autovacuum_trigger
          ? `VACUUM (ANALYZE) ${name};`
          : t.mod_since_analyze > 1000 && t.mod_since_analyze > 0.2 * Math.max(t.row_estimate, 0) + 100
            ? `ANALYZE ${name};`
            : null;
    return {
      schema: t.schema,
      name: t.name,
      bytes: t.bytes,
      rowEstimate: Math.max(0, t.row_estimate),
      liveRows: t.live,
      deadRows: t.dead,
      autovacuumTrigger: t.autovacuum_trigger,
      autovacuumEnabled: t.autovacuum_enabled,
      modifiedSinceAnalyze: t.mod_since_analyze,
      xidAge: t.xid_age,
      freezeMaxAge: t.freeze_max_age,
      lastVacuum: iso(t.last_vacuum),
      lastAutovacuum: iso(t.last_autovacuum),
      lastAnalyze: iso(t.last_analyze),
      lastAutoanalyze: iso(t.last_autoanalyze),
      vacuumRuns: t.vacuum_runs,
      analyzeRuns: t.analyze_runs,
      settings: t.reloptions.filter((o) => o.startsWith('autovacuum_') || o.startsWith('toast.autovacuum_')),
      fixSql,
    };
  });
}

/** The site's data from a database (`client` null: only the saved plans, e.g. a database that is down). */
export async function collectSiteData(client: pg.ClientBase | null, options: SiteDataOptions): Promise<SiteData> {
  const now = options.now ?? (() => new Date());
  const notes: string[] = [];
  const planRuns = (options.plans ?? []).map(runFromPlanFile);
  if (!client) {
    return {
      version: 1,
      generatedAt: now().toISOString(),
      mode: options.mode,
      database: null,
      serverVersion: null,
      liveUrl: options.liveUrl,
      runs: planRuns,
      indexes: [],
      tables: [],
      sizes: [],
      health: options.health ?? null,
      thresholds: THRESHOLDS,
      notes: ['built without a database: only the saved plans are shown'],
    };
  }
  const source = await readSiteSource(client);
  const history = source.hasHistory ? await readRunsWithPlans(client, options.historyLimit ?? 1000) : [];
  if (!source.hasHistory) notes.push('no history yet: `pgwarden apply` writes a record on every run');
  const runs = [...planRuns, ...history].sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  return {
    version: 1,
    generatedAt: now().toISOString(),
    mode: options.mode,
    database: source.database,
    serverVersion: source.serverVersion,
    liveUrl: options.liveUrl,
    runs,
    indexes: await readIndexLedger(client, source),
    tables: await readVacuumTables(client),
    sizes: await readTableSizes(client),
    health: options.health ?? null,
    thresholds: THRESHOLDS,
    notes,
  };
}
