import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findingsFor } from '../../engine/live-health/finding.ts';
import { readSlow } from '../../engine/live-health/health-readings.ts';
import { readIndexLedger, readSiteSource } from '../../engine/serve/site-data.ts';
import { projectWith, runCli } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

// An index the policies declare and pgwarden built minutes ago has no scans yet: it is "unused", but
// dropping it by hand would only make the next apply build it again.
let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, note text)');
  await db.pool.query('INSERT INTO orders SELECT g, g % 500, null FROM generate_series(1, 60000) g');
  // And one nobody declared, also never scanned: that one may be dropped.
  await db.pool.query('CREATE INDEX orders_note_idx ON orders (customer, id)');
  const project = await projectWith({ 'orders.yaml': 'table: public.orders\nindexes:\n  - name: orders_customer_idx\n    columns: [id, customer]\n' });
  const applied = await runCli(['apply', '--auto-approve', '--database-url', db.url], { cwd: project });
  expect(applied.code, applied.stderr).toBe(0);
  const again = await runCli(['plan', '--detailed-exitcode', '--database-url', db.url], { cwd: project });
  expect(again.code, again.stdout).toBe(0);
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.close();
});

describe('an unused index the policies declare', () => {
  it('is never proposed for dropping in the index ledger: it names the policy file instead', async () => {
    const ledger = await readIndexLedger(client, await readSiteSource(client));
    const declared = ledger.find((i) => i.name === 'orders_customer_idx');
    expect(declared?.flags).toContain('unused');
    expect(declared?.fixSql).not.toMatch(/DROP INDEX/);
    expect(declared?.fixSql).toBe('-- unused; declared in policies/orders.yaml: remove it from that file to drop it');
    expect(ledger.find((i) => i.name === 'orders_note_idx')?.fixSql).toBe('DROP INDEX CONCURRENTLY "public"."orders_note_idx";');
  });

  it('is never proposed for dropping in the live page’s findings', async () => {
    const slow = await readSlow(client, {});
    const findings = findingsFor({ tables: [], freezeMaxAge: 200_000_000, sessions: [], slots: [], standbys: [], slow: { at: '', ms: 0, ...slow, tableHealth: null, tableHealthCount: null, errors: [] } });
    const declared = findings.find((f) => f.subject === 'public.orders_customer_idx');
    expect(declared?.kind).toBe('unused-index');
    expect(declared?.message).toContain('declared in policies/orders.yaml');
    expect(declared?.fixSql).not.toMatch(/DROP INDEX/);
    expect(findings.find((f) => f.subject === 'public.orders_note_idx')?.fixSql).toBe('DROP INDEX CONCURRENTLY "public"."orders_note_idx";');
  });
});
