import type { PlannedChange } from '../plan/plan.ts';
import { describePartitionChange } from './describe-partition.ts';
import { describeIndexParameters, describeStorageChange } from './describe-storage.ts';
import { describeConvertChange } from './describe-convert.ts';
import { describeRoutingChange } from './describe-routing.ts';
import { isRoutingChange } from '../diff/routing-change.ts';

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** One line saying what a change does, shared by every renderer. */
export function describeChange(planned: PlannedChange): string {
  const c = planned.change;
  if (isRoutingChange(c)) return describeRoutingChange(c);
  const table = `${c.table.schema}.${c.table.name}`;
  switch (c.kind) {
    case 'create-index':
      return `create index ${c.index.name} on ${table}${c.table.partitioned ? ` (${c.table.partitions.length} partitions)` : ''}`;
    case 'rebuild-index':
      return `rebuild INVALID index ${c.index.name} on ${table}`;
    case 'replace-index':
      return `replace index ${c.index.name} on ${table} (new definition built first, then the old one dropped)`;
    case 'rename-index':
      return `rename index ${c.actual.name} to ${c.index.name} on ${table}`;
    case 'adopt-index':
      return `manage existing index ${c.index.name} on ${table}`;
    case 'drop-index':
      return `drop index ${c.actual.name} on ${table}`;
    case 'create-partition':
    case 'detach-partition':
    case 'finalize-detach':
      return describePartitionChange(c);
    case 'set-storage-parameters':
      return describeStorageChange(c);
    case 'set-index-parameters':
      return describeIndexParameters(c);
    case 'convert-table':
    case 'drop-unpartitioned':
      return describeConvertChange(c);
  }
}
