import { setTimeout as sleep } from 'node:timers/promises';
import { analyzeQuery, analyzeWorkload } from '../../analysis/analysis-report.ts';
import { ExplainFailed, ExplainRefused, quietStatements, readServerFacts } from '../../analysis/explain-statement.ts';
import { renderQueryMarkdown, renderQueryText, renderWorkloadMarkdown, renderWorkloadText } from '../../analysis/render-analysis.ts';
import { StatementsUnavailable } from '../../analysis/statement-stats.ts';
import { commandConnection, withClient } from '../connect.ts';
import { CliError, type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';
import { parseDuration } from '../duration.ts';

export const analyzeOptions = defineOptions({
  query: { type: 'string', short: 'q', value: 'SQL', description: 'explain this one statement instead of the workload' },
  param: { type: 'string', multiple: true, value: 'VALUE', description: 'a bind parameter of --query ($1, $2, ... in order)' },
  analyze: { type: 'boolean', description: 'EXPLAIN ANALYZE (run it, in a transaction rolled back)' },
  since: { type: 'string', value: 'DURATION', description: 'the workload of the last DURATION only (a delta of pg_stat_statements)' },
  top: { type: 'string', value: 'N', byDefault: '10', description: 'statements listed' },
  explain: { type: 'string', value: 'N', byDefault: '5', description: 'statements whose plans are examined' },
  all: { type: 'boolean', description: 'keep the statements otherwise left out (pgwarden\'s own, utility statements)' },
  format: { type: 'string', value: 'FORMAT', byDefault: 'text', description: 'text, json or markdown' },
  timeout: { type: 'string', value: 'DURATION', description: 'statement_timeout of each EXPLAIN' },
});

/**
 * `pgwarden analyze`: the slow statements of pg_stat_statements and their plans' findings, or with
 * `--query` one statement's plan. Nothing is executed unless `--analyze` is given, and then inside a
 * transaction that is rolled back.
 */
export async function analyzeCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, analyzeOptions);
  const format = values.json ? 'json' : (values.format ?? 'text');
  if (!['text', 'json', 'markdown'].includes(format)) throw new CliError(`--format must be text, json or markdown, got "${format}"`);
  if (values.param !== undefined && values.query === undefined) throw new CliError('--param needs --query');
  if (values.query !== undefined && values.since !== undefined) throw new CliError('--since applies to the workload, not to --query');
  const top = count(values.top, 'top', 10);
  const explain = count(values.explain, 'explain', 5);
  const sinceMs = values.since === undefined ? undefined : parseDuration(values.since, 'since');
  const timeoutMs = values.timeout === undefined ? undefined : parseDuration(values.timeout, 'timeout');
  const connection = commandConnection(values['database-url'], io);

  try {
    return await withClient(connection, io, async (client) => {
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
