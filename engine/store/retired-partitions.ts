import type pg from 'pg';
import { qualified } from '../sql/ident.ts';

/** A partition retention is about to detach and then drop; records of relations gone since are cleared. */
export async function recordRetiredPartition(client: pg.ClientBase, parent: { schema: string; name: string }, partition: { schema: string; name: string }): Promise<void> {
  await client.query(
    `DELETE FROM pgwarden.retired_partition r
      WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = r.relid AND c.relname = r.table_name AND n.nspname = r.schema_name)`,
  );
  await client.query(
    `INSERT INTO pgwarden.retired_partition (relid, schema_name, table_name, parent_schema, parent_name)
     SELECT c.oid, $1, $2, $3, $4 FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($5)
     ON CONFLICT (relid) DO UPDATE
       SET schema_name = EXCLUDED.schema_name, table_name = EXCLUDED.table_name, parent_schema = EXCLUDED.parent_schema,
           parent_name = EXCLUDED.parent_name, recorded_at = now()`,
    [partition.schema, partition.name, parent.schema, parent.name, qualified(partition.schema, partition.name)],
  );
}
