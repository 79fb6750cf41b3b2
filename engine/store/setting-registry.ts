import type pg from 'pg';
import type { SettingRegistryStep } from '../plan/storage-steps.ts';
import { qualified } from '../sql/ident.ts';
import { MANAGED_SETTING_SQL } from './schema.ts';

/**
 * `pgwarden.managed_setting`: the storage parameters pgwarden set on each table it governs (a
 * partitioned table's entry covers all its partitions). A parameter leaves the policy: it is reset
 * only if it is recorded here, so a value someone set by hand is never silently undone.
 */
export async function runSettingRegistryStep(client: pg.ClientBase, step: SettingRegistryStep): Promise<void> {
  await client.query(MANAGED_SETTING_SQL);
  // One statement, so it is atomic; a table dropped since the plan was made gets no record.
  const exists = `pg_catalog.to_regclass($4) IS NOT NULL`;
  if (step.action === 'add') {
    await client.query(
      `INSERT INTO pgwarden.managed_setting (schema_name, table_name, parameter)
       SELECT $1, $2, p FROM pg_catalog.unnest($3::text[]) AS p WHERE ${exists}
       ON CONFLICT DO NOTHING`,
      [step.schema, step.table, step.parameters, qualified(step.schema, step.table)],
    );
    return;
  }
  await client.query(
    `WITH gone AS (
       DELETE FROM pgwarden.managed_setting
        WHERE schema_name = $1 AND table_name = $2 AND parameter <> ALL ($3::text[]))
     INSERT INTO pgwarden.managed_setting (schema_name, table_name, parameter)
     SELECT $1, $2, p FROM pg_catalog.unnest($3::text[]) AS p WHERE ${exists}
     ON CONFLICT DO NOTHING`,
    [step.schema, step.table, step.parameters, qualified(step.schema, step.table)],
  );
}
