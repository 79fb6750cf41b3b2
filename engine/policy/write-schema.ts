import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderPolicyJsonSchema } from './schema.ts';

/**
 * Writes `schema/policy.schema.json`, the file users point their editor at. It is generated from
 * `schema.ts` and kept in the tree; a test fails when the two drift apart.
 *
 * Run: `node --import tsx engine/policy/write-schema.ts`
 */
export const policySchemaFile = fileURLToPath(new URL('../../schema/policy.schema.json', import.meta.url));

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await writeFile(policySchemaFile, renderPolicyJsonSchema());
  console.log(`wrote ${policySchemaFile}`);
}
