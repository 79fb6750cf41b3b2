import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PolicyError } from '../../engine/policy/desired.ts';
import { loadPolicies } from '../../engine/policy/load.ts';
import { policyDir, yaml, type PolicyDir } from './policy-dir.ts';

let policies: PolicyDir | undefined;

afterEach(async () => {
  await policies?.remove();
  policies = undefined;
});

/** Loads the files and returns the errors as `file:line:col: message`, file relative to the policies directory. */
async function errorsOf(files: Readonly<Record<string, string>>): Promise<string[]> {
  const errors = await errorValues(files);
  return errors.map(({ file, line, col, message }) => `${path.relative(policies?.dir ?? '', file)}:${line}:${col}: ${message}`);
}

async function errorValues(files: Readonly<Record<string, string>>): Promise<PolicyError[]> {
  policies = await policyDir(files);
  return (await loadPolicies(policies.dir)).errors;
}

/** One index on table `t`, its lines starting on line 3. */
function oneIndex(...lines: string[]): Record<string, string> {
  return { 'a.yaml': yaml('table: t', 'indexes:', ...lines) };
}

describe('policy errors', () => {
  describe('from the schema', () => {
    it('name the file as the directory was given, with the line and column of the offending node', async () => {
      const errors = await errorValues(oneIndex('  - name: i', '    colums: [a]', '    columns: [a]'));

      expect(errors).toEqual([
        {
          file: policies?.file('a.yaml'),
          line: 4,
          col: 5,
          message:
            'unknown key "colums" in index (expected one of: name, columns, method, unique, nulls_not_distinct, where, include, with)',
          hint: 'did you mean "columns"?',
        },
      ]);
    });

    it('point a wrong type at the value and say what was expected', async () => {
      const errors = await errorValues(oneIndex('  - name: i', '    columns: [a]', '    unique: yes'));

      expect(errors).toEqual([
        {
          file: policies?.file('a.yaml'),
          line: 5,
          col: 13,
          message: '"unique" must be true or false, got "yes"',
          hint: 'YAML 1.2 reads yes/no/on/off as text; write true or false',
        },
      ]);
    });

    it('list the allowed values of an enumeration', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    columns: [a]', '    method: bree'))).toEqual([
        'a.yaml:5:13: "method" must be one of btree, hash, gin, gist, brin, spgist, got "bree"',
      ]);
    });

    it('point missing keys at the mapping that lacks them, in one message', async () => {
      expect(await errorsOf(oneIndex('  - method: gin'))).toEqual(['a.yaml:3:5: index is missing "name" and "columns"']);
    });

    it('report an index key with both column and expression once, on the key', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    columns: [{ column: a, expression: lower(a) }]'))).toEqual([
        'a.yaml:4:15: index key takes "column" or "expression", not both',
      ]);
    });

    it('report an index key with neither column nor expression once, on the key', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    columns: [{ order: desc }]'))).toEqual([
        'a.yaml:4:15: index key needs "column" or "expression"',
      ]);
    });

    it('report an unknown key inside an index key without the noise of the other alternative', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    columns: [{ column: a, orderr: desc }]'))).toEqual([
        'a.yaml:4:28: unknown key "orderr" in index key (expected one of: column, expression, order, nulls, opclass, collation)',
      ]);
    });

    it('report an index key of the wrong type as one message naming both accepted forms', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    columns: [a, 42]'))).toEqual([
        'a.yaml:4:18: item 2 of "columns" must be a string or a mapping, got 42',
      ]);
    });

    it('reject an empty name', async () => {
      expect(await errorsOf(oneIndex('  - name: ""', '    columns: [a]'))).toEqual(['a.yaml:3:11: "name" must not be empty']);
    });

    it('reject an index without key columns', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    columns: []'))).toEqual([
        'a.yaml:4:14: "columns" must list at least one item',
      ]);
    });
  });

  describe('about documents', () => {
    it('reject a document without `table:`', async () => {
      expect(await errorsOf({ 'a.yaml': yaml('table: t', '---', 'tabel: u') })).toEqual([
        'a.yaml:3:1: expected a table policy, routing policy or defaults document: `table:`, `routing:` or `defaults:` is missing',
      ]);
    });

    it('report YAML syntax errors with their position', async () => {
      expect(await errorsOf({ 'a.yaml': yaml('table: t', 'indexes: [{ name: i, columns: [a] }') })).toEqual([
        'a.yaml:3:1: invalid YAML: flow sequence in block collection must be sufficiently indented and end with a ]',
      ]);
    });

    it('report a duplicate key at its second occurrence', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    name: j', '    columns: [a]'))).toEqual([
        'a.yaml:4:5: duplicate key "name"',
      ]);
    });

    it('reject a table name with more than one dot unless the schema is given separately', async () => {
      expect(await errorsOf({ 'a.yaml': yaml('table: a.b.c') })).toEqual(['a.yaml:1:8: table "a.b.c" has more than one dot']);
    });

    it('report an unreadable directory as an error, not an exception', async () => {
      policies = await policyDir({});
      const { errors } = await loadPolicies(path.join(policies.dir, 'missing'));

      expect(errors).toEqual([
        {
          file: path.join(policies.dir, 'missing'),
          line: 1,
          col: 1,
          message: 'cannot read the policy directory: it does not exist',
        },
      ]);
    });

    it('reject a document that is not a mapping', async () => {
      expect(await errorsOf({ 'a.yaml': yaml('- table: t') })).toEqual(['a.yaml:1:1: expected a table policy, routing policy or defaults document, got a list']);
    });

    it('reject a table key this version does not know', async () => {
      expect(await errorsOf({ 'a.yaml': yaml('table: t', 'sharding: {}') })).toEqual([
        'a.yaml:2:1: unknown key "sharding" in table policy (expected one of: table, schema, managed, indexes, partitioning, vacuum)',
      ]);
    });
  });

  describe('across documents and files', () => {
    it('reject two policies for the same table, naming both places', async () => {
      policies = await policyDir({ 'a.yaml': yaml('table: public.events'), 'b/c.yaml': yaml('# events again', 'table: events') });
      const { errors } = await loadPolicies(policies.dir);

      expect(errors).toEqual([
        {
          file: policies.file('b/c.yaml'),
          line: 2,
          col: 1,
          message: `table public.events has two policies: here and at ${policies.file('a.yaml')}:1:1`,
          hint: 'merge them into one document',
        },
      ]);
    });

    it('reject one index name used twice in a schema, even on different tables, naming both places', async () => {
      policies = await policyDir({
        'a.yaml': yaml('table: a', 'indexes:', '  - name: by_tenant', '    columns: [tenant_id]'),
        'b.yaml': yaml('table: b', 'indexes:', '  - name: other', '    columns: [x]', '  - name: by_tenant', '    columns: [tenant_id]'),
      });
      const { errors } = await loadPolicies(policies.dir);

      expect(errors).toEqual([
        {
          file: policies.file('b.yaml'),
          line: 5,
          col: 5,
          message: `index "by_tenant" is declared twice in schema "public": here and at ${policies.file('a.yaml')}:3:5`,
          hint: 'index names are unique per schema in PostgreSQL, not per table',
        },
      ]);
    });

    it('reject an index named like a table of the same schema, since they share a namespace', async () => {
      const errors = await errorsOf({
        'a.yaml': yaml('table: events', '---', 'table: t', 'indexes: [{ name: events, columns: [a] }]'),
      });

      expect(errors).toEqual([
        `a.yaml:4:11: index "events" has the name of table public.events (${policies?.file('a.yaml')}:1:1)`,
      ]);
    });
  });

  describe('about an index', () => {
    it('reject a column listed twice among the keys', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    columns: [a, b, a desc]'))).toEqual([
        'a.yaml:4:21: column "a" is listed twice in index "i"',
      ]);
    });

    it('reject an include column that is also a key column', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    columns: [a, b]', '    include: [c, b]'))).toEqual([
        'a.yaml:5:18: column "b" is both a key column and an include column',
      ]);
    });

    it('reject unique with a method other than btree', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    method: hash', '    unique: true', '    columns: [a]'))).toEqual([
        'a.yaml:5:13: "unique" needs method btree, not hash',
      ]);
    });

    it('reject a sort order or nulls position with a method other than btree', async () => {
      expect(
        await errorsOf(oneIndex('  - name: i', '    method: gist', '    columns: [a desc, { column: b, nulls: first }]')),
      ).toEqual([
        'a.yaml:5:15: "desc" needs method btree; gist indexes have no sort order',
        'a.yaml:5:43: "nulls first" needs method btree; gist indexes have no sort order',
      ]);
    });

    it('reject nulls_not_distinct without unique', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    columns: [a]', '    nulls_not_distinct: true'))).toEqual([
        'a.yaml:5:25: "nulls_not_distinct" needs "unique: true"',
      ]);
    });

    it('reject a malformed column string, with the expected syntax as a hint', async () => {
      const errors = await errorValues(oneIndex('  - name: i', '    columns: ["tenant_id desc desc"]'));

      expect(errors.map(({ line, col, message, hint }) => ({ line, col, message, hint }))).toEqual([
        {
          line: 4,
          col: 15,
          message: 'index key "tenant_id desc desc" gives the sort order twice ("desc" and "desc")',
          hint: 'expected <column> [asc|desc] [nulls first|last]; for an expression, write {expression: ...}',
        },
      ]);
    });

    it('reject an unterminated quoted column name', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    columns:', '      - \'"tenant_id desc\''))).toEqual([
        'a.yaml:5:9: index key "\\"tenant_id desc" has an unterminated quoted name',
      ]);
    });

    it('reject a hash index on more than one column', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    method: hash', '    columns: [a, b]'))).toEqual([
        'a.yaml:5:14: a hash index takes exactly one column, got 2',
      ]);
    });

    it('reject include with a method that has no INCLUDE', async () => {
      expect(await errorsOf(oneIndex('  - name: i', '    method: gin', '    columns: [a]', '    include: [b]'))).toEqual([
        'a.yaml:6:14: "include" needs method btree, gist or spgist, not gin',
      ]);
    });

    it('check a well-formed index even when another index of the document is not', async () => {
      expect(
        await errorsOf(oneIndex('  - name: i', '    columns: [a]', '    unique: 1', '  - name: j', '    columns: [a, a]')),
      ).toEqual(['a.yaml:5:13: "unique" must be true or false, got 1', 'a.yaml:7:18: column "a" is listed twice in index "j"']);
    });

    it('reject a name over 63 bytes, counting UTF-8 bytes rather than characters', async () => {
      expect(await errorsOf(oneIndex(`  - name: ${'é'.repeat(32)}`, '    columns: [a]'))).toEqual([
        `a.yaml:3:11: index name "${'é'.repeat(32)}" is 64 bytes; PostgreSQL allows at most 63`,
      ]);
    });
  });

  describe('of one run', () => {
    it('are all reported together, in file order', async () => {
      const errors = await errorsOf({
        'a.yaml': yaml(
          'table: t',
          'indexes:',
          '  - name: i',
          '    colums: [a]',
          '    columns: [a desc desc]',
          '    unique: yes',
        ),
        'b.yaml': yaml('table: u', 'managed: some'),
      });

      expect(errors).toEqual([
        'a.yaml:4:5: unknown key "colums" in index (expected one of: name, columns, method, unique, nulls_not_distinct, where, include, with)',
        'a.yaml:5:15: index key "a desc desc" gives the sort order twice ("desc" and "desc")',
        'a.yaml:6:13: "unique" must be true or false, got "yes"',
        'b.yaml:2:10: "managed" must be one of partial, full, got "some"',
      ]);
    });

    it('leave the desired state without the documents that have mistakes', async () => {
      policies = await policyDir({ 'a.yaml': yaml('table: good', '---', 'table: bad', 'managed: some') });
      const { desired } = await loadPolicies(policies.dir);

      expect(desired.tables.map((table) => table.name)).toEqual(['good']);
    });
  });
});
