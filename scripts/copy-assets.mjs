// Files the compiled package reads at run time next to its modules: tsc copies only .ts output.
import { cpSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

for (const [from, to] of [
  ['engine/render/templates', 'dist/engine/render/templates'],
  ['examples/schema.sql', 'dist/examples/schema.sql'],
  ['policies', 'dist/policies'],
  // `pgwarden demo`'s routing step reads this policy.
  ['examples/routing', 'dist/examples/routing'],
]) {
  cpSync(`${root}${from}`, `${root}${to}`, { recursive: true });
}
