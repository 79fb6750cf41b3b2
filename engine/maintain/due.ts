import type { Governance, TableHealth, TableStats, VacuumSettings } from '../vacuum-health/table-health.ts';
import { DEFAULT_MAX_DEAD_RATIO, DEFAULT_MIN_HEALTH } from '../policy/vacuum-policy.ts';
import type { MaintenanceAction, MaintenanceTask } from './maintenance-task.ts';

/**
 * Which governed tables are due, and for what; pure (the clock is passed in).
 *
 *   dead tuples   n_dead / (n_live + n_dead) above max_dead_ratio            -> VACUUM (ANALYZE)
 *   health        below min_health                                           -> VACUUM (ANALYZE), or ANALYZE
 *                                                                                when only statistics are stale
 *   statistics    never analyzed; analyze_after_rows rows changed; or older
 *                 than analyze_after and changed since                       -> ANALYZE
 *   freeze age    transaction-ID (or multixact) age at vacuum_freeze_table_age
 *                 (capped at 95% of the table's autovacuum_freeze_max_age, as
 *                 PostgreSQL caps it)                                        -> VACUUM (FREEZE, ANALYZE)
 *
 * A partitioned table is analyzed when it never was, or when its statistics are older than
 * analyze_after and a partition changed since: autovacuum never analyzes partitioned tables.
 * Worst health first; freezes before other work of equal health.
 */
export function dueTasks(
  tables: readonly TableHealth[],
  stats: readonly TableStats[],
  governed: ReadonlyMap<number, Governance>,
  settings: VacuumSettings,
  now: Date,
): MaintenanceTask[] {
  const tasks: MaintenanceTask[] = [];
  for (const h of tables) {
    const g = governed.get(h.oid);
    if (g === undefined) continue;
    const task = tableTask(h, g, settings, now);
    if (task) tasks.push(task);
  }
  tasks.sort((a, b) => (a.before?.health ?? 1) - (b.before?.health ?? 1) || rank(a.action) - rank(b.action) || (b.before?.deadTuples ?? 0) - (a.before?.deadTuples ?? 0));
  const partitions = new Map<number, TableStats[]>();
  for (const s of stats) if (s.parentOid !== null) partitions.set(s.parentOid, [...(partitions.get(s.parentOid) ?? []), s]);
  for (const s of stats) {
    const g = governed.get(s.oid);
    if (s.kind !== 'partitioned' || g === undefined) continue;
    const task = parentTask(s, leavesOf(s.oid, partitions), g, now);
    if (task) tasks.push(task);
  }
  return tasks;
}

function rank(action: MaintenanceAction): number {
  return { freeze: 0, vacuum: 1, analyze: 2 }[action];
}

function pct(share: number): string {
  return `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`;
}

function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function ageWords(ms: number): string {
  const h = ms / 3_600_000;
  return h >= 48 ? `${(h / 24).toFixed(0)} d` : h >= 1 ? `${h.toFixed(0)} h` : `${Math.round(ms / 60_000)} min`;
}

function tableTask(h: TableHealth, g: Governance, settings: VacuumSettings, now: Date): MaintenanceTask | undefined {
  const maxDeadRatio = g.vacuum.maxDeadRatio ?? DEFAULT_MAX_DEAD_RATIO;
  const minHealth = g.vacuum.minHealth ?? DEFAULT_MIN_HEALTH;
  const reasons: string[] = [];
  let vacuum = false;
  let freeze = false;

  // A manual VACUUM is aggressive (scans all pages not all-frozen) from vacuum_freeze_table_age on,
  // which PostgreSQL caps at 95% of autovacuum_freeze_max_age; FREEZE makes it advance relfrozenxid
  // as far as it can whatever the session's settings.
  const freezeAt = Math.min(settings.freezeTableAge, 0.95 * h.freezeMaxAge);
  const multixactFreezeAt = Math.min(settings.multixactFreezeTableAge, 0.95 * h.multixactFreezeMaxAge);
  if (h.xidAge >= freezeAt) {
    freeze = true;
    reasons.push(`transaction ID age ${count(h.xidAge)} reached ${count(freezeAt)} (autovacuum forces a vacuum at ${count(h.freezeMaxAge)})`);
  }
  if (h.mxidAge >= multixactFreezeAt) {
    freeze = true;
    reasons.push(`multixact age ${count(h.mxidAge)} reached ${count(multixactFreezeAt)}`);
  }
  if (h.deadTuples > 0 && h.deadRatio > maxDeadRatio) {
    vacuum = true;
    reasons.push(`${pct(h.deadRatio)} dead tuples (${count(h.deadTuples)}), above max_dead_ratio ${pct(maxDeadRatio)}`);
  }
  if (h.health < minHealth) {
    if (h.limitedBy !== 'statistics') vacuum = true;
    reasons.push(`health ${h.health.toFixed(2)} below min_health ${minHealth.toFixed(2)} (${h.limitedBy ?? 'healthy'})`);
  }
  const neverAnalyzed = h.lastAnalyze === null && h.liveTuples > 0;
  if (neverAnalyzed) reasons.push('never analyzed');
  const { analyzeAfterRows, analyzeAfterMs } = g.vacuum;
  if (!neverAnalyzed && analyzeAfterRows !== undefined && h.changedSinceAnalyze >= analyzeAfterRows) {
    reasons.push(`${count(h.changedSinceAnalyze)} rows changed since the last ANALYZE (analyze_after_rows ${count(analyzeAfterRows)})`);
  }
  if (!neverAnalyzed && analyzeAfterMs !== undefined && h.lastAnalyze !== null && h.changedSinceAnalyze > 0) {
    const age = now.getTime() - Date.parse(h.lastAnalyze);
    if (age >= analyzeAfterMs) reasons.push(`statistics ${ageWords(age)} old and ${count(h.changedSinceAnalyze)} rows changed since (analyze_after ${ageWords(analyzeAfterMs)})`);
  }
  if (reasons.length === 0) return undefined;
  const action: MaintenanceAction = freeze ? 'freeze' : vacuum ? 'vacuum' : 'analyze';
  return {
    oid: h.oid,
    schema: h.schema,
    name: h.name,
    kind: 'table',
    action,
    reasons,
    before: h,
    policy: { ...g.root, source: g.vacuum.source },
    minHealth,
    maxDeadRatio,
  };
}

function leavesOf(oid: number, partitions: ReadonlyMap<number, readonly TableStats[]>): TableStats[] {
  return (partitions.get(oid) ?? []).flatMap((p) => (p.kind === 'partitioned' ? leavesOf(p.oid, partitions) : [p]));
}

function parentTask(parent: TableStats, leaves: readonly TableStats[], g: Governance, now: Date): MaintenanceTask | undefined {
  const rows = leaves.reduce((sum, l) => sum + Math.max(0, l.live), 0);
  if (rows === 0) return undefined;
  const reasons: string[] = [];
  if (parent.lastAnalyze === null) {
    reasons.push('a partitioned table never analyzed (autovacuum does not analyze partitioned tables)');
  } else if (g.vacuum.analyzeAfterMs !== undefined) {
    const age = now.getTime() - parent.lastAnalyze.getTime();
    const since = parent.lastAnalyze.getTime();
    const moved = leaves.some((l) => l.changed > 0 || (l.lastAnalyze !== null && l.lastAnalyze.getTime() > since));
    if (age >= g.vacuum.analyzeAfterMs && moved) {
      reasons.push(`partitioned table statistics ${ageWords(age)} old and its partitions changed since (analyze_after ${ageWords(g.vacuum.analyzeAfterMs)})`);
    }
  }
  if (reasons.length === 0) return undefined;
  return {
    oid: parent.oid,
    schema: parent.schema,
    name: parent.name,
    kind: 'partitioned',
    action: 'analyze',
    reasons,
    before: null,
    policy: { ...g.root, source: g.vacuum.source },
    minHealth: g.vacuum.minHealth ?? DEFAULT_MIN_HEALTH,
    maxDeadRatio: g.vacuum.maxDeadRatio ?? DEFAULT_MAX_DEAD_RATIO,
  };
}
