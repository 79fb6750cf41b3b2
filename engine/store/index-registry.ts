import type pg from 'pg';
import type { RegistryStep } from '../plan/step.ts';

/**
 * `pgwarden.managed_index`: the indexes pgwarden created or adopted, with what the policy said (spec
 * hash) and what PostgreSQL made of it (signature), so a steady-state plan needs no canonicalisation.
 *
 * Any number of registry steps is one statement: adopting 15,000 existing indexes is one INSERT, not
 * 15,000. Steps on the same index leave what the last one says, as running them in order would.
 */
export async function writeIndexRegistry(client: pg.ClientBase, steps: readonly RegistryStep[]): Promise<void> {
  if (steps.length === 0) return;
  const last = new Map<string, RegistryStep>();
  for (const step of steps) last.set(`${step.schema}\u0000${step.name}`, step);
  const forgets = [...last.values()].filter((s) => s.action === 'forget');
  const records = [...last.values()].filter((s) => s.action === 'record');
  await client.query(
    `WITH forgotten AS (
       DELETE FROM pgwarden.managed_index m
        USING ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS f(schema_name, index_name)
        WHERE m.schema_name = f.schema_name AND m.index_name = f.index_name)
     INSERT INTO pgwarden.managed_index (schema_name, index_name, table_name, policy_file, spec_hash, signature)
     SELECT * FROM ROWS FROM (pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::text[]),
                              pg_catalog.unnest($6::text[]), pg_catalog.unnest($7::text[]), pg_catalog.unnest($8::text[]))
     ON CONFLICT (schema_name, index_name) DO UPDATE
       SET table_name = EXCLUDED.table_name, policy_file = EXCLUDED.policy_file,
           spec_hash = EXCLUDED.spec_hash, signature = EXCLUDED.signature, recorded_at = now()`,
    [
      forgets.map((s) => s.schema),
      forgets.map((s) => s.name),
      records.map((s) => s.schema),
      records.map((s) => s.name),
      records.map((s) => s.table),
      records.map((s) => s.policyFile ?? null),
      records.map((s) => s.specHash ?? null),
      records.map((s) => s.signature ?? null),
    ],
  );
}
