import type { ConversionColumn, ConversionConstraint, ConversionFacts, DependentView, ForeignKeyFact, KeyRange } from '../catalog/conversion-queries.ts';
import { captureFunctionName, convertingName, cut, unpartitionedName } from '../catalog/conversion-queries.ts';
import type { TimeKeyType } from '../catalog/partition-queries.ts';
import type { DesiredIndex, DesiredTable, PolicyError, SourcePos } from '../policy/desired.ts';
import { defaultPartitionName, type DesiredPartitioning, type PartitionInterval } from '../policy/partitioning-policy.ts';
import type { TableRef, Warning } from './change.ts';
import { addIntervals, boundLiteral, intervalStart, partitionName, subtractIntervals } from './partition-interval.ts';

/**
 * Converting a plain table into a range-partitioned one, online (docs/partitioning.md, "Converting a
 * plain table"): a new partitioned table beside it, a capture trigger, a key-ordered batched copy,
 * verification, and a swap of names in one short transaction. The old table is kept, renamed.
 */
export interface NewPartition {
  readonly name: string;
  /** Bound literals for the key type (`2026-12-01 00:00:00+00`). */
  readonly from: string;
  readonly to: string;
}

/** A declared index, built on the new (empty) table under a temporary name and renamed at the swap. */
export interface ConvertIndex {
  readonly index: DesiredIndex;
  readonly temporaryName: string;
}

/** An index or key constraint of the new table whose final name the old table holds until the swap. */
export interface Rename {
  readonly from: string;
  readonly to: string;
}

export interface ConvertTable {
  readonly kind: 'convert-table';
  /** `convert:schema.table`. */
  readonly address: string;
  /** The plain table as it is now (its rows and bytes are what the copy moves). */
  readonly table: TableRef;
  readonly reason: string;
  readonly source?: SourcePos;
  /** The plain table's OID: the record of an interrupted conversion is only resumed for that same table. */
  readonly oid: number;
  readonly newName: string;
  readonly oldName: string;
  readonly captureFunction: string;
  readonly keyColumn: string;
  readonly keyType: TimeKeyType;
  readonly interval: PartitionInterval;
  /** Every column, in order (generated ones are recomputed, never copied). */
  readonly columns: readonly ConversionColumn[];
  readonly primaryKey: ConversionConstraint;
  /** Other UNIQUE constraints, carried over (each includes the partition key). */
  readonly uniqueKeys: readonly ConversionConstraint[];
  readonly foreignKeys: readonly { readonly name: string; readonly definition: string }[];
  readonly partitions: readonly NewPartition[];
  readonly defaultPartition: string | null;
  readonly indexes: readonly ConvertIndex[];
  /** The new table's key constraints under temporary names, and what they become at the swap. */
  readonly newRenames: readonly Rename[];
  /** The old table's indexes and key constraints whose names the new table takes, and where they go. */
  readonly oldRenames: readonly Rename[];
  readonly views: readonly DependentView[];
  readonly grants: readonly { readonly grantee: string; readonly privilege: string }[];
  readonly storageParameters: Readonly<Record<string, string>>;
  /** Exact, from the plan's scan. */
  readonly rows: number;
  readonly bytes: number;
  /** The copy's duration from a timed sample, in seconds; null when the table is empty. */
  readonly estimateSeconds: number | null;
  readonly sampleRowsPerSecond: number | null;
  /** An earlier apply left the copy under way: it continues from there. */
  readonly resume: { readonly watermark: readonly string[] | null; readonly rowsCopied: number } | null;
  /** Leftovers of an earlier attempt that cannot be resumed: dropped before starting again. */
  readonly cleanup: boolean;
  /** The routing policy's max_lag_ms: the copy waits while a standby lags more. */
  readonly maxLagMs: number | null;
  /**
   * Foreign keys of other tables that reference the table by columns that include the partition key:
   * re-created NOT VALID against the new table in the swap, validated after it (no write blocked).
   */
  readonly referencingKeys: readonly ForeignKeyFact[];
}

/** A finished conversion's old table, kept until `apply --allow-drop`. */
export interface DropUnpartitioned {
  readonly kind: 'drop-unpartitioned';
  readonly address: string;
  readonly table: TableRef;
  readonly reason: string;
  readonly source?: SourcePos;
  readonly schema: string;
  readonly name: string;
  readonly destructive: true;
}

export type ConvertChange = ConvertTable | DropUnpartitioned;

export interface ConversionInput {
  readonly table: DesiredTable;
  readonly policy: DesiredPartitioning;
  readonly facts: ConversionFacts;
  readonly keyType: TimeKeyType;
  readonly range: KeyRange;
  /** Of the names `conversionNames()` gave, those already taken by a relation. */
  readonly taken: readonly string[];
  readonly now: Date;
  readonly serverVersion: number;
  readonly maxLagMs: number | null;
  readonly storageParameters: Readonly<Record<string, string>>;
}

export interface ConversionDiff {
  readonly change: ConvertTable | null;
  readonly warnings: readonly Warning[];
  readonly errors: readonly PolicyError[];
}

/** At most this many partitions from one conversion: more means a key range the policy did not foresee. */
export const MAX_NEW_PARTITIONS = 1000;

function slotStarts(policy: DesiredPartitioning, range: KeyRange, now: Date): Date[] | null {
  const current = intervalStart(now, policy.interval);
  const last = addIntervals(current, policy.interval, policy.premake);
  const finite = (ms: number | null): ms is number => ms !== null && Number.isFinite(ms);
  const first = finite(range.minMs) ? intervalStart(new Date(Math.min(range.minMs, current.getTime())), policy.interval) : current;
  const end = finite(range.maxMs) && range.maxMs > last.getTime() ? intervalStart(new Date(range.maxMs), policy.interval) : last;
  const starts: Date[] = [];
  for (let at = first; at.getTime() <= end.getTime(); at = addIntervals(at, policy.interval, 1)) {
    if (starts.length >= MAX_NEW_PARTITIONS) return null;
    starts.push(at);
  }
  return starts;
}

/** The partitions and names a conversion would create, so the plan can check none is taken. */
export function conversionNames(table: DesiredTable, policy: DesiredPartitioning, range: KeyRange, now: Date): string[] {
  const starts = slotStarts(policy, range, now) ?? [];
  return [
    convertingName(table.name),
    unpartitionedName(table.name),
    ...starts.map((s) => partitionName(policy.naming, table.name, s)),
    ...(policy.defaultPartition ? [defaultPartitionName(table.name)] : []),
  ];
}

const TEMP_SUFFIX = '_pgwarden_new';

function keyList(columns: readonly string[]): string {
  return `(${columns.join(', ')})`;
}

/** Pure: the facts read from the catalog, the policy and the clock in; the change or the reasons it cannot be made out. */
export function diffConversion(input: ConversionInput): ConversionDiff {
  const { table, policy, facts, range } = input;
  const qualifiedName = `${facts.schema}.${facts.name}`;
  const errors: PolicyError[] = [];
  const warnings: Warning[] = [];
  const address = `convert:${qualifiedName}`;
  const refuse = (message: string, hint?: string): void => {
    errors.push({ ...policy.source, message: `partitioning: cannot convert ${qualifiedName} online: ${message}`, ...(hint ? { hint } : {}) });
  };
  const key = policy.column;
  const pk = facts.keys.find((k) => k.type === 'p');
  if (pk === undefined) {
    refuse(
      'it has no primary key; the copy walks the table in primary-key order and the capture trigger applies each change to the new table by that key',
      `add one that includes ${key}, e.g. ALTER TABLE ${qualifiedName} ADD PRIMARY KEY (id, ${key}) (a replica identity alone does not help: pgwarden captures changes with a trigger, not logical decoding)`,
    );
  } else if (!pk.columns.includes(key)) {
    refuse(
      `its primary key ${pk.name} ${keyList(pk.columns)} does not include the partition key ${key}; PostgreSQL requires every primary key and unique constraint of a partitioned table to include it`,
      `the key would have to be ${keyList([...pk.columns, key])}: change it first (ALTER TABLE ... DROP CONSTRAINT ${pk.name}, ADD PRIMARY KEY ${keyList([...pk.columns, key])}), then plan again`,
    );
  }
  for (const u of facts.keys.filter((k) => k.type === 'u' && !k.columns.includes(key))) {
    refuse(
      `its unique constraint ${u.name} ${keyList(u.columns)} does not include the partition key ${key}; a partitioned table cannot enforce it`,
      `it would have to be ${keyList([...u.columns, key])}, which is a weaker guarantee: decide that first, then plan again`,
    );
  }
  for (const x of facts.keys.filter((k) => k.type === 'x')) refuse(`its exclusion constraint ${x.name} cannot be carried over to a partitioned table`);
  if (facts.foreignKeysIn.length > 0 && input.serverVersion < 120000) {
    const keys = facts.foreignKeysIn.map((f) => `${f.name} on ${f.schema}.${f.table}`).join(', ');
    refuse(`foreign keys reference it (${keys}), and PostgreSQL before 12 cannot point a foreign key at a partitioned table`, 'upgrade PostgreSQL, or drop those keys first');
  } else {
    for (const f of facts.foreignKeysIn) {
      const on = `foreign key ${f.name} on ${f.schema}.${f.table} references ${keyList(f.referencedColumns)}`;
      if (!f.referencedColumns.includes(key)) {
        // A foreign key needs a unique constraint on exactly its referenced columns; the partitioned
        // table's keys all include the partition key, so there is none to point it at.
        refuse(
          `${on}, which the partitioned table cannot keep unique: every primary key and unique constraint of a partitioned table must include the partition key ${key}, and PostgreSQL points a foreign key only at one of them`,
          `the referencing rows would have to carry ${key} too and reference ${keyList([...f.referencedColumns, key])}; or drop ${f.name} first (ALTER TABLE ${f.schema}.${f.table} DROP CONSTRAINT ${f.name})`,
        );
      } else if (f.schema === facts.schema && f.table === facts.name) {
        refuse(`${on} from the table itself; the new table would have to carry it during the copy, which pgwarden does not do`, `drop it (ALTER TABLE ${qualifiedName} DROP CONSTRAINT ${f.name}), convert, then add it again`);
      }
    }
  }
  const role = facts.applyingRole;
  if (!facts.ownerPrivileges) {
    refuse(
      `the role applying (${role}) is neither its owner ${facts.owner} nor a member of that role; the conversion puts a trigger on it and the swap renames it, which only its owner may`,
      `apply as ${facts.owner}, or make ${role} a member: GRANT ${facts.owner} TO ${role}`,
    );
  }
  for (const col of facts.columns.filter((c) => c.sequence !== null && c.identity === '' && c.sequenceOwner !== null && c.sequenceOwner !== role)) {
    // process_owned_by(): "sequence must have same owner as table it is linked to"; the new table is the applying role's.
    refuse(
      `its column ${col.name} takes values from ${col.sequence}, owned by ${col.sequenceOwner}; the swap links that sequence to the new table (ALTER SEQUENCE ... OWNED BY), which PostgreSQL allows only when both have the same owner, and the new table will be owned by ${role}, the role applying`,
      // A linked sequence has its table's owner and follows it: ALTER SEQUENCE ... OWNER TO is refused.
      `apply as ${col.sequenceOwner}, or give the table to ${role} first (its sequences follow): ALTER TABLE ${qualifiedName} OWNER TO ${role}`,
    );
  }
  if (range.nullKeys > 0 && !policy.defaultPartition) {
    refuse(
      `${range.nullKeys.toLocaleString('en-US')} row(s) have a NULL ${key}, and only a default partition takes NULL keys`,
      'set default_partition: true, or give those rows a value first',
    );
  }
  const infinite = [range.minMs, range.maxMs].some((ms) => ms !== null && !Number.isFinite(ms));
  if (infinite && !policy.defaultPartition) refuse(`some rows have an infinite ${key}, which only a default partition takes`, 'set default_partition: true');
  if (facts.rules.length > 0) refuse(`it has rules (${facts.rules.join(', ')}), which a partitioned table does not support`, 'drop them (a trigger does what a rule does)');
  if (facts.inheritanceChildren.length > 0) refuse(`tables inherit from it (${facts.inheritanceChildren.join(', ')}); their rows would not be copied`, 'detach them (ALTER TABLE ... NO INHERIT) first');
  if (facts.inheritanceParents.length > 0) refuse(`it inherits from ${facts.inheritanceParents.join(', ')}; a partitioned table cannot`, 'ALTER TABLE ... NO INHERIT first');
  if (facts.userTriggers.length > 0) {
    refuse(`it has triggers (${facts.userTriggers.join(', ')}) that the new table would not have`, 'drop them, convert, and create them on the new table');
  }
  if (facts.noInheritChecks.length > 0) refuse(`its CHECK constraints ${facts.noInheritChecks.join(', ')} are NO INHERIT, which a partitioned table refuses`);
  const mviews = facts.views.filter((v) => v.kind === 'm');
  if (mviews.length > 0) {
    refuse(`materialized views read it (${mviews.map((v) => `${v.schema}.${v.name}`).join(', ')}) and would keep reading the old table`, 'drop them, convert, then create them again');
  }
  if (facts.columns.some((c) => c.identity !== '') && input.serverVersion < 170000) {
    const col = facts.columns.find((c) => c.identity !== '')!;
    refuse(
      `its column ${col.name} is an identity column; before PostgreSQL 17 a partitioned table's identity column is not shared with its partitions`,
      `make it a plain sequence default first (ALTER TABLE ... ALTER COLUMN ${col.name} DROP IDENTITY, then a DEFAULT nextval(...)), or upgrade`,
    );
  }
  const starts = slotStarts(policy, range, input.now);
  if (starts === null) {
    refuse(`the key ${key} spans more than ${MAX_NEW_PARTITIONS} ${policy.interval}s`, 'use a longer interval, or move the outlying rows first');
  }
  // The new table and its partitions, while a resumable conversion of ours stands, are ours to keep.
  const resumable = facts.record !== null && facts.record.phase === 'copying' && facts.record.relid === facts.oid && facts.newTableExists && facts.captureTriggerExists;
  const partitionNames = new Set((starts ?? []).map((s) => partitionName(policy.naming, table.name, s)));
  const newName = convertingName(facts.name);
  const taken = input.taken.filter((n) => !(n === newName && facts.record !== null) && !(partitionNames.has(n) && resumable) && !(policy.defaultPartition && n === defaultPartitionName(facts.name) && resumable));
  if (taken.length > 0) refuse(`${taken.map((n) => `${facts.schema}.${n}`).join(', ')} already exist${taken.length === 1 ? 's' : ''}, and the conversion would create ${taken.length === 1 ? 'it' : 'them'}`, 'rename or drop them first');
  if (errors.length > 0 || pk === undefined || starts === null) return { change: null, warnings, errors };

  for (const name of facts.plainIndexes) {
    if (!table.indexes.some((i) => i.name === name)) {
      warnings.push({ address, source: table.source, message: `index ${name} on ${qualifiedName} is not declared in the policy and is not carried over to the partitioned table (it stays on the old table)` });
    }
  }
  if (facts.ownerPrivileges && facts.owner !== role) {
    warnings.push({
      address,
      source: policy.source,
      message: `${qualifiedName} is owned by ${facts.owner}; the partitioned table that replaces it will be owned by ${role}, the role applying, and ${facts.owner} gets no privilege on it (grants to other roles are carried over): apply as ${facts.owner}, or ALTER TABLE ${qualifiedName} OWNER TO ${facts.owner} after the swap`,
    });
  }
  if (facts.publications.length > 0) {
    warnings.push({ address, source: policy.source, message: `${qualifiedName} is in publication(s) ${facts.publications.join(', ')}; after the swap add the new table to them (ALTER PUBLICATION ... ADD TABLE)` });
  }
  if (policy.retention) {
    const cutoff = subtractIntervals(input.now, policy.interval, policy.retention.keep).getTime();
    const expired = starts.filter((s) => addIntervals(s, policy.interval, 1).getTime() <= cutoff).length;
    if (expired > 0) {
      warnings.push({ address, source: policy.retention.source, message: `${expired} of the new partitions of ${qualifiedName} are older than retention keeps (${policy.retention.keep} ${policy.interval}s); once converted, the next plan ${policy.retention.then === 'drop' ? 'drops' : 'detaches'} them` });
    }
  }

  const uniqueKeys = facts.keys.filter((k) => k.type === 'u');
  // Names the new table takes at the swap: the old table's key constraints and the declared indexes.
  const finalNames = [pk.name, ...uniqueKeys.map((u) => u.name), ...table.indexes.map((i) => i.name)];
  const oldHolds = new Set([...facts.keys.map((k) => k.name), ...facts.plainIndexes]);
  const oldRenames = finalNames.filter((n) => oldHolds.has(n)).map((n) => ({ from: n, to: cut(n, '_unpartitioned') }));
  const newRenames = [pk, ...uniqueKeys].map((k) => ({ from: cut(k.name, TEMP_SUFFIX), to: k.name }));
  const indexes = table.indexes.map((index) => ({ index, temporaryName: cut(index.name, TEMP_SUFFIX) }));
  const rate = range.sampleRowsPerSecond;
  const resume = resumable && facts.record ? { watermark: facts.record.watermark, rowsCopied: facts.record.rowsCopied } : null;
  const cleanup = !resumable && (facts.record?.phase === 'copying' || facts.captureTriggerExists || input.taken.includes(newName));
  const rows = range.rows;
  const reason = resume
    ? `an earlier apply began converting ${qualifiedName} and was interrupted after ${resume.rowsCopied.toLocaleString('en-US')} of ~${rows.toLocaleString('en-US')} rows; the copy resumes after the last batch it committed`
    : `the policy partitions ${qualifiedName} by ${policy.interval} on ${key}, and it is a plain table: it is converted online (new partitioned table, change capture, batched copy, verification, swap)${cleanup ? '; the leftovers of an earlier attempt that cannot be resumed are dropped first' : ''}`;
  return {
    change: {
      kind: 'convert-table',
      address,
      table: { schema: facts.schema, name: facts.name, partitioned: false, bytes: facts.bytes, rowEstimate: rows, partitions: [] },
      reason,
      source: policy.source,
      oid: facts.oid,
      newName,
      oldName: unpartitionedName(facts.name),
      captureFunction: captureFunctionName(facts.oid),
      keyColumn: key,
      keyType: input.keyType,
      interval: policy.interval,
      columns: facts.columns,
      primaryKey: pk,
      uniqueKeys,
      foreignKeys: facts.foreignKeysOut,
      // Those that can follow (the others were refused above): re-pointed in the swap, validated after.
      referencingKeys: facts.foreignKeysIn,
      partitions: starts.map((s) => ({
        name: partitionName(policy.naming, table.name, s),
        from: boundLiteral(s, input.keyType),
        to: boundLiteral(addIntervals(s, policy.interval, 1), input.keyType),
      })),
      defaultPartition: policy.defaultPartition ? defaultPartitionName(facts.name) : null,
      indexes,
      newRenames: [...newRenames, ...indexes.map((i) => ({ from: i.temporaryName, to: i.index.name }))],
      oldRenames,
      views: facts.views.filter((v) => v.kind === 'v'),
      grants: facts.grants,
      storageParameters: input.storageParameters,
      rows,
      bytes: facts.bytes,
      estimateSeconds: rate !== null && rate > 0 ? rows / rate : null,
      sampleRowsPerSecond: rate,
      resume,
      cleanup,
      maxLagMs: input.maxLagMs,
    },
    warnings,
    errors,
  };
}

/** The old table a finished conversion kept: dropped by `apply --allow-drop`. */
export function dropUnpartitioned(kept: { schema: string; table: string; oldName: string; rowEstimate: number; bytes: number }, source?: SourcePos): DropUnpartitioned {
  return {
    kind: 'drop-unpartitioned',
    address: `convert:${kept.schema}.${kept.table}.${kept.oldName}`,
    table: { schema: kept.schema, name: kept.oldName, partitioned: false, bytes: kept.bytes, rowEstimate: Math.max(0, kept.rowEstimate), partitions: [] },
    reason: `the conversion of ${kept.schema}.${kept.table} kept the table as it was before, renamed, no longer written; it is dropped once you allow it`,
    ...(source ? { source } : {}),
    schema: kept.schema,
    name: kept.oldName,
    destructive: true,
  };
}
