import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageParameterListSql } from '../../engine/sql/ddl.ts';
import { STORAGE_PARAMETERS, type StorageParameterSpec } from '../../engine/policy/vacuum-schema.ts';
import { useTestDatabase, type TestDatabase } from '../support/database.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await useTestDatabase();
  // A text column gives the table a TOAST table, so the toast.* forms are stored, not dropped.
  await db.pool.query('CREATE TABLE ranges (id int, body text)');
});
afterAll(async () => {
  await db.close();
});

/** The error PostgreSQL gives for `name = value`, or null when it accepts it. */
async function attempt(name: string, value: string): Promise<string | null> {
  try {
    await db.pool.query(`ALTER TABLE ranges SET (${storageParameterListSql({ [name]: value })})`);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

function names(spec: StorageParameterSpec): string[] {
  return spec.toast ? [spec.reloption, `toast.${spec.reloption}`] : [spec.reloption];
}

describe('the policy\'s storage parameter ranges', () => {
  it('are exactly the ones PostgreSQL enforces, for every parameter and its toast form', async () => {
    const disagreements: string[] = [];
    for (const spec of STORAGE_PARAMETERS) {
      for (const name of names(spec)) {
        if (spec.type === 'integer' || spec.type === 'real') {
          const step = spec.type === 'integer' ? 1 : 0.001;
          const [min, max] = [spec.min ?? 0, spec.max ?? 0];
          for (const [value, accepted] of [[min, true], [max, true], [min - step, false], [max + step, false]] as const) {
            const error = await attempt(name, String(value));
            if ((error === null) !== accepted) disagreements.push(`${name} = ${value}: ${error ?? 'accepted'}`);
          }
        } else {
          for (const value of spec.type === 'boolean' ? ['true', 'false'] : (spec.values ?? [])) {
            const error = await attempt(name, value);
            if (error !== null) disagreements.push(`${name} = ${value}: ${error}`);
          }
        }
      }
    }
    expect(disagreements).toEqual([]);
  });

  it('leave out of the TOAST block exactly what PostgreSQL refuses there', async () => {
    const refused = STORAGE_PARAMETERS.filter((s) => !s.toast).map((s) => s.reloption);
    expect(refused).toEqual(['autovacuum_analyze_threshold', 'autovacuum_analyze_scale_factor']);
    for (const name of refused) expect(await attempt(`toast.${name}`, '1')).toBe(`unrecognized parameter "${name}"`);
  });
});
