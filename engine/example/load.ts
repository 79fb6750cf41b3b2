/**
 * Loads the example infrastructure platform: drops and recreates its five tables (and nothing else),
 * fills them with skewed, time-bursty data generated inside PostgreSQL, churns servers and deployments
 * so dead tuples exist, then analyzes.
 *
 * @example
 *   DATABASE_URL=postgres://... node --import tsx engine/example/load.ts --scale small --seed 42
 */
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { resolveConnection } from '../connection/connection-settings.ts';
import { connect } from '../connection/open-connection.ts';
import { ident, qualified } from '../sql/ident.ts';
import { connectionError, databaseUrlFromEnv, exitWithError, withUrl, isMainModule, parseIntegerOption } from './cli.ts';
import {
  churnSteps,
  type DataContext,
  type DataStep,
  DROP_UNIT_FUNCTION_SQL,
  insertSteps,
  UNIT_FUNCTION_SQL,
} from './data-steps.ts';
import { eventPartitionsSql } from './event-partitions.ts';
import { EXAMPLE_SCHEMA, EXAMPLE_TABLES, type ExampleTable, readExampleSchema } from './example-schema.ts';
import { type ExampleScale, isExampleScale, SCALE_SIZES } from './scale.ts';

export interface LoadExampleOptions {
  readonly scale: ExampleScale;
  /** Same seed (and endAt), same rows. A non-negative 31-bit integer; default 1. */
  readonly seed?: number;
  readonly onProgress?: (message: string) => void;
  /** The end of the generated year; default the server's now(), to the second. Fix it to compare loads. */
  readonly endAt?: Date;
  /**
   * `events` as a plain table, as it is before anyone partitions it (the demo converts it online with
   * `pgwarden apply`); by default it is loaded range-partitioned by month, as the policies keep it.
   */
  readonly plainEvents?: boolean;
}

export interface ExampleSummary {
  readonly scale: ExampleScale;
  readonly seed: number;
  /** ISO timestamp the generated history ends at. */
  readonly endAt: string;
  /** Rows per table after churn. */
  readonly rows: Readonly<Record<ExampleTable, number>>;
  readonly seconds: number;
}

export const DEFAULT_SEED = 1;
const MAX_SEED = 2 ** 31 - 1;

export async function loadExample(client: pg.ClientBase, options: LoadExampleOptions): Promise<ExampleSummary> {
  const started = performance.now();
  const seed = options.seed ?? DEFAULT_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new Error(`seed must be an integer between 0 and ${MAX_SEED}, got ${seed}`);
  }
  const report = options.onProgress ?? (() => {});
  const schema = await readExampleSchema();
  const endAt = options.endAt ?? (await serverNowToTheSecond(client));
  const context: DataContext = { seed, endAt, size: SCALE_SIZES[options.scale] };

  await client.query(UNIT_FUNCTION_SQL);
  try {
    // One transaction for schema and data: a failed load leaves the previous example in place.
    await inTransaction(client, async () => {
      if (options.plainEvents) {
        // The partitions a converted table had would stand in the way of the conversion's own.
        for (const sql of eventPartitionsSql(endAt).filter((s) => s.startsWith('DROP TABLE'))) await client.query(sql);
        await client.query(schema.tables.replace(') PARTITION BY RANGE (created_at);', ');'));
      } else {
        await client.query(schema.tables);
        for (const sql of eventPartitionsSql(endAt)) await client.query(sql);
      }
      for (const step of insertSteps(context)) await runStep(client, step, report);
      await timed('primary and foreign keys', report, () => client.query(schema.keys));
      await advanceSequences(client);
    });
    await inTransaction(client, async () => {
      for (const step of churnSteps(context)) await runStep(client, step, report);
    });
    await flushTableStatistics(client);
    await timed('analyze', report, () => client.query(`ANALYZE ${exampleTableList()}`));
  } finally {
    // A temporary function vanishes with the session anyway; failing to drop it must not hide the
    // load's own error.
    await client.query(DROP_UNIT_FUNCTION_SQL).catch(() => {});
  }

  const rows = await countRows(client);
  const seconds = (performance.now() - started) / 1000;
  report(`loaded ${options.scale} example (seed ${seed}) in ${seconds.toFixed(1)} s`);
  return { scale: options.scale, seed, endAt: endAt.toISOString(), rows, seconds };
}

async function serverNowToTheSecond(client: pg.ClientBase): Promise<Date> {
  const result = await client.query<{ now: Date }>(`SELECT date_trunc('second', now()) AS now`);
  const now = result.rows[0]?.now;
  if (now === undefined) throw new Error('the server did not return now()');
  return now;
}

async function inTransaction(client: pg.ClientBase, body: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    // Losing the last commit in a crash is harmless for generated data, so the commit need not wait
    // for its WAL to reach disk. Sorting a few million events and building their key want more memory
    // than the defaults; SET LOCAL keeps all of it to this transaction.
    await client.query(`SET LOCAL synchronous_commit = off;
                        SET LOCAL work_mem = '256MB';
                        SET LOCAL maintenance_work_mem = '256MB'`);
    await body();
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

async function runStep(client: pg.ClientBase, step: DataStep, report: (message: string) => void): Promise<void> {
  const settings = Object.entries(step.settings ?? {});
  const previous: [string, string][] = [];
  for (const [name, value] of settings) {
    const result = await client.query<{ value: string }>('SELECT current_setting($1) AS value', [name]);
    previous.push([name, result.rows[0]?.value ?? value]);
    await client.query('SELECT set_config($1, $2, true)', [name, value]);
  }
  await timed(step.name, report, () => client.query(step.sql, [...step.values]));
  for (const [name, value] of previous) await client.query('SELECT set_config($1, $2, true)', [name, value]);
}

/** Runs one step, reports its duration (and rows touched), and names it in any error. */
async function timed(
  name: string,
  report: (message: string) => void,
  run: () => Promise<pg.QueryResult | pg.QueryResult[]>,
): Promise<void> {
  const started = performance.now();
  let result: pg.QueryResult | pg.QueryResult[];
  try {
    result = await run();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`loading the example failed at step "${name}": ${message}`, { cause: error });
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const rowCount = Array.isArray(result) ? null : result.rowCount;
  const rows = rowCount === null ? '' : `${rowCount.toLocaleString('en-US')} rows, `;
  report(`${name}: ${rows}${seconds} s`);
}

/**
 * Pushes this session's pending table statistics (the churn's dead tuples) to the shared stats before
 * ANALYZE. Since PostgreSQL 15 a backend flushes them at most once a second, and only when idle; ANALYZE
 * meanwhile records its sampled dead-tuple count minus what is still pending, so until the next flush
 * (up to 10 s on an idle pooled connection) pg_stat_user_tables would show no dead tuples at all.
 * The flush happens when the backend goes idle after this call. PostgreSQL 14 sends its statistics to
 * the collector differently and has no such function.
 */
async function flushTableStatistics(client: pg.ClientBase): Promise<void> {
  const result = await client.query<{ version: string }>(`SELECT current_setting('server_version_num') AS version`);
  if (Number(result.rows[0]?.version ?? 0) >= 150000) await client.query('SELECT pg_stat_force_next_flush()');
}

/** The loader writes explicit ids; move each id sequence past them so the workload's inserts fit. */
async function advanceSequences(client: pg.ClientBase): Promise<void> {
  for (const table of EXAMPLE_TABLES) {
    const name = qualified(EXAMPLE_SCHEMA, table);
    await client.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), max(id)) FROM ${name}`, [name]);
  }
}

function exampleTableList(): string {
  return EXAMPLE_TABLES.map((table) => qualified(EXAMPLE_SCHEMA, table)).join(', ');
}

async function countRows(client: pg.ClientBase): Promise<Record<ExampleTable, number>> {
  const columns = EXAMPLE_TABLES.map(
    (table) => `(SELECT count(*) FROM ${qualified(EXAMPLE_SCHEMA, table)})::bigint AS ${ident(table)}`,
  );
  const result = await client.query<Record<ExampleTable, string>>(`SELECT ${columns.join(', ')}`);
  const row = result.rows[0];
  if (row === undefined) throw new Error('counting the example rows returned nothing');
  return {
    tenants: Number(row.tenants),
    servers: Number(row.servers),
    deployments: Number(row.deployments),
    incidents: Number(row.incidents),
    events: Number(row.events),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string', default: 'small' },
      seed: { type: 'string', default: String(DEFAULT_SEED) },
      json: { type: 'boolean', default: false },
      debug: { type: 'boolean', default: false },
    },
  });
  const scale = values.scale;
  if (!isExampleScale(scale)) throw new Error(`--scale must be small or demo, got "${scale}"`);
  const seed = parseIntegerOption('seed', values.seed);
  // DATABASE_URL, else the PG* variables and the service file, as libpq reads them.
  const client = await connect(resolveConnection({ ...withUrl(databaseUrlFromEnv()), env: process.env })).catch((error: unknown) => {
    throw connectionError(error);
  });
  try {
    const summary = await loadExample(client, {
      scale,
      seed,
      onProgress: (message) => process.stderr.write(`${message}\n`),
    });
    process.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
  } finally {
    await client.end();
  }
}

export function formatSummary(summary: ExampleSummary): string {
  const width = Math.max(...EXAMPLE_TABLES.map((table) => table.length));
  const lines = EXAMPLE_TABLES.map(
    (table) => `  ${table.padEnd(width)}  ${summary.rows[table].toLocaleString('en-US').padStart(11)}`,
  );
  return [
    `example ${summary.scale}, seed ${summary.seed}, history ending ${summary.endAt}, ${summary.seconds.toFixed(1)} s`,
    ...lines,
    '',
  ].join('\n');
}

if (isMainModule(import.meta.url)) main().catch(exitWithError);
