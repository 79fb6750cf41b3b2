import type { PartitionChange } from '../diff/partition-change.ts';
import { formatBytes } from './describe.ts';

/** "~1,234 rows, 12 MB": what leaves the table. reltuples is -1 for a table never vacuumed or analyzed. */
export function leaving(rows: number, size: number): string {
  const count = rows < 0 ? 'rows not yet counted (never analyzed)' : `~${Math.round(rows).toLocaleString('en-US')} rows`;
  return `${count}, ${formatBytes(size)}`;
}

/** One line saying what a partition change does. */
export function describePartitionChange(c: PartitionChange): string {
  const table = `${c.parent.schema}.${c.parent.name}`;
  switch (c.kind) {
    case 'create-partition':
      if (c.bound.kind === 'default') return `create default partition ${c.partition.name} of ${table}`;
      return `create partition ${c.partition.name} of ${table} for [${c.bound.from}, ${c.bound.to})${c.move ? `, moving ${c.move.rows.toLocaleString('en-US')} row(s) out of ${c.move.defaultPartition.name}` : ''}`;
    case 'detach-partition':
      return `${c.drop ? 'detach and drop' : 'detach'} partition ${c.partition.name} of ${table}${c.concurrently ? ' (concurrently)' : ''}: ${leaving(c.rows, c.bytes)} leave the table`;
    case 'finalize-detach':
      return `finish the interrupted detach of ${c.partition.name} from ${table}${c.drop ? `, then drop it (${leaving(c.rows, c.bytes)})` : ''}`;
  }
}
