import type { ConvertChange, ConvertTable } from '../diff/convert-change.ts';
import type { PlannedChange } from '../plan/plan.ts';

function bytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function duration(seconds: number): string {
  if (seconds < 1) return 'under a second';
  if (seconds < 90) return `~${Math.round(seconds)} s`;
  if (seconds < 5400) return `~${Math.round(seconds / 60)} min`;
  return `~${(seconds / 3600).toFixed(1)} h`;
}

export function describeConvertChange(c: ConvertChange): string {
  if (c.kind === 'drop-unpartitioned') return `drop ${c.schema}.${c.name}, the table ${c.schema}.${c.name.replace(/_unpartitioned$/u, '')} was before its conversion`;
  const verb = c.resume ? 'resume converting' : 'convert';
  const parts = c.partitions.length + (c.defaultPartition ? 1 : 0);
  return `${verb} ${c.table.schema}.${c.table.name} into a table partitioned by ${c.interval} on ${c.keyColumn} (${parts} partitions), online`;
}

/** What a reviewer needs to see before a conversion: what is built, what is copied, how long, which locks. */
export function convertDetailLines(planned: PlannedChange): string[] {
  const c = planned.change;
  if (c.kind !== 'convert-table') return [];
  return detail(c);
}

function detail(c: ConvertTable): string[] {
  const first = c.partitions[0];
  const last = c.partitions[c.partitions.length - 1];
  const columns = c.columns.map((col) => `${col.name} ${col.type}${col.notNull ? ' not null' : ''}${col.sequence ? ` (sequence ${col.sequence}${col.identity ? ', identity' : ''})` : ''}${col.generated ? ' (generated)' : ''}`);
  const lines = [
    `new:   ${c.table.schema}.${c.newName}, PARTITION BY RANGE (${c.keyColumn}); renamed ${c.table.name} at the swap`,
    `       columns: ${columns.join(', ')} (defaults, NOT NULL and CHECK constraints as they are)`,
    `       keys: ${[c.primaryKey, ...c.uniqueKeys].map((k) => `${k.name} ${k.definition}`).join(', ')}${c.foreignKeys.length > 0 ? `; foreign keys: ${c.foreignKeys.map((f) => f.name).join(', ')}` : ''}`,
    `       partitions: ${first ? `${first.name} [${first.from}) … ${last!.name} [${last!.to}) (${c.partitions.length}: every row's key from the smallest to the largest, plus premake)` : 'none'}${c.defaultPartition ? ` + ${c.defaultPartition} (default)` : ''}`,
    `       indexes: ${c.indexes.length > 0 ? c.indexes.map((i) => i.index.name).join(', ') : 'none declared'}${c.views.length > 0 ? `; views re-pointed at the swap: ${c.views.map((v) => `${v.schema}.${v.name}`).join(', ')}` : ''}`,
    `copy:  ${c.rows.toLocaleString('en-US')} rows, ${bytes(c.bytes)} (the table with its indexes; the new one takes as much again until the old is dropped)${c.resume ? `; ${c.resume.rowsCopied.toLocaleString('en-US')} copied already, resuming after the last committed batch` : ''}`,
    `       estimate: ${c.estimateSeconds === null ? (c.rows === 0 ? 'nothing to copy' : 'none (the timed sample could not run: no TEMP privilege?)') : `${duration(c.estimateSeconds)} at ${Math.round(c.sampleRowsPerSecond ?? 0).toLocaleString('en-US')} rows/s (a timed sample into a table with the same key; the real copy also routes rows, maintains the declared indexes and writes WAL, so expect more)`}`,
    `       key-ordered batches of ~150 ms, each its own transaction (rows locked FOR SHARE while their batch runs)${c.maxLagMs !== null ? `; paused while a standby lags more than ${c.maxLagMs} ms (routing max_lag_ms)` : ''}`,
    `capture: a row trigger on ${c.table.name} applies every INSERT, UPDATE and DELETE to the new table in the writer's transaction, until the swap`,
    `locks: SHARE ROW EXCLUSIVE on ${c.table.schema}.${c.table.name} for a moment to create the trigger; ACCESS EXCLUSIVE on both tables at the swap (renames only, milliseconds), each under lock_timeout with retries`,
    `verify: rows and a checksum per partition range, both tables in one snapshot, before the swap`,
    `keeps: ${c.table.schema}.${c.oldName}, the old table, until apply --allow-drop`,
  ];
  if (c.referencingKeys.length > 0) {
    const keys = c.referencingKeys.map((f) => `${f.name} on ${f.schema}.${f.table}`).join(', ');
    lines.push(`re-points: ${keys} at the new table in the swap (NOT VALID, ACCESS EXCLUSIVE on the referencing table for that moment), then VALIDATE CONSTRAINT (writes go on)`);
  }
  if (c.cleanup) lines.push('first:  drops the leftovers of an earlier attempt that cannot be resumed');
  return lines;
}
