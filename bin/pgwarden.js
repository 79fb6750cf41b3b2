#!/usr/bin/env node
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// The published package ships dist/ and no engine/: it always runs the compiled CLI (no tsx).
// In a checkout the compiled CLI runs when it is up to date with the sources beside it (`npm install`
// builds it through `prepare`, `npm run build` rebuilds it); after an edit, until the next build, the
// sources run through tsx. Either way the CLI is never older than the code beside it (except in a checkout
// without dev dependencies, which has no tsx). "Up to date": no file under the build's inputs is newer than
// dist/.build-stamp, dated when the build started (a few ms of stat calls).
const root = fileURLToPath(new URL('..', import.meta.url));
const compiled = new URL('../dist/engine/cli/bin.js', import.meta.url);

function newestInput() {
  let newest = 0;
  for (const dir of ['engine', 'examples', 'policies']) {
    for (const entry of readdirSync(`${root}${dir}`, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) newest = Math.max(newest, statSync(`${entry.parentPath ?? entry.path}/${entry.name}`).mtimeMs);
    }
  }
  return newest;
}

function compiledIsCurrent() {
  const stamp = `${root}dist/.build-stamp`;
  return existsSync(stamp) && statSync(stamp).mtimeMs >= newestInput();
}

async function tsx() {
  try {
    return await import('tsx/esm/api');
  } catch {
    // No dev dependencies (a checkout pruned for production, like the Docker image): dist/ is what there is.
    return undefined;
  }
}

const sources = existsSync(`${root}engine`) && !compiledIsCurrent() ? await tsx() : undefined;
if (sources === undefined) {
  await import(compiled.href);
} else {
  sources.register();
  await import(new URL('../engine/cli/bin.ts', import.meta.url).href);
}
