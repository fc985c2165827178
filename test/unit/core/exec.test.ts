import { describe, expect, it } from 'vitest';
import { ProcessError, run } from '../../../src/core/exec/index.js';

describe('run', () => {
  it('returns output and exit code, redacting per-call secrets everywhere', async () => {
    const r = await run('sh', ['-c', 'echo "token=s3cr3t"; echo "err s3cr3t" >&2', 'x', 's3cr3t'], { secrets: ['s3cr3t'] });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('token=***\n');
    expect(r.stderr).toBe('err ***\n');
    expect(r.command).not.toContain('s3cr3t');
  });
  it('throws a ProcessError naming the command and exit code', async () => {
    const err = await run('sh', ['-c', 'echo boom >&2; exit 7']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect((err as ProcessError).exitCode).toBe(7);
    expect((err as ProcessError).message).toMatch(/^sh failed with exit code 7: sh -c .*\nboom$/);
  });
  it('reports a missing binary as exit 127', async () => {
    const r = await run('/nonexistent/tool', [], { reject: false });
    expect(r.exitCode).toBe(127);
  });
  it('streams lines to callbacks', async () => {
    const lines: string[] = [];
    await run('sh', ['-c', 'printf "a\\nb\\nc"'], { onStdoutLine: (l) => lines.push(l) });
    expect(lines).toEqual(['a', 'b', 'c']);
  });
  it('honours cancellation through an AbortSignal', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await run('sleep', ['10'], { signal: ac.signal, reject: false });
    expect(r.exitCode).not.toBe(0);
    expect(r.durationMs).toBeLessThan(5000);
  });
});
