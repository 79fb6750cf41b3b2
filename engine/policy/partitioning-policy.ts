import { Type, type Static, type TUnsafe } from '@sinclair/typebox';
import type { PolicyError, SourcePos } from './desired.ts';
import { positionOf, type DataPath, type DocumentSource } from './document-source.ts';

/**
 * The `partitioning:` key of a table policy: range partitioning by time, kept true on every apply.
 *
 * @example
 * partitioning:
 *   by: range
 *   column: created_at
 *   interval: month            # day | week | month | quarter | year
 *   premake: 3                 # future partitions kept ready
 *   retention: { keep: 12, then: detach }
 *   default_partition: true
 */

export type PartitionInterval = 'day' | 'week' | 'month' | 'quarter' | 'year';
export type RetentionAction = 'detach' | 'drop';

export const partitionIntervals: readonly PartitionInterval[] = ['day', 'week', 'month', 'quarter', 'year'];

/** "daily", "monthly": for messages. */
export function intervalAdjective(interval: PartitionInterval): string {
  return interval === 'day' ? 'daily' : `${interval}ly`;
}

/** The names new partitions get when the policy gives no `naming:`; every bound in UTC. */
export const defaultNaming: Readonly<Record<PartitionInterval, string>> = {
  day: '{table}_{YYYY}_{MM}_{DD}',
  week: '{table}_{IYYY}_w{IW}',
  month: '{table}_{YYYY}_{MM}',
  quarter: '{table}_{YYYY}_q{Q}',
  year: '{table}_{YYYY}',
};

/** The fields a pattern must use so that two partitions of one interval never share a name. */
const identifyingTokens: Readonly<Record<PartitionInterval, readonly (readonly string[])[]>> = {
  day: [['YYYY', 'MM', 'DD']],
  week: [['IYYY', 'IW'], ['YYYY', 'MM', 'DD']],
  month: [['YYYY', 'MM']],
  quarter: [['YYYY', 'Q'], ['YYYY', 'MM']],
  year: [['YYYY']],
};

const namingTokens = ['table', 'YYYY', 'MM', 'DD', 'Q', 'IYYY', 'IW'] as const;

function StringEnum<T extends string>(values: readonly T[], options: { description: string; default?: NoInfer<T> }): TUnsafe<T> {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
}

// Bounds that keep a typo (premake: 3000 on a daily table) from planning thousands of tables.
const MAX_PREMAKE = 1000;
const MAX_KEEP = 10000;

export const RetentionPolicy = Type.Object(
  {
    keep: Type.Integer({
      minimum: 1,
      maximum: MAX_KEEP,
      description: 'How many intervals of data to keep: a partition whose whole range ends more than `keep` intervals before now leaves.',
    }),
    then: Type.Optional(
      StringEnum(['detach', 'drop'] as const, {
        description: '`detach`: the old partition becomes a plain table (archive it, then drop it yourself). `drop`: detached, then dropped.',
        default: 'detach',
      }),
    ),
  },
  { title: 'retention', description: 'What happens to partitions older than `keep` intervals. Needs `apply --allow-drop`.', additionalProperties: false },
);

export const PartitioningPolicy = Type.Object(
  {
    by: StringEnum(['range'] as const, { description: 'Partitioning strategy; pgwarden manages range partitioning by time.' }),
    column: Type.String({ minLength: 1, description: 'The partition key: a date, timestamp or timestamptz column, exact name.' }),
    interval: StringEnum(partitionIntervals, { description: 'The range each partition covers, aligned to UTC (weeks start on Monday, ISO 8601).' }),
    premake: Type.Optional(
      Type.Integer({ minimum: 0, maximum: MAX_PREMAKE, default: 4, description: 'How many partitions after the current one must exist.' }),
    ),
    retention: Type.Optional(RetentionPolicy),
    default_partition: Type.Optional(
      Type.Boolean({ default: false, description: 'Keep a DEFAULT partition for rows outside every range (instead of failing the insert).' }),
    ),
    naming: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Partition name pattern: {table}, {YYYY}, {MM}, {DD}, {Q}, {IYYY}, {IW} (of the range start, UTC). Default `{table}_{YYYY}_{MM}` for months.',
      }),
    ),
  },
  { title: 'partitioning', description: 'Range partitioning by time that pgwarden keeps true: partitions ahead, retention, a default partition.', additionalProperties: false },
);

export type PartitioningPolicy = Static<typeof PartitioningPolicy>;

export interface DesiredRetention {
  readonly keep: number;
  readonly then: RetentionAction;
  readonly source: SourcePos;
}

export interface DesiredPartitioning {
  readonly by: 'range';
  readonly column: string;
  readonly interval: PartitionInterval;
  readonly premake: number;
  readonly retention?: DesiredRetention;
  readonly defaultPartition: boolean;
  /** The name pattern, `{table}` and the date fields still to fill in. */
  readonly naming: string;
  /** Where `partitioning:` is written; `columnSource` points at the column name. */
  readonly source: SourcePos;
  readonly columnSource: SourcePos;
}

export const DEFAULT_PREMAKE = 4;

// NAMEDATALEN - 1, as for index names: a longer name would be silently truncated by PostgreSQL.
const maxNameBytes = 63;

/** The default partition's name. */
export function defaultPartitionName(table: string): string {
  return `${table}_default`;
}

/**
 * Checks what the schema cannot (the naming pattern, the length of the names it makes) and builds the
 * desired partitioning. Called only for a `partitioning:` mapping that passed the schema.
 */
export function readPartitioning(
  policy: PartitioningPolicy,
  table: string,
  source: DocumentSource,
): { readonly partitioning?: DesiredPartitioning; readonly errors: readonly PolicyError[] } {
  const errors: PolicyError[] = [];
  const at = (path: DataPath): SourcePos => positionOf(source, ['partitioning', ...path]);
  const naming = policy.naming ?? defaultNaming[policy.interval];

  const unknown = [...naming.matchAll(/\{([^}]*)\}/gu)].map((m) => m[1] ?? '').filter((t) => !(namingTokens as readonly string[]).includes(t));
  if (unknown.length > 0) {
    errors.push({ ...at(['naming']), message: `naming pattern uses unknown field {${unknown[0]}}`, hint: `the fields are ${namingTokens.map((t) => `{${t}}`).join(', ')}` });
  } else if (!identifyingTokens[policy.interval].some((set) => set.every((t) => naming.includes(`{${t}}`)))) {
    const needed = identifyingTokens[policy.interval].map((set) => set.map((t) => `{${t}}`).join('')).join(' or ');
    errors.push({ ...at(['naming']), message: `naming pattern ${JSON.stringify(naming)} would give two ${intervalAdjective(policy.interval)} partitions the same name`, hint: `use ${needed}` });
  } else {
    // The longest name the pattern can make: every field at its widest.
    const widest = naming.replaceAll('{table}', table).replace(/\{(YYYY|IYYY)\}/gu, '2000').replace(/\{(MM|DD|IW)\}/gu, '00').replaceAll('{Q}', '0');
    for (const name of [widest, defaultPartitionName(table)]) {
      const bytes = Buffer.byteLength(name, 'utf8');
      if (bytes > maxNameBytes) {
        errors.push({
          ...at(name === widest ? (policy.naming === undefined ? [] : ['naming']) : ['default_partition']),
          message: `partition name ${JSON.stringify(name)} would be ${bytes} bytes; PostgreSQL allows at most ${maxNameBytes}`,
          hint: 'give a shorter `naming:` pattern',
        });
      }
    }
  }
  if (errors.length > 0) return { errors };
  const retention = policy.retention === undefined ? undefined : { keep: policy.retention.keep, then: policy.retention.then ?? 'detach', source: at(['retention']) };
  return {
    errors,
    partitioning: {
      by: policy.by,
      column: policy.column,
      interval: policy.interval,
      premake: policy.premake ?? DEFAULT_PREMAKE,
      ...(retention === undefined ? {} : { retention }),
      defaultPartition: policy.default_partition ?? false,
      naming,
      source: positionOf(source, ['partitioning'], 'key'),
      columnSource: at(['column']),
    },
  };
}
