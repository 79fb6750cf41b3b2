import type pg from 'pg';
import type { ConvertTable } from '../../diff/convert-change.ts';
import type { ConvertStep } from '../../plan/convert-steps.ts';
import { CONVERSION_REGISTRY_SQL } from '../../sql/convert-ddl.ts';
import { setLockTimeoutSql, setStatementTimeoutSql } from '../../sql/ddl.ts';
import { literal } from '../../sql/ident.ts';
import type { BuildProgress } from '../progress.ts';
import { ReplicaLagTracker } from './replica-lag-tracker.ts';
import { compareVerification, type VerifyRow } from './verification.ts';

/**
 * The online conversion executor: the phases of a `convert` step, each leaving the database consistent
 * if the process dies there (the old table stays the live one until the swap commits):
 *
 * 1. cleanup: an earlier attempt the plan could not resume is dropped (one transaction);
 * 2. create: the new table, partitions, indexes and the capture trigger, and the record in
 *    `pgwarden.conversion` (one transaction: all or nothing);
 * 3. copy: key-ordered batches, each one short transaction that also moves the recorded watermark, so
 *    a killed apply resumes after the last committed batch; sized to take about `targetBatchMs`, and
 *    paused while a standby lags more than the routing policy's max_lag_ms;
 * 4. verify: rows and a checksum per partition range, both sides in one snapshot;
 * 5. swap: one transaction under lock_timeout, retried with backoff;
 * 6. ANALYZE the new table.
 */
export interface ConversionOptions {
  readonly lockTimeoutMs: number;
  readonly retries: number;
  readonly backoffMs: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: BuildProgress) => void;
  readonly onNotice?: (message: string) => void;
  readonly onRetry?: (sql: string, attempt: number, waitMs: number, reason: string) => void;
  /** How long one batch should take: short enough that a writer waiting on a row it locks barely notices. */
  readonly targetBatchMs?: number;
  readonly initialBatchRows?: number;
  /**
   * How long the copy waits in one go for a standby over max_lag_ms before it stops with an error (the
   * old table stays the live one; the next apply resumes). A standby that disconnects is not waited for.
   */
  readonly maxReplicaWaitMs?: number;
  /** Called between batches (tests stop the process here). */
  readonly afterBatch?: (rowsCopied: number) => Promise<void> | void;
  /** A second session: verification reads the two tables at once, in one exported snapshot. */
  readonly openSession?: () => Promise<pg.ClientBase & { end(): Promise<void> }>;
}

export interface ConversionReport {
  readonly rowsCopied: number;
  readonly batches: number;
  readonly copyMs: number;
  readonly verifyMs: number;
  /** From the moment both ACCESS EXCLUSIVE locks were granted to the commit. */
  readonly swapLockMs: number;
  /** Tries the swap needed (lock_timeout ran out on the others). */
  readonly swapAttempts: number;
  readonly maxReplicaLagMs: number | null;
  readonly throttledMs: number;
}

const RETRYABLE = new Set(['55P03', '40P01', '40001']);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ConversionError extends Error {
  constructor(
    message: string,
    readonly sql?: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

async function inTransaction<T>(client: pg.ClientBase, lockTimeoutMs: number, statementTimeoutMs: number, body: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    await client.query(`${setLockTimeoutSql(lockTimeoutMs).replace(/^SET /u, 'SET LOCAL ')}; ${setStatementTimeoutSql(statementTimeoutMs).replace(/^SET /u, 'SET LOCAL ')}`);
    const result = await body();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function withRetries<T>(what: string, options: ConversionOptions, run: () => Promise<T>): Promise<{ value: T; attempts: number }> {
  for (let attempt = 1; ; attempt += 1) {
    if (options.signal?.aborted) throw new ConversionError(`interrupted before the ${what}; the old table is still the live one, and the next apply resumes`);
    try {
      return { value: await run(), attempts: attempt };
    } catch (error) {
      const e = error as { code?: string; message: string };
      if (!RETRYABLE.has(e.code ?? '') || attempt > options.retries || options.signal?.aborted) {
        const why = e.code === '55P03' ? `could not take its locks within lock_timeout (${options.lockTimeoutMs} ms) after ${attempt} tries: ${e.message}` : e.message;
        throw new ConversionError(`the ${what} failed: ${why}`, undefined, 'the old table is still the live one and nothing is lost; apply again to resume');
      }
      const waitMs = Math.min(options.backoffMs * 2 ** (attempt - 1), 30_000);
      options.onRetry?.(what, attempt, waitMs, e.message);
      await sleep(waitMs);
    }
  }
}

function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function recordSql(c: ConvertTable): string {
  return `INSERT INTO pgwarden.conversion (schema_name, table_name, relid, new_name, old_name, phase)
VALUES (${literal(c.table.schema)}, ${literal(c.table.name)}, ${c.oid}, ${literal(c.newName)}, ${literal(c.oldName)}, 'copying')
ON CONFLICT (schema_name, table_name) DO UPDATE SET relid = EXCLUDED.relid, new_name = EXCLUDED.new_name, old_name = EXCLUDED.old_name,
  phase = 'copying', watermark = NULL, rows_copied = 0, started_at = now(), updated_at = now()`;
}

function swappedSql(c: ConvertTable): string[] {
  return [
    `UPDATE pgwarden.conversion SET phase = 'swapped', updated_at = now() WHERE schema_name = ${literal(c.table.schema)} AND table_name = ${literal(c.table.name)}`,
    ...c.indexes.map(
      (i) => `INSERT INTO pgwarden.managed_index (schema_name, index_name, table_name, policy_file) VALUES (${literal(c.table.schema)}, ${literal(i.index.name)}, ${literal(c.table.name)}, ${literal(i.index.source.file)})
ON CONFLICT (schema_name, index_name) DO UPDATE SET table_name = EXCLUDED.table_name, policy_file = EXCLUDED.policy_file, spec_hash = NULL, signature = NULL, recorded_at = now()`,
    ),
  ];
}

/**
 * Both sides in one snapshot: on a second session importing the first one's snapshot when there is one
 * (the two scans then run at once), else one after the other in the same transaction.
 */
async function verifyBoth(client: pg.ClientBase, step: ConvertStep, options: ConversionOptions): Promise<{ oldRows: VerifyRow[]; newRows: VerifyRow[] }> {
  const second = options.openSession ? await options.openSession().catch(() => null) : null;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query('SET LOCAL statement_timeout = 0');
    if (second === null) {
      const oldRows = (await client.query<VerifyRow>(step.verify.old)).rows;
      const newRows = (await client.query<VerifyRow>(step.verify.new)).rows;
      return { oldRows, newRows };
    }
    const snapshot = (await client.query<{ s: string }>('SELECT pg_catalog.pg_export_snapshot() AS s')).rows[0]?.s ?? '';
    await second.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await second.query(`SET TRANSACTION SNAPSHOT ${literal(snapshot)}`);
    await second.query('SET LOCAL statement_timeout = 0');
    const [oldRows, newRows] = await Promise.all([client.query<VerifyRow>(step.verify.old), second.query<VerifyRow>(step.verify.new)]);
    await second.query('COMMIT');
    return { oldRows: oldRows.rows, newRows: newRows.rows };
  } finally {
    await client.query('COMMIT').catch(() => undefined);
    await second?.end().catch(() => undefined);
  }
}

export async function runConversion(client: pg.ClientBase, change: ConvertTable, step: ConvertStep, options: ConversionOptions): Promise<ConversionReport> {
  const notice = (m: string): void => options.onNotice?.(m);
  const qualifiedName = `${change.table.schema}.${change.table.name}`;
  // Key values travel as text and come back as text: the same output in every session that resumes.
  await client.query(`SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3`);
  await client.query(CONVERSION_REGISTRY_SQL);
  const statementMs = Math.max(options.lockTimeoutMs * 4, 60_000);

  if (step.cleanup.length > 0) {
    notice(`dropping the leftovers of an earlier conversion attempt of ${qualifiedName}`);
    await withRetries('cleanup of the earlier attempt', options, () =>
      inTransaction(client, options.lockTimeoutMs, statementMs, async () => {
        await client.query(step.cleanup.join(';\n'));
        await client.query('DELETE FROM pgwarden.conversion WHERE schema_name = $1 AND table_name = $2', [change.table.schema, change.table.name]);
      }),
    );
  }
  if (step.create.length > 0) {
    notice(`creating ${change.table.schema}.${change.newName} (${change.partitions.length + (change.defaultPartition ? 1 : 0)} partitions, ${change.indexes.length} declared index(es)) and the capture trigger on ${qualifiedName}`);
    await withRetries('creation of the new table and the capture trigger', options, () =>
      inTransaction(client, options.lockTimeoutMs, statementMs, async () => {
        await client.query([...step.create, recordSql(change)].join(';\n'));
      }),
    );
  }

  // Copy.
  const keyCount = change.primaryKey.columns.length;
  let watermark: string[] | null = change.resume?.watermark ? [...change.resume.watermark] : null;
  let rowsCopied = change.resume?.rowsCopied ?? 0;
  const target = Math.max(change.rows, 1);
  let batchRows = options.initialBatchRows ?? 1000;
  const targetMs = options.targetBatchMs ?? 150;
  const started = Date.now();
  let batches = 0;
  let maxLag: number | null = null;
  let throttledMs = 0;
  let copiedThisRun = 0;
  const lagTracker = new ReplicaLagTracker();
  let streamed = false;
  const maxWaitMs = options.maxReplicaWaitMs ?? 15 * 60_000;
  if (change.resume) notice(`resuming the copy after ${rowsCopied.toLocaleString('en-US')} rows`);
  for (;;) {
    if (options.signal?.aborted) {
      throw new ConversionError(`interrupted during the copy after ${rowsCopied.toLocaleString('en-US')} rows; the old table is still the live one and the capture trigger keeps the new one current; the next apply resumes the copy`);
    }
    if (change.maxLagMs !== null) {
      const t0 = Date.now();
      let waiting = false;
      let touched = t0;
      for (;;) {
        const lag = await lagTracker.read(client);
        if (lag !== null) maxLag = Math.max(maxLag ?? 0, lag);
        if (lag === null && streamed) notice(`no standby streams from the primary any more: the copy goes on without waiting for one`);
        streamed = lag !== null;
        if (lag === null) waiting = false;
        if (lag === null || lag <= change.maxLagMs || options.signal?.aborted) break;
        if (!waiting) notice(`copy paused after ${rowsCopied.toLocaleString('en-US')} rows: waiting for the replica, replay lag ${Math.round(lag)} ms is over max_lag_ms ${change.maxLagMs}`);
        waiting = true;
        if (Date.now() - t0 > maxWaitMs) {
          throw new ConversionError(
            `the copy of ${qualifiedName} waited ${formatEta((Date.now() - t0) / 1000)} for a standby to replay (lag ${Math.round(lag)} ms, max_lag_ms ${change.maxLagMs}) and stopped after ${rowsCopied.toLocaleString('en-US')} rows; the old table is still the live one`,
            undefined,
            'check the standby (pg_stat_replication on the primary, pg_is_wal_replay_paused() on the standby), then apply again to resume the copy',
          );
        }
        options.onProgress?.({ phase: `copy paused: waiting for the replica (replay lag ${Math.round(lag)} ms over max_lag_ms ${change.maxLagMs})`, percent: Math.min(100, (100 * rowsCopied) / target), waitingFor: [] });
        // A standby reports what it replayed when WAL reaches it: a small write every second makes
        // it report soon after it caught up, instead of at its next status interval (10 s).
        if (Date.now() - touched >= 1000) {
          touched = Date.now();
          await client.query('UPDATE pgwarden.conversion SET updated_at = now() WHERE schema_name = $1 AND table_name = $2', [change.table.schema, change.table.name]);
        }
        await sleep(100);
      }
      throttledMs += Date.now() - t0;
      if (waiting && !options.signal?.aborted) notice(`the replica caught up after ${((Date.now() - t0) / 1000).toFixed(1)} s: the copy goes on`);
    }
    const boundArgs = watermark ? [...watermark, batchRows - 1] : [batchRows - 1];
    const bound = await client.query<Record<string, string>>(watermark ? step.bound.next : step.bound.first, boundArgs);
    const upperRow = bound.rows[0];
    const upper = upperRow ? Array.from({ length: keyCount }, (_, i) => upperRow[`k${i}`]!) : null;
    const sql = watermark ? (upper ? step.copy.both : step.copy.lowerOnly) : upper ? step.copy.upperOnly : step.copy.all;
    const args = [...(watermark ?? []), ...(upper ?? [])];
    const t0 = Date.now();
    const { value: locked } = await withRetries('copy batch', options, () =>
      inTransaction(client, options.lockTimeoutMs, statementMs, async () => {
        const r = await client.query<{ locked: string; inserted: string }>(sql, args);
        const n = Number(r.rows[0]?.locked ?? 0);
        if (upper) {
          await client.query('UPDATE pgwarden.conversion SET watermark = $3, rows_copied = rows_copied + $4, updated_at = now() WHERE schema_name = $1 AND table_name = $2', [
            change.table.schema,
            change.table.name,
            upper,
            n,
          ]);
        }
        return n;
      }),
    );
    const ms = Date.now() - t0;
    batches += 1;
    rowsCopied += locked;
    copiedThisRun += locked;
    const elapsed = (Date.now() - started) / 1000;
    const rate = copiedThisRun / Math.max(elapsed, 0.001);
    const pct = Math.min(100, (100 * rowsCopied) / target);
    options.onProgress?.({
      phase: `copying ${qualifiedName}: ${rowsCopied.toLocaleString('en-US')} of ~${change.rows.toLocaleString('en-US')} rows, ${Math.round(rate).toLocaleString('en-US')} rows/s, ETA ${formatEta((change.rows - rowsCopied) / Math.max(rate, 1))}`,
      percent: pct,
      waitingFor: [],
    });
    if (!upper) break;
    watermark = upper;
    // Batches sized by how long they take: a writer that needs a row the batch locked waits at most that long.
    if (ms < targetMs / 2) batchRows = Math.min(batchRows * 2, 50_000);
    else if (ms > targetMs * 2) batchRows = Math.max(Math.floor(batchRows / 2), 100);
    await options.afterBatch?.(rowsCopied);
  }
  const copyMs = Date.now() - started;
  notice(`copied ${rowsCopied.toLocaleString('en-US')} rows in ${batches} batches, ${(copyMs / 1000).toFixed(1)} s${maxLag !== null ? `; replica lag at most ${Math.round(maxLag)} ms` : ''}`);

  // Verify: one snapshot for both sides; the trigger changes both in the writer's own transaction.
  options.onProgress?.({ phase: `verifying ${qualifiedName}: rows and checksums per partition`, percent: null, waitingFor: [] });
  const v0 = Date.now();
  const { oldRows, newRows } = await verifyBoth(client, step, options);
  const verifyMs = Date.now() - v0;
  const mismatch = compareVerification(change, oldRows, newRows);
  if (mismatch !== null) {
    throw new ConversionError(
      `verification failed for ${qualifiedName}: ${mismatch}; nothing was swapped, the old table is still the live one`,
      undefined,
      'report this; `pgwarden plan` shows the conversion as resumable, and the old table is untouched',
    );
  }
  const total = oldRows.reduce((s, r) => s + Number(r.rows), 0);
  notice(`verified: ${total.toLocaleString('en-US')} rows in ${oldRows.length} partition range(s), counts and checksums equal (${(verifyMs / 1000).toFixed(1)} s)`);

  // Swap.
  let lockMs = 0;
  const { attempts } = await withRetries('swap', options, () =>
    inTransaction(client, options.lockTimeoutMs, statementMs, async () => {
      const [lockOld, lockNew, ...rest] = step.swap;
      await client.query(`${lockOld};\n${lockNew}`);
      const locked = Date.now();
      await client.query([...rest, ...swappedSql(change)].join(';\n'));
      lockMs = Date.now() - locked;
    }),
  );
  notice(`swapped: ${qualifiedName} is partitioned now; the old table is ${change.table.schema}.${change.oldName} (kept until apply --allow-drop); ACCESS EXCLUSIVE held ${lockMs} ms${attempts > 1 ? ` on try ${attempts}` : ''}`);
  for (const sql of step.validate) {
    await client.query(sql).catch((error: unknown) => {
      throw new ConversionError(
        `${qualifiedName} is converted, but a foreign key re-pointed at it failed its check: ${(error as Error).message}`,
        sql,
        'it stays NOT VALID (enforced for new rows); fix the rows it names, then run the statement again',
      );
    });
  }
  if (step.validate.length > 0) notice(`validated ${step.validate.length} foreign key(s) that reference ${qualifiedName}`);
  await client.query(step.analyze).catch(() => undefined);
  return { rowsCopied, batches, copyMs, verifyMs, swapLockMs: lockMs, swapAttempts: attempts, maxReplicaLagMs: maxLag, throttledMs };
}
