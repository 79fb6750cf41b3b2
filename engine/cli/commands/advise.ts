import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { advise, type AdviceReport, type StorageBudget } from '../../advisor/advise.ts';
import { changeDiff, planPolicyWrites, writePolicyChanges, type PolicyChange } from '../../advisor/policy-writer.ts';
import { renderAdviceMarkdown, renderAdviceText } from '../../advisor/render-advice.ts';
import { readWorkloadFile, WorkloadFileError, type WorkloadFileStatement } from '../../advisor/workload-file.ts';
import { ExplainFailed, ExplainRefused, quietStatements, readServerFacts } from '../../analysis/explain-statement.ts';
import { StatementsUnavailable } from '../../analysis/statement-stats.ts';
import { INDEX_SCANS_SQL } from '../../catalog/analysis-queries.ts';
import type { DesiredState } from '../../policy/desired.ts';
import { settingsOf } from '../../connection/connection-settings.ts';
import { connect } from '../../connection/open-connection.ts';
import { commandConnection, withClient } from '../connect.ts';
import { CliError, redact, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';
import { parseDuration } from '../duration.ts';
import { loadOrFail } from '../load-policies.ts';

export const adviseOptions = defineOptions({
  write: { type: 'boolean', description: 'add the advice to the policy files (a minimal diff)' },
  'max-indexes': { type: 'string', value: 'N', byDefault: '10', description: 'indexes advised at most' },
  since: { type: 'string', value: 'DURATION', description: 'the workload of the last DURATION only' },
  format: { type: 'string', value: 'FORMAT', byDefault: 'text', description: 'text, json or markdown' },
  'standby-url': { type: 'string', value: 'URL', description: 'also count the index scans of this standby before calling an index unused' },
  method: { type: 'string', value: 'METHOD', byDefault: 'auto', description: 'auto (hypopg when installed) or statistics' },
  workload: { type: 'string', value: 'FILE', description: 'advise for the SQL statements in FILE (ending with ";") instead of pg_stat_statements' },
  budget: { type: 'string', value: 'SIZE', description: 'storage the new indexes may take: 500MB, 2GB, or 0.25x the data size' },
  verify: { type: 'boolean', description: 'staging only: build each advised index in a rolled-back transaction, measure its statements, keep only measured gains' },
});

/**
 * `pgwarden advise`: index advice for the workload in pg_stat_statements, with evidence; `--write`
 * adds it to the policy files (a minimal diff), refusing files it cannot edit safely.
 */
export async function adviseCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, adviseOptions);
  const format = values.json ? 'json' : (values.format ?? 'text');
  if (!['text', 'json', 'markdown'].includes(format)) throw new CliError(`--format must be text, json or markdown, got "${format}"`);
  const method = values.method ?? 'auto';
  if (method !== 'auto' && method !== 'statistics') throw new CliError(`--method must be auto or statistics, got "${method}"`);
  const maxIndexes = values['max-indexes'] === undefined ? 10 : Number(values['max-indexes']);
  if (!Number.isInteger(maxIndexes) || maxIndexes < 1) throw new CliError(`--max-indexes must be a positive whole number, got "${values['max-indexes']}"`);
  const sinceMs = values.since === undefined ? undefined : parseDuration(values.since, 'since');
  const budget = values.budget === undefined ? undefined : parseBudget(values.budget);
  if (values.workload !== undefined && sinceMs !== undefined) throw new CliError('--workload and --since cannot be combined: the workload comes from the file, not from a window of pg_stat_statements');
  const workload = values.workload === undefined ? undefined : await readWorkload(values.workload, io);

  const policiesGiven = values.policies ?? 'policies';
  const policiesDir = path.resolve(io.cwd, policiesGiven);
  const haveDir = await stat(policiesDir).then((s) => s.isDirectory(), () => false);
  if (values.write && !haveDir) throw new CliError(`--write needs the policy directory ${policiesGiven}, which does not exist`, 'create it, or pass --policies DIR');
  // Without --write the policies only say which indexes are declared already: optional.
  const desired: DesiredState | undefined = haveDir ? await loadOrFail(values.policies, io, { json: format === 'json' }) : undefined;

  const connection = commandConnection(values['database-url'], io);
  const standby = values['standby-url'] === undefined ? undefined : await readStandbyScans(values['standby-url'], io);

  let report: AdviceReport;
  try {
    report = await withClient(connection, io, async (client) => {
      await quietStatements(client);
      const facts = await readServerFacts(client);
      return advise(client, facts, {
        maxIndexes,
        ...(budget === undefined ? {} : { budget }),
        ...(values.verify ? { verify: { timeoutMs: 60_000 } } : {}),
        ...(sinceMs === undefined ? {} : { sinceMs }),
        ...(workload === undefined ? {} : { workload }),
        method,
        ...(desired === undefined ? {} : { desired }),
        ...(standby === undefined ? {} : { standbyScans: standby.scans, standbyStatsReset: standby.statsReset }),
        now: () => new Date(),
        wait: (ms) => sleep(ms, undefined, { signal: io.signal }).catch(() => undefined),
        // Progress is for people watching a terminal; logs and pipes get the report alone.
        onProgress: (message) => {
          if (format === 'text' && io.isTTY) io.stderr(`${message}\n`);
        },
      });
    });
  } catch (error) {
    if (error instanceof StatementsUnavailable || error instanceof ExplainRefused) throw new CliError(error.message, error.hint);
    if (error instanceof ExplainFailed) throw new CliError(error.message);
    throw error;
  }

  let changes: PolicyChange[] = [];
  if (values.write && report.indexes.length > 0 && desired !== undefined) {
    const target = { dir: policiesDir, displayDir: policiesGiven };
    changes = await writePolicyChanges(target, await planPolicyWrites(target, desired.files, report.indexes));
  }

  if (format === 'json') io.stdout(`${JSON.stringify(values.write ? { ...report, policyChanges: changes.map(({ ...c }) => ('before' in c ? { ...c, before: undefined } : c)) } : report, null, 2)}\n`);
  else if (format === 'markdown') io.stdout(renderAdviceMarkdown(report));
  else io.stdout(renderAdviceText(report, { color: io.color, writing: values.write === true }));

  if (values.write) {
    if (report.indexes.length === 0 && format !== 'json') io.stdout('Nothing to write.\n');
    for (const c of changes) {
      if (c.kind === 'refused') {
        io.stderr(`pgwarden: not writing ${c.file}: ${c.reason}\n`);
        if (format !== 'json') io.stdout(`\nPaste into ${c.file} yourself:\n${c.snippet}`);
      } else if (format !== 'json') {
        io.stdout(`\n${c.kind === 'create' ? 'Created' : 'Updated'} ${c.file}: ${c.indexes.join(', ')}\n${changeDiff(c)}`);
      }
    }
    const refused = changes.filter((c) => c.kind === 'refused');
    if (refused.length > 0) {
      throw new CliError(`${refused.length} policy file(s) could not be updated safely; the entries to add are printed above`, undefined, 1, true);
    }
    if (changes.length > 0 && format !== 'json') io.stdout('\nNext: `pgwarden plan` shows the builds; `pgwarden apply` runs them online.\n');
  }
  return 0;
}

const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };

/** `500MB`, `1.5GB` (binary units, as pg_size_pretty prints them) or `0.25x` (a share of the workload's tables' size). */
export function parseBudget(text: string): StorageBudget {
  const share = /^\s*(\d+(?:\.\d+)?)\s*x\s*$/i.exec(text);
  if (share !== null) {
    const value = Number(share[1]);
    if (value > 0) return { kind: 'share', share: value };
  }
  const size = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)\s*$/i.exec(text);
  if (size !== null && Number(size[1]) > 0) return { kind: 'bytes', bytes: Math.round(Number(size[1]) * (UNITS[(size[2] as string).toLowerCase()] as number)) };
  throw new CliError(`--budget must be a size such as 500MB or 2GB, or a share of the data size such as 0.25x, got "${text}"`);
}

async function readWorkload(file: string, io: Io): Promise<{ file: string; statements: WorkloadFileStatement[] }> {
  const text = await readFile(path.resolve(io.cwd, file), 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new CliError(`cannot read the workload file ${file}: ${error.code === 'ENOENT' ? 'it does not exist' : error.message}`);
  });
  try {
    const statements = readWorkloadFile(text, file);
    if (statements.length === 0) throw new CliError(`the workload file ${file} has no SQL statement`, 'statements end with ";"; see `pgwarden advise --help`');
    return { file, statements };
  } catch (error) {
    if (error instanceof WorkloadFileError) throw new CliError(error.message);
    throw error;
  }
}

/** The standby's index scan counters, and when its own statistics were last reset (a standby keeps its own). */
async function readStandbyScans(url: string, io: Io): Promise<{ scans: Map<string, number>; statsReset: string | null }> {
  let client: pg.Client | undefined;
  try {
    client = await connect(settingsOf(url, io.env, '--standby-url'), { application_name: 'pgwarden', connectionTimeoutMillis: 10_000 });
    const rows = (await client.query<{ schema: string; name: string; scans: string; stats_reset: Date | null }>(INDEX_SCANS_SQL)).rows;
    const reset = rows[0]?.stats_reset ?? null;
    return { scans: new Map(rows.map((r) => [`${r.schema}.${r.name}`, Number(r.scans)])), statsReset: reset === null ? null : reset.toISOString() };
  } catch (error) {
    throw new CliError(`cannot read the standby's index statistics: ${redact((error as Error).message)}`, 'check --standby-url');
  } finally {
    await client?.end().catch(() => undefined);
  }
}
