import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { policyText } from '../../engine/import/policy-text.ts';

describe('policy text written by import', () => {
  it('reads back as exactly the data it was written from, whatever the names hold', () => {
    const awkward = ['true', 'False', 'null', '~', '', ' lead', 'trail ', 'a: b', 'x #y', '-a', '1.5', '0x10', '.inf', 'größe', "it's", 'quote"d', '[x]', '{y}', 'a,b', 'line\nbreak', 'tab\there', '*alias', '&anchor', '!tag', '%dir', '@at', '`tick`', 'on', 'off', 'yes'];
    const document = {
      table: 'app.t',
      managed: 'partial',
      indexes: awkward.map((name, i) => ({
        name,
        columns: [name, { expression: `lower(${name})`, opclass: name }],
        include: [name],
        where: `"${name}" <> ''`,
        with: { fillfactor: 70 + i, deduplicate_items: i % 2 === 0 ? 'off' : false },
      })),
      vacuum: { autovacuum: { vacuum_scale_factor: 0.02, enabled: true } },
    };
    const text = policyText(['a comment', 'another: with a colon'], document);
    expect(parse(text)).toEqual(document);
    expect(text.startsWith('# a comment\n# another: with a colon\n\ntable: app.t\n')).toBe(true);
  });
});

describe('where import says it read from', () => {
  it('names the database without its password or query parameters', async () => {
    const { describeSource } = await import('../../engine/cli/commands/import.ts');
    expect(describeSource('postgres://app:s3cret@db.internal:5432/app?sslmode=require&password=other', 'app', {})).toBe('postgres://app@db.internal:5432/app');
    expect(describeSource(undefined, 'app', { PGHOST: 'db.internal', PGPORT: '6432', PGPASSWORD: 'x' })).toBe('database app on db.internal:6432');
  });
});
