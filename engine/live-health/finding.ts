import { literal, qualified } from '../sql/ident.ts';
import type { SessionInfo, SlowHealth, StandbyHealth, TableHealthRow } from './health-snapshot.ts';

/**
 * Something the health page points at, always with the exact SQL that fixes it (identifiers quoted by
 * ident(), values as literals since this text is for a human to paste into psql).
 */
export interface Finding {
  readonly kind:
    | 'vacuum-due'
    | 'autovacuum-disabled'
    | 'freeze-due'
    | 'stale-statistics'
    | 'idle-in-transaction'
    | 'long-transaction'
    | 'inactive-slot'
    | 'replay-paused'
    | 'standby-down'
    | 'standby-not-streaming'
    | 'invalid-index'
    | 'unused-index'
    | 'duplicate-index'
    | 'apply-regression';
  readonly level: 'warn' | 'critical' | 'info';
  /** What it is about: `public.events`, `pid 4242`, `slot old_slot`. */
  readonly subject: string;
  readonly message: string;
  readonly fixSql: string;
  /** Where to run the fix. */
  readonly runOn: 'primary' | string;
}

/**
 * A declared index is the policy's: dropping it by hand only makes the next apply build it again. The fix
 * is an edit of the policy file, said as an SQL comment so the finding's fix stays one block to copy.
 */
function declaredNote(policyFile: string | null | undefined): string {
  return policyFile ? `; declared in ${policyFile}, so pgwarden keeps it` : '';
}

function removeFromPolicy(name: string, policyFile: string): string {
  return `-- ${name} is declared in ${policyFile}: remove it from that file (apply rebuilds a declared index dropped by hand)`;
}

export interface FindingInputs {
  readonly tables: readonly TableHealthRow[];
  readonly freezeMaxAge: number;
  readonly sessions: readonly SessionInfo[];
  readonly slots: readonly { readonly name: string; readonly active: boolean; readonly retainedBytes: number | null }[];
  readonly standbys: readonly StandbyHealth[];
  readonly slow: SlowHealth | null;
}

const MB = 1024 * 1024;

function mb(bytes: number): string {
  return bytes >= 1024 * MB ? `${(bytes / 1024 / MB).toFixed(1)} GB` : `${(bytes / MB).toFixed(1)} MB`;
}

function tableFindings(t: TableHealthRow, freezeMaxAge: number): Finding[] {
  const name = qualified(t.schema, t.name);
  const subject = `${t.schema}.${t.name}`;
  const out: Finding[] = [];
  if (t.deadRows > t.autovacuumTrigger && t.deadShare >= 0.1) {
    out.push({
      kind: 'vacuum-due',
      level: t.deadShare >= 0.2 ? 'critical' : 'warn',
      subject,
      message: `${(t.deadShare * 100).toFixed(0)}% dead rows (${Math.round(t.deadRows).toLocaleString('en-US')}), past the autovacuum trigger of ${Math.round(t.autovacuumTrigger).toLocaleString('en-US')}`,
      fixSql: `VACUUM (ANALYZE) ${name};`,
      runOn: 'primary',
    });
  }
  if (!t.autovacuumEnabled && t.deadRows > 0) {
    out.push({
      kind: 'autovacuum-disabled',
      level: 'warn',
      subject,
      message: 'autovacuum is disabled on this table, and it has dead rows',
      fixSql: `ALTER TABLE ${name} RESET (autovacuum_enabled);`,
      runOn: 'primary',
    });
  }
  if (t.xidAge > freezeMaxAge) {
    out.push({
      kind: 'freeze-due',
      level: t.xidAge > 2 ** 31 / 2 ? 'critical' : 'warn',
      subject,
      message: `transaction-ID age ${Math.round(t.xidAge).toLocaleString('en-US')} is past autovacuum_freeze_max_age (${Math.round(freezeMaxAge).toLocaleString('en-US')})`,
      fixSql: `VACUUM (FREEZE, ANALYZE) ${name};`,
      runOn: 'primary',
    });
  }
  // autovacuum analyzes at 50 + 10% of the rows by default; twice that is stale enough to mislead the planner.
  if (t.modifiedSinceAnalyze > 1000 && t.modifiedSinceAnalyze > 0.2 * Math.max(t.rowEstimate, 0) + 100) {
    out.push({
      kind: 'stale-statistics',
      level: 'info',
      subject,
      message: `${Math.round(t.modifiedSinceAnalyze).toLocaleString('en-US')} rows changed since the last ANALYZE (about ${Math.round(t.rowEstimate).toLocaleString('en-US')} rows)`,
      fixSql: `ANALYZE ${name};`,
      runOn: 'primary',
    });
  }
  return out;
}

function sessionFindings(s: SessionInfo): Finding[] {
  if (s.state.startsWith('idle in transaction') && s.stateMs > 60_000) {
    return [
      {
        kind: 'idle-in-transaction',
        level: s.stateMs > 600_000 ? 'critical' : 'warn',
        subject: `pid ${s.pid}`,
        message: `${s.user}${s.application ? ` (${s.application})` : ''} idle in a transaction for ${Math.round(s.stateMs / 1000)} s: it holds its locks and holds back vacuum`,
        fixSql: `SELECT pg_catalog.pg_terminate_backend(${s.pid});`,
        runOn: 'primary',
      },
    ];
  }
  if (s.state === 'active' && s.transactionMs > 600_000) {
    return [
      {
        kind: 'long-transaction',
        level: 'warn',
        subject: `pid ${s.pid}`,
        message: `${s.user}${s.application ? ` (${s.application})` : ''} has a transaction open for ${Math.round(s.transactionMs / 60_000)} min`,
        fixSql: `SELECT pg_catalog.pg_cancel_backend(${s.pid});`,
        runOn: 'primary',
      },
    ];
  }
  return [];
}

/** Every finding the snapshot supports, worst first. */
/**
 * A configured standby that cannot be reached, or is reachable but not receiving WAL: its reads (if the
 * router sends any there) fall back to the primary, and it falls further behind with every write.
 */
function standbyFindings(standbys: readonly StandbyHealth[]): Finding[] {
  return standbys.flatMap((s): Finding[] => {
    if (s.state === 'down') {
      const streaming = s.primaryView !== null;
      return [
        {
          kind: 'standby-down',
          level: 'critical',
          subject: s.name,
          message: `cannot be reached (${s.error ?? 'no answer'}); ${streaming ? 'the primary still streams to it, so check the network and its pg_hba.conf from this host' : 'the primary has no walsender for it either: start its server (pg_ctl start) and read its log'}. The query shows what the primary sees of its standbys`,
          fixSql: 'SELECT application_name, client_addr, state, replay_lag FROM pg_catalog.pg_stat_replication;',
          runOn: 'primary',
        },
      ];
    }
    if (s.state === 'not-streaming') {
      return [
        {
          kind: 'standby-not-streaming',
          level: 'critical',
          subject: s.name,
          message: `in recovery but its WAL receiver is not streaming (${s.ownView?.receiverStatus ?? 'stopped'}): it misses every write from now on. Check primary_conninfo and its log, fix the setting, then reload`,
          fixSql: 'SHOW primary_conninfo; SELECT pg_catalog.pg_reload_conf();',
          runOn: s.name,
        },
      ];
    }
    return [];
  });
}

export function findingsFor(input: FindingInputs): Finding[] {
  const out: Finding[] = [];
  for (const t of input.tables) out.push(...tableFindings(t, input.freezeMaxAge));
  for (const s of input.sessions) out.push(...sessionFindings(s));
  for (const slot of input.slots) {
    if (slot.active || slot.retainedBytes === null || slot.retainedBytes < 64 * MB) continue;
    out.push({
      kind: 'inactive-slot',
      level: slot.retainedBytes > 1024 * MB ? 'critical' : 'warn',
      subject: `slot ${slot.name}`,
      message: `inactive replication slot retains ${mb(slot.retainedBytes)} of WAL (it grows until the disk is full)`,
      fixSql: `SELECT pg_catalog.pg_drop_replication_slot(${literal(slot.name)});`,
      runOn: 'primary',
    });
  }
  out.push(...standbyFindings(input.standbys));
  for (const s of input.standbys) {
    if (s.state !== 'replay-paused') continue;
    out.push({
      kind: 'replay-paused',
      level: 'warn',
      subject: s.name,
      message: 'WAL replay is paused on this standby: its reads grow staler every second',
      fixSql: 'SELECT pg_catalog.pg_wal_replay_resume();',
      runOn: s.name,
    });
  }
  for (const i of input.slow?.invalidIndexes ?? []) {
    out.push({
      kind: 'invalid-index',
      level: 'warn',
      subject: `${i.schema}.${i.name}`,
      message: `INVALID index on ${i.table} (a failed concurrent build): writes maintain it, no query can use it`,
      fixSql: `REINDEX INDEX CONCURRENTLY ${qualified(i.schema, i.name)};`,
      runOn: 'primary',
    });
  }
  for (const i of input.slow?.duplicateIndexes ?? []) {
    out.push({
      kind: 'duplicate-index',
      level: 'info',
      subject: `${i.schema}.${i.name}`,
      message: `same definition as ${i.duplicateOf} on ${i.table}: ${mb(i.bytes)} written on every change for nothing${declaredNote(i.policyFile)}`,
      fixSql: i.policyFile ? removeFromPolicy(i.name, i.policyFile) : `DROP INDEX CONCURRENTLY ${qualified(i.schema, i.name)};`,
      runOn: 'primary',
    });
  }
  for (const i of input.slow?.unusedIndexes ?? []) {
    if (i.bytes < MB) continue;
    out.push({
      kind: 'unused-index',
      level: 'info',
      subject: `${i.schema}.${i.name}`,
      message: `never scanned since the statistics were reset (${mb(i.bytes)} on ${i.table}); check the standbys' usage before dropping${declaredNote(i.policyFile)}`,
      fixSql: i.policyFile ? removeFromPolicy(i.name, i.policyFile) : `DROP INDEX CONCURRENTLY ${qualified(i.schema, i.name)};`,
      runOn: 'primary',
    });
  }
  const applied = input.slow?.applyRegressions;
  for (const r of applied?.regressions ?? []) {
    // The revert in one block to paste: the policy entries to remove (as comments), then what undoes the build now.
    const policyLines = r.revert.flatMap((step) => (step.policy ? [`-- remove the entry at ${step.policy.file}:${step.policy.line} (${step.index}), then apply --allow-drop; or now:`] : []));
    out.push({
      kind: 'apply-regression',
      level: 'warn',
      subject: `statement ${r.statementId}`,
      message: `slower since apply #${applied?.runId ?? '?'}: ${r.meanBeforeMs.toFixed(2)} ms → ${r.meanSinceMs.toFixed(2)} ms a call over ${r.callsSince} calls (noise band ${r.noiseMs.toFixed(2)} ms): ${r.query.slice(0, 120)}`,
      fixSql: [...policyLines, ...r.revert.map((step) => step.sql)].join('\n'),
      runOn: 'primary',
    });
  }
  const rank = { critical: 0, warn: 1, info: 2 } as const;
  return out.sort((a, b) => rank[a.level] - rank[b.level]);
}
