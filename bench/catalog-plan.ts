/**
 * `npm run bench`: plan time against the catalog floor on a large catalog.
 *
 * Builds, in its own embedded cluster, 5,000 tables (primary key + 3 secondary indexes each = 20,000
 * indexes) and a table range-partitioned into 1,000 partitions with one partitioned index, declares every
 * secondary index in policy files, and measures (medians, a fresh connection per run as a CLI run has):
 *
 *   floor B   one query of raw pg_index + pg_class rows for every index, nothing deparsed (DESIGN.md);
 *   floor A   `introspect()`: pgwarden's own catalog queries on one connection, no canonicalisation, no
 *             diff (the same on two connections, as a plan reads, is shown beside it);
 *   cold plan `makePlan()` with an empty registry: every desired index canonicalised — derived from catalog
 *             facts when it is plain columns with defaults, otherwise built by PostgreSQL on a scratch table;
 *   apply     once, adopting every (already built, unregistered) index into pgwarden.managed_index;
 *   warm plan `makePlan()` again: the steady state a CI run sees; must be "0 changes".
 *
 * And the whole CLI, process start to exit (`pgwarden plan --detailed-exitcode`, output discarded),
 * cold and warm, beside `node -e ''` on the same machine, for two shapes of policies: the catalog's
 * (6 files declaring 15,001 indexes) and the shape of real repositories (1,000 files of 3 indexes
 * each, one per table of bench_a), each against floor A of its own tables.
 *
 * Options: --tables N (5000), --partitions N (1000), --runs N (9), --cold-runs N (3),
 *          --cli PATH (the CLI entry run with node: dist/engine/cli/bin.js when built, else bin/pgwarden.js),
 *          --budget-ms N (20000: a figure whose runs have taken this long stops after 3 runs,
 *          the cold plan after 1),
 *          --keep (or PGWARDEN_BENCH_KEEP=1): reuse the cluster and catalog in
 *          $TMPDIR/pgwarden-bench-keep-<checkout> between runs instead of building and deleting a fresh one
 *          (one per checkout: two checkouts benchmarking at once must not share a cluster).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connectSpec } from '../engine/connection/open-connection.ts';
import { apply, type ApplyEvent } from '../engine/apply/apply.ts';
import { catalogSession, introspect } from '../engine/catalog/introspect.ts';
import { clusterDown, clusterUp } from '../engine/cluster/embedded-cluster.ts';
import { makePlan, type PlanOutcome } from '../engine/plan/make-plan.ts';
import { readActual } from '../engine/catalog/read-actual.ts';
import { diffAll } from '../engine/diff/diff-all.ts';
import { buildPlan } from '../engine/plan/plan.ts';
import type { DesiredState } from '../engine/policy/desired.ts';
import { formatPolicyError } from '../engine/policy/desired.ts';
import { loadPolicies } from '../engine/policy/load.ts';
import { freePort, withDatabase } from '../engine/cluster/local-address.ts';

// ---------------------------------------------------------------------------------------------------
// Options

const { values: flags } = parseArgs({
  options: {
    tables: { type: 'string', default: '5000' },
    partitions: { type: 'string', default: '1000' },
    runs: { type: 'string', default: '9' },
    'cold-runs': { type: 'string', default: '3' },
    'budget-ms': { type: 'string', default: '20000' },
    keep: { type: 'boolean', default: false },
    cli: { type: 'string' },
  },
  allowPositionals: false,
  strict: true,
});

function positiveInt(name: string, text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${String(text)}`);
  return n;
}

export const TABLES = positiveInt('tables', flags.tables);
export const PARTITIONS = positiveInt('partitions', flags.partitions);
export const RUNS = positiveInt('runs', flags.runs);
const COLD_RUNS = positiveInt('cold-runs', flags['cold-runs']);
/** Per measured figure: runs stop (after MIN_RUNS) once this much time has gone into it. */
const BUDGET_MS = positiveInt('budget-ms', flags['budget-ms']);
const MIN_RUNS = 3;
export const KEEP = flags.keep === true || process.env['PGWARDEN_BENCH_KEEP'] === '1';
const COMPILED_CLI = fileURLToPath(new URL('../dist/engine/cli/bin.js', import.meta.url));
const CLI = flags.cli ?? (existsSync(COMPILED_CLI) ? COMPILED_CLI : fileURLToPath(new URL('../bin/pgwarden.js', import.meta.url)));
/** The shape of real repositories: one policy file per table, three indexes each. */
const FILES_SHAPE_SCHEMA = 'bench_a';
const SCHEMAS = ['bench_a', 'bench_b', 'bench_c', 'bench_d', 'bench_e'] as const;
export const DATABASE = 'pgwarden_bench';
/** Statements a warm plan sends, on its two connections, whatever the catalog size (observed: 11). */
const MAX_WARM_ROUND_TRIPS = 11;
/** Changes when the generated catalog changes, so a kept catalog of another shape is rebuilt. */
const CATALOG_VERSION = `pgwarden bench catalog v1: tables=${TABLES} partitions=${PARTITIONS}`;

export const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

// ---------------------------------------------------------------------------------------------------
// The catalog: one spec renders both the DDL that builds it and the policies that declare it

type KeySpec = { readonly column: string; readonly desc?: boolean; readonly nullsLast?: boolean } | { readonly expression: string };

interface IndexSpec {
  readonly name: string;
  readonly keys: readonly KeySpec[];
  readonly include?: readonly string[];
  readonly where?: string;
  readonly unique?: boolean;
}

interface TableSpec {
  readonly schema: string;
  readonly name: string;
  readonly indexes: readonly IndexSpec[];
  /** Rows to insert (0 for most tables). */
  readonly rows: number;
}

/**
 * Table n of the catalog. Each has a primary key and three secondary indexes, varied: composite with a
 * DESC key (and DESC NULLS LAST), INCLUDE, unique, and 1 in 100 of all indexes an expression index,
 * another 1 in 100 a partial one.
 */
function tableSpec(n: number): TableSpec {
  const schema = SCHEMAS[Math.floor(n / Math.ceil(TABLES / SCHEMAS.length))] ?? 'bench_e';
  const name = `t${String(n).padStart(4, '0')}`;
  const first: IndexSpec =
    n % 7 === 3
      ? { name: `${name}_created_idx`, keys: [{ column: 'created_at', desc: true, nullsLast: true }] }
      : n % 3 === 1
        ? { name: `${name}_tenant_created_idx`, keys: [{ column: 'tenant_id' }, { column: 'created_at' }] }
        : { name: `${name}_tenant_created_idx`, keys: [{ column: 'tenant_id' }, { column: 'created_at', desc: true }] };
  const second: IndexSpec =
    n % 10 === 5
      ? { name: `${name}_email_key`, keys: [{ column: 'email' }], unique: true }
      : { name: `${name}_status_idx`, keys: [{ column: 'status' }], include: ['amount'] };
  const third: IndexSpec =
    n % 25 === 0
      ? { name: `${name}_lower_email_idx`, keys: [{ expression: 'lower(email)' }] }
      : n % 25 === 1
        ? { name: `${name}_kind_open_idx`, keys: [{ column: 'kind' }, { column: 'tenant_id' }], where: `status <> 'archived'` }
        : { name: `${name}_kind_idx`, keys: [{ column: 'kind' }] };
  return { schema, name, indexes: [first, second, third], rows: n % 10 === 0 ? 100 : 0 };
}

const TABLE_SPECS: readonly TableSpec[] = Array.from({ length: TABLES }, (_, n) => tableSpec(n));

const PARTITIONED = {
  schema: 'bench_p',
  name: 'events',
  index: { name: 'events_tenant_created_idx', keys: [{ column: 'tenant_id' }, { column: 'created_at' }] } satisfies IndexSpec,
} as const;

/** Written the way people write DDL (unquoted names), independently of pgwarden's own DDL writer. */
function keySql(key: KeySpec): string {
  if ('expression' in key) return `(${key.expression})`;
  return `${key.column}${key.desc ? ' DESC' : ''}${key.nullsLast ? ' NULLS LAST' : ''}`;
}

function createIndexDdl(schema: string, table: string, index: IndexSpec): string {
  const include = index.include ? ` INCLUDE (${index.include.join(', ')})` : '';
  const where = index.where ? ` WHERE ${index.where}` : '';
  return `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX ${index.name} ON ${schema}.${table} (${index.keys.map(keySql).join(', ')})${include}${where}`;
}

function tableDdl(t: TableSpec): string {
  const statements = [
    `CREATE TABLE ${t.schema}.${t.name} (id bigint PRIMARY KEY, tenant_id int NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
       status text NOT NULL DEFAULT 'open', kind text, email text, amount numeric)`,
    ...t.indexes.map((index) => createIndexDdl(t.schema, t.name, index)),
  ];
  if (t.rows > 0) {
    statements.push(`INSERT INTO ${t.schema}.${t.name} SELECT g, g % 10, now() - g * interval '1 hour',
       CASE WHEN g % 5 = 0 THEN 'archived' ELSE 'open' END, 'k' || (g % 7), 'u' || g || '@example.com', g * 1.5
       FROM generate_series(1, ${t.rows}) g`);
  }
  return statements.join(';\n');
}

function yamlString(text: string): string {
  return JSON.stringify(text);
}

function policyIndexYaml(index: IndexSpec): string {
  const lines = [`  - name: ${index.name}`];
  const plain = index.keys.every((k) => 'column' in k);
  if (plain) {
    const keys = index.keys.map((k) => ('column' in k ? `${k.column}${k.desc ? ' desc' : ''}${k.nullsLast ? ' nulls last' : ''}` : ''));
    lines.push(`    columns: [${keys.join(', ')}]`);
  } else {
    lines.push('    columns:');
    for (const k of index.keys) lines.push('column' in k ? `      - ${k.column}` : `      - expression: ${yamlString(k.expression)}`);
  }
  if (index.unique) lines.push('    unique: true');
  if (index.include) lines.push(`    include: [${index.include.join(', ')}]`);
  if (index.where) lines.push(`    where: ${yamlString(index.where)}`);
  return lines.join('\n');
}

function policyDocument(schema: string, table: string, indexes: readonly IndexSpec[]): string {
  return `table: ${schema}.${table}\nindexes:\n${indexes.map(policyIndexYaml).join('\n')}\n`;
}

/** One file per schema, one `---`-separated document per table. */
export async function writePolicies(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const schema of SCHEMAS) {
    const documents = TABLE_SPECS.filter((t) => t.schema === schema).map((t) => policyDocument(t.schema, t.name, t.indexes));
    if (documents.length > 0) await writeFile(path.join(dir, `${schema}.yaml`), `---\n${documents.join('---\n')}`);
  }
  await writeFile(path.join(dir, `${PARTITIONED.schema}.yaml`), policyDocument(PARTITIONED.schema, PARTITIONED.name, [PARTITIONED.index]));
}

/** One file per table of bench_a: ~1,000 files of 3 indexes each. */
export async function writeFilePerTablePolicies(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await Promise.all(
    TABLE_SPECS.filter((t) => t.schema === FILES_SHAPE_SCHEMA).map((t) => writeFile(path.join(dir, `${t.name}.yaml`), policyDocument(t.schema, t.name, t.indexes))),
  );
}

// ---------------------------------------------------------------------------------------------------
// Cluster and connections

async function connect(url: string): Promise<pg.Client> {
  // As the CLI connects (engine/cli/commands/plan.ts).
  const client = await connectSpec(url, { application_name: 'pgwarden', connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  return client;
}

export async function withFreshClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(url);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------
// Building the catalog, server-side, in chunks

const CHUNK = 200;

export async function buildCatalog(adminUrl: string, url: string): Promise<number> {
  const t0 = performance.now();
  await withFreshClient(adminUrl, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${DATABASE}`);
  });
  await withFreshClient(url, async (c) => {
    await c.query([...SCHEMAS, PARTITIONED.schema].map((s) => `CREATE SCHEMA ${s}`).join('; '));
    // One round trip (one transaction) per CHUNK tables: about 7 locks per table, well under the
    // shared lock table (max_locks_per_transaction 64 x 100 connections).
    for (let i = 0; i < TABLE_SPECS.length; i += CHUNK) {
      await c.query(TABLE_SPECS.slice(i, i + CHUNK).map(tableDdl).join(';\n'));
      if ((i / CHUNK) % 5 === 4) log(`  ${Math.min(i + CHUNK, TABLE_SPECS.length)} of ${TABLE_SPECS.length} tables`);
    }
    const { schema, name, index } = PARTITIONED;
    await c.query(`CREATE TABLE ${schema}.${name} (id bigint NOT NULL, tenant_id int NOT NULL, created_at timestamptz NOT NULL, payload text)
                     PARTITION BY RANGE (created_at)`);
    // Daily partitions from 2022-01-01, created by a server-side loop, CHUNK per transaction.
    for (let lo = 0; lo < PARTITIONS; lo += CHUNK) {
      const hi = Math.min(lo + CHUNK, PARTITIONS) - 1;
      await c.query(`DO $$
        DECLARE d date;
        BEGIN
          FOR i IN ${lo}..${hi} LOOP
            d := DATE '2022-01-01' + i;
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L)',
                           '${schema}', 'events_p' || lpad(i::text, 4, '0'), '${schema}', '${name}', d, d + 1);
          END LOOP;
        END $$`);
    }
    await c.query(`INSERT INTO ${schema}.${name} SELECT g, g % 50, TIMESTAMPTZ '2022-01-01 00:00:00+00' + (g % ${PARTITIONS}) * interval '1 day' + interval '1 hour', 'x'
                     FROM generate_series(1, 20000) g`);
    // One partitioned index: PostgreSQL builds and attaches one index per partition.
    await c.query(createIndexDdl(schema, name, index));
    log('  VACUUM ANALYZE');
    await c.query('VACUUM ANALYZE');
    await c.query(`COMMENT ON DATABASE ${DATABASE} IS '${CATALOG_VERSION}'`);
  });
  return performance.now() - t0;
}

export async function catalogIsBuilt(adminUrl: string): Promise<boolean> {
  return withFreshClient(adminUrl, async (c) => {
    const r = await c.query<{ comment: string | null }>(
      `SELECT pg_catalog.shobj_description(oid, 'pg_database') AS comment FROM pg_catalog.pg_database WHERE datname = $1`,
      [DATABASE],
    );
    return r.rows[0]?.comment === CATALOG_VERSION;
  });
}

interface CatalogSize {
  tables: number;
  partitioned: number;
  partitions: number;
  indexes: number;
  partitionIndexes: number;
  server: string;
}

export async function catalogSize(url: string): Promise<CatalogSize> {
  return withFreshClient(url, async (c) => {
    const r = await c.query<{ tables: number; partitioned: number; partitions: number; indexes: number; partition_indexes: number; server: string }>(
      `SELECT (SELECT count(*)::int FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname LIKE 'bench\\_%' AND c.relkind = 'r' AND NOT c.relispartition) AS tables,
              (SELECT count(*)::int FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname LIKE 'bench\\_%' AND c.relkind = 'p') AS partitioned,
              (SELECT count(*)::int FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname LIKE 'bench\\_%' AND c.relispartition AND c.relkind = 'r') AS partitions,
              (SELECT count(*)::int FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'bench\\_%') AS indexes,
              (SELECT count(*)::int FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'bench\\_%' AND c.relispartition) AS partition_indexes,
              pg_catalog.current_setting('server_version') AS server`,
    );
    const row = r.rows[0];
    if (!row) throw new Error('no catalog counts');
    return { tables: row.tables, partitioned: row.partitioned, partitions: row.partitions, indexes: row.indexes, partitionIndexes: row.partition_indexes, server: row.server };
  });
}

/**
 * Each cold plan leaves ~100,000 dead catalog rows behind (its scratch tables, rolled back), which slow
 * every later catalog scan until autovacuum gets there; vacuum them now, so that each figure is measured
 * on a clean catalog, and let the standby finish replaying so that it does not compete for the CPUs.
 */
export async function settle(url: string, adminUrl: string): Promise<void> {
  const t0 = performance.now();
  await withFreshClient(url, async (c) => {
    await c.query(
      `VACUUM pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_type, pg_catalog.pg_depend, pg_catalog.pg_index,
              pg_catalog.pg_constraint, pg_catalog.pg_attrdef, pg_catalog.pg_inherits, pg_catalog.pg_statistic`,
    );
  });
  await withFreshClient(adminUrl, async (c) => {
    await c.query('CHECKPOINT');
    const deadline = Date.now() + 120_000;
    for (;;) {
      const r = await c.query<{ behind: boolean }>(
        `SELECT coalesce(bool_or(replay_lsn IS NULL OR replay_lsn < pg_catalog.pg_current_wal_lsn()), false) AS behind
           FROM pg_catalog.pg_stat_replication`,
      );
      if (!r.rows[0]?.behind || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  });
  log(`settled (catalog vacuumed, standby caught up) in ${fmtMs(performance.now() - t0)}`);
}

// ---------------------------------------------------------------------------------------------------
// Measuring

interface Sample {
  readonly ms: number;
  readonly roundTrips: number | null;
}

export interface Series {
  readonly label: string;
  readonly samples: readonly Sample[];
  readonly note?: string;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

export const medianMs = (s: Series): number => median(s.samples.map((x) => x.ms));

export function roundTripsOf(s: Series): string {
  const counts = [...new Set(s.samples.map((x) => x.roundTrips))];
  if (counts.length === 1 && counts[0] === null) return '-';
  return counts.map((c) => String(c ?? '-')).join('/');
}

/**
 * Up to `runs` runs of `fn`, each on a fresh connection (connecting is not timed). A slow figure stops
 * early, after at least 3 runs, once it has used its share of the time budget (BUDGET_MS), so that the
 * whole benchmark still finishes in minutes; the table shows how many runs each median is of.
 */
export async function measure(
  label: string,
  url: string,
  runs: number,
  fn: (client: pg.Client) => Promise<number | null>,
  minRuns = MIN_RUNS,
): Promise<Series> {
  const samples: Sample[] = [];
  const started = performance.now();
  for (let i = 0; i < runs; i += 1) {
    if (i >= minRuns && performance.now() - started > BUDGET_MS) break;
    const sample = await withFreshClient(url, async (client) => {
      const t0 = performance.now();
      const roundTrips = await fn(client);
      return { ms: performance.now() - t0, roundTrips };
    });
    samples.push(sample);
  }
  const series = { label, samples };
  log(`${label}: median ${fmtMs(medianMs(series))} (${samples.map((s) => fmtMs(s.ms)).join(', ')})`);
  return series;
}

export function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** One process, start to exit; stdout and stderr discarded (a cold plan prints every change). */
function runProcess(args: readonly string[], env: NodeJS.ProcessEnv, okCodes: readonly number[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = performance.now() - t0;
      if (okCodes.includes(code ?? -1)) resolve(ms);
      else reject(new Error(`${args.join(' ')} exited ${String(code)}: ${stderr.trim().slice(0, 400)}`));
    });
  });
}

/** Up to `runs` runs of a whole process, with the same time budget as `measure`. */
async function measureProcess(label: string, runs: number, args: readonly string[], env: NodeJS.ProcessEnv, okCodes: readonly number[], minRuns = MIN_RUNS): Promise<Series> {
  const samples: Sample[] = [];
  const started = performance.now();
  for (let i = 0; i < runs; i += 1) {
    if (i >= minRuns && performance.now() - started > BUDGET_MS) break;
    samples.push({ ms: await runProcess(args, env, okCodes), roundTrips: null });
  }
  const series = { label, samples };
  log(`${label}: median ${fmtMs(medianMs(series))} (${samples.map((x) => fmtMs(x.ms)).join(', ')})`);
  return series;
}

/** DESIGN.md's bare floor: raw pg_index + pg_class rows for every index of a user table, nothing deparsed. */
const RAW_INDEX_ROWS_SQL = `
SELECT x.indexrelid, x.indrelid, x.indnatts, x.indnkeyatts, x.indisunique, x.indnullsnotdistinct, x.indisprimary,
       x.indisvalid, x.indkey, x.indclass, x.indcollation, x.indoption, x.indexprs, x.indpred,
       ic.relname, ic.relnamespace, ic.relam, ic.relpages, ic.relispartition, tc.relname AS table_name, tc.relkind
  FROM pg_catalog.pg_index x
  JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
  JOIN pg_catalog.pg_class tc ON tc.oid = x.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
 WHERE tc.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgwarden') AND n.nspname !~ '^pg_toast'`;

function planOrThrow(outcome: PlanOutcome): Extract<PlanOutcome, { ok: true }> {
  if (!outcome.ok) throw new Error(`the plan failed: ${outcome.errors.slice(0, 3).map(formatPolicyError).join('; ')}`);
  return outcome;
}

function subset(desired: DesiredState, schemas: readonly string[]): DesiredState {
  return { tables: desired.tables.filter((t) => schemas.includes(t.schema)), files: desired.files.filter((f) => schemas.some((s) => f.startsWith(s))) };
}

interface StatementStats {
  readonly calls: number;
  readonly serverMs: number;
  readonly top: readonly { query: string; calls: number; ms: number }[];
}

/** What pg_stat_statements saw in the bench database since the last reset (the bench's own queries excluded). */
async function statementStats(url: string): Promise<StatementStats> {
  return withFreshClient(url, async (c) => {
    const r = await c.query<{ query: string; calls: string; ms: number }>(
      `SELECT s.query, s.calls::int8::text AS calls, s.total_exec_time::float8 AS ms
         FROM public.pg_stat_statements s
        WHERE s.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
          AND s.query !~ 'pg_stat_statements'
        ORDER BY s.total_exec_time DESC`,
    );
    const rows = r.rows.map((row) => ({ query: row.query.replace(/\s+/g, ' ').trim(), calls: Number(row.calls), ms: row.ms }));
    return {
      calls: rows.reduce((sum, row) => sum + row.calls, 0),
      serverMs: rows.reduce((sum, row) => sum + row.ms, 0),
      top: rows.slice(0, 4),
    };
  });
}

async function resetStatements(url: string): Promise<void> {
  await withFreshClient(url, (c) => c.query('SELECT public.pg_stat_statements_reset()'));
}

/**
 * One plan, timed phase by phase (read, diff, build) and query by query, on a fresh connection: where
 * the time of a figure goes.
 */
async function planPhases(url: string, desired: DesiredState): Promise<string[]> {
  return withFreshClient(url, async (c) => {
    const queries: { sql: string; ms: number }[] = [];
    const original = c.query.bind(c) as (...args: unknown[]) => Promise<unknown>;
    const timed = async (...args: unknown[]): Promise<unknown> => {
      const t = performance.now();
      try {
        return await original(...args);
      } finally {
        const first = args[0];
        const text = typeof first === 'string' ? first : ((first as { text?: string } | undefined)?.text ?? '?');
        queries.push({ sql: text.replace(/\s+/g, ' ').trim().slice(0, 70), ms: performance.now() - t });
      }
    };
    Object.assign(c, { query: timed });
    const now = new Date();
    const t0 = performance.now();
    const session = catalogSession(c);
    const actual = await readActual(session, { desired, now, env: {}, connect: () => connect(url) });
    const t1 = performance.now();
    const diff = diffAll(desired, actual, now);
    const t2 = performance.now();
    buildPlan({ changes: diff.changes, warnings: diff.warnings, catalog: actual.catalog, desired, now });
    const t3 = performance.now();
    const lines = [`readActual ${fmtMs(t1 - t0)} (${session.roundTrips} round trips), diffAll ${fmtMs(t2 - t1)}, buildPlan ${fmtMs(t3 - t2)}; ${diff.changes.length} changes`];
    for (const q of [...queries].sort((a, b) => b.ms - a.ms).slice(0, 6)) lines.push(`  ${fmtMs(q.ms).padStart(8)}  ${q.sql}`);
    return lines;
  });
}

// ---------------------------------------------------------------------------------------------------
// Main

interface Cleanup {
  run(): Promise<void>;
}

async function main(cleanup: { current: Cleanup | null }): Promise<void> {
  const loadAtStart = os.loadavg()[0] ?? 0;
  const checkout = createHash('sha256').update(fileURLToPath(new URL('..', import.meta.url))).digest('hex').slice(0, 8);
  const baseDir = KEEP ? path.join(os.tmpdir(), `pgwarden-bench-keep-${checkout}`) : await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-'));
  await mkdir(baseDir, { recursive: true });
  // mkdtemp makes the directory 0700; as root, the postgres OS user must reach it.
  await chmod(baseDir, 0o755);
  const policiesDir = await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-policies-'));
  const filesDir = await mkdtemp(path.join(os.tmpdir(), 'pgwarden-bench-files-'));
  cleanup.current = {
    async run() {
      await clusterDown({ baseDir, destroy: !KEEP }).catch((e: Error) => log(`stopping the cluster failed: ${e.message}`));
      await rm(policiesDir, { recursive: true, force: true });
      await rm(filesDir, { recursive: true, force: true });
    },
  };

  log(`cluster in ${baseDir}${KEEP ? ' (kept between runs)' : ''}`);
  // A kept cluster keeps its ports (it may still be running on them); a new one gets free ones.
  const kept = KEEP && (await access(path.join(baseDir, 'cluster.json')).then(() => true, () => false));
  const ports = kept ? {} : { primaryPort: await freePort(), standbyPort: await freePort() };
  const urls = await clusterUp({
    baseDir,
    ...ports,
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
    log: (line) => log(line),
  });
  const adminUrl = urls.primaryUrl;
  const url = withDatabase(adminUrl, DATABASE);

  let buildMs: number | null = null;
  if (KEEP && (await catalogIsBuilt(adminUrl))) {
    log('reusing the catalog built by an earlier --keep run');
  } else {
    log(`building ${TABLES} tables x 4 indexes and ${PARTITIONS} partitions`);
    buildMs = await buildCatalog(adminUrl, url);
    log(`built in ${fmtMs(buildMs)}`);
  }
  await withFreshClient(url, async (c) => {
    // A cold start: no registry, no history (a kept catalog may hold an earlier run's).
    await c.query('DROP SCHEMA IF EXISTS pgwarden CASCADE');
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public');
  });
  await settle(url, adminUrl);
  const size = await catalogSize(url);

  await writePolicies(policiesDir);
  const loadSeries: Sample[] = [];
  let desired: DesiredState | null = null;
  const loadStarted = performance.now();
  for (let i = 0; i < RUNS; i += 1) {
    if (i >= MIN_RUNS && performance.now() - loadStarted > BUDGET_MS) break;
    const t0 = performance.now();
    const loaded = await loadPolicies(policiesDir);
    loadSeries.push({ ms: performance.now() - t0, roundTrips: null });
    if (loaded.errors.length > 0) throw new Error(`policy errors: ${loaded.errors.slice(0, 3).map(formatPolicyError).join('; ')}`);
    desired = loaded.desired;
  }
  if (!desired) throw new Error('no policies loaded');
  const declared = desired.tables.reduce((sum, t) => sum + t.indexes.length, 0);
  const policySql = desired.tables.flatMap((t) => t.indexes).filter((i) => i.where !== undefined || i.keys.some((k) => k.kind === 'expression')).length;
  const load: Series = { label: 'loadPolicies (YAML + validation)', samples: loadSeries };
  log(`loadPolicies: ${desired.tables.length} tables, ${declared} indexes, median ${fmtMs(medianMs(load))}`);
  const named = desired.tables.map((t) => ({ schema: t.schema, name: t.name }));
  const everything = desired;
  const small = subset(desired, ['bench_a']);
  await writeFilePerTablePolicies(filesDir);
  const filesShape = await loadPolicies(filesDir);
  if (filesShape.errors.length > 0) throw new Error(`policy errors: ${filesShape.errors.slice(0, 3).map(formatPolicyError).join('; ')}`);
  const filesNamed = filesShape.desired.tables.map((t) => ({ schema: t.schema, name: t.name }));
  const filesDeclared = filesShape.desired.tables.reduce((sum, t) => sum + t.indexes.length, 0);
  const cliEnv = { ...process.env, DATABASE_URL: url, NO_COLOR: '1' };
  const cliPlan = (dir: string): string[] => [CLI, 'plan', '--policies', dir, '--detailed-exitcode'];
  const nodeStart = await measureProcess("node -e '' (process start, the baseline)", RUNS, ['-e', ''], process.env, [0]);

  // Floors ------------------------------------------------------------------------------------------
  const floorB = await measure('floor B: raw pg_index+pg_class rows', url, RUNS, async (c) => {
    await c.query(RAW_INDEX_ROWS_SQL);
    return 1;
  });
  const floorA = await measure('floor A: introspect()', url, RUNS, async (c) => {
    const session = catalogSession(c);
    await introspect(session, named);
    return session.roundTrips;
  });
  const floorA2 = await measure('introspect() on two connections', url, RUNS, async (c) => {
    const session = catalogSession(c);
    const second = await connect(url);
    try {
      const helper = catalogSession(second);
      await introspect(session, named, helper);
      return session.roundTrips + helper.roundTrips;
    } finally {
      await second.end();
    }
  });
  const floorAFiles = await measure(`floor A, ${FILES_SHAPE_SCHEMA} tables: introspect()`, url, RUNS, async (c) => {
    const session = catalogSession(c);
    await introspect(session, filesNamed);
    return session.roundTrips;
  });

  // Cold plan ---------------------------------------------------------------------------------------
  await resetStatements(url);
  let coldChanges = 0;
  const cold = await measure('cold plan (empty registry)', url, COLD_RUNS, async (c) => {
    const outcome = planOrThrow(await makePlan(c, everything, new Date(), { connect: () => connect(url) }));
    coldChanges = outcome.plan.changes.length;
    return outcome.roundTrips;
  }, 1);
  const coldStats = await statementStats(url);
  const coldPhases = await planPhases(url, everything);
  // The registry is still empty: the CLI's first plans.
  const cliCold = await measureProcess('pgwarden plan (CLI), cold', COLD_RUNS, cliPlan(policiesDir), cliEnv, [2], 1);
  const cliColdFiles = await measureProcess(`pgwarden plan (CLI), cold, ${filesShape.desired.files.length} files`, COLD_RUNS, cliPlan(filesDir), cliEnv, [2], 1);

  // Apply (adopts every declared index) -------------------------------------------------------------
  await resetStatements(url);
  let planReadyAt = 0;
  let adopted = 0;
  const t0 = performance.now();
  const result = await apply({
    databaseUrl: url,
    desired: everything,
    allowDrop: false,
    lockTimeoutMs: 5000,
    buildTimeoutMs: 0,
    retries: 3,
    backoffMs: 200,
    now: () => new Date(),
    onEvent: (event: ApplyEvent) => {
      if (event.type === 'plan') planReadyAt = performance.now();
      if (event.type === 'change-done' && event.change.change.kind === 'adopt-index') adopted += 1;
    },
  });
  const applyMs = performance.now() - t0;
  const applyStats = await statementStats(url);
  log(`apply: ${result.applied} changes (${adopted} adoptions) in ${fmtMs(applyMs)}`);

  // Warm plan ---------------------------------------------------------------------------------------
  await settle(url, adminUrl);
  let warmWarnings = 0;
  const warm = await measure('warm plan (registry filled)', url, RUNS, async (c) => {
    const outcome = planOrThrow(await makePlan(c, everything, new Date(), { connect: () => connect(url) }));
    if (outcome.plan.changes.length !== 0) {
      const first = outcome.plan.changes.slice(0, 3).map((p) => `${p.change.kind} ${p.change.address}`);
      throw new Error(`the warm plan has ${outcome.plan.changes.length} changes, expected 0: ${first.join(', ')}`);
    }
    warmWarnings = outcome.plan.warnings.length;
    return outcome.roundTrips;
  });
  const warmPhases = await planPhases(url, everything);
  const warmSmall = await measure('warm plan, policies of bench_a only', url, RUNS, async (c) => {
    const outcome = planOrThrow(await makePlan(c, small, new Date(), { connect: () => connect(url) }));
    if (outcome.plan.changes.length !== 0) throw new Error(`the bench_a warm plan has ${outcome.plan.changes.length} changes, expected 0`);
    return outcome.roundTrips;
  });

  const cliWarm = await measureProcess('pgwarden plan (CLI), warm', RUNS, cliPlan(policiesDir), cliEnv, [0]);
  const cliWarmFiles = await measureProcess(`pgwarden plan (CLI), warm, ${filesShape.desired.files.length} files`, RUNS, cliPlan(filesDir), cliEnv, [0]);

  // Report ------------------------------------------------------------------------------------------
  const cpus = os.cpus();
  const lines: string[] = [];
  const out = (line = ''): void => {
    lines.push(line);
  };
  out(`pgwarden catalog plan benchmark — medians, a fresh connection per run (connect not timed)`);
  out(`machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, PostgreSQL ${size.server} (embedded, fsync off)`);
  out(
    `catalog: ${size.tables} tables + ${size.partitioned} partitioned table with ${size.partitions} partitions; ` +
      `${size.indexes} indexes (${size.indexes - size.partitionIndexes} on tables, ${size.partitionIndexes} on partitions)`,
  );
  out(`policies: ${desired.files.length} files, ${desired.tables.length} tables, ${declared} declared indexes (${policySql} with an expression or WHERE)`);
  out(`second shape: ${filesShape.desired.files.length} files (one per table of ${FILES_SHAPE_SCHEMA}), ${filesDeclared} declared indexes`);
  if (buildMs !== null) out(`catalog built in ${fmtMs(buildMs)}`);
  out();
  const rows: [string, string, string, string, string][] = [['', 'median', 'round trips', 'runs', 'vs floor A / floor B']];
  const ratio = (s: Series): string => `${(medianMs(s) / medianMs(floorA)).toFixed(2)}x / ${(medianMs(s) / medianMs(floorB)).toFixed(1)}x`;
  const row = (s: Series, withRatio = true): void => {
    rows.push([s.label, fmtMs(medianMs(s)), roundTripsOf(s), String(s.samples.length), withRatio ? ratio(s) : '']);
  };
  row(floorB);
  row(floorA);
  row(floorA2);
  row(cold);
  rows.push(['apply (adopt all; includes its own cold plan)', fmtMs(applyMs), `${applyStats.calls} stmts`, '1', '']);
  rows.push(['  of which its plan', fmtMs(planReadyAt - t0), '', '', '']);
  rows.push(['  of which the adoptions + history', fmtMs(applyMs - (planReadyAt - t0)), '', '', '']);
  row(warm);
  row(warmSmall);
  row(load, false);
  rows.push(['', '', '', '', '']);
  rows.push([`whole CLI (${path.relative(process.cwd(), CLI)}), process start to exit`, 'median', '', 'runs', 'vs floor A of its tables']);
  const vs = (s: Series, floor: Series): string => `${(medianMs(s) / medianMs(floor)).toFixed(2)}x`;
  const cliRow = (s: Series, floor: Series | null): void => {
    rows.push([s.label, fmtMs(medianMs(s)), '', String(s.samples.length), floor === null ? '' : vs(s, floor)]);
  };
  cliRow(nodeStart, null);
  cliRow(cliCold, floorA);
  cliRow(cliWarm, floorA);
  rows.push([floorAFiles.label, fmtMs(medianMs(floorAFiles)), roundTripsOf(floorAFiles), String(floorAFiles.samples.length), '1.00x']);
  cliRow(cliColdFiles, floorAFiles);
  cliRow(cliWarmFiles, floorAFiles);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) out(r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('   ').trimEnd());
  out();
  out(`warm plan: 0 changes, ${warmWarnings} warnings; ${roundTripsOf(warm)} round trips for ${desired.tables.length} tables, ${roundTripsOf(warmSmall)} for ${small.tables.length}`);
  out(`warm plan / floor A = ${(medianMs(warm) / medianMs(floorA)).toFixed(2)}x   warm plan / floor B = ${(medianMs(warm) / medianMs(floorB)).toFixed(1)}x`);
  out(
    `whole CLI / floor A: warm ${vs(cliWarm, floorA)}, cold ${vs(cliCold, floorA)}; ${filesShape.desired.files.length} files: warm ${vs(cliWarmFiles, floorAFiles)}, cold ${vs(cliColdFiles, floorAFiles)}` +
      ` (goals: warm <= 1.5x, cold <= 2x; process start alone ${fmtMs(medianMs(nodeStart))})`,
  );
  const coldRuns = cold.samples.length;
  out(`cold plan: ${coldChanges} changes (adoptions); per run, server time ${fmtMs(coldStats.serverMs / coldRuns)} in ${Math.round(coldStats.calls / coldRuns)} statements, most of it:`);
  for (const s of coldStats.top.slice(0, 3)) out(`  ${fmtMs(s.ms / coldRuns).padStart(8)}  ${String(Math.round(s.calls / coldRuns)).padStart(5)} x  ${s.query.slice(0, 90)}`);
  out(`apply: ${result.applied} changes applied; server time ${fmtMs(applyStats.serverMs)} in ${applyStats.calls} statements`);
  for (const s of applyStats.top.slice(0, 3)) out(`  ${fmtMs(s.ms).padStart(8)}  ${String(s.calls).padStart(5)} x  ${s.query.slice(0, 90)}`);
  out('one cold plan, phase by phase (slowest queries):');
  for (const line of coldPhases) out(`  ${line}`);
  out('one warm plan, phase by phase (slowest queries):');
  for (const line of warmPhases) out(`  ${line}`);
  out(`load average (1 min) at start / end: ${loadAtStart.toFixed(1)} / ${(os.loadavg()[0] ?? 0).toFixed(1)} on ${cpus.length} cores`);
  process.stdout.write(`\n${lines.join('\n')}\n`);

  const warmTrips = warm.samples.map((s) => s.roundTrips ?? 0);
  const smallTrips = warmSmall.samples.map((s) => s.roundTrips ?? 0);
  if (Math.max(...warmTrips, ...smallTrips) > MAX_WARM_ROUND_TRIPS) {
    throw new Error(`the warm plan took ${Math.max(...warmTrips)} round trips; at most ${MAX_WARM_ROUND_TRIPS} expected`);
  }
  if (Math.max(...warmTrips) !== Math.min(...smallTrips)) {
    throw new Error(`the warm plan's round trips grow with the policies: ${Math.max(...warmTrips)} vs ${Math.min(...smallTrips)} for bench_a alone`);
  }
}

// bench/import.ts reuses the catalog above; only `npm run bench` runs this benchmark.
const runAsScript = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
const cleanup: { current: Cleanup | null } = { current: null };
let exiting: Promise<void> | null = null;
/** Cleans up once, whoever asks first (an interrupt also makes main() fail), then exits. */
async function finish(code: number): Promise<never> {
  exiting ??= (cleanup.current?.run() ?? Promise.resolve()).then(() => process.exit(code));
  await exiting;
  return process.exit(code);
}
if (runAsScript) {
  process.once('SIGINT', () => {
    log('interrupted; stopping the cluster');
    void finish(130);
  });
  process.once('SIGTERM', () => void finish(143));

  main(cleanup).then(
    () => finish(0),
    (error: unknown) => {
      process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      return finish(1);
    },
  );
}
