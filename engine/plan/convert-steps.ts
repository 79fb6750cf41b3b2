import type { ConvertChange, ConvertTable } from '../diff/convert-change.ts';
import { batchBoundSql, cleanupSql, copyBatchSql, createSql, dropUnpartitionedSql, swapSql, validateSql, verifySql, analyzeSql } from '../sql/convert-ddl.ts';
import type { LockInfo, SqlStep } from './step.ts';

/**
 * The statements of an online conversion, carried by the plan so that what apply runs is what was
 * reviewed (a saved plan is compared statement for statement). The executor (engine/apply/convert/)
 * runs them in phases: cleanup (when an earlier attempt cannot be resumed), create (one transaction),
 * copy (a batch per short transaction), verify (one snapshot), swap (one transaction under
 * lock_timeout, retried), analyze.
 */
export interface ConvertStep {
  readonly kind: 'convert';
  readonly lock: LockInfo;
  readonly cleanup: readonly string[];
  readonly create: readonly string[];
  /** The batch's upper key, from the start or after a watermark. */
  readonly bound: { readonly first: string; readonly next: string };
  /** A batch by whether it has a lower and an upper key: `both`, `lowerOnly` (the last), `upperOnly` (the first), `all`. */
  readonly copy: { readonly both: string; readonly lowerOnly: string; readonly upperOnly: string; readonly all: string };
  readonly verify: { readonly old: string; readonly new: string };
  readonly swap: readonly string[];
  /** After the swap: VALIDATE the foreign keys it re-pointed. */
  readonly validate: readonly string[];
  readonly analyze: string;
}

/** The swap's lock: ACCESS EXCLUSIVE on the table, for the moment the renames take. */
function swapLock(c: ConvertTable): LockInfo {
  return { mode: 'ACCESS EXCLUSIVE', on: `${c.table.schema}.${c.table.name} (at the swap, renames only, under lock_timeout; the copy holds row locks on one batch at a time)`, online: false };
}

export function convertStep(c: ConvertTable): ConvertStep {
  return {
    kind: 'convert',
    lock: swapLock(c),
    cleanup: c.cleanup ? cleanupSql(c) : [],
    create: c.resume ? [] : createSql(c),
    bound: { first: batchBoundSql(c, true), next: batchBoundSql(c, false) },
    copy: { both: copyBatchSql(c, true, true), lowerOnly: copyBatchSql(c, true, false), upperOnly: copyBatchSql(c, false, true), all: copyBatchSql(c, false, false) },
    verify: { old: verifySql(c, 'old'), new: verifySql(c, 'new') },
    swap: swapSql(c),
    validate: validateSql(c),
    analyze: analyzeSql(c),
  };
}

export function convertSteps(change: ConvertChange): (ConvertStep | SqlStep)[] {
  if (change.kind === 'convert-table') return [convertStep(change)];
  return [
    {
      kind: 'sql',
      sql: dropUnpartitionedSql(change.schema, change.name),
      transactional: true,
      lock: { mode: 'ACCESS EXCLUSIVE', on: `${change.schema}.${change.name} (no longer used)`, online: true },
      build: false,
    },
  ];
}
