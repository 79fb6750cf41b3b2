// The pgwarden report site. `pgwarden report` and `pgwarden serve` build it with `astro build`, passing
// where the data file is and where the output goes through the environment (see engine/serve/site-build.ts).
import { defineConfig } from 'astro/config';
import react from '@astrojs/react';

const env = process.env;

export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  outDir: env.PGWARDEN_SITE_OUT ?? './dist',
  // Build caches away from node_modules, which may be read-only in an installed package.
  cacheDir: env.PGWARDEN_SITE_CACHE ?? './.astro/cache',
  base: env.PGWARDEN_SITE_BASE ?? '/',
  output: 'static',
  trailingSlash: 'ignore',
  build: { format: 'directory', inlineStylesheets: 'never' },
  integrations: [react()],
  devToolbar: { enabled: false },
  vite: {
    cacheDir: env.PGWARDEN_SITE_CACHE ? `${env.PGWARDEN_SITE_CACHE}/vite` : './.astro/cache/vite',
    logLevel: 'warn',
    build: { chunkSizeWarningLimit: 400 },
  },
});
