import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { apply, APPLY_DEFAULTS } from '../../engine/apply/apply.ts';
import { makePlan } from '../../engine/plan/make-plan.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { projectWith } from '../support/cli.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await useTestDatabase();
});
afterAll(async () => {
  await db.close();
});

/** Statements the apply sends (every query of this process while it runs: the test sends none meanwhile). */
async function statementsToAdopt(indexes: number): Promise<{ statements: number; adopted: number }> {
  await db.pool.query(`DROP SCHEMA IF EXISTS adopt CASCADE; DROP SCHEMA IF EXISTS pgwarden CASCADE; CREATE SCHEMA adopt`);
  await db.pool.query(`CREATE TABLE adopt.items (${Array.from({ length: indexes }, (_, i) => `c${i} int`).join(', ')})`);
  for (let i = 0; i < indexes; i += 1) await db.pool.query(`CREATE INDEX items_c${i}_idx ON adopt.items (c${i})`);
  const policy = ['table: adopt.items', 'indexes:', ...Array.from({ length: indexes }, (_, i) => `  - { name: items_c${i}_idx, columns: [c${i}] }`), ''].join('\n');
  const { desired, errors } = await loadPolicies(path.join(await projectWith({ 'items.yaml': policy }), 'policies'));
  expect(errors).toEqual([]);
  const spy = vi.spyOn(pg.Client.prototype, 'query');
  let adopted = 0;
  try {
    await apply({
      ...APPLY_DEFAULTS,
      databaseUrl: db.url,
      desired,
      onEvent: (e) => {
        if (e.type === 'change-done' && e.change.change.kind === 'adopt-index') adopted += 1;
      },
    });
    return { statements: spy.mock.calls.length, adopted };
  } finally {
    spy.mockRestore();
    const client = await db.pool.connect();
    try {
      const again = await makePlan(client, desired, new Date());
      expect(again.ok && again.plan.changes).toEqual([]);
    } finally {
      client.release();
    }
  }
}

describe('apply adopting existing indexes', () => {
  it('sends as many statements for forty adoptions as for two', async () => {
    const two = await statementsToAdopt(2);
    const forty = await statementsToAdopt(40);
    expect([two.adopted, forty.adopted]).toEqual([2, 40]);
    expect(forty.statements).toBe(two.statements);
  });

  it('records every adopted index in the registry, with what the policy said and what PostgreSQL made of it', async () => {
    await statementsToAdopt(3);
    const rows = await db.pool.query(`SELECT index_name, table_name, policy_file, spec_hash IS NOT NULL AS hashed, signature IS NOT NULL AS signed FROM pgwarden.managed_index ORDER BY 1`);
    expect(rows.rows).toEqual(['items_c0_idx', 'items_c1_idx', 'items_c2_idx'].map((index_name) => ({ index_name, table_name: 'items', policy_file: expect.stringMatching(/policies\/items\.yaml$/u), hashed: true, signed: true })));
  });
});
