/**
 * parseVmStarts (test/e2e/runcvm/setup.ts): how the e2e files prove each VM's start from a container's debug log
 * (create's line, then the launcher's when create bound a template), in the logger's text format.
 */
import { describe, expect, it } from 'vitest';
import { parseVmStarts } from '../../e2e/runcvm/setup.js';

const KEY = 'a'.repeat(64);
const create = (msg: string) => `2026-12-03T19:00:00.000Z INFO  [runcvm-runtime c1] ${msg}`;
const launcher = (msg: string) => `2026-12-03T19:00:01.000Z INFO  [launcher c1] ${msg}`;
const bound = create(`template: ${KEY} (restored from /var/lib/runcvm/disks/templates/${KEY})`);

describe('parseVmStarts', () => {
  it('create bound a template and the launcher restored it', () => {
    const starts = parseVmStarts('c1', [create('hypervisor: qemu (default)'), bound, launcher('template: restored ms=412')].join('\n'));
    expect(starts).toEqual([{ id: 'c1', restored: true, lines: [bound, launcher('template: restored ms=412')] }]);
  });

  it("create's cold boot and the launcher's fallback give their reasons (nested parentheses kept)", () => {
    const text = [
      create('template: cold boot (virtiofs volume (virtiofs blocks saving the VM))'),
      bound,
      launcher('template: cold boot (the template\'s memory file changed since it was built)'),
    ].join('\n');
    expect(parseVmStarts('c1', text).map((s) => [s.restored, s.reason])).toEqual([
      [false, 'virtiofs volume (virtiofs blocks saving the VM)'],
      [false, "the template's memory file changed since it was built"],
    ]);
  });

  it('a bound template without the launcher\'s outcome (killed before it restored) is not a restore', () => {
    const starts = parseVmStarts('c1', [bound, bound, launcher('template: restored ms=1')].join('\n'));
    expect(starts.map((s) => s.restored)).toEqual([false, true]);
    expect(starts[0]!.reason).toBe('create bound a template, the launcher logged no outcome');
  });

  it('no template line: no start', () => {
    expect(parseVmStarts('c1', create('hypervisor: qemu (default)'))).toEqual([]);
  });
});
