import { Type, type Static, type TUnsafe } from '@sinclair/typebox';
import type { OnReplicaDown, ReadTarget } from './desired-routing.ts';

/**
 * The `routing:` document: which replicas take reads, when reads fall back to the primary, and the
 * standby settings pgwarden keeps on each replica. Written once, as TypeBox, for ajv and for editors.
 */

// The same shape as schema.ts's helper: a JSON Schema `enum` gives one "must be one of" error.
function StringEnum<T extends string>(values: readonly T[], options: { description: string; default?: NoInfer<T> }): TUnsafe<T> {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
}

const readTargets: readonly ReadTarget[] = ['replica', 'primary'];
const onReplicaDownModes: readonly OnReplicaDown[] = ['primary', 'error'];

export const ReplicaPolicy = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'A name for the replica, used in plans, metrics and the live page (e.g. `standby1`).' }),
    url_env: Type.String({
      minLength: 1,
      description:
        'Name of the environment variable that holds the replica\'s connection URL (e.g. `REPLICA_URL`). The URL itself never goes in git: it may carry a password.',
    }),
    application_name: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The `application_name` the standby streams under (`pg_stat_replication.application_name`), when pgwarden cannot tell it from the standby\'s slot or `primary_conninfo`.',
      }),
    ),
  },
  { title: 'replica', description: 'A hot standby of this primary that may take reads.', additionalProperties: false },
);

const SettingValue = Type.Union([Type.String({ minLength: 1 }), Type.Number(), Type.Boolean()], {
  description: 'The value, as in postgresql.conf: `on`, `30s`, `64MB`, 250.',
});

/** Settings with a description of their own, for editors; any other setting name is accepted too. */
const wellKnownSettings = {
  hot_standby_feedback: Type.Optional(
    Type.Union([Type.Boolean(), Type.String({ minLength: 1 })], {
      description:
        'on: the standby tells the primary which rows its queries still need, so vacuum keeps them and replay does not cancel those queries (at the price of some bloat on the primary).',
    }),
  ),
  max_standby_streaming_delay: Type.Optional(
    Type.Union([Type.String({ minLength: 1 }), Type.Number()], {
      description:
        'How long replay waits for conflicting standby queries before cancelling them (`30s`; -1 waits forever, so lag grows instead).',
    }),
  ),
  max_standby_archive_delay: Type.Optional(
    Type.Union([Type.String({ minLength: 1 }), Type.Number()], {
      description: 'The same as max_standby_streaming_delay, for WAL read from the archive.',
    }),
  ),
  wal_receiver_status_interval: Type.Optional(
    Type.Union([Type.String({ minLength: 1 }), Type.Number()], {
      description: 'How often the standby reports its positions to the primary (pg_stat_replication freshness).',
    }),
  ),
  wal_receiver_timeout: Type.Optional(
    Type.Union([Type.String({ minLength: 1 }), Type.Number()], {
      description: 'How long the standby waits on a silent primary before it drops the replication connection.',
    }),
  ),
  recovery_min_apply_delay: Type.Optional(
    Type.Union([Type.String({ minLength: 1 }), Type.Number()], {
      description: 'A deliberate replay delay (a delayed standby); such a replica is always "behind" for routing.',
    }),
  ),
};

export const StandbySettingsPolicy = Type.Object(wellKnownSettings, {
  title: 'standby settings',
  description:
    'PostgreSQL settings pgwarden keeps on every replica with ALTER SYSTEM and pg_reload_conf(). A setting that needs a restart is refused unless `apply --allow-restart`.',
  additionalProperties: false,
  // Any other setting name (lower case, optionally `extension.name`), checked against pg_settings at plan
  // time. The well-known names are excluded from the pattern: ajv's strict mode rejects a property that a
  // pattern also matches.
  patternProperties: { [`^(?!(${Object.keys(wellKnownSettings).join('|')})$)[a-z_][a-z0-9_]*(\\.[a-z_][a-z0-9_]*)?$`]: SettingValue },
});

export const RoutingSection = Type.Object(
  {
    replicas: Type.Array(ReplicaPolicy, { minItems: 1, description: 'The replicas that may take reads.' }),
    reads: Type.Optional(
      StringEnum(readTargets, {
        description: '`replica`: read-only statements go to a replica within max_lag_ms. `primary`: everything goes to the primary (a kill switch).',
        default: 'replica',
      }),
    ),
    max_lag_ms: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Above this lag a replica takes no reads until it has caught up again.', default: 1000 }),
    ),
    read_your_writes_ms: Type.Optional(
      Type.Integer({ minimum: 0, description: 'After a session writes, its reads stay on the primary this long.', default: 1000 }),
    ),
    on_replica_down: Type.Optional(
      StringEnum(onReplicaDownModes, {
        description: 'When no replica can take a read: `primary` sends it to the primary, `error` fails it.',
        default: 'primary',
      }),
    ),
    standby_settings: Type.Optional(StandbySettingsPolicy),
  },
  { title: 'routing', description: 'Read-replica routing and the replica side pgwarden manages.', additionalProperties: false },
);

export const RoutingPolicy = Type.Object(
  { routing: RoutingSection },
  { title: 'routing policy', description: 'Where reads go: the router library and the replica side of plan and apply.', additionalProperties: false },
);

export type ReplicaPolicy = Static<typeof ReplicaPolicy>;
export type RoutingSection = Static<typeof RoutingSection>;
export type RoutingPolicy = Static<typeof RoutingPolicy>;
