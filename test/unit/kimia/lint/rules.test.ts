import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readManifests, type Finding } from '../../../../src/core/k8s/index.js';
import {
  dockerOnlyLines, dockerfileLocation, isGitContext, kimiaTargets, lintKimia, parseQuantity,
} from '../../../../src/kimia/lint/rules.js';
import { parseDockerfile } from '../../../../src/kimia/dockerfile/parse.js';
import { lintMain } from '../../../../src/kimia/lint/index.js';
import { FIXTURES, fixture, lineWith } from '../../core/k8s/fixture.js';

function lint(name: string, dockerfile?: { path: string; text: string }): { findings: Finding[]; text: string } {
  const text = fixture(`kimia/${name}`);
  const targets = kimiaTargets([{ file: name, objects: readManifests(text).objects }]);
  const map = new Map(dockerfile ? targets.map((t) => [t, dockerfile] as const) : []);
  return { findings: lintKimia(targets, map), text };
}

function only(findings: Finding[], rule: string): Finding {
  const hits = findings.filter((f) => f.rule === rule);
  expect(hits, `${rule} in ${JSON.stringify(findings.map((f) => f.rule))}`).toHaveLength(1);
  return hits[0]!;
}

describe('kimia lint rules (one fixture per guide mistake)', () => {
  it('the guide-conformant pod has no finding', () => {
    expect(lint('good.yaml').findings).toEqual([]);
  });

  it('Missing fsGroup', () => {
    const { findings, text } = lint('missing-fsgroup.yaml');
    const f = only(findings, 'kimia/missing-fsgroup');
    expect(f).toMatchObject({ level: 'error', line: lineWith(text, '  securityContext:') });
    expect(f.fix).toContain('fsGroup: 1000  # Required for volume permissions!');
  });

  it('Missing Capabilities', () => {
    const { findings, text } = lint('missing-capabilities.yaml');
    const f = only(findings, 'kimia/missing-capabilities');
    expect(f).toMatchObject({ level: 'error', line: lineWith(text, 'capabilities:') });
    expect(f.message).toContain('SETUID and SETGID');
    expect(f.fix).toContain('add: [SETUID, SETGID]  # Required!');
    expect(findings).toHaveLength(1);
  });

  it('allowPrivilegeEscalation must be true', () => {
    const { findings, text } = lint('privilege-escalation.yaml');
    const f = only(findings, 'kimia/allow-privilege-escalation');
    expect(f).toMatchObject({ level: 'error', line: lineWith(text, 'allowPrivilegeEscalation: false') });
    expect(f.fix).toContain('allowPrivilegeEscalation: true  # Required!');
  });

  it('runAsUser other than 1000', () => {
    const { findings, text } = lint('run-as-root.yaml');
    const f = only(findings, 'kimia/run-as-user');
    expect(f).toMatchObject({ level: 'error', line: lineWith(text, 'runAsUser: 0') });
    expect(f.fix).toContain('runAsUser: 1000');
  });

  it('Wrong Volume Mount Path (/kaniko/.docker)', () => {
    const { findings, text } = lint('kaniko-path.yaml');
    const f = only(findings, 'kimia/kaniko-docker-path');
    expect(f).toMatchObject({ level: 'error', line: lineWith(text, '- name: docker-config') });
    expect(f.message).toContain('Kaniko path, not Kimia!');
    expect(f.fix).toContain('mountPath: /home/kimia/.docker  # Kimia path');
    expect(findings.map((x) => x.rule)).not.toContain('kimia/registry-auth-mount');
  });

  it('Unauthorized: registry secret not mounted at /home/kimia/.docker', () => {
    const { findings, text } = lint('no-registry-secret.yaml');
    const f = only(findings, 'kimia/registry-auth-mount');
    expect(f).toMatchObject({ level: 'warn', line: lineWith(text, '--destination=') });
    expect(f.message).toContain('unauthorized: authentication required');
    expect(f.fix).toContain('mountPath: /home/kimia/.docker  # Must be this path');
  });

  it('No Space Left on Device: ephemeral-storage below 5Gi', () => {
    const { findings, text } = lint('ephemeral-storage.yaml');
    const f = only(findings, 'kimia/ephemeral-storage');
    expect(f).toMatchObject({ level: 'warn', line: lineWith(text, 'ephemeral-storage: "1Gi"') });
    expect(f.message).toContain('no space left on device');
    expect(f.fix).toContain('ephemeral-storage: "20Gi"  # Increase as needed');
  });

  it('Git Clone Failed: git context without --git-token-file', () => {
    const { findings, text } = lint('git-no-token.yaml');
    const f = only(findings, 'kimia/git-token');
    expect(f).toMatchObject({ level: 'warn', line: lineWith(text, '--context=https://github.com/org/repo.git') });
    expect(f.message).toContain('fatal: could not read Username');
    expect(f.fix).toContain('--git-token-file=/secrets/git-token');
  });

  it('HEALTHCHECK Instruction Ignored: Docker-only instructions with BUILDAH_FORMAT=oci forced', () => {
    const df = { path: 'dockerfile-ctx/Dockerfile.health', text: fixture('kimia/dockerfile-ctx/Dockerfile.health') };
    const { findings, text } = lint('healthcheck.yaml', df);
    const f = only(findings, 'kimia/dockerfile-format');
    expect(f).toMatchObject({ level: 'warn', line: lineWith(text, '- name: BUILDAH_FORMAT') });
    expect(f.message).toContain('HEALTHCHECK (dockerfile-ctx/Dockerfile.health:3)');
    expect(f.message).toContain('BUILDAH_FORMAT=oci forces the OCI format');
    // STOPSIGNAL (line 6) survives the OCI format, so it is not reported; "SHELL" on line 5 continues a RUN
    expect(f.message).not.toContain('STOPSIGNAL');
    expect(f.message).not.toContain('SHELL');
    expect(f.message).toContain('HEALTHCHECK instruction ignored');
    expect(f.fix).toContain('value: "docker"');
    // with BUILDAH_FORMAT=docker the good pod is clean even with that Dockerfile
    expect(lint('good.yaml', df).findings).toEqual([]);
    // and so is a pod that leaves the format to kimia (it builds this Dockerfile in Docker format)
    const unset = text.replace(/ {4}env:\n {4}- name: BUILDAH_FORMAT\n {6}value: oci\n/, '');
    expect(unset).not.toContain('BUILDAH_FORMAT');
    const targets = kimiaTargets([{ file: 'x', objects: readManifests(unset).objects }]);
    expect(lintKimia(targets, new Map(targets.map((t) => [t, df] as const))).filter((x) => x.rule === 'kimia/dockerfile-format')).toEqual([]);
  });

  it('a Dockerfile that does not parse is an error with its line and a "did you mean"', () => {
    const df = { path: 'ctx/Dockerfile', text: 'FROM busybox\nRUNN echo hi\nCOPY --chwon=1 a /a\n' };
    const f = lint('good.yaml', df).findings.filter((x) => x.rule === 'kimia/dockerfile-syntax');
    expect(f.map((x) => [x.level, x.message, x.fix])).toEqual([
      ['error', 'container kimia: ctx/Dockerfile:2: unknown instruction RUNN (`RUNN echo hi`)', 'did you mean RUN?'],
      ['error', 'container kimia: ctx/Dockerfile:3: COPY has no flag --chwon (`COPY --chwon=1 a /a`)', 'did you mean --chown?'],
    ]);
  });

  it('Cache Directory Permission Denied: --cache-dir volume without fsGroup', () => {
    const { findings, text } = lint('cache-no-fsgroup.yaml');
    const f = only(findings, 'kimia/cache-permissions');
    expect(f).toMatchObject({ level: 'error', line: lineWith(text, '- name: build-cache') });
    expect(f.message).toContain('failed to write to cache directory: permission denied');
    expect(f.fix).toContain('fsGroup: 1000  # Automatically sets ownership');
  });

  it('a Kaniko-style Job with space-separated args is detected and linted', () => {
    const { findings, text } = lint('kaniko-style-job.yaml');
    const rules = findings.map((f) => f.rule).sort();
    expect(rules).toEqual([
      'kimia/allow-privilege-escalation', 'kimia/ephemeral-storage', 'kimia/git-token', 'kimia/kaniko-docker-path',
      'kimia/missing-capabilities', 'kimia/missing-fsgroup', 'kimia/run-as-user',
    ]);
    expect(only(findings, 'kimia/git-token').line).toBe(lineWith(text, 'args: ["--context"'));
  });

  it('an init container that chowns the cache volume satisfies the cache rule', () => {
    const base = fixture('kimia/cache-no-fsgroup.yaml').replace(
      '  containers:\n',
      "  initContainers:\n  - name: fix-permissions\n    image: busybox\n    command: ['sh', '-c', 'chown -R 1000:1000 /cache']\n    volumeMounts:\n    - name: build-cache\n      mountPath: /cache\n  containers:\n",
    );
    const targets = kimiaTargets([{ file: 'x', objects: readManifests(base).objects }]);
    expect(lintKimia(targets).map((f) => f.rule)).toEqual(['kimia/missing-fsgroup']);
  });

  it('does not lint containers that do not run kimia', () => {
    expect(kimiaTargets([{ file: 'x', objects: readManifests(fixture('multi-doc.yaml')).objects }])).toEqual([]);
  });
});

describe('kimia lint helpers', () => {
  it('parses Kubernetes quantities', () => {
    expect(parseQuantity('5Gi')).toBe(5 * 2 ** 30);
    expect(parseQuantity('20G')).toBe(20e9);
    expect(parseQuantity('1e9')).toBe(1e9);
    expect(parseQuantity('lots')).toBeUndefined();
  });
  it('recognises Git contexts', () => {
    expect(isGitContext('https://github.com/o/r.git')).toBe(true);
    expect(isGitContext('https://github.com/o/r.git#main:sub')).toBe(true);
    expect(isGitContext('git://host/r')).toBe(true);
    expect(isGitContext('https://example.com/ctx.tar.gz')).toBe(false);
    expect(isGitContext('/workspace')).toBe(false);
  });
  it('finds Docker-only instructions, skipping continuation lines', () => {
    expect(dockerOnlyLines(parseDockerfile('FROM a\nhealthcheck CMD x\nRUN a \\\n  SHELL x\nSHELL ["sh"]\n'))).toEqual([
      { instruction: 'HEALTHCHECK', line: 2 },
      { instruction: 'SHELL', line: 5 },
    ]);
  });
  it('locates a local Dockerfile and ignores remote contexts', () => {
    const [t] = kimiaTargets([{ file: 'x', objects: readManifests(fixture('kimia/healthcheck.yaml')).objects }]);
    expect(dockerfileLocation(t!)).toEqual({ context: 'dockerfile-ctx', dockerfile: 'Dockerfile.health' });
    const [g] = kimiaTargets([{ file: 'x', objects: readManifests(fixture('kimia/good.yaml')).objects }]);
    expect(dockerfileLocation(g!)).toBeUndefined();
  });
});

describe('kimia lint command', () => {
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
  const f = (n: string) => join(FIXTURES, 'kimia', n);

  it('exits 0 on a clean file, 1 on errors, 2 on usage errors', async () => {
    expect((await run([f('good.yaml')])).code).toBe(0);
    const bad = await run([f('kaniko-path.yaml')]);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain(`${f('kaniko-path.yaml')}:${lineWith(fixture('kimia/kaniko-path.yaml'), '- name: docker-config')}: error kimia/kaniko-docker-path:`);
    expect(bad.out).toContain('  fix: volumeMounts:');
    expect((await run([f('nope.yaml')])).code).toBe(2);
    const inv = await run([join(FIXTURES, 'invalid.yaml')]);
    expect(inv.code).toBe(2);
    expect(inv.err).toMatch(/invalid\.yaml:\d+:\d+: invalid YAML/);
    expect((await run(['--bogus', f('good.yaml')])).code).toBe(2);
    expect((await run([])).code).toBe(2);
  });

  it('reads --dockerfile PATH and prints JSON', async () => {
    const r = await run(['--json', '--dockerfile', f('dockerfile-ctx/Dockerfile.health'), f('healthcheck.yaml')]);
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out) as { findings: Finding[]; summary: { warnings: number } };
    expect(json.findings.map((x) => x.rule)).toEqual(['kimia/dockerfile-format']);
    expect(json.summary.warnings).toBe(1);
  });

  it('finds the Dockerfile of a local --context relative to the current directory', async () => {
    const cwd = process.cwd();
    process.chdir(join(FIXTURES, 'kimia'));
    try {
      const r = await run(['--json', 'healthcheck.yaml']);
      const json = JSON.parse(r.out) as { findings: Finding[] };
      expect(json.findings.map((x) => x.rule)).toEqual(['kimia/dockerfile-format']);
      expect(json.findings[0]!.message).toContain('dockerfile-ctx/Dockerfile.health:3');
    } finally {
      process.chdir(cwd);
    }
    // from elsewhere the Dockerfile is not reachable and the rule stays silent (never fetched, never guessed)
    expect(JSON.parse((await run(['--json', f('healthcheck.yaml')])).out).findings).toEqual([]);
  });

  it('documents its exit codes in --help', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/exit status:\n {2}0 .*\n {2}1 .*\n {2}2 /);
  });
});
