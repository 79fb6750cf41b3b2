import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { storageParametersFor } from '../../engine/diff/vacuum-settings.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { policyDir, yaml, type PolicyDir } from '../policy/policy-dir.ts';

let policies: PolicyDir | undefined;

afterEach(async () => {
  await policies?.remove();
  policies = undefined;
});

async function load(files: Readonly<Record<string, string>>): ReturnType<typeof loadPolicies> {
  policies = await policyDir(files);
  return loadPolicies(policies.dir);
}

/** Errors as `file:line:col: message (hint)`, the file relative to the policies directory. */
async function errorsOf(files: Readonly<Record<string, string>>): Promise<string[]> {
  const { errors } = await load(files);
  return errors.map((e) => `${path.relative(policies?.dir ?? '', e.file)}:${e.line}:${e.col}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`);
}

describe('the vacuum policy', () => {
  it('turns autovacuum and toast keys into the reloptions PostgreSQL stores, each with where it was written', async () => {
    const { desired, errors } = await load({
      'deployments.yaml': yaml(
        'table: public.deployments',
        'vacuum:',
        '  autovacuum: { vacuum_scale_factor: 0.02, analyze_threshold: 500, enabled: true, log_min_duration: 0 }',
        '  toast:',
        '    vacuum_index_cleanup: off',
        '  max_dead_ratio: 0.05',
        '  min_health: 0.95',
        '  analyze_after_rows: 10000',
        '  analyze_after: 12h',
      ),
    });

    expect(errors).toEqual([]);
    const vacuum = desired.tables[0]?.vacuum;
    expect(vacuum?.settings.map((s) => [s.parameter, s.value, s.source.line])).toEqual([
      ['autovacuum_enabled', 'true', 3],
      ['autovacuum_vacuum_scale_factor', '0.02', 3],
      ['autovacuum_analyze_threshold', '500', 3],
      ['log_autovacuum_min_duration', '0', 3],
      ['toast.vacuum_index_cleanup', 'off', 5],
    ]);
    expect(vacuum).toMatchObject({ maxDeadRatio: 0.05, minHealth: 0.95, analyzeAfterRows: 10_000, analyzeAfterMs: 12 * 3_600_000 });
    expect(vacuum?.source).toMatchObject({ line: 2, col: 1 });
  });

  it('rejects a value outside PostgreSQL\'s range with its position and the range', async () => {
    const errors = await errorsOf({
      'a.yaml': yaml('table: t', 'vacuum:', '  autovacuum:', '    vacuum_scale_factor: 150', '    freeze_max_age: 99999', '    vacuum_cost_limit: 0'),
    });

    expect(errors).toEqual([
      'a.yaml:4:26: "vacuum_scale_factor" must be at most 100, got 150 (autovacuum_vacuum_scale_factor accepts 0 to 100)',
      'a.yaml:5:21: "freeze_max_age" must be at least 100000, got 99999 (autovacuum_freeze_max_age accepts 100000 to 2000000000)',
      'a.yaml:6:24: "vacuum_cost_limit" must be at least 1, got 0 (autovacuum_vacuum_cost_limit accepts 1 to 10000)',
    ]);
  });

  it('rejects an unknown storage parameter and suggests the one meant', async () => {
    const errors = await errorsOf({ 'a.yaml': yaml('table: t', 'vacuum:', '  autovacuum:', '    vacum_scale_factor: 0.1') });

    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^a\.yaml:4:5: unknown key "vacum_scale_factor" in autovacuum settings \(expected one of: enabled, vacuum_threshold, .*\) \(did you mean "vacuum_scale_factor"\?\)$/);
  });

  it('has no analyze settings for the TOAST table, which has no statistics', async () => {
    const errors = await errorsOf({ 'a.yaml': yaml('table: t', 'vacuum:', '  toast:', '    analyze_scale_factor: 0.1') });

    expect(errors[0]).toMatch(/^a\.yaml:4:5: unknown key "analyze_scale_factor" in TOAST autovacuum settings/);
  });

  it('rejects a fractional threshold, a wrong enum, a yes for a boolean and a ratio above 1', async () => {
    const errors = await errorsOf({
      'a.yaml': yaml(
        'table: t',
        'vacuum:',
        '  autovacuum:',
        '    vacuum_threshold: 1.5',
        '    vacuum_index_cleanup: maybe',
        '    enabled: yes',
        '  max_dead_ratio: 1.5',
      ),
    });

    expect(errors).toEqual([
      'a.yaml:4:23: "vacuum_threshold" must be a whole number, got 1.5',
      'a.yaml:5:27: "vacuum_index_cleanup" must be one of auto, on, off, got "maybe"',
      'a.yaml:6:14: "enabled" must be true or false, got "yes" (YAML 1.2 reads yes/no/on/off as text; write true or false)',
      'a.yaml:7:19: "max_dead_ratio" must be at most 1, got 1.5',
    ]);
  });

  it('rejects an analyze_after that is not a duration', async () => {
    const errors = await errorsOf({ 'a.yaml': yaml('table: t', 'vacuum:', '  analyze_after: soon') });

    expect(errors).toEqual(['a.yaml:3:18: "analyze_after" must be a duration like 30m, 12h or 7d, got "soon" (units: s, m, h, d)']);
  });
});

describe('the defaults document', () => {
  it('gives every table its vacuum settings, a table\'s own keys overriding them one by one', async () => {
    const { desired, errors } = await load({
      'defaults.yaml': yaml('defaults:', '  vacuum:', '    autovacuum: { vacuum_scale_factor: 0.05, analyze_scale_factor: 0.02 }', '    max_dead_ratio: 0.2', '    min_health: 0.9'),
      'events.yaml': yaml('table: events', 'vacuum:', '  autovacuum: { vacuum_scale_factor: 0.01 }', '  min_health: 0.95'),
      'tenants.yaml': yaml('table: tenants'),
    });

    expect(errors).toEqual([]);
    const events = desired.tables.find((t) => t.name === 'events');
    const tenants = desired.tables.find((t) => t.name === 'tenants');
    expect(events && storageParametersFor(events)).toEqual({ autovacuum_analyze_scale_factor: '0.02', autovacuum_vacuum_scale_factor: '0.01' });
    expect(events?.vacuum).toMatchObject({ maxDeadRatio: 0.2, minHealth: 0.95 });
    expect(tenants && storageParametersFor(tenants)).toEqual({ autovacuum_vacuum_scale_factor: '0.05', autovacuum_analyze_scale_factor: '0.02' });
    expect(desired.vacuumDefaults?.source).toMatchObject({ line: 2, col: 3 });
  });

  it('may appear once', async () => {
    const errors = await errorsOf({ 'a.yaml': yaml('defaults: { vacuum: {} }'), 'b.yaml': yaml('defaults:', '  vacuum: { min_health: 0.5 }') });

    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^b\.yaml:1:1: a second defaults document; the first is at .*a\.yaml:1:1 \(merge them into one `defaults:` document\)$/);
  });

  it('is checked like a table policy', async () => {
    const errors = await errorsOf({ 'a.yaml': yaml('defaults:', '  vacum: {}', '  vacuum:', '    autovacuum: { freeze_min_age: -1 }') });

    expect(errors).toEqual([
      'a.yaml:2:3: unknown key "vacum" in defaults (expected one of: vacuum) (did you mean "vacuum"?)',
      'a.yaml:4:35: "freeze_min_age" must be at least 0, got -1 (autovacuum_freeze_min_age accepts 0 to 1000000000)',
    ]);
  });

  it('gives a table without vacuum settings nothing to create partitions with', async () => {
    const { desired } = await load({ 'a.yaml': yaml('table: t') });

    expect(desired.tables[0] && storageParametersFor(desired.tables[0])).toEqual({});
  });
});
