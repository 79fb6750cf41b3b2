import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Integration tests build indexes and wait on locks for real; the defaults are too short for that.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
