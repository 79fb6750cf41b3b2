import { readFile } from 'node:fs/promises';

/** The example's tables, parents first. */
export const EXAMPLE_TABLES = ['tenants', 'servers', 'deployments', 'incidents', 'events'] as const;
export type ExampleTable = (typeof EXAMPLE_TABLES)[number];

export const EXAMPLE_SCHEMA = 'public';

/** schema.sql cut in two at its marker line: tables first, keys after the bulk load. */
export interface ExampleSchemaSql {
  /** Drops the example's tables and creates them without keys. */
  readonly tables: string;
  /** Primary and foreign keys, built once over the loaded rows. */
  readonly keys: string;
}

const AFTER_LOAD_MARKER = '-- pgwarden-example: after bulk load';

export async function readExampleSchema(): Promise<ExampleSchemaSql> {
  const text = await readFile(new URL('../../examples/schema.sql', import.meta.url), 'utf8');
  const at = text.indexOf(AFTER_LOAD_MARKER);
  if (at < 0) throw new Error(`examples/schema.sql lacks its marker line "${AFTER_LOAD_MARKER}"`);
  return { tables: text.slice(0, at), keys: text.slice(at + AFTER_LOAD_MARKER.length) };
}
