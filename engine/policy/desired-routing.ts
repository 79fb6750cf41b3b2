import type { SourcePos } from './desired.ts';

export type ReadTarget = 'replica' | 'primary';
export type OnReplicaDown = 'primary' | 'error';

export interface DesiredReplica {
  readonly name: string;
  /** The environment variable holding the URL; the URL itself is never in a policy or a plan. */
  readonly urlEnv: string;
  readonly applicationName?: string;
  readonly source: SourcePos;
  /** Where `url_env` is written: a missing variable is reported there. */
  readonly urlEnvSource: SourcePos;
}

/** A standby setting as the policy writes it; PostgreSQL's units decide equality at plan time. */
export interface DesiredStandbySetting {
  /** Lower case, as pg_settings names it. */
  readonly name: string;
  /** As postgresql.conf would say it: booleans as on/off, numbers as written. */
  readonly value: string;
  readonly source: SourcePos;
}

/** The `routing:` document, resolved. */
export interface DesiredRouting {
  readonly replicas: readonly DesiredReplica[];
  readonly reads: ReadTarget;
  readonly maxLagMs: number;
  readonly readYourWritesMs: number;
  readonly onReplicaDown: OnReplicaDown;
  readonly standbySettings: readonly DesiredStandbySetting[];
  readonly source: SourcePos;
}
