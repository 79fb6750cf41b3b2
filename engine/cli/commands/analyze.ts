import { setTimeout as sleep } from 'node:timers/promises';
import { analyzeQuery, analyzeWorkload } from '../../analysis/analysis-report.ts';
import { ExplainFailed, ExplainRefused, quietStatements, readServerFacts } from '../../analysis/explain-statement.ts';
import { renderQueryMarkdown, renderQueryText, renderWorkloadMarkdown, renderWorkloadText } from '../../analysis/render-analysis.ts';
import { StatementsUnavailable } from '../../analysis/statement-stats.ts';
import { CliError, databaseUrl, parse, type Io } from '../context.ts';
import { parseDuration } from './apply.ts';
import { withClient } from './plan.ts';

/**
 * `pgwarden analyze`: the slow statements of pg_stat_statements and their plans' findings, or with
 * `--query` one statement's plan. Nothing is executed unless `--analyze` is given, and then inside a
 * transaction that is rolled back.
 */
export async function analyzeCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    query: { type: 'string', short: 'q' },
    param: { type: 'string', multiple: true },
    analyze: { type: 'boolean' },
    since: { type: 'string' },
    top: { type: 'string' },
    explain: { type: 'string' },
    all: { type: 'boolean' },
    format: { type: 'string' },
    timeout: { type: 'string' },
  });
  const format = values.json ? 'json' : (values.format ?? 'text');
  if (!['text', 'json', 'markdown'].includes(format)) throw new CliError(`--format must be text, json or markdown, got "${format}"`);
  if (values.param !== undefined && values.query === undefined) throw new CliError('--param needs --query');
  if (values.query !== undefined && values.since !== undefined) throw new CliError('--since applies to the workload, not to --query');
  const top = count(values.top, 'top', 10);
  const explain = count(values.explain, 'explain', 5);
  const sinceMs = values.since === undefined ? undefined : parseDuration(values.since, 'since');
  const timeoutMs = values.timeout === undefined ? undefined : parseDuration(values.timeout, 'timeout');
  const url = databaseUrl(values['database-url'], io.env);

  try {
    return await withClient(url, io, async (client) => {
      await quietStatements(client);
      const facts = await readServerFacts(client);
      if (values.query !== undefined) {
        const report = await analyzeQuery(client, facts, values.query, {
          analyze: values.analyze ?? false,
          ...(values.param === undefined ? {} : { params: values.param }),
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        });
        if (format === 'json') io.stdout(`${JSON.stringify(report, null, 2)}\n`);
        else if (format === 'markdown') io.stdout(renderQueryMarkdown(report));
        else io.stdout(renderQueryText(report, { color: io.color }));
        return 0;
      }
      const report = await analyzeWorkload(client, facts, {
        top,
        explain,
        ...(sinceMs === undefined ? {} : { sinceMs }),
        analyze: values.analyze ?? false,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        all: values.all ?? false,
        now: () => new Date(),
        wait: (ms) => sleep(ms, undefined, { signal: io.signal }).catch(() => undefined),
        onProgress: (message) => {
          if (io.isTTY) io.stderr(`${message}\n`);
        },
      });
      if (format === 'json') io.stdout(`${JSON.stringify(report, null, 2)}\n`);
      else if (format === 'markdown') io.stdout(renderWorkloadMarkdown(report));
      else io.stdout(renderWorkloadText(report, { color: io.color }));
      return 0;
    });
  } catch (error) {
    if (error instanceof StatementsUnavailable || error instanceof ExplainRefused) throw new CliError(error.message, error.hint);
    if (error instanceof ExplainFailed) throw new CliError(`cannot explain the statement: ${error.message}`);
    throw error;
  }
}

function count(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--${flag} must be a positive whole number, got "${value}"`);
  return n;
}
