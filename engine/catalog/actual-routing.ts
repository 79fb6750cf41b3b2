import type { FileSettingRow, ManagedReplicaSettingRow, ServerIdentityRow, SettingRow } from './replica-queries.ts';
import type { ReplicaLag } from '../replica-lag/replica-lag.ts';

/** What plan read from the primary and from each replica for the routing policy. */
export interface ActualRouting {
  readonly primary: {
    readonly identity: ServerIdentityRow;
    readonly heartbeatExists: boolean;
    readonly heartbeatColumns: readonly string[];
    readonly routerMetricsExists: boolean;
    readonly routerMetricsColumns: readonly string[];
    /** The standby settings pgwarden set, per replica (pgwarden.managed_replica_setting). */
    readonly registry: readonly ManagedReplicaSettingRow[];
  };
  readonly replicas: readonly ActualReplica[];
}

export type ActualReplica =
  /** Its URL variable is not set (an error reported where the policy names it). */
  | { readonly name: string; readonly state: 'unset' }
  | { readonly name: string; readonly state: 'unreachable'; readonly error: string }
  | {
      readonly name: string;
      readonly state: 'reached';
      readonly identity: ServerIdentityRow;
      readonly lag: ReplicaLag;
      readonly settings: readonly SettingRow[];
      /** pg_file_settings (what ALTER SYSTEM wrote and awaits a restart); null when not readable. */
      readonly fileSettings: readonly FileSettingRow[] | null;
    };
