import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: a few files at once, each may start its own PostgreSQL.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
