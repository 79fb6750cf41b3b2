import { afterEach, describe, expect, it } from 'vitest';
import type { DesiredState } from '../../engine/policy/desired.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { policyDir, yaml, type PolicyDir } from './policy-dir.ts';

let policies: PolicyDir | undefined;

afterEach(async () => {
  await policies?.remove();
  policies = undefined;
});

async function load(files: Readonly<Record<string, string>>) {
  policies = await policyDir(files);
  return { ...(await loadPolicies(policies.dir)), file: policies.file };
}

describe('loadPolicies', () => {
  it('turns a multi-document file into desired tables, resolving every default', async () => {
    const { desired, errors, file } = await load({
      'events.yaml': yaml(
        '# yaml-language-server: $schema=../schema/policy.schema.json',
        'table: events',
        'managed: full',
        'indexes:',
        '  - name: events_tenant_created_idx',
        '    columns: [tenant_id, created_at desc]',
        '    where: "status <> \'archived\'"',
        '    include: [kind]',
        '  - name: events_email_key',
        '    unique: true',
        '    nulls_not_distinct: true',
        '    columns:',
        '      - expression: lower(email)',
        '        opclass: text_pattern_ops',
        '        collation: C',
        '        order: desc',
        '        nulls: last',
        '---',
        'table: audit.log',
        'indexes:',
        '  - { name: log_doc_idx, method: gin, columns: [{ column: doc, opclass: jsonb_path_ops }] }',
      ),
    });

    expect(errors).toEqual([]);
    expect(desired).toEqual<DesiredState>({
      files: ['events.yaml'],
      tables: [
        {
          schema: 'public',
          name: 'events',
          managed: 'full',
          source: { file: file('events.yaml'), line: 2, col: 1 },
          indexes: [
            {
              schema: 'public',
              table: 'events',
              name: 'events_tenant_created_idx',
              method: 'btree',
              unique: false,
              nullsNotDistinct: false,
              keys: [
                { kind: 'column', column: 'tenant_id', order: 'asc', nulls: 'last' },
                { kind: 'column', column: 'created_at', order: 'desc', nulls: 'first' },
              ],
              include: ['kind'],
              where: "status <> 'archived'",
              source: { file: file('events.yaml'), line: 5, col: 5 },
            },
            {
              schema: 'public',
              table: 'events',
              name: 'events_email_key',
              method: 'btree',
              unique: true,
              nullsNotDistinct: true,
              keys: [
                {
                  kind: 'expression',
                  expression: 'lower(email)',
                  order: 'desc',
                  nulls: 'last',
                  opclass: 'text_pattern_ops',
                  collation: 'C',
                },
              ],
              include: [],
              source: { file: file('events.yaml'), line: 9, col: 5 },
            },
          ],
        },
        {
          schema: 'audit',
          name: 'log',
          managed: 'partial',
          source: { file: file('events.yaml'), line: 19, col: 1 },
          indexes: [
            {
              schema: 'audit',
              table: 'log',
              name: 'log_doc_idx',
              method: 'gin',
              unique: false,
              nullsNotDistinct: false,
              keys: [{ kind: 'column', column: 'doc', order: 'asc', nulls: 'last', opclass: 'jsonb_path_ops' }],
              include: [],
              source: { file: file('events.yaml'), line: 21, col: 5 },
            },
          ],
        },
      ],
    });
  });

  it('reads .yaml and .yml files in subdirectories, in sorted order, and nothing else', async () => {
    const { desired, errors } = await load({
      'b.yaml': yaml('table: b'),
      'a/z.yml': yaml('table: z'),
      'a/notes.md': 'table: not a policy',
      'c.json': '{}',
    });

    expect(errors).toEqual([]);
    expect(desired.files).toEqual(['a/z.yml', 'b.yaml']);
    expect(desired.tables.map((table) => table.name)).toEqual(['z', 'b']);
  });

  it('ignores empty documents and documents holding only comments', async () => {
    const { desired, errors } = await load({
      'a.yaml': yaml('---', '# nothing here yet', '---', '---', 'table: events', '---'),
      'empty.yaml': '',
    });

    expect(errors).toEqual([]);
    expect(desired.tables.map((table) => table.name)).toEqual(['events']);
  });

  it('takes `table` verbatim when `schema:` is given, so names may contain dots', async () => {
    const { desired, errors } = await load({ 'a.yaml': yaml('schema: my.schema', 'table: v1.events') });

    expect(errors).toEqual([]);
    expect(desired.tables.map(({ schema, name }) => ({ schema, name }))).toEqual([{ schema: 'my.schema', name: 'v1.events' }]);
  });

  it('keeps quotes, spaces, capitals, unicode and SQL in names verbatim', async () => {
    const { desired, errors } = await load({
      'hostile.yaml': yaml(
        'schema: "My Schema"',
        'table: "Événements \\"Spéciaux\\""',
        'indexes:',
        '  - name: \'x"; DROP TABLE y; --\'',
        '    columns:',
        '      - \'"x""; DROP TABLE y; --" desc\'',
        '      - TenantId',
        '      - größe',
        '      - { column: "Created At" }',
        '    include: [\'Kind "Of"\']',
        '    where: "note <> \'it\'\'s\'"',
      ),
    });

    expect(errors).toEqual([]);
    const [table] = desired.tables;
    expect(table?.schema).toBe('My Schema');
    expect(table?.name).toBe('Événements "Spéciaux"');
    const [index] = table?.indexes ?? [];
    expect(index?.name).toBe('x"; DROP TABLE y; --');
    expect(index?.keys.map((key) => (key.kind === 'column' ? key.column : key.expression))).toEqual([
      'x"; DROP TABLE y; --',
      'TenantId',
      'größe',
      'Created At',
    ]);
    expect(index?.include).toEqual(['Kind "Of"']);
    expect(index?.where).toBe("note <> 'it''s'");
  });

  it('allows the same index name in two different schemas', async () => {
    const { errors } = await load({
      'a.yaml': yaml('table: a.t', 'indexes: [{ name: same, columns: [x] }]'),
      'b.yaml': yaml('table: b.t', 'indexes: [{ name: same, columns: [x] }]'),
    });

    expect(errors).toEqual([]);
  });

  it('accepts a name of exactly 63 bytes', async () => {
    const { errors } = await load({ 'a.yaml': yaml('table: t', `indexes: [{ name: ${'é'.repeat(31)}x, columns: [a] }]`) });

    expect(errors).toEqual([]);
  });
});
