/**
 * The kernel's syscall numbers, read from its uapi headers (`#define __NR_name N`, x32 as
 * `(__X32_SYSCALL_BIT + N)`) and rendered into syscalls.ts. Pure: the generator (scripts/gen-seccomp-syscalls.ts)
 * and the test pass the header texts in. The names are the ones libseccomp resolves (its table and Linux 6.1's agree
 * for all three ABIs).
 */

/** Debian's linux-libc-dev paths (the guest kernel's uapi, x86-64). */
export const SYSCALL_HEADERS = {
  x86_64: '/usr/include/x86_64-linux-gnu/asm/unistd_64.h',
  x86: '/usr/include/x86_64-linux-gnu/asm/unistd_32.h',
  x32: '/usr/include/x86_64-linux-gnu/asm/unistd_x32.h',
} as const;

/** The x32 ABI's marker bit in a syscall number. */
export const X32_SYSCALL_BIT = 0x40000000;

export function parseUnistd(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^#define __NR_(\w+)\s+(?:\(__X32_SYSCALL_BIT \+ (\d+)\)|(\d+))\s*$/gm)) {
    out[m[1]!] = m[2] !== undefined ? X32_SYSCALL_BIT + Number(m[2]) : Number(m[3]);
  }
  return out;
}

export function renderSyscallTable(headers: { x86_64: string; x86: string; x32: string }): string {
  const table = (name: string, text: string) => {
    const entries = Object.entries(parseUnistd(text)).sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));
    const lines: string[] = [];
    let line = ' ';
    for (const [k, v] of entries) {
      const item = ` ${k}: ${v},`;
      if (line.length + item.length > 118) {
        lines.push(line);
        line = ' ';
      }
      line += item;
    }
    if (line.trim()) lines.push(line);
    return [`export const ${name}: Readonly<Record<string, number>> = {`, ...lines, '};', ''];
  };
  return [
    '/* GENERATED from the kernel uapi headers (asm/unistd_64.h, unistd_32.h, unistd_x32.h) by',
    ' * `npm run gen:seccomp-syscalls`: do not edit by hand. x32 numbers include __X32_SYSCALL_BIT. */',
    '',
    ...table('SYSCALLS_X86_64', headers.x86_64),
    ...table('SYSCALLS_X86', headers.x86),
    ...table('SYSCALLS_X32', headers.x32),
  ].join('\n');
}
