/** core/exec run (kimia's build path and every other caller): redaction, line callbacks, exit codes, cancel. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, ProcessError, signalNumber, spawnChild } from '../../../src/core/exec/index.js';

describe('run', () => {
  it('streams redacted lines and returns redacted outputs', async () => {
    const lines: string[] = [];
    const r = await run('sh', ['-c', 'echo one hunter2x; echo two >&2'], { secrets: ['hunter2x'], onStdoutLine: (l) => lines.push(l), onStderrLine: (l) => lines.push(l) });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('one ***\n');
    expect(lines.sort()).toEqual(['one ***', 'two']);
  });

  it('throws a ProcessError with the redacted command unless reject is false', async () => {
    await expect(run('sh', ['-c', 'exit 3', 'hunter2x'], { secrets: ['hunter2x'] })).rejects.toThrow(ProcessError);
    const r = await run('sh', ['-c', 'exit 3'], { reject: false });
    expect(r.exitCode).toBe(3);
    const e = (await run('sh', ['-c', 'exit 4', 'x', 'hunter2x'], { secrets: ['hunter2x'] }).then(() => undefined, (x: unknown) => x)) as ProcessError;
    expect(e.message).toContain('***');
    expect(e.message).not.toContain('hunter2x');
  });

  it('a missing binary is exit 127, and an abort signal ends the child', async () => {
    expect((await run('/nonexistent/bin', [], { reject: false })).exitCode).toBe(127);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const r = await run('sleep', ['10'], { reject: false, signal: ac.signal });
    expect(r.signal).toBe('SIGTERM');
  });

  it('raw stdout bytes on request, a timeout, and signal numbers from the platform table', async () => {
    const r = await run('printf', ['\\377\\000x'], { encoding: 'buffer' });
    expect([...r.stdout]).toEqual([0xff, 0x00, 0x78]);
    const t = await run('sleep', ['10'], { reject: false, timeoutMs: 50, killGraceMs: 100 });
    expect(t).toMatchObject({ timedOut: true, signal: 'SIGTERM', exitCode: 143 });
    expect(signalNumber('SIGTERM')).toBe(15);
    expect(signalNumber('SIGKILL')).toBe(9);
    expect(signalNumber('SIGNOPE')).toBe(0);
  });

  it('stdio inherit: nothing captured, the exit code is the child\'s; input reaches stdin', async () => {
    const r = await run('sh', ['-c', 'exit 7'], { stdio: 'inherit', reject: false });
    expect(r).toMatchObject({ exitCode: 7, stdout: '', stderr: '' });
    expect((await run('cat', [], { input: 'fed' })).stdout).toBe('fed');
  });

  it('spawnChild: a supervised child with piped output, or output appended to a file', async () => {
    const piped = await spawnChild('sh', ['-c', 'echo out; echo err >&2']);
    let text = '';
    piped.stdout?.on('data', (d: Buffer) => (text += d.toString()));
    piped.stderr?.on('data', (d: Buffer) => (text += d.toString()));
    await new Promise((r) => piped.on('close', r));
    expect(text.split('\n').sort().join(',')).toBe(',err,out');
    const dir = mkdtempSync(join(tmpdir(), 'runner-'));
    try {
      const f = join(dir, 'log');
      const c = await spawnChild('sh', ['-c', 'echo to-file; echo also >&2'], { output: { file: f }, env: { X: '1' } });
      await new Promise((r) => c.on('close', r));
      expect(readFileSync(f, 'utf8')).toBe('to-file\nalso\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
