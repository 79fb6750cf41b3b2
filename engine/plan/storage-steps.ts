import type { SetStorageParameters } from '../diff/set-storage-parameters.ts';
import { alterStorageParametersSql } from '../sql/ddl.ts';
import type { SqlStep } from './step.ts';

/**
 * Bookkeeping of which storage parameters pgwarden manages on a table (`pgwarden.managed_setting`):
 * `add` records parameters before they are set, so an interrupted apply still knows them as its own;
 * `replace` makes the record exactly the policy's parameters once the statements ran.
 */
export interface SettingRegistryStep {
  readonly kind: 'setting-registry';
  readonly action: 'add' | 'replace';
  readonly schema: string;
  readonly table: string;
  readonly parameters: readonly string[];
}

/**
 * One `ALTER TABLE ... SET (...), RESET (...)` per relation. Autovacuum and TOAST storage parameters
 * take SHARE UPDATE EXCLUSIVE (PostgreSQL 11+): reads and writes go on; it waits only for VACUUM,
 * ANALYZE, CREATE INDEX CONCURRENTLY and other DDL on the table (an autovacuum worker in its way is
 * cancelled after deadlock_timeout), under lock_timeout like every pgwarden statement.
 */
export function storageSteps(change: SetStorageParameters): (SqlStep | SettingRegistryStep)[] {
  const { schema, name } = change.table;
  const adding = change.managed.filter((p) => !change.previouslyManaged.includes(p));
  const statements = change.relations.map(
    (relation): SqlStep => ({
      kind: 'sql',
      sql: alterStorageParametersSql(relation.schema, relation.name, Object.fromEntries(relation.set.map((s) => [s.parameter, s.value])), relation.reset),
      transactional: true,
      lock: { mode: 'SHARE UPDATE EXCLUSIVE', on: `${relation.schema}.${relation.name}`, online: true },
      build: false,
    }),
  );
  return [
    ...(adding.length > 0 && statements.length > 0 ? [{ kind: 'setting-registry' as const, action: 'add' as const, schema, table: name, parameters: adding }] : []),
    ...statements,
    { kind: 'setting-registry', action: 'replace', schema, table: name, parameters: change.managed },
  ];
}
