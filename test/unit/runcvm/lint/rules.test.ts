import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readManifests, type Finding } from '../../../../src/core/k8s/index.js';
import { lintRuncvm } from '../../../../src/runcvm/lint/rules.js';
import { lintMain } from '../../../../src/runcvm/lint/main.js';
import { FIXTURES, fixture, lineWith } from '../../core/k8s/fixture.js';

function lint(...names: string[]): Finding[] {
  return lintRuncvm(names.map((n) => ({ file: n, objects: readManifests(fixture(`runcvm/${n}`)).objects })));
}
const rules = (fs: Finding[]) => fs.map((f) => f.rule);

describe('runcvm lint rules (one fixture per guide mistake)', () => {
  it('the good RuntimeClass + pod have no finding', () => {
    expect(lint('good.yaml')).toEqual([]);
  });

  it('guide 9: runtimeClassName runcvm without a RuntimeClass in the file set warns', () => {
    const text = fixture('runcvm/no-runtimeclass.yaml');
    const [f] = lint('no-runtimeclass.yaml');
    expect(f).toMatchObject({ rule: 'runcvm/runtimeclass-missing', level: 'warn', line: lineWith(text, 'runtimeClassName: runcvm') });
    expect(f!.message).toContain('no runtime for "runcvm" is configured');
    expect(f!.fix).toContain('ensure `kubectl get runtimeclass runcvm` exists');
    // the RuntimeClass may come from another file of the same set
    expect(rules(lint('no-runtimeclass.yaml', 'good.yaml'))).toEqual([]);
  });

  it('guide 9: a RuntimeClass runcvm whose handler is not runcvm fails', () => {
    const text = fixture('runcvm/wrong-handler.yaml');
    const fs = lint('wrong-handler.yaml');
    const f = fs.find((x) => x.rule === 'runcvm/runtimeclass-handler')!;
    expect(f).toMatchObject({ level: 'error', line: lineWith(text, 'handler:') });
    expect(f.fix).toContain('handler: runcvm');
    expect(rules(fs)).toContain('runcvm/runtimeclass-overhead');
    expect(rules(fs)).not.toContain('runcvm/runtimeclass-missing');
  });

  it('hostNetwork under runcvm: says that 127.0.0.1 is the VM\'s own loopback (issue 16 design choice), only for runcvm pods', () => {
    const text = fixture('runcvm/host-network.yaml');
    const fs = lint('host-network.yaml');
    expect(fs).toHaveLength(1);
    expect(fs[0]).toMatchObject({ rule: 'runcvm/host-network-loopback', level: 'info', line: lineWith(text, 'hostNetwork: true') });
    expect(fs[0]!.message).toContain('Pod node-agent uses hostNetwork: inside the microVM, 127.0.0.1 is the VM\'s own loopback');
    expect(fs[0]!.fix).toContain('status.hostIP');
  });

  it('RuntimeClass without overhead warns at the RuntimeClass', () => {
    const text = fixture('runcvm/mistakes.yaml');
    const f = lint('mistakes.yaml').find((x) => x.rule === 'runcvm/runtimeclass-overhead')!;
    expect(f).toMatchObject({ level: 'warn', line: lineWith(text, 'apiVersion: node.k8s.io/v1') });
    expect(f.fix).toContain('podFixed');
  });

  it('guide 1: `&&` in sh -c suggests `;` and points at the script line', () => {
    const text = fixture('runcvm/mistakes.yaml');
    const f = lint('mistakes.yaml').find((x) => x.rule === 'runcvm/shell-and-chain')!;
    expect(f).toMatchObject({ level: 'warn', line: lineWith(text, '"cat /data/test.txt && sleep 3600"') });
    expect(f.fix).toContain('"cat /data/test.txt; sleep 3600"');
    const t2 = fixture('runcvm/args-and-chain.yaml');
    const g = lint('args-and-chain.yaml').find((x) => x.rule === 'runcvm/shell-and-chain')!;
    expect(g.line).toBe(lineWith(t2, 'args: ["-c"'));
    expect(g.fix).toContain('"mount | grep proc; ps"');
  });

  it('guide 4/6: invalid RUNCVM_LOG_LEVEL and unparsable RUNCVM_ROOTFS_SIZE fail at the env line', () => {
    const text = fixture('runcvm/mistakes.yaml');
    const fs = lint('mistakes.yaml');
    expect(fs.find((x) => x.rule === 'runcvm/log-level')).toMatchObject({ level: 'error', line: lineWith(text, 'name: RUNCVM_LOG_LEVEL') });
    expect(fs.find((x) => x.rule === 'runcvm/log-level')!.fix).toContain('value: "DEBUG"');
    const size = fs.find((x) => x.rule === 'runcvm/rootfs-size')!;
    expect(size).toMatchObject({ level: 'error', line: lineWith(text, 'name: RUNCVM_ROOTFS_SIZE') });
    expect(size.message).toContain('"lots" is not a size');
  });

  it('volumes the microVM cannot share: subPath, Bidirectional, volumeDevices, hostPath socket', () => {
    const text = fixture('runcvm/mistakes.yaml');
    const vs = lint('mistakes.yaml').filter((x) => x.rule === 'runcvm/volume-unsupported');
    expect(vs.map((v) => v.line).sort((a, b) => a - b)).toEqual(
      [lineWith(text, '- name: cfg'), lineWith(text, '- name: shared'), lineWith(text, '- name: raw'), lineWith(text, '- name: docker-sock')].sort((a, b) => a - b),
    );
    expect(vs.every((v) => v.level === 'warn')).toBe(true);
    expect(vs.find((v) => v.message.includes('docker.sock'))!.message).toContain('Socket');
  });

  it('guide 3: PVCs are reported (info) as redirected to /.runcvm/vols/<id> over NFS', () => {
    const text = fixture('runcvm/mistakes.yaml');
    const ns = lint('mistakes.yaml').filter((x) => x.rule === 'runcvm/network-volume');
    expect(ns.map((n) => n.line)).toEqual([lineWith(text, '- name: data', 2), lineWith(text, '- name: raw', 2)]);
    expect(ns[0]).toMatchObject({ level: 'info' });
    expect(ns[0]!.message).toContain('/.runcvm/vols/<id>');
    expect(ns[0]!.message).toContain('169.254.1.254');
  });

  it('missing resource limits: info with the VM defaults', () => {
    const text = fixture('runcvm/mistakes.yaml');
    const f = lint('mistakes.yaml').find((x) => x.rule === 'runcvm/no-resource-limits')!;
    expect(f).toMatchObject({ level: 'info', line: lineWith(text, '- name: app') });
    expect(f.message).toContain('512Mi memory, 1 vCPU');
    expect(lint('args-and-chain.yaml').map((x) => x.rule)).not.toContain('runcvm/no-resource-limits');
  });

  it('pods without runtimeClassName runcvm are not checked', () => {
    expect(lintRuncvm([{ file: 'x', objects: readManifests(fixture('kimia/good.yaml')).objects }])).toEqual([]);
  });
});

describe('runcvm lint command', () => {
  async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const o = process.stdout.write.bind(process.stdout);
    const e = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((t: string) => ((out += t), true)) as typeof process.stdout.write;
    process.stderr.write = ((t: string) => ((err += t), true)) as typeof process.stderr.write;
    try {
      return { code: await lintMain(argv), out, err };
    } finally {
      process.stdout.write = o;
      process.stderr.write = e;
    }
  }
  const f = (n: string) => join(FIXTURES, 'runcvm', n);

  it('prints FILE:LINE: level rule: message + fix, exit 1 on errors', async () => {
    const r = await run([f('mistakes.yaml')]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${f('mistakes.yaml')}:${lineWith(fixture('runcvm/mistakes.yaml'), 'name: RUNCVM_LOG_LEVEL')}: error runcvm/log-level: container app: RUNCVM_LOG_LEVEL="VERBOSE"`);
    expect(r.out).toMatch(/\n {2}fix: /);
  });

  it('exit 0 with only warnings, 2 on a missing file or invalid YAML; --json', async () => {
    expect((await run([f('no-runtimeclass.yaml')])).code).toBe(0);
    expect((await run([f('missing.yaml')])).code).toBe(2);
    expect((await run([join(FIXTURES, 'invalid.yaml')])).code).toBe(2);
    const j = await run(['--json', f('wrong-handler.yaml')]);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.out)).toMatchObject({ summary: { errors: 1, warnings: 1, infos: 0 } });
  });

  it('documents exit codes in --help', async () => {
    expect((await run(['--help'])).out).toMatch(/exit status:\n {2}0 .*\n {2}1 .*\n {2}2 /);
  });
});
