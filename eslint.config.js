import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Import rules from the layout: only core/exec spawns processes; pure folders stay free of effects;
// kimia and runcvm never import each other.
const noSpawn = {
  paths: [
    { name: 'node:child_process', message: 'Spawn processes through src/core/exec only.' },
    { name: 'child_process', message: 'Spawn processes through src/core/exec only.' },
    { name: 'execa', message: 'Spawn processes through src/core/exec only.' },
  ],
};
const pureEffects = [
  ...noSpawn.paths,
  { name: 'node:fs', message: 'Pure module: no filesystem access (take facts as arguments).' },
  { name: 'node:fs/promises', message: 'Pure module: no filesystem access (take facts as arguments).' },
  { name: 'node:net', message: 'Pure module: no network access.' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'var/**', 'test-results/**', 'bench/results/**', 'schemas/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', fetch: 'readonly', structuredClone: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: noSpawn.paths, patterns: [{ group: ['**/kimia/**', '**/runcvm/**'], message: 'core imports nothing else from the project.' }] }] },
  },
  { files: ['src/core/exec/**/*.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['src/kimia/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: noSpawn.paths, patterns: [{ group: ['**/runcvm/**'], message: 'kimia and runcvm never import each other.' }] }] } },
  { files: ['src/images/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: noSpawn.paths, patterns: [{ group: ['**/kimia/**', '**/runcvm/**'], message: 'the image builder runs kimia and runcvm as programs, never imports them.' }] }] } },
  { files: ['src/runcvm/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: noSpawn.paths, patterns: [{ group: ['**/kimia/**'], message: 'kimia and runcvm never import each other.' }] }] } },
  {
    files: ['src/runcvm/**/plan*.ts', 'src/runcvm/cli/**/*.ts', 'src/runcvm/bundle/transforms/**/*.ts', 'src/runcvm/launch/**/*.ts', 'src/runcvm/seccomp/**/*.ts', 'src/kimia/**/plan*.ts', 'src/kimia/cli/**/*.ts', 'src/images/plan*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: pureEffects }] },
  },
);
