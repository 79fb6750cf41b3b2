#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// In a checkout the sources run through tsx, so the CLI is never older than the code beside it;
// the published package (which ships dist/ and no engine/) runs the compiled CLI.
const sources = new URL('../engine/cli/bin.ts', import.meta.url);
if (existsSync(fileURLToPath(sources))) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import(new URL('../dist/engine/cli/bin.js', import.meta.url).href);
}
