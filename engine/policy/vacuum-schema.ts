import { Type, type TObject, type TSchema } from '@sinclair/typebox';

/**
 * The `vacuum:` block of a table policy and the `defaults:` document, written once: the table of
 * storage parameters below gives the JSON Schema (with PostgreSQL's own ranges, so editors flag a bad
 * value as it is typed), the conversion to reloptions and the diff's notion of equality.
 */

export type StorageParameterType = 'boolean' | 'integer' | 'real' | 'enum';

/** One autovacuum storage parameter as PostgreSQL defines it (src/backend/access/common/reloptions.c). */
export interface StorageParameterSpec {
  /** The key in the policy: the reloption without its `autovacuum_` prefix. */
  readonly key: string;
  /** The reloption PostgreSQL stores in pg_class.reloptions. */
  readonly reloption: string;
  readonly type: StorageParameterType;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
  /** PostgreSQL accepts a `toast.` form of it (the TOAST table has no statistics, hence no analyze_*). */
  readonly toast: boolean;
  readonly description: string;
}

const INT_MAX = 2_147_483_647;

/**
 * Ranges as PostgreSQL 14–17 enforce them for reloptions; they differ from the GUCs of the same name
 * (a reloption cannot be -1 = "use the GUC", and autovacuum_vacuum_cost_limit starts at 1).
 * test/vacuum/parameter-ranges.test.ts checks every bound against a real server.
 */
export const STORAGE_PARAMETERS: readonly StorageParameterSpec[] = [
  {
    key: 'enabled',
    reloption: 'autovacuum_enabled',
    type: 'boolean',
    toast: true,
    description: 'Let autovacuum vacuum and analyze the table. Anti-wraparound vacuums run even when false.',
  },
  {
    key: 'vacuum_threshold',
    reloption: 'autovacuum_vacuum_threshold',
    type: 'integer',
    min: 0,
    max: INT_MAX,
    toast: true,
    description: 'Dead tuples, on top of vacuum_scale_factor x rows, before autovacuum vacuums (PostgreSQL default 50).',
  },
  {
    key: 'vacuum_scale_factor',
    reloption: 'autovacuum_vacuum_scale_factor',
    type: 'real',
    min: 0,
    max: 100,
    toast: true,
    description: 'Share of the rows that may be dead before autovacuum vacuums (PostgreSQL default 0.2).',
  },
  {
    key: 'vacuum_insert_threshold',
    reloption: 'autovacuum_vacuum_insert_threshold',
    type: 'integer',
    min: -1,
    max: INT_MAX,
    toast: true,
    description: 'Inserted tuples, on top of vacuum_insert_scale_factor x rows, before autovacuum vacuums; -1 turns insert-driven vacuums off (PostgreSQL default 1000).',
  },
  {
    key: 'vacuum_insert_scale_factor',
    reloption: 'autovacuum_vacuum_insert_scale_factor',
    type: 'real',
    min: 0,
    max: 100,
    toast: true,
    description: 'Share of the rows inserted since the last vacuum before autovacuum vacuums (PostgreSQL default 0.2).',
  },
  {
    key: 'analyze_threshold',
    reloption: 'autovacuum_analyze_threshold',
    type: 'integer',
    min: 0,
    max: INT_MAX,
    toast: false,
    description: 'Changed rows, on top of analyze_scale_factor x rows, before autovacuum analyzes (PostgreSQL default 50).',
  },
  {
    key: 'analyze_scale_factor',
    reloption: 'autovacuum_analyze_scale_factor',
    type: 'real',
    min: 0,
    max: 100,
    toast: false,
    description: 'Share of the rows changed since the last analyze before autovacuum analyzes (PostgreSQL default 0.1).',
  },
  {
    key: 'vacuum_cost_delay',
    reloption: 'autovacuum_vacuum_cost_delay',
    type: 'real',
    min: 0,
    max: 100,
    toast: true,
    description: 'Milliseconds autovacuum sleeps each time it reaches its cost limit (PostgreSQL default 2).',
  },
  {
    key: 'vacuum_cost_limit',
    reloption: 'autovacuum_vacuum_cost_limit',
    type: 'integer',
    min: 1,
    max: 10_000,
    toast: true,
    description: 'I/O cost autovacuum accumulates before it sleeps (PostgreSQL default: vacuum_cost_limit, 200).',
  },
  {
    key: 'freeze_min_age',
    reloption: 'autovacuum_freeze_min_age',
    type: 'integer',
    min: 0,
    max: 1_000_000_000,
    toast: true,
    description: 'Transaction age above which vacuum freezes a row. Ignored above half the server autovacuum_freeze_max_age.',
  },
  {
    key: 'freeze_max_age',
    reloption: 'autovacuum_freeze_max_age',
    type: 'integer',
    min: 100_000,
    max: 2_000_000_000,
    toast: true,
    description: 'Table transaction age at which autovacuum forces an anti-wraparound vacuum. Can only lower the server setting.',
  },
  {
    key: 'freeze_table_age',
    reloption: 'autovacuum_freeze_table_age',
    type: 'integer',
    min: 0,
    max: 2_000_000_000,
    toast: true,
    description: 'Table transaction age at which autovacuum scans every page not yet all-frozen.',
  },
  {
    key: 'multixact_freeze_min_age',
    reloption: 'autovacuum_multixact_freeze_min_age',
    type: 'integer',
    min: 0,
    max: 1_000_000_000,
    toast: true,
    description: 'Multixact age above which vacuum replaces a multixact ID in a row.',
  },
  {
    key: 'multixact_freeze_max_age',
    reloption: 'autovacuum_multixact_freeze_max_age',
    type: 'integer',
    min: 10_000,
    max: 2_000_000_000,
    toast: true,
    description: 'Multixact age at which autovacuum forces an anti-wraparound vacuum. Can only lower the server setting.',
  },
  {
    key: 'multixact_freeze_table_age',
    reloption: 'autovacuum_multixact_freeze_table_age',
    type: 'integer',
    min: 0,
    max: 2_000_000_000,
    toast: true,
    description: 'Multixact age at which autovacuum scans every page not yet all-frozen.',
  },
  {
    key: 'log_min_duration',
    reloption: 'log_autovacuum_min_duration',
    type: 'integer',
    min: -1,
    max: INT_MAX,
    toast: true,
    description: 'Log autovacuum runs on this table that take at least this many milliseconds; 0 logs every run, -1 none.',
  },
  {
    key: 'vacuum_truncate',
    reloption: 'vacuum_truncate',
    type: 'boolean',
    toast: true,
    description: 'Let every VACUUM (not only autovacuum) cut empty pages off the end of the table. The cut takes a brief ACCESS EXCLUSIVE lock that a standby replays; false avoids it on queue-like tables.',
  },
  {
    key: 'vacuum_index_cleanup',
    reloption: 'vacuum_index_cleanup',
    type: 'enum',
    values: ['auto', 'on', 'off'],
    toast: true,
    description: 'Whether every VACUUM (not only autovacuum) removes dead index entries: auto (PostgreSQL decides), on, off.',
  },
];

/** Reloptions pgwarden manages, main table and TOAST table (`toast.` prefix) alike. */
export const MANAGED_RELOPTIONS: ReadonlySet<string> = new Set(
  STORAGE_PARAMETERS.flatMap((p) => (p.toast ? [p.reloption, `toast.${p.reloption}`] : [p.reloption])),
);

export function parameterSpec(reloption: string): StorageParameterSpec | undefined {
  const bare = reloption.startsWith('toast.') ? reloption.slice('toast.'.length) : reloption;
  return STORAGE_PARAMETERS.find((p) => p.reloption === bare);
}

function range(spec: StorageParameterSpec): { minimum?: number; maximum?: number } {
  return { ...(spec.min === undefined ? {} : { minimum: spec.min }), ...(spec.max === undefined ? {} : { maximum: spec.max }) };
}

function parameterSchema(spec: StorageParameterSpec): TSchema {
  const description = `${spec.description} (\`${spec.reloption}\`)`;
  switch (spec.type) {
    case 'boolean':
      return Type.Boolean({ description });
    case 'integer':
      // `title` names the reloption in range errors ("PostgreSQL accepts 0 to 100 for ...").
      return Type.Integer({ title: spec.reloption, ...range(spec), description });
    case 'real':
      return Type.Number({ title: spec.reloption, ...range(spec), description });
    case 'enum':
      return Type.Unsafe<string>({ type: 'string', enum: [...(spec.values ?? [])], description });
  }
}

function parameterBlock(toast: boolean, title: string, description: string): TObject {
  const specs = STORAGE_PARAMETERS.filter((p) => !toast || p.toast);
  const properties = Object.fromEntries(specs.map((p) => [p.key, Type.Optional(parameterSchema(p))]));
  return Type.Object(properties, { title, description, additionalProperties: false });
}

export const AutovacuumSettings = parameterBlock(
  false,
  'autovacuum settings',
  'Storage parameters of the table (ALTER TABLE ... SET): applied by `pgwarden apply`; a key removed here is reset.',
);

export const ToastAutovacuumSettings = parameterBlock(
  true,
  'TOAST autovacuum settings',
  'The same storage parameters for the table\'s TOAST table (`toast.autovacuum_*`). There is no analyze_* here: TOAST tables have no statistics.',
);

export const VacuumPolicy = Type.Object(
  {
    autovacuum: Type.Optional(AutovacuumSettings),
    toast: Type.Optional(ToastAutovacuumSettings),
    max_dead_ratio: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description: 'Dead tuples / (live + dead) above which `pgwarden maintain` vacuums the table (default 0.1).',
      }),
    ),
    min_health: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description: 'The floor of the table health score (0..1): below it `plan` and `health` flag the table and `maintain` vacuums it (default 0.9).',
      }),
    ),
    analyze_after_rows: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Rows changed since the last ANALYZE after which `pgwarden maintain` analyzes the table.',
      }),
    ),
    analyze_after: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Age of the statistics after which `pgwarden maintain` analyzes a table that changed since: `30m`, `12h`, `7d`.',
        examples: ['12h', '7d'],
      }),
    ),
  },
  {
    title: 'vacuum policy',
    description: 'Autovacuum storage parameters and the thresholds `pgwarden maintain` keeps the table within.',
    additionalProperties: false,
  },
);

export const DefaultsPolicy = Type.Object(
  {
    defaults: Type.Object(
      {
        vacuum: Type.Optional(VacuumPolicy),
      },
      {
        title: 'defaults',
        description: 'Settings for every table: a table policy\'s own keys override these one by one.',
        additionalProperties: false,
      },
    ),
  },
  {
    title: 'defaults document',
    description: 'Policy defaults for every table in the database, including tables no policy names. One per policy directory.',
    additionalProperties: false,
  },
);
