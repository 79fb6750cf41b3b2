import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AJV_OPTIONS, POLICY_SCHEMAS, policyValidators, type PolicyValidators } from '../../engine/policy/policy-validators.ts';
// @ts-expect-error -- a plain .mjs build script without type declarations
import { validatorsModule } from '../../scripts/compile-validators.mjs';

// The published package validates with the ajv standalone code the build generates; the sources compile
// the same schemas at run time. Both must report exactly the same errors.
let dir: string;
let standalone: PolicyValidators;

beforeAll(async () => {
  // Inside the checkout, so the generated module resolves ajv's runtime helpers from node_modules.
  dir = await mkdtemp(path.join(import.meta.dirname, '.standalone-'));
  const file = path.join(dir, 'policy-validators.mjs');
  await writeFile(file, (validatorsModule as (options: unknown, schemas: unknown) => string)(AJV_OPTIONS, POLICY_SCHEMAS));
  standalone = ((await import(pathToFileURL(file).href)) as { policyValidators: () => PolicyValidators }).policyValidators();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SAMPLES: ReadonlyArray<readonly [keyof PolicyValidators, unknown]> = [
  ['table', { table: 'public.events', indexes: [{ name: 'events_tenant_idx', columns: ['tenant_id', 'created_at desc'] }] }],
  ['table', { table: 'public.events', indexes: [{ name: 'events_tenant_idx', colums: ['tenant_id'] }] }],
  ['table', { table: 5, managed: 'some', indexes: 'none' }],
  ['table', { table: 'e', partitioning: { by: 'list', column: 1, interval: 'fortnight', premake: -1 } }],
  ['table', { table: 'e', vacuum: { autovacuum: { vacuum_scale_factor: 2, bogus: 1 }, max_dead_ratio: 'x' } }],
  ['index', { name: '', columns: [], method: 'btreee', unique: 'yes' }],
  ['key', { expression: 1 }],
  ['key', 'created_at desc'],
  ['routing', { routing: { replicas: [{ name: 'r' }], reads: 'both', max_lag_ms: -1, standby_settings: { a: [] } } }],
  ['defaults', { defaults: { vacuum: { autovacuum: { bogus: 1 } } } }],
];

describe('policy validators compiled ahead of time', () => {
  it.each(SAMPLES.map(([name, data], i) => [i, name, data] as const))('sample %i (%s) gets the same verdict and errors as at run time', (_, name, data) => {
    const atRunTime = policyValidators()[name];
    const ahead = standalone[name];
    expect(ahead(data)).toBe(atRunTime(data));
    // Through JSON: the schemas in `verbose` errors carry TypeBox's symbol keys only when compiled from TypeBox values.
    expect(JSON.parse(JSON.stringify(ahead.errors ?? null))).toEqual(JSON.parse(JSON.stringify(atRunTime.errors ?? null)));
  });

  it('has a validator for every schema', () => {
    expect(Object.keys(standalone).sort()).toEqual(Object.keys(POLICY_SCHEMAS).sort());
  });
});
