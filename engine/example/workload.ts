/**
 * Runs the example platform's API traffic against the loaded example: the named queries of
 * workload-queries.ts at a fixed rate for a fixed time, then reports latency percentiles per query.
 *
 * @example
 *   DATABASE_URL=postgres://... node --import tsx engine/example/workload.ts --duration 10s --rate 50
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { resolveConnection } from '../connection/connection-settings.ts';
import { createPool } from '../connection/open-connection.ts';
import { connectionError, databaseUrlFromEnv, exitWithError, withUrl, isMainModule, parseDurationMs, parseIntegerOption } from './cli.ts';
import { createRandom } from './random.ts';
import { readWorkloadContext, type WorkloadContext } from './workload-context.ts';
import { WORKLOAD_QUERIES, type WorkloadQuery } from './workload-queries.ts';
import {
  formatWorkloadReport,
  type QuerySamples,
  summariseQuery,
  type WorkloadReport,
} from './workload-report.ts';

export interface WorkloadOptions {
  readonly durationMs: number;
  /** Requests started per second, whatever their latency (an open loop, as real API traffic is). */
  readonly ratePerSecond: number;
  /** Requests in flight at most; default 4. When all are busy, the schedule slips rather than piling up. */
  readonly concurrency?: number;
  /** Same seed, same sequence of queries and parameters; default 1. */
  readonly seed?: number;
  /** Include inserts and updates (default true), so a standby has WAL to replay. */
  readonly writes?: boolean;
}

export { formatWorkloadReport, type WorkloadReport } from './workload-report.ts';

/** One request of the run: which query, with which bind values. */
export interface Operation {
  readonly query: WorkloadQuery;
  readonly values: readonly unknown[];
}

/**
 * The mix as a deck of cards, one per unit of weight, shuffled by the seed and dealt in a cycle: every
 * query comes up once per deck (39 requests with writes), so even a short run exercises all of them, and
 * the mix over any window is close to the weights rather than only on average.
 */
export function buildDeck(queries: readonly WorkloadQuery[], seed: number): readonly WorkloadQuery[] {
  const deck = queries.flatMap((query) => Array.from({ length: query.weight }, () => query));
  const draw = createRandom(seed, -1);
  for (let i = deck.length - 1; i > 0; i--) {
    const j = Math.floor(draw() * (i + 1));
    const a = deck[i];
    const b = deck[j];
    if (a === undefined || b === undefined) continue;
    deck[i] = b;
    deck[j] = a;
  }
  return deck;
}

/** Request number `ticket` of a run: a pure function of the deck, the data's ids, the seed and the ticket. */
export function drawOperation(
  deck: readonly WorkloadQuery[],
  context: WorkloadContext,
  seed: number,
  ticket: number,
): Operation {
  const query = deck[ticket % deck.length];
  if (query === undefined) throw new Error('the workload has no queries');
  return { query, values: query.values(context, createRandom(seed, ticket)) };
}

export async function runWorkload(pool: pg.Pool, options: WorkloadOptions): Promise<WorkloadReport> {
  const { durationMs, ratePerSecond } = options;
  const concurrency = options.concurrency ?? 4;
  const seed = options.seed ?? 1;
  const writes = options.writes ?? true;
  if (!(durationMs > 0 && Number.isFinite(durationMs))) throw new Error(`durationMs must be positive, got ${durationMs}`);
  if (!(ratePerSecond > 0 && Number.isFinite(ratePerSecond))) {
    throw new Error(`ratePerSecond must be positive, got ${ratePerSecond}`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be at least 1, got ${concurrency}`);

  const context = await readWorkloadContext(pool);
  const queries = WORKLOAD_QUERIES.filter((query) => writes || query.access === 'read');
  const deck = buildDeck(queries, seed);
  const samples = new Map<string, QuerySamples>(
    queries.map((query) => [query.name, { name: query.name, access: query.access, latenciesMs: [], errors: 0 }]),
  );

  const startedAt = performance.now();
  const deadline = startedAt + durationMs;
  const intervalMs = 1000 / ratePerSecond;
  let nextTicket = 0;

  // Each worker claims the next ticket, waits for its slot in the schedule, and runs it. Nothing starts
  // at or after the deadline, so the run ends by itself: at most the in-flight requests finish after it.
  const worker = async (): Promise<void> => {
    for (;;) {
      const ticket = nextTicket++;
      const due = startedAt + ticket * intervalMs;
      if (due >= deadline) return;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (performance.now() >= deadline) return;
      const { query, values } = drawOperation(deck, context, seed, ticket);
      const record = samples.get(query.name);
      if (record === undefined) continue;
      const sent = performance.now();
      try {
        await pool.query(query.sql, [...values]);
        record.latenciesMs.push(performance.now() - sent);
      } catch (error) {
        record.errors += 1;
        record.firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));

  const elapsedMs = performance.now() - startedAt;
  const stats = [...samples.values()].map(summariseQuery);
  const count = stats.reduce((sum, query) => sum + query.count, 0);
  const errors = stats.reduce((sum, query) => sum + query.errors, 0);
  return {
    seed,
    ratePerSecond,
    concurrency,
    writes,
    durationMs: elapsedMs,
    achievedRatePerSecond: ((count + errors) * 1000) / elapsedMs,
    count,
    errors,
    queries: stats,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10s' },
      rate: { type: 'string', default: '50' },
      concurrency: { type: 'string', default: '4' },
      seed: { type: 'string', default: '1' },
      'read-only': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      debug: { type: 'boolean', default: false },
    },
  });
  const rate = Number(values.rate);
  if (!(rate > 0)) throw new Error(`--rate must be a positive number of requests per second, got "${values.rate}"`);
  const concurrency = parseIntegerOption('concurrency', values.concurrency);
  // DATABASE_URL, else the PG* variables and the service file, as libpq reads them.
  const pool = createPool(resolveConnection({ ...withUrl(databaseUrlFromEnv()), env: process.env }), { max: Math.max(1, concurrency) });
  try {
    await pool.query('SELECT 1').catch((error: unknown) => {
      throw connectionError(error);
    });
    const report = await runWorkload(pool, {
      durationMs: parseDurationMs(values.duration),
      ratePerSecond: rate,
      concurrency,
      seed: parseIntegerOption('seed', values.seed),
      writes: !values['read-only'],
    });
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatWorkloadReport(report));
  } finally {
    await pool.end();
  }
}

if (isMainModule(import.meta.url)) main().catch(exitWithError);
