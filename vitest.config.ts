import { defineConfig } from 'vitest/config';

// Unit tests are fast and pure; e2e tests drive real services (registry, containerd, dockerd, QEMU) and are slow,
// so they get long timeouts and at most two files at once (the suite targets a 2-core machine).
const common = { testTimeout: 120_000, hookTimeout: 300_000, pool: 'forks' } as const;

// Issue 17 item 2: these files run twice, as two projects, their VMs booted cold (RUNCVM_TEMPLATE=off) and restored
// from VM templates (RUNCVM_TEMPLATE=on, a node setting the fixture's runtime wrappers export: test/e2e/runcvm/setup.ts
// VM_MODE); each run proves how its VMs started (VmStarts). The parity file holds the signal cases (SIGTERM, SIGKILL,
// PID 1), exec.test.ts an exec's.
// One mode: `npx vitest run --project vm-template test/e2e/exec.test.ts`.
const VM_MODE_FILES = ['test/e2e/runtime-parity.test.ts', 'test/e2e/network.test.ts', 'test/e2e/volumes.test.ts', 'test/e2e/exec.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    maxWorkers: 2,
    minWorkers: 1,
    silent: 'passed-only',
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    projects: [
      { test: { ...common, name: 'main', include: ['test/unit/**/*.test.ts', 'test/e2e/**/*.test.ts'], exclude: VM_MODE_FILES } },
      { test: { ...common, name: 'vm-cold', include: VM_MODE_FILES, env: { RUNCVM_TEMPLATE: 'off' } } },
      { test: { ...common, name: 'vm-template', include: VM_MODE_FILES, env: { RUNCVM_TEMPLATE: 'on' } } },
    ],
  },
});
