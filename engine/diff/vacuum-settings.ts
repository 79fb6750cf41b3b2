import type { ActualTable, Catalog } from '../catalog/catalog.ts';
import type { DesiredState, DesiredTable } from '../policy/desired.ts';
import type { DesiredStorageSetting, DesiredVacuum } from '../policy/vacuum-policy.ts';
import { MANAGED_RELOPTIONS, parameterSpec } from '../policy/vacuum-schema.ts';
import type { TableRef, Warning } from './change.ts';
import { storageAddress, type RelationStorageChange, type SetStorageParameters, type StorageSettingChange } from './set-storage-parameters.ts';

/**
 * The storage parameters a table's policy gives it, as `CREATE TABLE ... WITH (...)` takes them:
 * the partition policy creates new partitions with these, so a partition is born with the settings
 * and the next plan has nothing to do for it.
 *
 * @example storageParametersFor(table) // { autovacuum_vacuum_scale_factor: '0.02', 'toast.autovacuum_enabled': 'false' }
 */
export function storageParametersFor(table: DesiredTable): Record<string, string> {
  return Object.fromEntries((table.vacuum?.settings ?? []).map((s) => [s.parameter, s.value]));
}

/** `a=b` entries of pg_class.reloptions, the managed ones only, with `prefix` (`toast.`) added. */
export function parseReloptions(options: readonly string[] | null, prefix = ''): Map<string, string> {
  const found = new Map<string, string>();
  for (const option of options ?? []) {
    const eq = option.indexOf('=');
    if (eq < 0) continue;
    const name = `${prefix}${option.slice(0, eq)}`;
    if (MANAGED_RELOPTIONS.has(name)) found.set(name, option.slice(eq + 1));
  }
  return found;
}

/**
 * Equality is PostgreSQL's: reloptions keep the text as it was written (`0.020`, `on`, `1.5` for an
 * integer), so values are compared as PostgreSQL parses them, never as strings.
 */
export function sameSettingValue(parameter: string, a: string, b: string): boolean {
  const spec = parameterSpec(parameter);
  switch (spec?.type) {
    case 'boolean':
      return parseBool(a) !== undefined && parseBool(a) === parseBool(b);
    case 'integer':
      return roundHalfEven(Number(a)) === roundHalfEven(Number(b));
    case 'real':
      return Number(a) === Number(b);
    case 'enum':
      return indexCleanup(a) === indexCleanup(b);
    default:
      return a === b;
  }
}

/** PostgreSQL's parse_bool: any unambiguous prefix of true/false/yes/no, on/off, 1/0; any case. */
function parseBool(text: string): boolean | undefined {
  const value = text.trim().toLowerCase();
  if (value === '') return undefined;
  if ('true'.startsWith(value) || 'yes'.startsWith(value) || value === '1') return true;
  if ('false'.startsWith(value) || 'no'.startsWith(value) || value === '0') return false;
  if (value === 'on') return true;
  if (value === 'off' || value === 'of') return false;
  return undefined;
}

/** vacuum_index_cleanup (PostgreSQL 14+): auto, or a boolean spelling of on/off. */
function indexCleanup(text: string): string {
  if (text.trim().toLowerCase() === 'auto') return 'auto';
  const b = parseBool(text);
  return b === undefined ? text : b ? 'on' : 'off';
}

/** parse_int rounds a fractional integer option with rint(): halves go to the even neighbour. */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

export interface StorageDiff {
  readonly changes: readonly SetStorageParameters[];
  readonly warnings: readonly Warning[];
}

/** What pgwarden recorded as managed, by `schema\0table`. */
export type ManagedSettings = ReadonlyMap<string, ReadonlySet<string>>;

const key = (schema: string, name: string): string => `${schema}\u0000${name}`;

interface Governed {
  readonly table: ActualTable;
  /** The policy naming the table, if one does. */
  readonly policy?: DesiredTable;
  readonly vacuum?: DesiredVacuum;
}

/**
 * From (desired, actual) to the storage-parameter changes. Pure.
 *
 * Which parameters pgwarden may change on a table: the ones its vacuum policy declares (SET); the ones
 * it set before and the policy no longer declares (RESET, from `pgwarden.managed_setting`); and on a
 * `managed: full` table with a vacuum policy, any autovacuum parameter not declared (RESET). Anything
 * else someone set by hand is reported and left alone. The `defaults:` document governs every table no
 * policy gives its own vacuum settings, named or not.
 */
export function diffStorageParameters(desired: DesiredState, catalog: Catalog, managed: ManagedSettings): StorageDiff {
  const named = new Map(desired.tables.map((t) => [key(t.schema, t.name), t]));
  const childrenOf = new Map<number, ActualTable[]>();
  for (const t of catalog.tables) {
    if (t.parentOid !== null) childrenOf.set(t.parentOid, [...(childrenOf.get(t.parentOid) ?? []), t]);
  }
  const changes: SetStorageParameters[] = [];
  const warnings: Warning[] = [];
  for (const table of catalog.tables) {
    const policy = named.get(key(table.schema, table.name));
    if (table.parentOid !== null) {
      // A partition follows its partitioned table; its own vacuum block would fight the parent's.
      if (policy?.vacuum !== undefined && policy.vacuum !== desired.vacuumDefaults) {
        warnings.push({
          address: storageAddress(table.schema, table.name),
          source: policy.vacuum.source,
          message: `${table.schema}.${table.name} is a partition: it takes the vacuum settings of its partitioned table, so these are ignored`,
        });
      }
      continue;
    }
    const vacuum = policy === undefined ? desired.vacuumDefaults : policy.vacuum;
    const governed: Governed = { table, ...(policy === undefined ? {} : { policy }), ...(vacuum === undefined ? {} : { vacuum }) };
    const result = diffTable(governed, leavesOf(table, childrenOf), managed.get(key(table.schema, table.name)) ?? new Set(), childrenOf);
    if (result.change) changes.push(result.change);
    warnings.push(...result.warnings);
  }
  return { changes, warnings };
}

/** The relations that hold storage parameters: the table itself, or every leaf partition under it. */
function leavesOf(table: ActualTable, childrenOf: ReadonlyMap<number, readonly ActualTable[]>): ActualTable[] {
  if (table.kind !== 'partitioned') return [table];
  return (childrenOf.get(table.oid) ?? []).flatMap((child) => leavesOf(child, childrenOf));
}

function diffTable(
  { table, policy, vacuum }: Governed,
  leaves: readonly ActualTable[],
  recorded: ReadonlySet<string>,
  childrenOf: ReadonlyMap<number, readonly ActualTable[]>,
): { change?: SetStorageParameters; warnings: Warning[] } {
  const declared = new Map<string, DesiredStorageSetting>((vacuum?.settings ?? []).map((s) => [s.parameter, s]));
  if (declared.size === 0 && recorded.size === 0 && !(policy?.managed === 'full' && vacuum !== undefined)) return { warnings: [] };
  // `managed: full` makes the vacuum policy the whole truth about the table's autovacuum parameters.
  const owns = (parameter: string): boolean => recorded.has(parameter) || (policy?.managed === 'full' && vacuum !== undefined);
  const address = storageAddress(table.schema, table.name);
  const warnings: Warning[] = [];
  const relations: RelationStorageChange[] = [];
  const summary = new Map<string, StorageSettingChange>();
  const unowned = new Map<string, string>();
  const noToast: string[] = [];

  for (const leaf of leaves) {
    const actual = new Map([...parseReloptions(leaf.reloptions), ...parseReloptions(leaf.toastReloptions, 'toast.')]);
    const set: { parameter: string; value: string }[] = [];
    const reset: string[] = [];
    for (const setting of declared.values()) {
      // PostgreSQL accepts toast.* on a table without a TOAST table and silently keeps nothing.
      if (setting.parameter.startsWith('toast.') && leaf.toastReloptions === null) {
        noToast.push(`${leaf.schema}.${leaf.name}`);
        continue;
      }
      const current = actual.get(setting.parameter);
      if (current !== undefined && sameSettingValue(setting.parameter, current, setting.value)) continue;
      set.push({ parameter: setting.parameter, value: setting.value });
      if (!summary.has(setting.parameter)) summary.set(setting.parameter, { parameter: setting.parameter, before: current ?? null, after: setting.value });
    }
    for (const [parameter, value] of actual) {
      if (declared.has(parameter)) continue;
      if (!owns(parameter)) {
        unowned.set(parameter, value);
        continue;
      }
      reset.push(parameter);
      if (!summary.has(parameter)) summary.set(parameter, { parameter, before: value, after: null });
    }
    if (set.length > 0 || reset.length > 0) relations.push({ schema: leaf.schema, name: leaf.name, set, reset });
  }

  // Warnings are for tables a policy names; a defaults document covering thousands of tables stays quiet.
  if (policy !== undefined && vacuum !== undefined) {
    if (unowned.size > 0) {
      const list = [...unowned].map(([p, v]) => `${p}=${v}`).join(', ');
      warnings.push({
        address,
        source: vacuum.source,
        message: `${table.schema}.${table.name} has ${list}, which its vacuum policy does not declare; pgwarden leaves it alone (declare it, or set managed: full to have it reset)`,
      });
    }
    if (noToast.length > 0) {
      const where = table.kind === 'partitioned' ? `${noToast.length} of its partitions have` : 'it has';
      warnings.push({
        address,
        source: vacuum.source,
        message: `toast.* settings of ${table.schema}.${table.name} have nothing to apply to: ${where} no TOAST table (no column that can be stored out of line)`,
      });
    }
  }

  const nextManaged = [...declared.keys()].sort();
  const registryMoves = !sameSet(recorded, nextManaged);
  if (relations.length === 0 && !registryMoves) return { warnings };
  return {
    warnings,
    change: {
      kind: 'set-storage-parameters',
      address,
      table: tableRef(table, leaves, childrenOf),
      reason: reasonFor([...summary.values()], relations.length === 0),
      ...(firstSource(summary, declared, vacuum)),
      settings: [...summary.values()],
      relations,
      managed: nextManaged,
      previouslyManaged: [...recorded].sort(),
    },
  };
}

function firstSource(
  summary: ReadonlyMap<string, StorageSettingChange>,
  declared: ReadonlyMap<string, DesiredStorageSetting>,
  vacuum: DesiredVacuum | undefined,
): { source?: DesiredStorageSetting['source'] } {
  for (const parameter of summary.keys()) {
    const setting = declared.get(parameter);
    if (setting) return { source: setting.source };
  }
  return vacuum ? { source: vacuum.source } : {};
}

function reasonFor(settings: readonly StorageSettingChange[], registryOnly: boolean): string {
  if (registryOnly) return 'the table already has these settings; pgwarden records them as managed so that removing one from the policy resets it';
  const sets = settings.filter((s) => s.after !== null).length;
  const resets = settings.length - sets;
  const parts = [
    sets > 0 ? 'the vacuum policy declares settings the table does not have' : '',
    resets > 0 ? 'settings pgwarden manages are no longer declared' : '',
  ].filter((p) => p !== '');
  return parts.join('; ');
}

function sameSet(a: ReadonlySet<string>, b: readonly string[]): boolean {
  return a.size === b.length && b.every((x) => a.has(x));
}

function tableRef(table: ActualTable, leaves: readonly ActualTable[], childrenOf: ReadonlyMap<number, readonly ActualTable[]>): TableRef {
  const partitioned = table.kind === 'partitioned';
  return {
    schema: table.schema,
    name: table.name,
    partitioned,
    bytes: partitioned ? leaves.reduce((sum, l) => sum + l.bytes, 0) : table.bytes,
    rowEstimate: partitioned ? leaves.reduce((sum, l) => sum + Math.max(0, l.rowEstimate), 0) : table.rowEstimate,
    partitions: (childrenOf.get(table.oid) ?? []).map((p) => ({ schema: p.schema, name: p.name, partitioned: p.kind === 'partitioned' })),
  };
}
