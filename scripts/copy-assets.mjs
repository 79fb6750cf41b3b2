// Files the compiled package reads at run time next to its modules: tsc copies only .ts output.
import { cpSync } from 'node:fs';

for (const [from, to] of [
  ['engine/render/templates', 'dist/engine/render/templates'],
  ['examples/schema.sql', 'dist/examples/schema.sql'],
  ['policies', 'dist/policies'],
]) {
  cpSync(from, to, { recursive: true });
}
