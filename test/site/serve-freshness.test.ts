import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHealthCollector } from '../../engine/live-health/health-collector.ts';
import { startServeServer, type ServeServer } from '../../engine/serve/serve-server.ts';
import { siteSourceHash, type BuildSiteOptions } from '../../engine/serve/site-build.ts';
import { collectSiteData } from '../../engine/serve/site-data.ts';
import { createSiteKeeper } from '../../engine/serve/site-keeper.ts';

// The site keeper and the server with a stand-in for `astro build` that finishes when the test says so:
// what is checked is what the server presents while a build is under way, not Astro.
let cacheDir: string;
let server: ServeServer;
let history = 'history-1';
let releaseBuild: (() => void) | null = null;
let builds = 0;
const collector = createHealthCollector({ primaryUrl: 'postgres://nobody@127.0.0.1:1/none', intervalMs: 60_000 });

async function fakeBuild(options: BuildSiteOptions): Promise<{ ms: number }> {
  builds += 1;
  const built = history;
  await new Promise<void>((resolve) => (releaseBuild = resolve));
  await mkdir(options.outDir, { recursive: true });
  await writeFile(path.join(options.outDir, 'index.html'), `<!doctype html><html><head><title>h</title></head><body><p>built from ${built}</p></body></html>`);
  return { ms: 1 };
}

async function get(urlPath: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}${urlPath}`, { headers });
}

beforeAll(async () => {
  cacheDir = await mkdtemp(path.join(tmpdir(), 'pgwarden-freshness-'));
  // A build from an older history is already in the cache (another run's, or this one's before an apply).
  const base = path.join(cacheDir, `site-${await siteSourceHash()}`);
  await mkdir(path.join(base, 'current', 'live'), { recursive: true });
  await writeFile(path.join(base, 'current', 'index.html'), '<!doctype html><html><head><title>h</title></head><body><p>built from history-0</p></body></html>');
  await writeFile(path.join(base, 'current', 'live', 'index.html'), '<!doctype html><html><head></head><body>live</body></html>');
  await writeFile(path.join(base, 'history-signature'), 'history-0');
  const site = createSiteKeeper({
    cacheDir,
    historySignature: async () => history,
    collect: () => collectSiteData(null, { mode: 'serve', liveUrl: '', health: null }),
    build: fakeBuild,
    checkEveryMs: 0,
  });
  server = await startServeServer({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none', collector, site, host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  releaseBuild?.();
  await server?.close();
  await collector.stop();
  await rm(cacheDir, { recursive: true, force: true });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 20));
}

describe('serve while the site is being rebuilt', () => {
  it('serves a build of an older history marked as being rebuilt, and the new one as current once built', async () => {
    const stale = await get('/');
    expect(stale.headers.get('x-pgwarden-site')).toBe('rebuilding');
    const html = await stale.text();
    expect(html).toContain('built from history-0');
    expect(html).toContain('it is being rebuilt');
    expect(html).toContain('<meta http-equiv="refresh" content="5">');
    await until(() => releaseBuild !== null);
    releaseBuild!();
    releaseBuild = null;
    let page = await get('/');
    while (page.headers.get('x-pgwarden-site') !== 'current') page = await get('/');
    const fresh = await page.text();
    expect(fresh).toContain('built from history-1');
    expect(fresh).not.toContain('being rebuilt');
    expect(builds).toBe(1);
  });

  it('marks the pages again as soon as the history moves, before the rebuild is done', async () => {
    history = 'history-2';
    const page = await get('/');
    expect(page.headers.get('x-pgwarden-site')).toBe('rebuilding');
    expect(await page.text()).toContain('built from history-1');
    // The live page reads the API, not the history: it is never marked nor reloaded.
    const live = await get('/live/');
    expect(live.headers.get('x-pgwarden-site')).toBeNull();
    expect(await live.text()).not.toContain('being rebuilt');
    await until(() => releaseBuild !== null);
    releaseBuild!();
    releaseBuild = null;
    let again = await get('/');
    while (again.headers.get('x-pgwarden-site') !== 'current') again = await get('/');
    expect(await again.text()).toContain('built from history-2');
  });

  it('answers in brotli or gzip as the client asks, with the cache headers of pages', async () => {
    const br = await fetch(`${server.url}/`, { headers: { 'accept-encoding': 'gzip, br' } });
    expect(br.headers.get('content-encoding')).toBe('br');
    expect(br.headers.get('vary')).toBe('accept-encoding');
    expect(br.headers.get('cache-control')).toBe('no-cache');
    expect(await br.text()).toContain('built from history-2');
    const gz = await fetch(`${server.url}/`, { headers: { 'accept-encoding': 'gzip;q=1, br;q=0' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
  });
});
