import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CloserStack, tempDir } from '../../../../src/core/fsx/index.js';
import { installMain } from '../../../../src/runcvm/install/main.js';

const closers = new CloserStack();
let dir = '';
beforeAll(async () => {
  dir = await tempDir('runcvm-install-unit-', closers);
});
afterAll(async () => {
  await closers.close();
});

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((t: string) => ((out += t), true)) as typeof process.stdout.write;
  process.stderr.write = ((t: string) => ((err += t), true)) as typeof process.stderr.write;
  try {
    return { code: await installMain(argv), out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

describe('runcvm install command', () => {
  it('--docker keeps other settings, backs up 0600, prints the restart step, and is idempotent', async () => {
    const cfg = join(dir, 'daemon.json');
    await writeFile(cfg, '{"log-driver": "json-file"}\n', { mode: 0o644 });
    const r = await run(['--docker', '--config', cfg, '--runtime', '/usr/sbin/runc']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('next: sudo systemctl restart docker');
    expect(JSON.parse(await readFile(cfg, 'utf8'))).toEqual({ 'log-driver': 'json-file', runtimes: { runcvm: { path: '/usr/sbin/runc' } } });
    expect((await stat(cfg)).mode & 0o777).toBe(0o644);
    expect((await stat(`${cfg}.bak`)).mode & 0o777).toBe(0o600);
    const again = await run(['--docker', '--config', cfg, '--runtime', '/usr/sbin/runc']);
    expect(again.out).toContain('nothing to change');
  });

  it('--dry-run writes nothing; a missing file is created without a backup', async () => {
    const cfg = join(dir, 'new.toml');
    const dry = await run(['--containerd', '--config', cfg, '--runtime', '/usr/sbin/runc', '--containerd-version', 'v2.0.0', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('version = 3');
    await expect(stat(cfg)).rejects.toThrow();
    const real = await run(['--containerd', '--config', cfg, '--runtime=/usr/sbin/runc', '--containerd-version=v2.0.0']);
    expect(real.code).toBe(0);
    expect(await readFile(cfg, 'utf8')).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm]');
    await expect(stat(`${cfg}.bak`)).rejects.toThrow();
  });

  it('--handler adds a second runtime entry beside runcvm (runcvm-userns); a bad name or --docker is a usage error', async () => {
    const cfg = join(dir, 'handlers.toml');
    await writeFile(cfg, 'version = 2\n');
    expect((await run(['--containerd', '--config', cfg, '--runtime', '/opt/runcvm/bin/runcvm-runtime'])).code).toBe(0);
    const r = await run(['--containerd', '--config', cfg, '--runtime', '/opt/runcvm/bin/runcvm-runtime-userns', '--handler', 'runcvm-userns']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('added [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm-userns]');
    const text = await readFile(cfg, 'utf8');
    expect(text).toContain('BinaryName = "/opt/runcvm/bin/runcvm-runtime"');
    expect(text).toContain('BinaryName = "/opt/runcvm/bin/runcvm-runtime-userns"');
    expect((await run(['--containerd', '--config', cfg, '--runtime', '/opt/runcvm/bin/runcvm-runtime-userns', '--handler=runcvm-userns'])).out).toContain('nothing to change');
    expect((await run(['--containerd', '--config', cfg, '--handler', 'Bad_Name'])).code).toBe(2);
    expect((await run(['--docker', '--config', join(dir, 'd3.json'), '--handler', 'runcvm-userns'])).err).toContain('--handler is for --containerd and --k3s');
  });

  it('warns when the runtime is not executable yet', async () => {
    const r = await run(['--docker', '--config', join(dir, 'd2.json'), '--runtime', '/nonexistent/runcvm-runtime']);
    expect(r.code).toBe(0);
    expect(r.err).toContain('is not an executable file yet');
  });

  it('usage errors exit 2; --help documents exit codes', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run(['--docker', '--k3s'])).code).toBe(2);
    expect((await run(['--docker', '--bogus'])).code).toBe(2);
    const help = await run(['--help']);
    expect(help.out).toMatch(/exit status:\n {2}0 .*\n {2}1 .*\n {2}2 +usage error/);
  });
});
