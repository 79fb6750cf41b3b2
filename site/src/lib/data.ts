import { readFileSync } from 'node:fs';
import type { SiteData } from '../../../engine/serve/site-data.ts';

export type { SiteData, SiteRun, LedgerIndex, VacuumTable } from '../../../engine/serve/site-data.ts';
export type { TableSize } from '../../../engine/serve/table-sizes.ts';

let cached: SiteData | null = null;

/**
 * The build's data: the JSON file `pgwarden report` / `serve` wrote and named in PGWARDEN_SITE_DATA.
 * Without it (a bare `astro build` in site/) the site builds empty, which is what its own tests check first.
 */
export function siteData(): SiteData {
  if (cached) return cached;
  const file = process.env['PGWARDEN_SITE_DATA'];
  cached = file
    ? (JSON.parse(readFileSync(file, 'utf8')) as SiteData)
    : {
        version: 1,
        generatedAt: new Date().toISOString(),
        mode: 'report',
        database: null,
        serverVersion: null,
        liveUrl: null,
        runs: [],
        indexes: [],
        tables: [],
        sizes: [],
        health: null,
        thresholds: [],
        notes: ['built without data (PGWARDEN_SITE_DATA not set)'],
      };
  return cached;
}

/**
 * A link inside the site, under the configured base path. Pages are prerendered in Node, where the
 * build's PGWARDEN_SITE_BASE is the truth: Astro 5 leaves import.meta.env.BASE_URL at '/' in this
 * module (assets got the base, links did not), which broke every link of a site published under --base.
 */
export function href(path: string): string {
  const base = (process.env['PGWARDEN_SITE_BASE'] ?? import.meta.env.BASE_URL).replace(/\/$/, '');
  return `${base}/${path.replace(/^\//, '')}`;
}
