import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { ConnectionSettings } from '../../connection/connection-settings.ts';
import { connect } from '../../connection/open-connection.ts';
import { readExternalTableHealth } from '../../live-health/external-health.ts';
import { createHealthCollector } from '../../live-health/health-collector.ts';
import type { HealthSnapshot } from '../../live-health/health-snapshot.ts';
import { PLAN_FORMAT_VERSION, type Plan } from '../../plan/plan.ts';
import { buildSite, SiteBuildError } from '../../serve/site-build.ts';
import { collectSiteData, latestApplyRegressions } from '../../serve/site-data.ts';
import { commandConnection, connectionCliError } from '../connect.ts';
import { CliError, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';

async function readPlanFile(file: string, shown: string): Promise<Plan> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new CliError(e.code === 'ENOENT' ? `--plans ${shown}: no such file` : `--plans ${shown}: not a JSON plan (${e.message.split('\n')[0]})`, 'give files written by `pgwarden plan --out plan.json`');
  }
  const plan = parsed as Partial<Plan> | null;
  if (!plan || typeof plan !== 'object' || plan.formatVersion !== PLAN_FORMAT_VERSION || typeof plan.fingerprint !== 'string' || !Array.isArray(plan.changes) || typeof plan.createdAt !== 'string') {
    throw new CliError(`--plans ${shown}: not a pgwarden plan (format version ${PLAN_FORMAT_VERSION})`, 'give files written by `pgwarden plan --out plan.json`');
  }
  return plan as Plan;
}

/** The output folder must be new, empty, or a previous report (which is replaced). */
async function checkOut(dir: string, shown: string): Promise<void> {
  if (!existsSync(dir)) return;
  const entries = await readdir(dir).catch(() => null);
  if (entries === null) throw new CliError(`--out ${shown} exists and is not a directory`);
  if (entries.length > 0 && !entries.includes('index.html')) {
    throw new CliError(`--out ${shown} is not empty and holds no previous report; nothing was written`, 'choose a new or empty folder');
  }
}

/** Two polls a few seconds apart: a snapshot needs a window for its rates. */
async function healthSnapshot(url: ConnectionSettings, gapMs: number): Promise<HealthSnapshot | null> {
  const collector = createHealthCollector({ primaryUrl: url, slowIntervalMs: 0, tableHealth: (client) => readExternalTableHealth(client), applyRegressions: (client) => latestApplyRegressions(client) });
  try {
    if (!(await collector.pollOnce())) return null;
    await new Promise((r) => setTimeout(r, gapMs));
    await collector.slowSettled();
    return await collector.pollOnce();
  } finally {
    await collector.stop();
  }
}

export const reportOptions = defineOptions({
  out: { type: 'string', value: 'DIR', description: 'the folder the static site is written to (required)' },
  plans: { type: 'string', multiple: true, value: 'FILE', description: 'a saved plan to show (pgwarden plan --out FILE)' },
  'live-url': { type: 'string', value: 'URL', description: 'link the live page of a running `pgwarden serve`' },
  base: { type: 'string', value: 'PATH', byDefault: '/', description: 'the path the site is served under, like /my-repo/' },
  'no-health': { type: 'boolean', description: 'leave out the health snapshot' },
  'history-limit': { type: 'string', value: 'N', byDefault: '1000', description: 'apply history records shown' },
});

export async function reportCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, reportOptions);
  if (!values.out) throw new CliError('--out DIR is required: the folder the static site is written to');
  const out = path.resolve(io.cwd, values.out);
  const liveUrl = values['live-url'] ?? null;
  if (liveUrl !== null && !/^https?:\/\/[^\s]+$/.test(liveUrl)) throw new CliError(`--live-url must be an http(s) URL of a running \`pgwarden serve\`, got "${liveUrl}"`);
  const base = values.base ?? '/';
  if (!base.startsWith('/') || /\s/.test(base)) throw new CliError(`--base must be a path starting with /, like /my-repo/, got "${base}"`);
  const limit = values['history-limit'] === undefined ? 1000 : Number(values['history-limit']);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new CliError(`--history-limit must be a whole number from 1 to 100000, got "${values['history-limit']}"`);
  await checkOut(out, values.out);
  const plans = await Promise.all((values.plans ?? []).map((p) => readPlanFile(path.resolve(io.cwd, p), p)));

  // Saved plans alone make a report; the database is needed only when one is configured.
  let url: ConnectionSettings | undefined;
  let useDatabase = true;
  try {
    url = commandConnection(values['database-url'], io);
  } catch (error) {
    if (plans.length === 0) throw error;
    useDatabase = false;
  }
  const t0 = performance.now();
  let data;
  if (useDatabase && url !== undefined) {
    let client: pg.Client;
    try {
      client = await connect(url, { application_name: 'pgwarden report', connectionTimeoutMillis: 10_000 });
    } catch (error) {
      throw connectionCliError(error);
    }
    try {
      await client.query("SET default_transaction_read_only = on; SET statement_timeout = 60000; SET search_path = ''");
      const health = values['no-health'] ? null : await healthSnapshot(url, 2000);
      data = await collectSiteData(client, { mode: 'report', liveUrl, historyLimit: limit, plans, health });
    } finally {
      await client.end().catch(() => undefined);
    }
  } else {
    data = await collectSiteData(null, { mode: 'report', liveUrl, plans });
  }
  const collected = performance.now() - t0;
  try {
    const result = await buildSite({ data, outDir: out, base });
    if (values.json) {
      io.stdout(`${JSON.stringify({ out, runs: data.runs.length, indexes: data.indexes.length, tables: data.tables.length, health: data.health !== null, collectMs: Math.round(collected), buildMs: Math.round(result.ms) })}\n`);
    } else {
      io.stdout(`pgwarden report: ${data.runs.length} run(s), ${data.indexes.length} index(es), ${data.tables.length} table(s)${data.health ? ', a health snapshot' : ''}\n`);
      io.stdout(`  written to ${path.relative(io.cwd, out) || '.'} in ${((collected + result.ms) / 1000).toFixed(1)} s (site build ${(result.ms / 1000).toFixed(1)} s); open ${path.join(path.relative(io.cwd, out) || '.', 'index.html')} or publish the folder\n`);
    }
  } catch (error) {
    if (error instanceof SiteBuildError) throw new CliError(error.message);
    throw error;
  }
  return 0;
}
