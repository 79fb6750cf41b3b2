// `npm run build` (also run by `npm install` through `prepare`): compile, copy the assets, then write
// dist/.build-stamp dated when the build started. bin/pgwarden.js runs dist/ only while no source is
// newer than that stamp, so a file saved during a build counts as not built.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, utimesSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const started = new Date();
execFileSync(fileURLToPath(new URL('../node_modules/.bin/tsc', import.meta.url)), ['-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
await import('./copy-assets.mjs');
const { writeValidators } = await import('./compile-validators.mjs');
await writeValidators();
const stamp = `${root}dist/.build-stamp`;
closeSync(openSync(stamp, 'w'));
utimesSync(stamp, started, started);
