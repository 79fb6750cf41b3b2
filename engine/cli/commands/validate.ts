import { type Io } from '../context.ts';
import { defineOptions, parse } from '../option-spec.ts';
import { loadOrFail } from '../load-policies.ts';

export const validateOptions = defineOptions({});

export async function validateCommand(args: readonly string[], io: Io): Promise<number> {
  const { values } = parse(args, validateOptions);
  const desired = await loadOrFail(values.policies, io, { json: values.json ?? false });
  const indexes = desired.tables.reduce((n, t) => n + t.indexes.length, 0);
  const replicas = desired.routing?.replicas.length;
  if (values.json) io.stdout(`${JSON.stringify({ valid: true, files: desired.files, tables: desired.tables.length, indexes, ...(replicas === undefined ? {} : { replicas }) }, null, 2)}\n`);
  else io.stdout(`${desired.files.length} policy file(s) valid: ${desired.tables.length} table(s), ${indexes} index(es)${replicas === undefined ? '' : `, routing to ${replicas} replica(s)`}.\n`);
  return 0;
}
