import type { ReplicaRef, RoutingChange, RoutingTable } from '../diff/routing-change.ts';
import { alterSystemResetSql, alterSystemSetSql, HEARTBEAT_TABLE_SQL, RELOAD_CONF_SQL, ROUTER_METRICS_TABLE_SQL } from '../sql/routing-ddl.ts';
import type { Step } from './step.ts';

/**
 * A step that runs on a replica's own connection (resolved from the replica's URL variable at apply
 * time), not on the primary: ALTER SYSTEM, then pg_reload_conf(), then pgwarden's record of it on the
 * primary. ALTER SYSTEM cannot run inside a transaction, so the statements run one by one.
 */
export interface ReplicaStep {
  readonly kind: 'replica';
  readonly replica: ReplicaRef;
  readonly action: 'set' | 'reset';
  readonly setting: string;
  /** The policy's value, for `set`. */
  readonly value?: string;
  readonly policyFile?: string;
  /** Takes effect at the standby's next restart only; apply refuses it without --allow-restart. */
  readonly needsRestart: boolean;
  readonly sql: readonly string[];
}

// The schema is apply's (ensurePgwardenSchema, before any step): see engine/sql/routing-ddl.ts.
const CREATE_TABLE_SQL: Record<RoutingTable, string> = {
  'pgwarden.heartbeat': HEARTBEAT_TABLE_SQL,
  'pgwarden.router_metrics': ROUTER_METRICS_TABLE_SQL,
};

export function routingSteps(change: RoutingChange): Step[] {
  switch (change.kind) {
    case 'create-heartbeat':
      return (change.tables ?? ['pgwarden.heartbeat']).map((table) => ({
        kind: 'sql',
        sql: CREATE_TABLE_SQL[table],
        transactional: true,
        // A new table nobody uses yet: its ACCESS EXCLUSIVE lock blocks no one.
        lock: { mode: 'ACCESS EXCLUSIVE', on: table, online: true },
        build: false,
      }));
    case 'set-replica-setting':
      return [
        {
          kind: 'replica',
          replica: change.replica,
          action: 'set',
          setting: change.setting,
          value: change.to,
          ...(change.source === undefined ? {} : { policyFile: change.source.file }),
          needsRestart: change.needsRestart,
          sql: [alterSystemSetSql(change.setting, change.to), RELOAD_CONF_SQL],
        },
      ];
    case 'reset-replica-setting':
      return [
        {
          kind: 'replica',
          replica: change.replica,
          action: 'reset',
          setting: change.setting,
          needsRestart: change.needsRestart,
          sql: [alterSystemResetSql(change.setting), RELOAD_CONF_SQL],
        },
      ];
  }
}
