import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core (no browser download: `executablePath`). Each launch gets
 * a fresh profile directory, removed by `close()`. `.ci/run` installs the package when this file exists.
 */
export const CHROMIUM = '/usr/bin/chromium';

export interface TestBrowser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

export async function launchBrowser(options: { viewport?: { width: number; height: number }; colorScheme?: 'dark' | 'light'; javaScriptEnabled?: boolean } = {}): Promise<TestBrowser> {
  if (!chromiumAvailable()) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does it)`);
  const profile = await mkdtemp(path.join(tmpdir(), 'pgwarden-chromium-'));
  // launchPersistentContext is how a profile directory is given to playwright (it refuses --user-data-dir in args).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
    viewport: options.viewport ?? { width: 1440, height: 900 },
    colorScheme: options.colorScheme ?? 'dark',
    javaScriptEnabled: options.javaScriptEnabled ?? true,
    timeout: 30_000,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      await rm(profile, { recursive: true, force: true });
    },
  };
}
