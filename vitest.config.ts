import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // End-to-end tests start real processes and sockets: give them room on a 2-core machine,
    // but never let one hang the run.
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
