import type { ActualConversions } from '../catalog/read-conversions.ts';
import type { DesiredState, DesiredTable, PolicyError } from '../policy/desired.ts';
import type { Warning } from './change.ts';
import { diffConversion, dropUnpartitioned, type ConvertChange } from './convert-change.ts';
import { timeKeyType } from './partition-interval.ts';

export interface ConversionsDiff {
  readonly changes: readonly ConvertChange[];
  readonly warnings: readonly Warning[];
  readonly errors: readonly PolicyError[];
  /** `schema\u0000table` of the tables being converted: their declared indexes come with the conversion. */
  readonly converting: ReadonlySet<string>;
}

/** Pure: every plain table a policy partitions gets a convert change or the reasons it cannot; kept old tables a drop. */
export function diffConversions(
  desired: DesiredState,
  actual: ActualConversions,
  now: Date,
  storageParametersFor: (table: DesiredTable) => Record<string, string>,
): ConversionsDiff {
  const changes: ConvertChange[] = [];
  const warnings: Warning[] = [];
  const errors: PolicyError[] = [];
  const converting = new Set<string>();
  const policyOf = (schema: string, name: string): DesiredTable | undefined => desired.tables.find((t) => t.schema === schema && t.name === name && t.partitioning);
  for (const kept of actual.kept) changes.push(dropUnpartitioned(kept, policyOf(kept.schema, kept.table)?.partitioning?.source));
  for (const { facts, range, taken } of actual.plain) {
    const table = policyOf(facts.schema, facts.name);
    const policy = table?.partitioning;
    const keyType = timeKeyType(facts.columns.find((c) => c.name === policy?.column)?.type);
    if (table === undefined || policy === undefined || keyType === null) continue;
    const result = diffConversion({
      table,
      policy,
      facts,
      keyType,
      range,
      taken,
      now,
      serverVersion: actual.serverVersion,
      maxLagMs: desired.routing?.maxLagMs ?? null,
      storageParameters: storageParametersFor(table),
    });
    warnings.push(...result.warnings);
    errors.push(...result.errors);
    if (result.change) {
      changes.push(result.change);
      converting.add(`${facts.schema}\u0000${facts.name}`);
    }
  }
  return { changes, warnings, errors, converting };
}
