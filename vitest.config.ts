import { defineConfig } from 'vitest/config';

// Unit tests are fast and pure; e2e tests drive real services (registry, containerd, dockerd, QEMU) and are slow,
// so they get long timeouts and at most two files at once (the suite targets a 2-core machine).
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    maxWorkers: 2,
    minWorkers: 1,
    silent: 'passed-only',
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
