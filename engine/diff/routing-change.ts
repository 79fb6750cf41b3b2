import type { SourcePos } from '../policy/desired.ts';

/** The replica a change acts on: its name and the variable holding its URL (never the URL itself). */
export interface ReplicaRef {
  readonly name: string;
  readonly urlEnv: string;
}

interface RoutingChangeBase {
  /** `routing:heartbeat`, `replica-setting:standby1.hot_standby_feedback`. */
  readonly address: string;
  readonly reason: string;
  readonly source?: SourcePos;
}

/** A table routers write on the primary. */
export type RoutingTable = 'pgwarden.heartbeat' | 'pgwarden.router_metrics';

/**
 * Tables routers write on the primary are missing: the heartbeat (stamped by every router and
 * `pgwarden serve --write-heartbeat`) and the router metrics (the live page's routing panel). The kind
 * keeps its first name: saved plans and the plan format know it.
 */
export interface CreateHeartbeat extends RoutingChangeBase {
  readonly kind: 'create-heartbeat';
  /** Which are missing; absent in plans saved before the router metrics table existed (the heartbeat alone). */
  readonly tables?: readonly RoutingTable[];
}

/** A managed standby setting differs on a replica: ALTER SYSTEM + pg_reload_conf() there. */
export interface SetReplicaSetting extends RoutingChangeBase {
  readonly kind: 'set-replica-setting';
  readonly replica: ReplicaRef;
  readonly setting: string;
  /** As the replica shows it now (display only), e.g. `30s`. */
  readonly from: string | null;
  /** As the policy writes it; what ALTER SYSTEM is given. */
  readonly to: string;
  /** pg_settings.context = 'postmaster': takes effect only when the standby restarts. */
  readonly needsRestart: boolean;
}

/** pgwarden set this setting on the replica and no policy names it any more: ALTER SYSTEM RESET. */
export interface ResetReplicaSetting extends RoutingChangeBase {
  readonly kind: 'reset-replica-setting';
  readonly replica: ReplicaRef;
  readonly setting: string;
  readonly from: string | null;
  readonly needsRestart: boolean;
}

export type RoutingChange = CreateHeartbeat | SetReplicaSetting | ResetReplicaSetting;

const ROUTING_KINDS: ReadonlySet<string> = new Set<RoutingChange['kind']>(['create-heartbeat', 'set-replica-setting', 'reset-replica-setting']);

/** Routing changes touch no table: renderers and the planner branch on this. */
export function isRoutingChange(change: { readonly kind: string }): change is RoutingChange {
  return ROUTING_KINDS.has(change.kind);
}

/**
 * What plan found on each replica (display only, never steers apply): shown above the changes, so a
 * reviewer sees that every replica is reachable, in recovery, streaming from this primary and in lag.
 */
export interface RoutingReport {
  readonly file: string;
  readonly maxLagMs: number;
  readonly replicas: readonly ReplicaReport[];
}

export interface ReplicaReport {
  readonly name: string;
  readonly urlEnv: string;
  readonly status: 'ok' | 'lagging' | 'not-streaming' | 'unreachable' | 'unset' | 'invalid';
  /** One line: "streaming from this primary, 2 ms behind (heartbeat), 0 B to replay". */
  readonly detail: string;
  readonly lagMs: number | null;
  readonly bytesBehind: number | null;
}
