import { chmod, cp, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import { scratchFolder } from '../support/scratch.ts';

export const BUNDLED_POLICIES = fileURLToPath(new URL('../../policies', import.meta.url));

/** The indexes the bundled policies declare for the example's workload: what the advisor must find by itself. */
export const WORKLOAD_INDEXES = ['events_tenant_created_idx', 'events_server_created_idx', 'incidents_tenant_open_idx', 'deployments_tenant_status_created_idx'];

/**
 * A project directory whose `policies/` is a copy of the bundled policies without the named index
 * entries. They are cut out of the text (with the comment lines just above each), so everything else in
 * the files is exactly as written — the state a team is in before anyone wrote those indexes.
 */
export async function policiesWithout(names: readonly string[]): Promise<string> {
  const project = await scratchFolder('advise-project-');
  await chmod(project, 0o755);
  const dir = path.join(project, 'policies');
  await cp(BUNDLED_POLICIES, dir, { recursive: true });
  for (const file of await readdir(dir)) {
    if (!file.endsWith('.yaml')) continue;
    const full = path.join(dir, file);
    let text = await readFile(full, 'utf8');
    const cuts: [number, number][] = [];
    for (const document of parseAllDocuments(text)) {
      const contents = document.contents;
      const indexes = isMap(contents) ? contents.get('indexes', true) : undefined;
      if (!isSeq(indexes)) continue;
      const before = cuts.length;
      for (const item of indexes.items) {
        const name = isMap(item) ? item.get('name', true) : undefined;
        if (!isScalar(name) || !names.includes(String(name.value)) || !isMap(item) || item.range === undefined || item.range === null) continue;
        let start = text.lastIndexOf('\n', item.range[0] - 1) + 1;
        // The comment lines right above the entry describe it: they go with it.
        for (;;) {
          const previous = text.lastIndexOf('\n', start - 2) + 1;
          if (start === 0 || !/^\s*#/.test(text.slice(previous, start - 1))) break;
          start = previous;
        }
        const newline = text.indexOf('\n', item.range[1] - 1);
        cuts.push([start, newline === -1 ? text.length : newline + 1]);
      }
      // A list left empty goes with its key: nobody writes `indexes:` with nothing under it.
      const pair = isMap(contents) ? contents.items.find((p) => isScalar(p.key) && p.key.value === 'indexes') : undefined;
      const keyAt = pair && isScalar(pair.key) ? pair.key.range?.[0] : undefined;
      if (cuts.length - before === indexes.items.length && keyAt !== undefined) {
        const start = text.lastIndexOf('\n', keyAt - 1) + 1;
        cuts.push([start, text.indexOf('\n', keyAt) + 1]);
      }
    }
    for (const [start, end] of cuts.sort((a, b) => b[0] - a[0])) text = text.slice(0, start) + text.slice(end);
    await writeFile(full, text);
  }
  return project;
}
