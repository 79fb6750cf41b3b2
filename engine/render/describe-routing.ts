import type { RoutingChange, RoutingReport, RoutingTable } from '../diff/routing-change.ts';
import type { PlannedChange } from '../plan/plan.ts';

const TABLE_ROLES: Record<RoutingTable, string> = {
  'pgwarden.heartbeat': 'the replication heartbeat table pgwarden.heartbeat',
  'pgwarden.router_metrics': "the routers' metrics table pgwarden.router_metrics",
};

/** One line for a routing change, as describeChange gives for every change. */
export function describeRoutingChange(change: RoutingChange): string {
  switch (change.kind) {
    case 'create-heartbeat':
      return `create ${(change.tables ?? ['pgwarden.heartbeat']).map((t) => TABLE_ROLES[t]).join(' and ')} on the primary`;
    case 'set-replica-setting':
      return `set ${change.setting} = ${change.to} on replica ${change.replica.name} (now ${change.from ?? 'unset'})${change.needsRestart ? ', needs a restart of the standby' : ''}`;
    case 'reset-replica-setting':
      return `reset ${change.setting} on replica ${change.replica.name} to the server's default (now ${change.from ?? 'unset'})`;
  }
}

/**
 * What replaces the lock and table lines for a routing change in the text plan: where its statements
 * run and what they hold (a replica's configuration reload takes no lock on anything).
 */
export function routingDetailLines(planned: PlannedChange): string[] {
  const change = planned.change;
  if (change.kind === 'create-heartbeat') {
    return ['where: the primary; new tables routers write (a row each), nothing waits on them'];
  }
  if (change.kind !== 'set-replica-setting' && change.kind !== 'reset-replica-setting') return [];
  const lines = [`where: replica ${change.replica.name} (URL from $${change.replica.urlEnv}): ALTER SYSTEM, then pg_reload_conf(); no locks, queries continue`];
  if (change.needsRestart) lines.push('restart: this setting takes effect only when the standby restarts; apply needs --allow-restart');
  return lines;
}

/** The statements of a plan step that runs on a replica, labelled as such. */
export function replicaStepLines(planned: PlannedChange): string[] {
  return planned.steps.flatMap((step) => (step.kind === 'replica' ? step.sql.map((sql) => `[${step.replica.name}] ${sql}`) : []));
}

/** The "Replicas" block printed above the changes: every replica's verification, one line each. */
export function routingReportLines(report: RoutingReport | undefined): string[] {
  if (report === undefined || report.replicas.length === 0) return [];
  const width = Math.max(...report.replicas.map((r) => r.name.length));
  return [
    `Replicas (${report.file}):`,
    ...report.replicas.map((r) => `  ${r.status === 'ok' ? 'ok  ' : r.status === 'lagging' || r.status === 'not-streaming' ? 'WARN' : 'FAIL'}  ${r.name.padEnd(width)}  ${r.detail}`),
    '',
  ];
}

/** The same statements for the Markdown plan's SQL block, each preceded by where it runs. */
export function replicaStepSql(planned: PlannedChange): string[] {
  return planned.steps.flatMap((step) => (step.kind === 'replica' ? step.sql.map((sql) => `-- on replica ${step.replica.name}\n${sql}`) : []));
}

/** A change made on a replica takes no lock: its "Lock" cell says so instead of a lock mode. */
export function replicaLockText(planned: PlannedChange): string | null {
  return planned.steps.some((step) => step.kind === 'replica') ? 'none (a configuration reload on the replica)' : null;
}
