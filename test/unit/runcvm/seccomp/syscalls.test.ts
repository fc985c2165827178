/**
 * The syscall table the seccomp compiler resolves names with (src/runcvm/seccomp/syscalls.ts) is exactly what the
 * kernel's uapi headers say (Debian's linux-libc-dev, installed with gcc/libc6-dev by scripts/setup.sh).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { projectPath } from '../../../../src/core/paths.js';
import { parseUnistd, renderSyscallTable, SYSCALL_HEADERS, X32_SYSCALL_BIT } from '../../../../src/runcvm/seccomp/headers.js';
import { SYSCALLS_X32, SYSCALLS_X86, SYSCALLS_X86_64 } from '../../../../src/runcvm/seccomp/syscalls.js';

describe('seccomp: the syscall table', () => {
  it('syscalls.ts is what the kernel headers render (npm run gen:seccomp-syscalls)', () => {
    const text = (arch: keyof typeof SYSCALL_HEADERS) => readFileSync(SYSCALL_HEADERS[arch], 'utf8');
    expect(readFileSync(projectPath('src', 'runcvm', 'seccomp', 'syscalls.ts'), 'utf8')).toBe(renderSyscallTable({ x86_64: text('x86_64'), x86: text('x86'), x32: text('x32') }));
  });

  it('reads plain and x32 definitions', () => {
    expect(parseUnistd('#define __NR_read 0\n#define __NR_clone3 435\n#define __NR_foo_bar 1\n')).toEqual({ read: 0, clone3: 435, foo_bar: 1 });
    expect(parseUnistd('#define __NR_rt_sigaction (__X32_SYSCALL_BIT + 512)\n')).toEqual({ rt_sigaction: X32_SYSCALL_BIT + 512 });
  });

  it('has the numbers every x86 engine profile relies on', () => {
    expect([SYSCALLS_X86_64.clone3, SYSCALLS_X86_64.mkdirat, SYSCALLS_X86.socketcall, SYSCALLS_X86.socket, SYSCALLS_X32.read]).toEqual([435, 258, 102, 359, X32_SYSCALL_BIT]);
    expect(Object.keys(SYSCALLS_X86_64).length).toBeGreaterThan(350);
  });
});
