import { describe, expect, it } from 'vitest';
import { expandVars, parseBool, parseEnum, parseSize } from '../../../src/core/config.js';

describe('config parsing', () => {
  it('parses sizes the way mke2fs and docker do', () => {
    expect(parseSize('256M')).toBe(256 * 1024 * 1024);
    expect(parseSize('2G')).toBe(2 * 1024 ** 3);
    expect(parseSize('1048576')).toBe(1048576);
    expect(parseSize('512mb')).toBe(512_000_000);
    expect(() => parseSize('lots')).toThrow(/not a size/);
  });
  it('parses booleans and enums with clear errors', () => {
    expect(parseBool('true')).toBe(true);
    expect(parseBool(undefined, true)).toBe(true);
    expect(() => parseBool('maybe')).toThrow(/not a boolean/);
    expect(parseEnum('RUNCVM_HYPERVISOR', 'QEMU', ['qemu', 'firecracker'] as const, 'qemu')).toBe('qemu');
    expect(() => parseEnum('X', 'kvm', ['a', 'b'] as const, 'a')).toThrow('X="kvm" is not valid (use one of: a, b)');
  });
  it('expands variables', () => {
    expect(expandVars('$HOME/x/${USER}', { HOME: '/h', USER: 'u' })).toBe('/h/x/u');
  });
});
