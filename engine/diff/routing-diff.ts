import type { ActualReplica, ActualRouting } from '../catalog/actual-routing.ts';
import type { FileSettingRow, ManagedReplicaSettingRow, ServerIdentityRow, SettingRow } from '../catalog/replica-queries.ts';
import type { ReplicaLag } from '../replica-lag/replica-lag.ts';
import type { PolicyError, SourcePos } from '../policy/desired.ts';
import type { DesiredReplica, DesiredRouting } from '../policy/desired-routing.ts';
import type { Warning } from './change.ts';
import type { ReplicaReport, RoutingChange, RoutingReport, RoutingTable } from './routing-change.ts';
import { canonicalActual, canonicalSetting, showSetting } from './setting-value.ts';

export type { ActualReplica, ActualRouting } from '../catalog/actual-routing.ts';

export interface RoutingDiff {
  readonly changes: readonly RoutingChange[];
  readonly warnings: readonly Warning[];
  readonly errors: readonly PolicyError[];
  readonly report: RoutingReport;
}

const HEARTBEAT_COLUMNS = ['id', 'ts'];
const ROUTER_METRICS_COLUMNS = ['instance', 'application', 'host', 'pid', 'started_at', 'updated_at', 'counters'];

/** Pure: the routing policy against what plan found. */
export function diffRouting(desired: DesiredRouting, actual: ActualRouting): RoutingDiff {
  const changes: RoutingChange[] = [];
  const warnings: Warning[] = [];
  const errors: PolicyError[] = [];
  const error = (source: SourcePos, message: string, hint?: string): void => {
    errors.push({ ...source, message, ...(hint === undefined ? {} : { hint }) });
  };

  const tables = routingTables(actual.primary, (table, missing) =>
    error(desired.source, `${table} exists but is not pgwarden's (it lacks the column(s) ${missing.join(', ')})`, 'drop or rename that table; pgwarden creates its own'),
  );
  if (tables.length > 0) {
    const reasons: Record<RoutingTable, string> = {
      'pgwarden.heartbeat': 'the router stamps the heartbeat on the primary every 100 ms and reads it back on each replica: lag that stays true while the primary is idle',
      'pgwarden.router_metrics': "each router publishes its reads, fallbacks and lag there every 5 s: the live page's routing panel",
    };
    changes.push({
      kind: 'create-heartbeat',
      address: tables.includes('pgwarden.heartbeat') ? 'routing:heartbeat' : 'routing:router-metrics',
      tables,
      reason: tables.map((t) => reasons[t]).join('; '),
      source: desired.source,
    });
  }

  const reports: ReplicaReport[] = [];
  for (const replica of desired.replicas) {
    const found = actual.replicas.find((r) => r.name === replica.name);
    const report = (status: ReplicaReport['status'], detail: string, lag?: ReplicaLag): void => {
      reports.push({ name: replica.name, urlEnv: replica.urlEnv, status, detail, lagMs: lag?.lagMs ?? null, bytesBehind: lag?.bytesBehind ?? null });
    };
    if (found === undefined || found.state === 'unset') {
      report('unset', `${replica.urlEnv} is not set`);
      continue;
    }
    if (found.state === 'unreachable') {
      warnings.push({
        address: `replica:${replica.name}`,
        source: replica.source,
        message: `replica ${replica.name} (${replica.urlEnv}) is unreachable: ${found.error}; its standby settings were not checked`,
      });
      report('unreachable', found.error);
      continue;
    }
    const identityProblem = checkIdentity(replica, found.identity, actual.primary.identity);
    if (identityProblem !== null) {
      error(replica.urlEnvSource, identityProblem.message, identityProblem.hint);
      report('invalid', identityProblem.message);
      continue;
    }
    const status = lagStatus(found.lag, desired.maxLagMs);
    if (status.warning !== null) warnings.push({ address: `replica:${replica.name}`, source: replica.source, message: `replica ${replica.name}: ${status.warning}` });
    report(status.status, status.detail, found.lag);
    changes.push(...settingChanges(desired, replica, found, actual.primary.registry, error, warnings));
  }

  return { changes, warnings, errors, report: { file: desired.source.file, maxLagMs: desired.maxLagMs, replicas: reports } };
}

/** The tables routers write that are missing; a same-named table without pgwarden's columns is an error. */
function routingTables(primary: ActualRouting['primary'], notOurs: (table: RoutingTable, missing: readonly string[]) => void): RoutingTable[] {
  const wanted: readonly { table: RoutingTable; exists: boolean; columns: readonly string[]; expected: readonly string[] }[] = [
    { table: 'pgwarden.heartbeat', exists: primary.heartbeatExists, columns: primary.heartbeatColumns, expected: HEARTBEAT_COLUMNS },
    { table: 'pgwarden.router_metrics', exists: primary.routerMetricsExists, columns: primary.routerMetricsColumns, expected: ROUTER_METRICS_COLUMNS },
  ];
  return wanted.flatMap(({ table, exists, columns, expected }) => {
    if (!exists) return [table];
    const missing = expected.filter((c) => !columns.includes(c));
    if (missing.length > 0) notOurs(table, missing);
    return [];
  });
}

function checkIdentity(replica: DesiredReplica, identity: ServerIdentityRow, primary: ServerIdentityRow): { message: string; hint: string } | null {
  const hint = `check ${replica.urlEnv}: it must name a hot standby of this primary, in the same database`;
  if (!identity.in_recovery) {
    return { message: `replica ${replica.name} (${replica.urlEnv}) is not in recovery: it is a primary, not a hot standby`, hint };
  }
  if (identity.system_identifier !== null && primary.system_identifier !== null && identity.system_identifier !== primary.system_identifier) {
    return {
      message: `replica ${replica.name} (${replica.urlEnv}) is a standby of another cluster (system identifier ${identity.system_identifier}, this primary's is ${primary.system_identifier})`,
      hint,
    };
  }
  if (identity.database !== primary.database) {
    return { message: `replica ${replica.name} (${replica.urlEnv}) connects to database "${identity.database}", the primary to "${primary.database}"`, hint };
  }
  return null;
}

function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms).toLocaleString('en-US')} ms`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}

function lagStatus(lag: ReplicaLag, maxLagMs: number): { status: ReplicaReport['status']; detail: string; warning: string | null } {
  const view = lag.primaryView;
  const upstream = view?.connected ? 'streaming from this primary' : 'in recovery, not seen in pg_stat_replication on this primary (a cascading standby?)';
  const behind = lag.lagMs === null ? 'lag unknown' : `${formatMs(lag.lagMs)} behind (${lag.lagSource})`;
  const bytes = lag.bytesBehind === null ? '' : `, ${formatBytes(lag.bytesBehind)} to replay`;
  const paused = lag.replayPaused ? ', replay PAUSED' : '';
  if (lag.streaming === false) {
    const detail = `in recovery but not receiving WAL${paused}; ${behind}${bytes}`;
    return { status: 'not-streaming', detail, warning: `is in recovery but not receiving WAL (its WAL receiver is not streaming): it falls further behind; reads will go to the primary` };
  }
  const detail = `${upstream}, ${behind}${bytes}${paused}`;
  if (lag.lagMs !== null && lag.lagMs > maxLagMs) {
    return { status: 'lagging', detail, warning: `${behind}, over max_lag_ms ${maxLagMs}: reads go to the primary until it catches up` };
  }
  return { status: 'ok', detail: `${detail}; within max_lag_ms ${maxLagMs}`, warning: null };
}

function settingChanges(
  desired: DesiredRouting,
  replica: DesiredReplica,
  found: Extract<ActualReplica, { state: 'reached' }>,
  registry: readonly ManagedReplicaSettingRow[],
  error: (source: SourcePos, message: string, hint?: string) => void,
  warnings: Warning[],
): RoutingChange[] {
  const changes: RoutingChange[] = [];
  const ref = { name: replica.name, urlEnv: replica.urlEnv };
  const rows = new Map(found.settings.map((row) => [row.name, row]));
  for (const setting of desired.standbySettings) {
    const row = rows.get(setting.name);
    if (row === undefined) {
      const suggestion = closest(setting.name, [...rows.keys()]);
      error(setting.source, `standby setting "${setting.name}" is not a PostgreSQL setting on ${replica.name}`, suggestion === undefined ? undefined : `did you mean "${suggestion}"?`);
      continue;
    }
    if (row.context === 'internal') {
      error(setting.source, `${setting.name} cannot be changed: PostgreSQL fixes it when it is built or initialised`);
      continue;
    }
    const value = canonicalSetting(setting.value, row);
    if (!value.ok) {
      error(setting.source, value.message);
      continue;
    }
    if (canonicalActual(row) === value.canonical) continue;
    const needsRestart = row.context === 'postmaster';
    if (needsRestart && pendingValue(found.fileSettings, row) === value.canonical) {
      warnings.push({
        address: `replica-setting:${replica.name}.${setting.name}`,
        source: setting.source,
        message: `${setting.name} = ${setting.value} is set on ${replica.name} and takes effect when that standby restarts`,
      });
      continue;
    }
    const recorded = registry.find((r) => r.replica_name === replica.name && r.setting_name === setting.name);
    const now = showSetting(row);
    changes.push({
      kind: 'set-replica-setting',
      address: `replica-setting:${replica.name}.${setting.name}`,
      replica: ref,
      setting: setting.name,
      from: now,
      to: setting.value,
      needsRestart,
      source: setting.source,
      reason:
        recorded !== undefined && recorded.value === setting.value
          ? `drift: pgwarden set ${setting.value}, the replica now has ${now ?? 'no value'}`
          : `the policy says ${setting.value}; the replica has ${now ?? 'no value'}`,
    });
  }
  const declared = new Set(desired.standbySettings.map((s) => s.name));
  for (const recorded of registry) {
    if (recorded.replica_name !== replica.name || declared.has(recorded.setting_name)) continue;
    const row = rows.get(recorded.setting_name);
    changes.push({
      kind: 'reset-replica-setting',
      address: `replica-setting:${replica.name}.${recorded.setting_name}`,
      replica: ref,
      setting: recorded.setting_name,
      from: row === undefined ? null : showSetting(row),
      needsRestart: row?.context === 'postmaster',
      source: desired.source,
      reason: `pgwarden set it to ${recorded.value} and no policy names it any more: back to the server's default`,
    });
  }
  return changes;
}

/** The value a restart would bring, if the configuration files hold one pg_settings does not show yet. */
function pendingValue(fileSettings: readonly FileSettingRow[] | null, row: SettingRow): string | null {
  if (fileSettings === null || !row.pending_restart) return null;
  // pg_file_settings lists every occurrence in file order; the last one wins, as in PostgreSQL. The
  // entry waiting for a restart carries the error "setting could not be applied" (PostgreSQL 9.5+).
  const last = fileSettings.filter((f) => f.name === row.name).at(-1);
  if (last?.setting == null || last.applied) return null;
  const value = canonicalSetting(last.setting, row);
  return value.ok ? value.canonical : null;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance <= 3 && distance * 2 < candidate.length && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  return best?.candidate;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
