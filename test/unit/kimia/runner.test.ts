/** core/exec runLight (used by kimia's build path instead of execa): redaction, line callbacks, exit codes, cancel. */
import { describe, expect, it } from 'vitest';
import { runLight, ProcessError } from '../../../src/core/exec/index.js';

describe('runLight', () => {
  it('streams redacted lines and returns redacted outputs', async () => {
    const lines: string[] = [];
    const r = await runLight('sh', ['-c', 'echo one hunter2x; echo two >&2'], { secrets: ['hunter2x'], onStdoutLine: (l) => lines.push(l), onStderrLine: (l) => lines.push(l) });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('one ***\n');
    expect(lines.sort()).toEqual(['one ***', 'two']);
  });

  it('throws a ProcessError with the redacted command unless reject is false', async () => {
    await expect(runLight('sh', ['-c', 'exit 3', 'hunter2x'], { secrets: ['hunter2x'] })).rejects.toThrow(ProcessError);
    const r = await runLight('sh', ['-c', 'exit 3'], { reject: false });
    expect(r.exitCode).toBe(3);
    const e = (await runLight('sh', ['-c', 'exit 4', 'x', 'hunter2x'], { secrets: ['hunter2x'] }).then(() => undefined, (x: unknown) => x)) as ProcessError;
    expect(e.message).toContain('***');
    expect(e.message).not.toContain('hunter2x');
  });

  it('a missing binary is exit 127, and an abort signal ends the child', async () => {
    expect((await runLight('/nonexistent/bin', [], { reject: false })).exitCode).toBe(127);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const r = await runLight('sleep', ['10'], { reject: false, signal: ac.signal });
    expect(r.signal).toBe('SIGTERM');
  });
});
