import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { SiteData } from './site-data.ts';

/**
 * Builds the Astro site with `astro build` in a child process, offline, with telemetry off. The
 * site's sources are copied to a scratch directory first: Astro writes its `.astro/` state next to the
 * sources, which a concurrent build (tests, serve's background rebuild) must not share. The scratch
 * directory sits beside the `node_modules` that holds Astro, because Vite must find the packages by
 * walking up from the sources (a symlinked node_modules breaks Astro's client build).
 * The data reaches the pages as a JSON file named in PGWARDEN_SITE_DATA.
 */

export class SiteBuildError extends Error {}

/** The site's sources: `site/` beside `engine/` in a checkout, or in the package. */
export function siteSourceDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [path.resolve(here, '../../site'), path.resolve(here, '../../../site')]) {
    if (existsSync(path.join(candidate, 'astro.config.mjs'))) return candidate;
  }
  throw new SiteBuildError('the report site sources (site/) are missing from this installation');
}

function astroPaths(): { bin: string; nodeModules: string } {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('astro/package.json');
  } catch {
    // A partial install (node_modules pruned by hand, a bundler) may lack it: say so in one line.
    throw new SiteBuildError('the report site needs Astro, which is not installed: run `npm install`');
  }
  const astroDir = path.dirname(pkg);
  return { bin: path.join(astroDir, 'astro.js'), nodeModules: path.dirname(astroDir) };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out.sort();
}

/** A hash of the site's sources and the Astro version: a cached build is reused only while it matches. */
export async function siteSourceHash(siteDir = siteSourceDir()): Promise<string> {
  const hash = createHash('sha256');
  const require = createRequire(import.meta.url);
  for (const pkg of ['astro/package.json', 'react/package.json', 'uplot/package.json']) {
    const version = (JSON.parse(await readFile(require.resolve(pkg), 'utf8')) as { version: string }).version;
    hash.update(`${pkg}@${version}\n`);
  }
  for (const file of await filesUnder(siteDir)) {
    hash.update(path.relative(siteDir, file));
    hash.update(await readFile(file));
  }
  return hash.digest('hex').slice(0, 16);
}

export interface BuildSiteOptions {
  readonly data: SiteData;
  readonly outDir: string;
  /** Path prefix the site is published under (`/repo/` on GitHub Pages); default `/`. */
  readonly base?: string;
  readonly timeoutMs?: number;
}

export interface BuildResult {
  readonly outDir: string;
  readonly ms: number;
}

/** One `astro build` of the given data into `outDir` (replaced as a whole). */
export async function buildSite(options: BuildSiteOptions): Promise<BuildResult> {
  const t0 = performance.now();
  const source = siteSourceDir();
  const { bin, nodeModules } = astroPaths();
  const scratchParent = path.join(path.dirname(nodeModules), '.pgwarden-site-build');
  try {
    await mkdir(scratchParent, { recursive: true });
  } catch (error) {
    throw new SiteBuildError(`cannot build the site: ${scratchParent} cannot be created (${(error as NodeJS.ErrnoException).code ?? 'error'}); install pgwarden where it may write`);
  }
  const scratch = await mkdtemp(path.join(scratchParent, 'build-'));
  const outDir = path.resolve(options.outDir);
  const staging = `${outDir}.building-${process.pid}-${Date.now()}`;
  try {
    const root = path.join(scratch, 'site');
    await cp(source, root, { recursive: true, filter: (src) => !/[/\\](node_modules|dist|\.astro)([/\\]|$)/.test(src.slice(source.length)) });
    const dataFile = path.join(scratch, 'site-data.json');
    await writeFile(dataFile, JSON.stringify(options.data));
    await mkdir(path.dirname(outDir), { recursive: true });
    const result = await execa(process.execPath, [bin, 'build', '--root', root], {
      cwd: root,
      reject: false,
      stdin: 'ignore',
      timeout: options.timeoutMs ?? 300_000,
      env: {
        ASTRO_TELEMETRY_DISABLED: '1',
        NODE_ENV: 'production',
        PGWARDEN_SITE_DATA: dataFile,
        PGWARDEN_SITE_OUT: staging,
        PGWARDEN_SITE_CACHE: path.join(scratch, 'cache'),
        PGWARDEN_SITE_BASE: options.base ?? '/',
      },
      extendEnv: true,
    });
    if (result.exitCode !== 0 || !existsSync(path.join(staging, 'index.html'))) {
      // Astro prints a page's render error as a bare message ("Cannot read properties of undefined ...")
      // followed by its stack: say that message, else any line that names an error, else the exit code.
      const lines = `${String(result.stdout ?? '')}\n${String(result.stderr ?? '')}`.split('\n').map((l) => l.trim()).filter(Boolean);
      const stack = lines.findIndex((l) => l === 'Stack trace:');
      const named = lines.filter((l) => /error|Error/.test(l)).slice(-3);
      const reason = stack > 0 ? `${lines[stack - 1]}${lines[stack + 1] ? ` (${lines[stack + 1]})` : ''}` : named.join(' ');
      throw new SiteBuildError(`astro build failed${result.timedOut ? ' (timed out)' : ''}: ${reason || `exit code ${result.exitCode}`}`);
    }
    // Swap the new build in whole: a reader never sees half a site.
    const old = `${outDir}.old-${process.pid}-${Date.now()}`;
    if (existsSync(outDir)) await rename(outDir, old).catch(() => undefined);
    try {
      await rename(staging, outDir);
    } catch (error) {
      // Another process swapped its build in at the same moment: theirs is as good as ours.
      if (!(await isBuilt(outDir))) throw error;
    }
    await rm(old, { recursive: true, force: true });
    return { outDir, ms: performance.now() - t0 };
  } finally {
    await rm(staging, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
    await rmdir(scratchParent).catch(() => undefined);
  }
}

/** Where `serve` keeps its built copies: $PGWARDEN_CACHE_DIR, else $XDG_CACHE_HOME/pgwarden, else ~/.cache/pgwarden. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['PGWARDEN_CACHE_DIR'] ?? path.join(env['XDG_CACHE_HOME'] ?? path.join(homedir(), '.cache'), 'pgwarden');
}

export async function isBuilt(dir: string): Promise<boolean> {
  return stat(path.join(dir, 'index.html')).then(
    () => true,
    () => false,
  );
}
