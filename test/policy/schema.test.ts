import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { policyJsonSchema, renderPolicyJsonSchema } from '../../engine/policy/schema.ts';
import { policySchemaFile } from '../../engine/policy/write-schema.ts';

type Schema = Readonly<Record<string, unknown>>;

/** Every object schema in the published schema, with its JSON path. */
function objectSchemas(schema: unknown, at = '#'): { at: string; schema: Schema }[] {
  if (Array.isArray(schema)) return schema.flatMap((item, i) => objectSchemas(item, `${at}/${i}`));
  if (typeof schema !== 'object' || schema === null) return [];
  const entries = Object.entries(schema);
  const here = (schema as Schema)['type'] === 'object' ? [{ at, schema: schema as Schema }] : [];
  return [...here, ...entries.flatMap(([key, value]) => (key === 'examples' ? [] : objectSchemas(value, `${at}/${key}`)))];
}

describe('the published policy schema', () => {
  it('is exactly what the code generates (run `node --import tsx engine/policy/write-schema.ts` after changing schema.ts)', async () => {
    expect(await readFile(policySchemaFile, 'utf8')).toBe(renderPolicyJsonSchema());
  });

  it('compiles under ajv in strict mode', () => {
    const ajv = new Ajv({ strict: true, allErrors: true });
    expect(() => ajv.compile(policyJsonSchema())).not.toThrow();
  });

  it('accepts a table policy and rejects an unknown key', () => {
    const validate = new Ajv({ strict: true }).compile(policyJsonSchema());
    const policy = { table: 'events', indexes: [{ name: 'i', columns: ['a desc', { expression: 'lower(b)' }] }] };
    expect(validate(policy)).toBe(true);
    expect(validate({ ...policy, indexs: [] })).toBe(false);
  });

  it('closes every object to unknown keys', () => {
    const open = objectSchemas(policyJsonSchema()).filter(({ schema }) => schema['additionalProperties'] !== false);
    expect(open.map(({ at }) => at)).toEqual([]);
  });

  it('describes every property, for editors to show', () => {
    const undescribed = objectSchemas(policyJsonSchema()).flatMap(({ at, schema }) =>
      Object.entries((schema['properties'] ?? {}) as Schema)
        .filter(([, property]) => typeof (property as Schema)['description'] !== 'string')
        .map(([name]) => `${at}/properties/${name}`),
    );
    expect(undescribed).toEqual([]);
  });
});
