/**
 * Writes src/runcvm/seccomp/syscalls.ts (the x86 syscall numbers the seccomp compiler resolves names with) from
 * the kernel's uapi headers (Debian's linux-libc-dev: asm/unistd_64.h, unistd_32.h, unistd_x32.h), or with --check
 * only compares them (exit 1 with the fix when the table is stale). `npm run gen:seccomp-syscalls`;
 * test/unit/runcvm/seccomp/syscalls.test.ts runs the same comparison.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderSyscallTable, SYSCALL_HEADERS } from '../src/runcvm/seccomp/headers.js';

const out = join(process.cwd(), 'src/runcvm/seccomp/syscalls.ts');
const text = (arch: keyof typeof SYSCALL_HEADERS) => readFileSync(SYSCALL_HEADERS[arch], 'utf8');
const want = renderSyscallTable({ x86_64: text('x86_64'), x86: text('x86'), x32: text('x32') });
if (process.argv.includes('--check')) {
  let have = '';
  try {
    have = readFileSync(out, 'utf8');
  } catch {
    /* missing: stale */
  }
  if (have !== want) {
    process.stderr.write(`error: ${out} does not match the kernel headers\nfix: npm run gen:seccomp-syscalls (then commit the table)\n`);
    process.exit(1);
  }
} else {
  writeFileSync(out, want);
  process.stdout.write(`wrote ${out}\n`);
}
