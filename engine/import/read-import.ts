import type pg from 'pg';
import { catalogSession, introspect, query } from '../catalog/introspect.ts';
import { readImportFacts } from '../catalog/import-queries.ts';
import { introspectPartitions } from '../catalog/partition-queries.ts';
import { importTables, selectedTables, type ImportedTable, type ImportFilter } from './imported-table.ts';

export interface ImportRead {
  readonly database: string;
  readonly serverVersion: number;
  readonly tables: readonly ImportedTable[];
  /** application_name of each streaming replica the primary shows. */
  readonly replicas: readonly string[];
  readonly roundTrips: number;
}

/**
 * Reads what import needs in a fixed number of round trips, whatever the catalog's size: plan's own
 * introspection, one more for names and defaults (engine/catalog/import-queries.ts), and one for the
 * partition bounds of range-partitioned tables when there are any.
 */
export async function readImport(client: pg.ClientBase, filter: ImportFilter, now: Date): Promise<ImportRead> {
  const session = catalogSession(client);
  const [recovery] = await query<{ r: boolean }>(session, `SELECT pg_catalog.pg_is_in_recovery() AS r`);
  if (recovery?.r) throw new Error('this server is a standby (in recovery); import reads the primary, whose catalog is the same, and which knows its replicas');
  const catalog = await introspect(session, []);
  const facts = await readImportFacts(session);
  const ranged = selectedTables(catalog, facts, filter).filter((t) => t.kind === 'partitioned' && t.partitionKey?.startsWith('RANGE'));
  const partitions = ranged.length > 0 ? await introspectPartitions(session, ranged.map((t) => ({ schema: t.schema, name: t.name }))) : [];
  const tables = importTables({ catalog, facts, partitions, filter, now });
  return { database: catalog.database, serverVersion: catalog.serverVersion, tables, replicas: facts.replicas, roundTrips: session.roundTrips };
}
