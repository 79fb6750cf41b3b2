import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildSite, isBuilt, siteSourceHash, type BuildSiteOptions } from './site-build.ts';
import type { SiteData } from './site-data.ts';

/**
 * Whether the built pages show the history as it is now: `current`; `rebuilding` (the history moved
 * since the build and a new one is under way: the old pages are served marked as such); `failed` (the
 * rebuild for this history failed: the old pages are served marked as such until the next attempt).
 */
export type SiteFreshness =
  | { readonly kind: 'current' }
  | { readonly kind: 'rebuilding' }
  | { readonly kind: 'failed'; readonly error: string };

/**
 * The built copy `pgwarden serve` serves. Built on first use into the cache directory (keyed by the
 * site's source hash, so an upgrade builds afresh), then rebuilt in the background when the history
 * changes. A build never shows an older history as current: `freshness()` compares the history with the
 * one the build was made from (at most every `checkEveryMs`), and while they differ the server marks the
 * pages it serves as being rebuilt.
 */
export interface SiteKeeper {
  /** The directory to serve, once a build exists (the first build is awaited). */
  ready(): Promise<string>;
  /** Rebuild if the history moved since the last build (or `force`); never two builds at once. */
  refresh(force?: boolean): Promise<void>;
  /** Is the build the current history? Starts a rebuild when it is not. */
  freshness(): Promise<SiteFreshness>;
  readonly building: boolean;
}

export interface SiteKeeperOptions {
  readonly cacheDir: string;
  /** A cheap fingerprint of the history (count, newest id, last finish); null when the database is unreachable. */
  readonly historySignature: () => Promise<string | null>;
  readonly collect: () => Promise<SiteData>;
  readonly log?: (line: string) => void;
  /** Builds the site (default `astro build` through buildSite); tests give a quicker one. */
  readonly build?: (options: BuildSiteOptions) => Promise<{ readonly ms: number }>;
  /** The history is looked at no more often than this when pages are asked for; default 2 s. */
  readonly checkEveryMs?: number;
}

export function createSiteKeeper(options: SiteKeeperOptions): SiteKeeper {
  let dir: string | null = null;
  let first: Promise<string> | null = null;
  let running: Promise<void> | null = null;
  let buildingNow = false;
  let failure: { readonly signature: string | null; readonly error: string } | null = null;
  let checked: { readonly at: number; readonly verdict: SiteFreshness } | null = null;
  let checking: Promise<SiteFreshness> | null = null;
  const checkEveryMs = options.checkEveryMs ?? 2000;
  const log = options.log ?? (() => undefined);

  const paths = async (): Promise<{ out: string; signatureFile: string }> => {
    const base = path.join(options.cacheDir, `site-${await siteSourceHash()}`);
    return { out: path.join(base, 'current'), signatureFile: path.join(base, 'history-signature') };
  };

  const build = async (signature: string | null, why: string): Promise<string> => {
    const { out, signatureFile } = await paths();
    log(`building the report site (${why})…`);
    buildingNow = true;
    try {
      const data = await options.collect();
      const result = await (options.build ?? buildSite)({ data, outDir: out });
      await writeFile(signatureFile, signature ?? '');
      log(`site built in ${(result.ms / 1000).toFixed(1)} s (${data.runs.length} run(s))`);
    } finally {
      buildingNow = false;
      checked = null;
    }
    return out;
  };

  const refresh = async (force = false): Promise<void> => {
    if (running) return running;
    let signature: string | null = null;
    running = (async () => {
      const { out, signatureFile } = await paths();
      signature = await options.historySignature().catch(() => null);
      const built = await readFile(signatureFile, 'utf8').catch(() => null);
      // Unknown (database down) is not a change: keep what we have.
      if (!force && (await isBuilt(out)) && (signature === null || signature === built)) return;
      dir = await build(signature, force ? 'asked to' : (await isBuilt(out)) ? 'the history changed' : 'no build yet');
      failure = null;
    })()
      .catch((error: unknown) => {
        failure = { signature, error: (error as Error).message };
        log(`site rebuild failed: ${failure.error}`);
      })
      .finally(() => {
        running = null;
        checked = null;
      });
    return running;
  };

  const check = async (): Promise<SiteFreshness> => {
    const { signatureFile } = await paths();
    const signature = await options.historySignature().catch(() => null);
    const built = await readFile(signatureFile, 'utf8').catch(() => null);
    // The database is unreachable: nothing says the build is behind, and nothing newer can be built.
    if (signature === null || signature === built) return { kind: 'current' };
    // A failed rebuild is retried by the periodic refresh, not by every page view.
    if (failure && failure.signature === signature) return { kind: 'failed', error: failure.error };
    void refresh();
    return { kind: 'rebuilding' };
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
    async freshness() {
      if (buildingNow) return { kind: 'rebuilding' };
      if (checked && Date.now() - checked.at < checkEveryMs) return checked.verdict;
      checking ??= check()
        .then((verdict) => {
          checked = { at: Date.now(), verdict };
          return verdict;
        })
        .finally(() => (checking = null));
      return checking;
    },
    get building() {
      return buildingNow;
    },
  };
}
