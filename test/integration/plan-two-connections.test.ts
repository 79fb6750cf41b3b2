import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, APPLY_DEFAULTS } from '../../engine/apply/apply.ts';
import { makePlan, type PlanOutcome } from '../../engine/plan/make-plan.ts';
import type { DesiredState } from '../../engine/policy/desired.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { projectWith } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;
let desired: DesiredState;

beforeAll(async () => {
  db = await useTestDatabase();
  await db.pool.query(`DROP SCHEMA IF EXISTS two CASCADE; CREATE SCHEMA two`);
  await db.pool.query(`CREATE TABLE two.orders (id bigint PRIMARY KEY, customer text, status text, total numeric)`);
  await db.pool.query(`CREATE INDEX orders_legacy ON two.orders (customer)`);
  await db.pool.query(`CREATE TABLE two.refunds (id bigint PRIMARY KEY, reason text, amount numeric)`);
  const policy = [
    'table: two.orders',
    'indexes:',
    '  - { name: orders_customer_idx, columns: [customer] }',
    '  - { name: orders_lower_customer_idx, columns: [{ expression: lower(customer) }] }',
    `  - { name: orders_open_idx, columns: [total], where: "status <> 'closed'" }`,
    '',
  ].join('\n');
  const refunds = ['table: two.refunds', 'indexes:', '  - { name: refunds_reason_idx, columns: [{ expression: upper(reason) }] }', ''].join('\n');
  const loaded = await loadPolicies(path.join(await projectWith({ 'orders.yaml': policy, 'refunds.yaml': refunds }), 'policies'));
  expect(loaded.errors).toEqual([]);
  desired = loaded.desired;
});
afterAll(async () => {
  await db.pool.query(`DROP SCHEMA IF EXISTS two CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE`);
  await db.close();
});

async function planWith(connect?: () => Promise<pg.Client>): Promise<PlanOutcome> {
  const client = await db.pool.connect();
  try {
    return await makePlan(client, desired, new Date('2026-11-25T10:00:00Z'), connect === undefined ? {} : { connect });
  } finally {
    client.release();
  }
}

const open = async (): Promise<pg.Client> => {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  return client;
};

function summary(outcome: PlanOutcome): unknown {
  if (!outcome.ok) return outcome.errors;
  return { fingerprint: outcome.plan.fingerprint, changes: outcome.plan.changes.map((c) => [c.change.address, c.change.kind, c.steps]) };
}

describe('a plan reading on two connections', () => {
  it('is the plan one connection makes: renames, expressions and predicates built on scratch on both, the same steps', async () => {
    const one = await planWith();
    let sentThere = 0;
    const two = await planWith(async () => {
      const client = await open();
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
      Object.assign(client, { query: (...args: unknown[]) => ((sentThere += 1), query(...args)) });
      return client;
    });
    // Its settings, the index rows in the shared snapshot, the catalog facts and one table's scratch builds.
    expect(sentThere).toBeGreaterThanOrEqual(9);
    expect(one.ok && one.plan.changes.map((c) => c.change.kind).sort()).toEqual(['create-index', 'create-index', 'create-index', 'rename-index']);
    expect(summary(two)).toEqual(summary(one));
  });

  it('reads on its own connection when the second one cannot be opened', async () => {
    const refused = (): Promise<pg.Client> => Promise.reject(new Error('too many connections'));
    expect(summary(await planWith(refused))).toEqual(summary(await planWith()));
  });

  it('reads everything on its own connection when the second one cannot share its snapshot (another database)', async () => {
    let sentThere = 0;
    const elsewhere = async (): Promise<pg.Client> => {
      const client = new pg.Client({ connectionString: db.url.replace(/\/[^/?]+(\?|$)/u, '/postgres$1') });
      await client.connect();
      const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
      Object.assign(client, { query: (...args: unknown[]) => ((sentThere += 1), query(...args)) });
      return client;
    };
    expect(summary(await planWith(elsewhere))).toEqual(summary(await planWith()));
    // Its session settings, the refused BEGIN ... SET TRANSACTION SNAPSHOT and its ROLLBACK: nothing read there.
    expect(sentThere).toBe(3);
  });

  it('finds nothing left to change after apply', async () => {
    await apply({ ...APPLY_DEFAULTS, databaseUrl: db.url, desired });
    const again = await planWith(open);
    expect(again.ok && again.plan.changes).toEqual([]);
  });
});
