import type { ActualPartition, DefaultRowsProbe, PartitionedTableInfo, ReferencingKey, RetiredPartition, TimeKeyType } from '../catalog/partition-queries.ts';
import type { DesiredState, DesiredTable, PolicyError } from '../policy/desired.ts';
import { defaultPartitionName, intervalAdjective, type DesiredPartitioning } from '../policy/partitioning-policy.ts';
import type { TableRef, Warning } from './change.ts';
import {
  partitionAddress,
  type CreatePartition,
  type DetachPartition,
  type FinalizeDetach,
  type PartitionChange,
  type RelationName,
} from './partition-change.ts';
import { addIntervals, boundLiteral, canonicalBound, intervalStart, partitionName, subtractIntervals, timeKeyType } from './partition-interval.ts';

/**
 * From (partitioning policies, live partitions, now) to the partition changes. Pure: the clock is an
 * argument and the rows sitting in default partitions were counted before (`defaultRowProbes`), so a
 * test can move time a month on and see exactly what the next plan does.
 */
export interface PartitionDiff {
  /** Run before the index changes: finishing interrupted detaches, so index builds never meet a half-detached partition. */
  readonly before: readonly PartitionChange[];
  /** Run after the index changes, so new partitions get every declared index of the parent on ATTACH. */
  readonly after: readonly PartitionChange[];
  readonly warnings: readonly Warning[];
  readonly errors: readonly PolicyError[];
}

export interface PartitionDiffInput {
  readonly desired: DesiredState;
  readonly tables: readonly PartitionedTableInfo[];
  readonly now: Date;
  /** Rows found in the default partition for a range, by the create change's address; absent = not counted. */
  readonly defaultRows?: ReadonlyMap<string, number>;
  /** Storage parameters (autovacuum settings) a table's policy gives its partitions. */
  readonly storageParametersFor?: (table: DesiredTable) => Record<string, string>;
  /** Tables detached for `then: drop` whose DROP did not run (`pgwarden.retired_partition`). */
  readonly retired?: readonly RetiredPartition[];
}

const MINUS_INFINITY = Number.NEGATIVE_INFINITY;
const PLUS_INFINITY = Number.POSITIVE_INFINITY;

function instant(bound: string | null, fallback: number): number {
  if (bound === 'MINVALUE') return MINUS_INFINITY;
  if (bound === 'MAXVALUE') return PLUS_INFINITY;
  if (bound === null) return fallback;
  const ms = Date.parse(bound);
  return Number.isNaN(ms) ? fallback : ms;
}

/** Where an existing partition stands against the policy. */
type Classified =
  | { readonly kind: 'default'; readonly partition: ActualPartition }
  | { readonly kind: 'pending'; readonly partition: ActualPartition }
  /** Exactly one interval, aligned; `named`: under the name the pattern gives it. */
  | { readonly kind: 'slot'; readonly partition: ActualPartition; readonly start: Date; readonly named: boolean }
  /** Anything else: pgwarden never touches it, and creates nothing that would overlap it. */
  | { readonly kind: 'foreign'; readonly partition: ActualPartition; readonly from: number; readonly to: number };

function classify(p: ActualPartition, policy: DesiredPartitioning, table: string): Classified {
  if (p.detachPending) return { kind: 'pending', partition: p };
  if (p.isDefault) return { kind: 'default', partition: p };
  const from = instant(p.from, Number.NaN);
  const to = instant(p.to, Number.NaN);
  if (Number.isFinite(from) && Number.isFinite(to)) {
    const start = new Date(from);
    const aligned = intervalStart(start, policy.interval).getTime() === from && p.from === canonicalBound(start);
    if (aligned && addIntervals(start, policy.interval, 1).getTime() === to) {
      return { kind: 'slot', partition: p, start, named: p.name === partitionName(policy.naming, table, start) };
    }
  }
  return { kind: 'foreign', partition: p, from: Number.isNaN(from) ? MINUS_INFINITY : from, to: Number.isNaN(to) ? PLUS_INFINITY : to };
}

/** The partitioned table's size is its partitions'. */
function tableRef(info: PartitionedTableInfo): TableRef {
  const bytes = info.partitions.reduce((sum, p) => sum + p.totalBytes, info.bytes);
  const rowEstimate = info.partitions.reduce((sum, p) => sum + Math.max(0, p.rowEstimate), 0);
  return { schema: info.schema, name: info.name, partitioned: info.partitioned, bytes, rowEstimate, partitions: [] };
}

function partitionRef(p: ActualPartition): TableRef {
  return { schema: p.schema, name: p.name, partitioned: p.partitioned, bytes: p.totalBytes, rowEstimate: Math.max(0, p.rowEstimate), partitions: [] };
}

const day = (ms: number): string => (Number.isFinite(ms) ? new Date(ms).toISOString().replace('T00:00:00.000Z', '').replace('.000Z', 'Z') : ms < 0 ? 'MINVALUE' : 'MAXVALUE');

function ahead(current: Date, start: Date, interval: DesiredPartitioning['interval']): string {
  let n = 0;
  for (let at = current; at.getTime() < start.getTime(); at = addIntervals(at, interval, 1)) n += 1;
  return `${n} ${interval}${n === 1 ? '' : 's'}`;
}

/** Policy mistakes only the catalog reveals, or the key's type when the table can be managed. */
function keyProblem(policy: DesiredPartitioning, info: PartitionedTableInfo): { error: PolicyError } | { plain: true } | { type: TimeKeyType } {
  const qualifiedName = `${info.schema}.${info.name}`;
  const formatted = info.columnTypes[policy.column];
  if (formatted === undefined) {
    return { error: { ...policy.columnSource, message: `partitioning: column ${JSON.stringify(policy.column)} does not exist in ${qualifiedName}` } };
  }
  const type = timeKeyType(formatted);
  if (type === null) {
    return {
      error: {
        ...policy.columnSource,
        message: `partitioning: column ${policy.column} of ${qualifiedName} is ${formatted}; a ${intervalAdjective(policy.interval)} range needs a date, timestamp or timestamptz column`,
        hint: policy.retention ? 'retention needs a time column too' : 'partition by a time column',
      },
    };
  }
  // A plain table is converted online (engine/diff/convert-change.ts); its partitions are kept from the next plan on.
  if (!info.partitioned) return { plain: true };
  const keys = info.keyColumns;
  if (info.strategy !== 'r' || keys.length !== 1 || keys[0] !== policy.column) {
    const strategy = info.strategy === 'l' ? 'LIST' : info.strategy === 'h' ? 'HASH' : 'RANGE';
    const actual = `${strategy} (${keys.map((k) => k ?? '<expression>').join(', ')})`;
    return {
      error: {
        ...policy.source,
        message: `partitioning: ${qualifiedName} is partitioned by ${actual}, the policy says RANGE (${policy.column})`,
        hint: 'a partition key cannot be changed in place; fix the policy or migrate the table',
      },
    };
  }
  return { type };
}

export function diffPartitions(input: PartitionDiffInput): PartitionDiff {
  const infos = new Map(input.tables.map((t) => [`${t.schema}\u0000${t.name}`, t]));
  const before: PartitionChange[] = [];
  const after: PartitionChange[] = [];
  const warnings: Warning[] = [];
  const errors: PolicyError[] = [];
  for (const table of input.desired.tables) {
    const policy = table.partitioning;
    const info = infos.get(`${table.schema}\u0000${table.name}`);
    // A missing table is reported by the index diff, once.
    if (policy === undefined || info === undefined) continue;
    const checked = keyProblem(policy, info);
    if ('error' in checked) {
      errors.push(checked.error);
      continue;
    }
    if ('plain' in checked) continue;
    const result = diffTable(table, policy, info, checked.type, input);
    before.push(...result.before);
    after.push(...result.after);
    warnings.push(...result.warnings);
    errors.push(...result.errors);
  }
  return { before, after, warnings, errors };
}

function diffTable(
  table: DesiredTable,
  policy: DesiredPartitioning,
  info: PartitionedTableInfo,
  keyType: TimeKeyType,
  input: PartitionDiffInput,
): PartitionDiff {
  const before: PartitionChange[] = [];
  const creates: PartitionChange[] = [];
  const detaches: PartitionChange[] = [];
  const warnings: Warning[] = [];
  const errors: PolicyError[] = [];
  const parent: RelationName = { schema: info.schema, name: info.name };
  const parentRef = tableRef(info);
  const address = (name: string): string => partitionAddress(info.schema, info.name, name);
  const classified = info.partitions.map((p) => classify(p, policy, info.name));
  const defaultPartition = classified.find((c) => c.kind === 'default')?.partition;
  const cutoff = policy.retention ? subtractIntervals(input.now, policy.interval, policy.retention.keep).getTime() : MINUS_INFINITY;
  const expired = (start: Date): boolean => addIntervals(start, policy.interval, 1).getTime() <= cutoff;
  const interval = policy.interval;

  for (const c of classified) {
    const p = c.partition;
    if (c.kind === 'pending') {
      const start = p.from === null ? null : new Date(instant(p.from, Number.NaN));
      const drop = policy.retention?.then === 'drop' && start !== null && !Number.isNaN(start.getTime()) && expired(start) && p.name === partitionName(policy.naming, info.name, start);
      const change: FinalizeDetach = {
        kind: 'finalize-detach',
        address: address(p.name),
        table: partitionRef(p),
        parent,
        partition: { schema: p.schema, name: p.name },
        drop,
        rows: p.rowEstimate,
        bytes: p.totalBytes,
        destructive: drop,
        alreadyDetached: false,
        reason: `a DETACH PARTITION ... CONCURRENTLY of ${p.name} was interrupted; the partition is pending detach until it is finalized${drop ? ', then dropped as retention says' : ''}`,
        source: policy.source,
      };
      before.push(change);
    } else if (c.kind === 'foreign') {
      warnings.push({
        address: address(p.name),
        source: policy.source,
        message: `partition ${p.name} covers ${p.boundText.replace(/^FOR VALUES /u, '')}, which is not one ${interval} aligned to UTC; pgwarden leaves it alone and creates no partition overlapping it`,
      });
    } else if (c.kind === 'slot' && !c.named) {
      const expected = partitionName(policy.naming, info.name, c.start);
      warnings.push({
        address: address(p.name),
        source: policy.source,
        message: `partition ${p.name} covers the ${interval} of ${day(c.start.getTime())} but the naming pattern calls it ${expected}; pgwarden counts it as present and leaves it alone (retention included)`,
      });
    }
  }

  for (const r of input.retired ?? []) {
    if (r.parentSchema !== info.schema || r.parentName !== info.name) continue;
    if (policy.retention?.then !== 'drop') {
      warnings.push({
        address: address(r.name),
        source: policy.source,
        message: `${r.schema}.${r.name} was detached for retention with then: drop but not dropped; the policy no longer drops, so pgwarden leaves it (drop it yourself, or delete its row from pgwarden.retired_partition)`,
      });
      continue;
    }
    const change: FinalizeDetach = {
      kind: 'finalize-detach',
      address: address(r.name),
      table: { schema: r.schema, name: r.name, partitioned: false, bytes: r.totalBytes, rowEstimate: Math.max(0, r.rowEstimate), partitions: [] },
      parent,
      partition: { schema: r.schema, name: r.name },
      drop: true,
      alreadyDetached: true,
      rows: r.rowEstimate,
      bytes: r.totalBytes,
      destructive: true,
      reason: `retention (then: drop) detached ${r.name} from ${info.name}, but its DROP TABLE did not complete; it is a plain table now, and only the DROP is left`,
      source: policy.retention.source,
    };
    before.push(change);
  }

  // The partitions that must exist: from the oldest one retention keeps up to now + premake.
  const current = intervalStart(input.now, interval);
  const last = addIntervals(current, interval, policy.premake);
  const slots = classified.filter((c): c is Extract<Classified, { kind: 'slot' }> => c.kind === 'slot');
  const kept = slots.filter((s) => !expired(s.start)).map((s) => s.start.getTime());
  let start = new Date(Math.min(current.getTime(), ...kept));
  const present = new Set(slots.map((s) => s.start.getTime()));
  const foreign = classified.filter((c): c is Extract<Classified, { kind: 'foreign' }> => c.kind === 'foreign');
  const storageParameters = input.storageParametersFor?.(table) ?? {};
  const oldestPresent = slots.length > 0 ? Math.min(...slots.map((s) => s.start.getTime())) : null;
  for (; start.getTime() <= last.getTime(); start = addIntervals(start, interval, 1)) {
    const from = start.getTime();
    if (present.has(from) || expired(start)) continue;
    const to = addIntervals(start, interval, 1);
    const name = partitionName(policy.naming, info.name, start);
    if (foreign.some((f) => f.from < to.getTime() && f.to > from)) continue;
    const taken = info.partitions.some((p) => p.name === name);
    if (taken) {
      warnings.push({
        address: address(name),
        source: policy.source,
        message: `the ${interval} of ${day(from)} has no partition, and the name ${name} is taken by another partition; pgwarden cannot create it`,
      });
      continue;
    }
    const create = createChange({
      name,
      start,
      to,
      keyType,
      policy,
      info,
      parentRef,
      defaultPartition,
      address: address(name),
      storageParameters,
      input,
      why:
        from > current.getTime()
          ? `premake ${policy.premake}: the ${interval} of ${day(from)}, ${ahead(current, start, interval)} after the current one, must exist ahead of its rows`
          : from === current.getTime()
            ? `the current ${interval} (${day(from)}) has no partition`
            : oldestPresent !== null && from > oldestPresent
              ? `a gap: the ${interval} of ${day(from)} has no partition between older and newer ones`
              : `the ${interval} of ${day(from)} is within retention and has no partition`,
    });
    if ('message' in create) errors.push(create);
    else creates.push(create);
  }

  if (policy.defaultPartition && defaultPartition === undefined) {
    const name = defaultPartitionName(info.name);
    creates.push({
      kind: 'create-partition',
      address: address(name),
      table: parentRef,
      parent,
      partition: { schema: info.schema, name },
      bound: { kind: 'default' },
      defaultPartition: null,
      move: null,
      storageParameters,
      reason: 'default_partition: true, and the table has no DEFAULT partition (rows outside every range fail to insert without one)',
      source: policy.source,
    });
  } else if (!policy.defaultPartition && defaultPartition !== undefined) {
    warnings.push({
      address: address(defaultPartition.name),
      source: policy.source,
      message: `${defaultPartition.name} is a DEFAULT partition the policy does not declare (default_partition: true); pgwarden leaves it alone, and detaches retention partitions without CONCURRENTLY while it exists`,
    });
  }

  if (policy.retention) {
    const retention = policy.retention;
    // DETACH CONCURRENTLY is refused while a default partition exists (PostgreSQL 14-17).
    const concurrently = defaultPartition === undefined && !policy.defaultPartition;
    for (const slot of slots) {
      if (!expired(slot.start)) continue;
      const p = slot.partition;
      if (!slot.named) continue;
      const change: DetachPartition = {
        kind: 'detach-partition',
        address: address(p.name),
        table: partitionRef(p),
        parent,
        partition: { schema: p.schema, name: p.name },
        drop: retention.then === 'drop',
        concurrently,
        rows: p.rowEstimate,
        bytes: p.totalBytes,
        destructive: true,
        reason: `retention keep ${retention.keep}: the ${interval} of ${day(slot.start.getTime())} ended more than ${retention.keep} ${interval}${retention.keep === 1 ? '' : 's'} ago${retention.then === 'drop' ? '; then: drop' : '; then: detach (it stays as a plain table)'}`,
        source: retention.source,
      };
      detaches.push(change);
    }
  }
  // Ranges first, the default partition last (attaching a range then scans no default partition);
  // retention after creation, oldest first.
  const ordered = [...creates.filter((c) => c.kind !== 'create-partition' || c.bound.kind === 'range'), ...detaches, ...creates.filter((c) => c.kind === 'create-partition' && c.bound.kind === 'default')];
  return { before, after: ordered, warnings, errors };
}

function createChange(args: {
  name: string;
  start: Date;
  to: Date;
  keyType: TimeKeyType;
  policy: DesiredPartitioning;
  info: PartitionedTableInfo;
  parentRef: TableRef;
  defaultPartition: ActualPartition | undefined;
  address: string;
  storageParameters: Record<string, string>;
  input: PartitionDiffInput;
  why: string;
}): CreatePartition | PolicyError {
  const { info, defaultPartition, policy } = args;
  const rows = args.input.defaultRows?.get(args.address) ?? 0;
  const move =
    defaultPartition !== undefined && rows > 0
      ? { defaultPartition: { schema: defaultPartition.schema, name: defaultPartition.name }, rows, columns: info.insertableColumns }
      : null;
  if (move !== null && info.referencingKeys.length > 0) return moveRefused(args.name, rows, move.defaultPartition.name, info, policy);
  const moved = move
    ? `; ${rows.toLocaleString('en-US')} row${rows === 1 ? '' : 's'} of this range sit in ${move.defaultPartition.name} and move into it in the same short transaction (PostgreSQL refuses the partition while they are there)${triggersNote(info)}`
    : '';
  return {
    kind: 'create-partition',
    address: args.address,
    table: args.parentRef,
    parent: { schema: info.schema, name: info.name },
    partition: { schema: info.schema, name: args.name },
    bound: { kind: 'range', from: boundLiteral(args.start, args.keyType), to: boundLiteral(args.to, args.keyType), keyColumn: policy.column, keyType: args.keyType },
    defaultPartition: defaultPartition === undefined ? null : { schema: defaultPartition.schema, name: defaultPartition.name },
    move,
    storageParameters: args.storageParameters,
    reason: `${args.why}${moved}`,
    source: policy.source,
  };
}

/** The move deletes the rows from the default partition: its DELETE triggers fire, and pgwarden disables nothing. */
function triggersNote(info: PartitionedTableInfo): string {
  const names = info.defaultDeleteTriggers;
  if (names.length === 0) return '';
  return `; the DELETE fires ${names.length === 1 ? 'the trigger' : 'the triggers'} ${names.join(', ')} on the default partition for each moved row (pgwarden disables no trigger; the new partition has none until ATTACH)`;
}

const ON_DELETE: Readonly<Record<ReferencingKey['onDelete'], string>> = {
  a: 'NO ACTION: the move fails',
  r: 'RESTRICT: the move fails',
  c: 'CASCADE: the referencing rows would be deleted',
  n: 'SET NULL: the referencing rows would lose their reference',
  d: 'SET DEFAULT: the referencing rows would be repointed',
};

/**
 * Rows move out of the default partition by DELETE then INSERT; a foreign key referencing the table sees
 * the DELETE (its action triggers sit on every partition) and acts on it before the rows come back. There
 * is no online way around it that keeps the key enforced, so the plan refuses and says what to do.
 */
function moveRefused(partition: string, rows: number, defaultName: string, info: PartitionedTableInfo, policy: DesiredPartitioning): PolicyError {
  const keys = info.referencingKeys.map((k) => `${k.schema}.${k.table}.${k.name} (ON DELETE ${ON_DELETE[k.onDelete]})`);
  const table = `${info.schema}.${info.name}`;
  return {
    ...policy.source,
    message: `partitioning: ${partition} cannot be created: ${rows.toLocaleString('en-US')} row(s) of its range sit in ${defaultName}, and moving them out deletes them there first, which the foreign key${keys.length === 1 ? '' : 's'} referencing ${table} would act on: ${keys.join('; ')}; pgwarden does not move them`,
    hint:
      `move them by hand in one transaction: ALTER TABLE <referencing table> DROP CONSTRAINT <key> for each key above; ` +
      `CREATE TABLE ${partition} (LIKE ${table} INCLUDING ALL); INSERT INTO it the rows of its range from ONLY ${defaultName}, then DELETE them from ONLY ${defaultName}; ` +
      `ALTER TABLE ${table} ATTACH PARTITION ${partition} FOR VALUES FROM (...) TO (...); ` +
      `re-add each key with ALTER TABLE <referencing table> ADD CONSTRAINT <key> <its definition> (it checks every referencing row again); then plan again`,
  };
}

/** The default-partition row counts a plan needs: one per range partition to create on a table with a default partition. */
export function defaultRowProbes(diff: PartitionDiff): { readonly address: string; readonly probe: DefaultRowsProbe }[] {
  return diff.after.flatMap((c) => {
    if (c.kind !== 'create-partition' || c.bound.kind !== 'range' || c.defaultPartition === null) return [];
    const { bound } = c;
    return [{ address: c.address, probe: { schema: c.defaultPartition.schema, table: c.defaultPartition.name, column: bound.keyColumn, type: bound.keyType, from: bound.from, to: bound.to } }];
  });
}
