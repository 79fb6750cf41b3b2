import { createHash } from 'node:crypto';
import type { Catalog } from '../catalog/catalog.ts';
import { signatureKey } from '../catalog/catalog.ts';
import type { Change, ChangeKind, Warning } from '../diff/change.ts';
import type { RoutingReport } from '../diff/routing-change.ts';
import type { DesiredState } from '../policy/desired.ts';
import { stepsFor, type LockInfo, type Step } from './step.ts';

export const PLAN_FORMAT_VERSION = 1;

export type Glyph = '+' | '~' | '±' | '-';

export interface PlannedChange {
  readonly change: Change;
  readonly glyph: Glyph;
  /** The strongest lock any step takes. */
  readonly lock: LockInfo;
  readonly online: boolean;
  /** Removes something users may rely on: applied only with --allow-drop. */
  readonly destructive: boolean;
  readonly steps: readonly Step[];
}

/**
 * A plan is a value: computed once, printed, saved, applied later. It carries the fingerprint of the
 * catalog it was computed from; `apply --plan` refuses it when the catalog has moved since.
 * `change.table` (sizes, row estimates) is display-only and never steers apply.
 */
export interface Plan {
  readonly formatVersion: typeof PLAN_FORMAT_VERSION;
  readonly createdAt: string;
  readonly database: string;
  readonly serverVersion: number;
  readonly fingerprint: string;
  readonly policyFiles: readonly string[];
  readonly changes: readonly PlannedChange[];
  readonly warnings: readonly Warning[];
  readonly summary: { readonly add: number; readonly change: number; readonly destroy: number };
  /** What plan found on each replica of the routing policy (display only). */
  readonly routing?: RoutingReport;
}

const GLYPHS: Record<ChangeKind, Glyph> = {
  'create-index': '+',
  'rename-index': '~',
  'adopt-index': '~',
  'rebuild-index': '±',
  'replace-index': '±',
  'drop-index': '-',
  'set-index-parameters': '~',
  'create-partition': '+',
  'detach-partition': '-',
  'finalize-detach': '-',
  'set-storage-parameters': '~',
  'create-heartbeat': '+',
  'set-replica-setting': '~',
  'reset-replica-setting': '-',
  'convert-table': '±',
  'drop-unpartitioned': '-',
};

const LOCK_RANK: Record<LockInfo['mode'], number> = { 'SHARE UPDATE EXCLUSIVE': 1, SHARE: 2, 'ACCESS EXCLUSIVE': 3 };

/**
 * The change's strongest lock. When several steps take it on different relations (each partition's index
 * as it is attached), the line names the first and counts the others, so it never reads as one lock.
 */
function strongestLock(steps: readonly Step[], fallback: string): LockInfo {
  const locks = steps.flatMap((s) => (s.kind === 'sql' || s.kind === 'convert' ? [s.lock] : []));
  const none: LockInfo = { mode: 'SHARE UPDATE EXCLUSIVE', on: fallback, online: true };
  const worst = locks.reduce((w, l) => (LOCK_RANK[l.mode] > LOCK_RANK[w.mode] ? l : w), locks[0] ?? none);
  const others = new Set(locks.filter((l) => l.mode === worst.mode && l.on !== worst.on).map((l) => l.on)).size;
  return others === 0 ? worst : { ...worst, on: `${worst.on}, and ${others} more like it, one at a time` };
}

export function planChange(change: Change): PlannedChange {
  const steps = stepsFor(change);
  const lock = strongestLock(steps, 'table' in change ? `${change.table.schema}.${change.table.name}` : change.address);
  return {
    change,
    glyph: GLYPHS[change.kind],
    lock,
    online: steps.every((s) => (s.kind !== 'sql' && s.kind !== 'convert') || s.lock.online),
    destructive: 'destructive' in change && change.destructive,
    steps,
  };
}

/**
 * What the plan depends on: for each table a policy names, its identity, partitions and indexes
 * (name, validity, signature) and pgwarden's registry entries. Unrelated tables moving does not stale a plan.
 */
export function catalogFingerprint(catalog: Catalog, desired: DesiredState): string {
  const named = new Set(desired.tables.map((t) => `${t.schema}\u0000${t.name}`));
  const tables = catalog.tables.filter((t) => named.has(`${t.schema}\u0000${t.name}`));
  const oids = new Set(tables.map((t) => t.oid));
  for (const t of catalog.tables) if (t.parentOid !== null && oids.has(t.parentOid)) oids.add(t.oid);
  // Rows become strings once and sort as strings: the default sort of arrays stringifies on every comparison.
  const rows = (items: readonly unknown[][]): string[] => items.map((row) => JSON.stringify(row)).sort();
  const state = {
    tables: rows(catalog.tables.filter((t) => oids.has(t.oid)).map((t) => [t.oid, t.schema, t.name, t.kind, t.parentOid])),
    indexes: rows(
      catalog.indexes
        .filter((i) => oids.has(i.tableOid))
        .map((i) => [i.tableOid, i.schema, i.name, i.valid, i.parentIndexOid, signatureKey(i.signature), ...(i.reloptions.length > 0 ? [i.reloptions] : [])]),
    ),
    managed: rows(catalog.managed.filter((m) => named.has(`${m.schema}\u0000${m.table}`)).map((m) => [m.schema, m.name, m.table])),
  };
  return createHash('sha256').update(JSON.stringify(state)).digest('hex');
}

export function buildPlan(input: {
  readonly changes: readonly Change[];
  readonly warnings: readonly Warning[];
  readonly catalog: Catalog;
  readonly desired: DesiredState;
  readonly now: Date;
}): Plan {
  const changes = input.changes.map(planChange);
  return {
    formatVersion: PLAN_FORMAT_VERSION,
    createdAt: input.now.toISOString(),
    database: input.catalog.database,
    serverVersion: input.catalog.serverVersion,
    fingerprint: catalogFingerprint(input.catalog, input.desired),
    policyFiles: input.desired.files,
    changes,
    warnings: input.warnings,
    summary: {
      add: changes.filter((c) => c.glyph === '+').length,
      change: changes.filter((c) => c.glyph === '~' || c.glyph === '±').length,
      destroy: changes.filter((c) => c.glyph === '-').length,
    },
  };
}
