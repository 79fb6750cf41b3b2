import type { SetIndexParameters } from '../diff/set-index-parameters.ts';
import type { SetStorageParameters } from '../diff/set-storage-parameters.ts';
import { readReloptions } from '../policy/index-storage-parameters.ts';

/**
 * One line for a storage-parameter change:
 * `set autovacuum_vacuum_scale_factor (default) -> 0.02, reset autovacuum_enabled (was false) on public.deployments`.
 */
export function describeStorageChange(c: SetStorageParameters): string {
  const table = `${c.table.schema}.${c.table.name}`;
  const where = c.table.partitioned ? ` (${c.relations.length} of ${c.table.partitions.length} partitions)` : '';
  if (c.relations.length === 0) {
    const managed = c.managed.length > 0 ? c.managed.join(', ') : 'none';
    return `record the autovacuum settings pgwarden manages on ${table}: ${managed}`;
  }
  const sets = c.settings.filter((s) => s.after !== null).map((s) => `${s.parameter} ${s.before ?? '(default)'} -> ${s.after}`);
  const resets = c.settings.filter((s) => s.after === null).map((s) => `${s.parameter} (was ${s.before ?? '?'})`);
  const parts = [sets.length > 0 ? `set ${sets.join(', ')}` : '', resets.length > 0 ? `reset ${resets.join(', ')}` : ''].filter((p) => p !== '');
  return `${parts.join('; ')} on ${table}${where}`;
}

/** `set storage parameters of index events_gin on public.events: fastupdate on -> off, reset fillfactor (was 70)`. */
export function describeIndexParameters(c: SetIndexParameters): string {
  const before = readReloptions(c.before);
  const sets = Object.entries(c.set).map(([name, value]) => `${name} ${before.get(name) ?? '(default)'} -> ${value}`);
  const resets = c.reset.map((name) => `reset ${name} (was ${before.get(name) ?? '?'})`);
  return `set storage parameters of index ${c.index.name} on ${c.table.schema}.${c.table.name}: ${[...sets, ...resets].join(', ')}`;
}
