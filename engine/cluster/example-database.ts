import pg from 'pg';
import { loadExample, type ExampleSummary } from '../example/load.ts';
import type { ExampleScale } from '../example/scale.ts';
import { ident } from '../sql/ident.ts';
import { withDatabase } from './local-address.ts';
import { settingsOf } from '../connection/connection-settings.ts';
import { connect } from '../connection/open-connection.ts';

/** Where `pgwarden up` loads the example platform, so the bundled policies have tables to act on. */
export const EXAMPLE_DATABASE = 'pgwarden_example';

/** Creates `name` on the server of `adminUrl` unless it exists; true when it was created. */
export async function ensureDatabase(adminUrl: string, name: string): Promise<boolean> {
  const admin = await connect(settingsOf(adminUrl));
  try {
    const exists = await admin.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [name]);
    if (exists.rowCount !== 0) return false;
    await admin.query(`CREATE DATABASE ${ident(name)}`);
    return true;
  } finally {
    await admin.end();
  }
}

/** The example counts as loaded when its events table holds rows (the loader commits all or nothing). */
export async function exampleLoaded(client: pg.ClientBase): Promise<boolean> {
  const r = await client
    .query<{ loaded: boolean }>(
      `SELECT pg_catalog.to_regclass('public.events') IS NOT NULL
              AND EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = 'public.events'::regclass AND reltuples > 0) AS loaded`,
    )
    .catch(() => ({ rows: [{ loaded: false }] }));
  return r.rows[0]?.loaded ?? false;
}

export type ExampleDatabase = { readonly url: string; readonly loaded: ExampleSummary | null };

/**
 * The example platform in its own database of the cluster at `adminUrl`, loaded at `scale` unless an
 * earlier run loaded it already (`loaded: null` then). pg_stat_statements is created there too.
 */
export async function ensureExampleDatabase(
  adminUrl: string,
  options: { readonly name: string; readonly scale: ExampleScale; readonly reload?: boolean; readonly plainEvents?: boolean; readonly onProgress?: (message: string) => void },
): Promise<ExampleDatabase> {
  await ensureDatabase(adminUrl, options.name);
  const url = withDatabase(adminUrl, options.name);
  const client = await connect(settingsOf(url), { application_name: 'pgwarden example loader' });
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    if (!options.reload && (await exampleLoaded(client))) return { url, loaded: null };
    return { url, loaded: await loadExample(client, { scale: options.scale, plainEvents: options.plainEvents ?? false, ...(options.onProgress ? { onProgress: options.onProgress } : {}) }) };
  } finally {
    await client.end();
  }
}
