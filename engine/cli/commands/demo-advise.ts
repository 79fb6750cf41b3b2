import pg from 'pg';
import { advise } from '../../advisor/advise.ts';
import { changeDiff, planPolicyWrites } from '../../advisor/policy-writer.ts';
import { renderAdviceText } from '../../advisor/render-advice.ts';
import { analyzeWorkload } from '../../analysis/analysis-report.ts';
import { quietStatements, readServerFacts } from '../../analysis/explain-statement.ts';
import { renderWorkloadText } from '../../analysis/render-analysis.ts';
import { readSnapshot, requireStatements, statementDelta } from '../../analysis/statement-stats.ts';
import type { DesiredState } from '../../policy/desired.ts';
import { EVENT_KINDS } from '../../example/skew.ts';
import type { Io } from '../context.ts';
import { settingsOf } from '../../connection/connection-settings.ts';
import { connect } from '../../connection/open-connection.ts';

export interface AdviseDemoOptions {
  readonly url: string;
  readonly pool: pg.Pool;
  readonly desired: DesiredState;
  /** The example policies, absolute, and as shown. */
  readonly policiesDir: string;
  readonly displayDir: string;
}

/** "The latest events of one kind in one status": an endpoint the policies have no index for yet. */
const NEW_ENDPOINT = `SELECT id, server_id, created_at
          FROM public.events
          WHERE kind = $1 AND status = $2
          ORDER BY created_at DESC
          LIMIT 20`;

/**
 * The demo's analysis step: a new endpoint ships without an index; `analyze` measures a window of its
 * traffic (two pg_stat_statements snapshots around it) and points at the node to blame; `advise`
 * proposes the index with its evidence, and shows the policy diff `--write` would make (the demo does
 * not write into the repository's own policies).
 */
export async function adviseDemo(io: Io, options: AdviseDemoOptions): Promise<void> {
  const client = await connect(settingsOf(options.url), { application_name: 'pgwarden demo' });
  try {
    await quietStatements(client);
    const facts = await readServerFacts(client);
    io.stdout('  A new endpoint ships without an index: "the latest events of one kind in one status", 10 requests.\n\n');
    // One window of its traffic, between two pg_stat_statements snapshots: what `--since` measures.
    const schema = requireStatements(facts);
    const before = await readSnapshot(client, schema, () => new Date());
    for (let i = 0; i < 10; i += 1) await options.pool.query(NEW_ENDPOINT, [EVENT_KINDS[i % EVENT_KINDS.length], 'failed']);
    const window = statementDelta(before, await readSnapshot(client, schema, () => new Date()));
    const idle = async (): Promise<void> => undefined;
    const report = await analyzeWorkload(client, facts, { top: 3, explain: 1, window, analyze: false, all: false, now: () => new Date(), wait: idle });
    io.stdout(indent(renderWorkloadText(report, { color: io.color })));
    const advice = await advise(client, facts, { maxIndexes: 3, window, desired: options.desired, now: () => new Date(), wait: idle });
    io.stdout(`\n${indent(renderAdviceText({ ...advice, removals: [] }, { color: io.color }).replace(/\n*Next: .*\n$/s, '\n'))}`);
    if (advice.indexes.length > 0) {
      const target = { dir: options.policiesDir, displayDir: options.displayDir };
      const changes = await planPolicyWrites(target, options.desired.files, advice.indexes);
      io.stdout('\n  `pgwarden advise --write` adds it to the policy file as this diff (review it, then `pgwarden apply`):\n\n');
      for (const change of changes) io.stdout(indent(change.kind === 'refused' ? change.snippet : changeDiff(change)));
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : `  ${line}`))
    .join('\n');
}
