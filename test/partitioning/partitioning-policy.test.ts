import { afterEach, describe, expect, it } from 'vitest';
import { loadPolicies } from '../../engine/policy/load.ts';
import { policyDir, yaml, type PolicyDir } from '../policy/policy-dir.ts';

let policies: PolicyDir | undefined;
afterEach(async () => {
  await policies?.remove();
  policies = undefined;
});

describe('the partitioning policy as loaded', () => {
  it('fills in the defaults: premake 4, retention then detach, no default partition, the interval\'s naming', async () => {
    policies = await policyDir({ 'a.yaml': yaml('table: events', 'partitioning:', '  by: range', '  column: created_at', '  interval: week', '  retention: { keep: 8 }') });
    const { desired, errors } = await loadPolicies(policies.dir);
    expect(errors).toEqual([]);
    expect(desired.tables[0]?.partitioning).toEqual({
      by: 'range',
      column: 'created_at',
      interval: 'week',
      premake: 4,
      retention: { keep: 8, then: 'detach', source: { file: policies.file('a.yaml'), line: 6, col: 14 } },
      defaultPartition: false,
      naming: '{table}_{IYYY}_w{IW}',
      source: { file: policies.file('a.yaml'), line: 2, col: 1 },
      columnSource: { file: policies.file('a.yaml'), line: 4, col: 11 },
    });
  });

  it('rejects an unknown naming field and a retention of zero intervals, all in one run', async () => {
    policies = await policyDir({
      'a.yaml': yaml('table: events', 'partitioning:', '  by: range', '  column: created_at', '  interval: month', '  retention: { keep: 0 }'),
      'b.yaml': yaml('table: other', 'partitioning:', '  by: list', '  column: created_at', '  interval: month', '  naming: "{table}_{YY}"'),
    });
    const { errors } = await loadPolicies(policies.dir);
    expect(errors.map((e) => `${e.file.split('/').pop()}:${e.line}:${e.col}: ${e.message}`)).toEqual([
      'a.yaml:6:22: "keep" must be at least 1, got 0',
      'b.yaml:3:7: "by" must be one of range, got "list"',
    ]);
  });

  it('rejects a naming field it does not know once the rest is valid', async () => {
    policies = await policyDir({ 'b.yaml': yaml('table: other', 'partitioning:', '  by: range', '  column: created_at', '  interval: month', '  naming: "{table}_{YY}"') });
    const { errors } = await loadPolicies(policies.dir);
    expect(errors.map((e) => `${e.line}:${e.col}: ${e.message} (${e.hint})`)).toEqual([
      '6:11: naming pattern uses unknown field {YY} (the fields are {table}, {YYYY}, {MM}, {DD}, {Q}, {IYYY}, {IW})',
    ]);
  });
});
