import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { ident } from '../../engine/sql/ident.ts';
import { withDatabase } from '../../engine/cluster/local-address.ts';

export interface TestDatabase {
  /** URL of this test file's own database on the primary. */
  readonly url: string;
  /** The same database seen through the streaming standby ('' when the suite runs without one). */
  readonly standbyUrl: string;
  readonly name: string;
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: inject('primaryUrl') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh database on the suite's real server for one test file; dropped by `close()`. */
export async function useTestDatabase(): Promise<TestDatabase> {
  const name = `pgwarden_test_${randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${ident(name)}`);
  const url = withDatabase(inject('primaryUrl'), name);
  const standby = inject('standbyUrl');
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // A test that terminates the database's sessions (the server "going away") kills this pool's idle
  // clients too; their error then reaches the next query, not the process as an unhandled event.
  pool.on('error', () => undefined);
  return {
    url,
    standbyUrl: standby ? withDatabase(standby, name) : '',
    name,
    pool,
    async close() {
      await pool.end();
      await adminQuery(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
    },
  };
}

export function primaryAdminUrl(): string {
  return inject('primaryUrl');
}
