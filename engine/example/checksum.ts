import type pg from 'pg';
import { ident, qualified } from '../sql/ident.ts';
import { EXAMPLE_SCHEMA, EXAMPLE_TABLES, type ExampleTable } from './example-schema.ts';

/** Per table, `rows:hash` of its content; equal checksums mean equal rows (whatever their physical order). */
export type ExampleChecksums = Readonly<Record<ExampleTable, string>>;

/**
 * Fingerprints the example's data, to check that a seed reproduces it.
 *
 * The sum of a 64-bit hash of each row's text is order-independent, so it needs no sort and streams
 * through millions of events in one pass; a string_agg of the rows would have to hold them all in memory.
 * The text of a timestamptz depends on TimeZone and DateStyle, so both are pinned for the transaction.
 *
 * @example
 *   await checksumExample(client) // => { tenants: '50:1234…', servers: '455:…', … }
 */
export async function checksumExample(client: pg.ClientBase): Promise<ExampleChecksums> {
  const columns = EXAMPLE_TABLES.map(
    (table) =>
      `(SELECT count(*) || ':' || coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)
        FROM ${qualified(EXAMPLE_SCHEMA, table)} AS t) AS ${ident(table)}`,
  );
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'`);
    const result = await client.query<Record<ExampleTable, string>>(`SELECT ${columns.join(',\n')}`);
    await client.query('COMMIT');
    const row = result.rows[0];
    if (row === undefined) throw new Error('checksumming the example returned nothing');
    return row;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
