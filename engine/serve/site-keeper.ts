import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildSite, isBuilt, siteSourceHash } from './site-build.ts';
import type { SiteData } from './site-data.ts';

/**
 * The built copy `pgwarden serve` serves. Built on first use into the cache directory (keyed by the
 * site's source hash, so an upgrade builds afresh), then rebuilt in the background when the history
 * changes — the live page and the API are always current; the static pages follow within a minute.
 */
export interface SiteKeeper {
  /** The directory to serve, once a build exists (the first build is awaited). */
  ready(): Promise<string>;
  /** Rebuild if the history moved since the last build (or `force`); never two builds at once. */
  refresh(force?: boolean): Promise<void>;
  readonly building: boolean;
}

export interface SiteKeeperOptions {
  readonly cacheDir: string;
  /** A cheap fingerprint of the history (count, newest id, last finish); null when the database is unreachable. */
  readonly historySignature: () => Promise<string | null>;
  readonly collect: () => Promise<SiteData>;
  readonly log?: (line: string) => void;
}

export function createSiteKeeper(options: SiteKeeperOptions): SiteKeeper {
  let dir: string | null = null;
  let first: Promise<string> | null = null;
  let running: Promise<void> | null = null;
  const log = options.log ?? (() => undefined);

  const paths = async (): Promise<{ out: string; signatureFile: string }> => {
    const base = path.join(options.cacheDir, `site-${await siteSourceHash()}`);
    return { out: path.join(base, 'current'), signatureFile: path.join(base, 'history-signature') };
  };

  const build = async (signature: string | null, why: string): Promise<string> => {
    const { out, signatureFile } = await paths();
    log(`building the report site (${why})…`);
    const data = await options.collect();
    const result = await buildSite({ data, outDir: out });
    await writeFile(signatureFile, signature ?? '');
    log(`site built in ${(result.ms / 1000).toFixed(1)} s (${data.runs.length} run(s))`);
    return out;
  };

  const refresh = async (force = false): Promise<void> => {
    if (running) return running;
    running = (async () => {
      const { out, signatureFile } = await paths();
      const signature = await options.historySignature().catch(() => null);
      const built = await readFile(signatureFile, 'utf8').catch(() => null);
      // Unknown (database down) is not a change: keep what we have.
      if (!force && (await isBuilt(out)) && (signature === null || signature === built)) return;
      dir = await build(signature, force ? 'asked to' : (await isBuilt(out)) ? 'the history changed' : 'no build yet');
    })()
      .catch((error: unknown) => log(`site rebuild failed: ${(error as Error).message}`))
      .finally(() => (running = null));
    return running;
  };

  return {
    ready() {
      if (dir) return Promise.resolve(dir);
      first ??= (async () => {
        const { out } = await paths();
        if (await isBuilt(out)) {
          dir = out;
          void refresh();
          return out;
        }
        const signature = await options.historySignature().catch(() => null);
        dir = await build(signature, 'first run; later starts reuse it');
        return dir;
      })().catch((error: unknown) => {
        first = null;
        throw error;
      });
      return first;
    },
    refresh,
    get building() {
      return running !== null;
    },
  };
}
