import type pg from 'pg';
import { applyStatementsSql, STATEMENTS_SCHEMA_SQL } from '../catalog/health-queries.ts';
import { ident } from '../sql/ident.ts';
import type { Plan } from '../plan/plan.ts';
import { redactQueryText } from './redact-query.ts';

/**
 * What an apply records beside its plan for the report site: how long each change took, and the
 * pg_stat_statements counters, at the moment of the apply, of the statements that touch the tables it
 * changed. Later, the site subtracts those counters from the current ones: the mean latency since the
 * apply against the mean before it — the before/after of the statements a change was meant to speed up.
 * Stored in `pgwarden.history.summary.details`. Best effort: nothing here may fail an apply.
 */
export interface ApplyDetails {
  changeDone(address: string, ms: number): void;
  save(client: pg.ClientBase, historyId: number, failedAt: string | null): Promise<void>;
}

export interface RecordedStatement {
  /** `userid:queryid`. */
  readonly id: string;
  readonly query: string;
  readonly calls: number;
  readonly totalMs: number;
  /** Standard deviation of its execution time up to the apply (absent in records made before it was kept). */
  readonly stddevMs?: number;
}

export interface RecordedDetails {
  readonly changes: readonly { readonly address: string; readonly ms: number | null; readonly outcome: 'applied' | 'failed' | 'not started' }[];
  readonly statements: readonly RecordedStatement[];
  readonly statementsAt: string | null;
}

function tablesOf(plan: Plan): string[] {
  const names = new Set<string>();
  for (const c of plan.changes) {
    // Every change kind carries the table it acts on; read it loosely so new kinds need no change here.
    const table = (c.change as { table?: { name?: unknown } }).table;
    if (typeof table?.name === 'string') names.add(table.name);
  }
  return [...names];
}

export async function startApplyDetails(client: pg.ClientBase, plan: Plan): Promise<ApplyDetails> {
  const timings = new Map<string, number>();
  let statements: RecordedStatement[] = [];
  let statementsAt: string | null = null;
  const tables = tablesOf(plan);
  if (tables.length > 0) {
    try {
      const r = await client.query<{ schema: string | null; loaded: boolean }>(STATEMENTS_SCHEMA_SQL);
      const schema = r.rows[0]?.loaded ? r.rows[0].schema : null;
      if (schema) {
        const s = await client.query<{ id: string; query: string; calls: number; total_ms: number; stddev_ms: number }>(applyStatementsSql(ident(schema)), [tables]);
        statements = s.rows.map((row) => ({ id: row.id, query: redactQueryText(row.query), calls: row.calls, totalMs: row.total_ms, stddevMs: row.stddev_ms }));
        statementsAt = new Date().toISOString();
      }
    } catch {
      // No pg_stat_statements (or not preloaded): the run page says so.
    }
  }
  return {
    changeDone(address, ms) {
      timings.set(address, ms);
    },
    async save(c, historyId, failedAt) {
      const details: RecordedDetails = {
        changes: plan.changes.map((ch) => {
          const address = ch.change.address;
          const ms = timings.get(address);
          return { address, ms: ms ?? null, outcome: ms !== undefined ? 'applied' : address === failedAt ? 'failed' : 'not started' };
        }),
        statements,
        statementsAt,
      };
      await c
        .query(`UPDATE pgwarden.history SET summary = COALESCE(summary, '{}'::jsonb) || pg_catalog.jsonb_build_object('details', $2::jsonb) WHERE id = $1`, [historyId, JSON.stringify(details)])
        .catch(() => undefined);
    },
  };
}
