/**
 * Create's template decision (template/plan.ts through planCreate): with RUNCVM_TEMPLATE=on and a template of the
 * VM's shape in the store, the folder is bound read-only at /.runcvm/template, the LaunchSpec names the key and the
 * state folder pins it; without one, the container boots cold and one detached builder starts (never for a key
 * being built); off, refused shapes and a pod's own RUNCVM_TEMPLATE change nothing. What `runcvm plan` prints is what
 * create does (dry-mode apply).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HYPERVISORS } from '../../../../src/runcvm/hypervisor/index.js';
import type { Hypervisor } from '../../../../src/runcvm/hypervisor/types.js';
import { planCreate, type VmCreatePlan } from '../../../../src/runcvm/runtime/plan-create.js';
import { applyCreate, recordingEffects } from '../../../../src/runcvm/runtime/apply-create.js';
import type { CreateFacts, CreateInput } from '../../../../src/runcvm/runtime/facts.js';
import { actionLines, renderCreatePlan } from '../../../../src/runcvm/plan/main.js';
import { withAbsoluteSources } from '../../../../src/runcvm/bundle/transforms/index.js';
import type { OciSpec } from '../../../../src/runcvm/launch/oci.js';
import { buildArgs, planTemplate, type TemplateFacts } from '../../../../src/runcvm/template/plan.js';
import { launchSpecSchema } from '../../../../src/runcvm/launch/schema.js';
import { dockerConnectsLater } from '../../../../src/runcvm/runtime/facts.js';

const qemu = HYPERVISORS.qemu as Hypervisor;
const ownShape = qemu.templateShape;
// until the QEMU backend has its templateShape (helper tmplvm), a stand-in with the same contract
beforeAll(() => {
  if (!ownShape) qemu.templateShape = (vm) => (vm.shares?.length ? { ok: false, reason: 'virtiofs volume' } : { ok: true, shape: { machine: 'microvm', vcpus: vm.vcpus } });
});
afterAll(() => {
  if (!ownShape) delete qemu.templateShape;
});

const ctr = JSON.parse(readFileSync(new URL('../../../fixtures/runcvm/bundles/ctr.json', import.meta.url), 'utf8')) as { config: OciSpec; facts: Partial<CreateFacts> };
const NODE_ENV = { RUNCVM_STATE_DIR: '/run/runcvm', RUNCVM_CACHE_DIR: '/var/lib/runcvm/disks', RUNCVM_LOG_DIR: '/var/log/runcvm', RUNCVM_ASSETS: '/opt/runcvm/var/assets', RUNCVM_TEMPLATE: 'on' };
const G = '/opt/runcvm/var/assets/.guest-1';
const ASSETS = { vmlinuxSha256: '1'.repeat(64), initramfsSha256: '2'.repeat(64), guestPackageId: '3'.repeat(64) };

function facts(template: TemplateFacts | undefined): CreateFacts {
  return {
    assets: { guestDir: G, kernelDir: '/opt/runcvm/var/assets/kernel', present: ['kernel/vmlinux', 'kernel/initramfs.img', 'guest/lib/ld', 'guest/bin/node', 'guest/bin/runcvm-init', 'guest/lib/runcvm/launcher.mjs', 'guest/bin/qemu-system-x86_64', 'guest/bin/busybox', 'guest/bin/runcvm-agent'] },
    rootfs: { path: '/bundles/c1/rootfs', mode: 0o40755 },
    lookPath: { ok: true },
    hypervisor: { kvm: { kvmExists: false, kvmOpenable: false, cpuFlags: [], kvmPvm: false }, firecrackerLookedFor: `${G}/bin/firecracker` },
    volumeSources: {},
    hostNetwork: false,
    devices: [],
    engineFiles: [],
    debugLog: { kind: 'missing' },
    runtimeUid: 0,
    base: ctr.facts.base!,
    ...(template ? { template } : {}),
  };
}

function input(env: Record<string, string> = {}, containerEnv: string[] = []): CreateInput {
  const config = { ...ctr.config, process: { ...ctr.config.process!, env: [...(ctr.config.process!.env ?? []), ...containerEnv] } };
  return { id: 'c1', bundle: '/bundles/c1', spec: withAbsoluteSources('/bundles/c1')(config), runc: { file: 'runc', argv: ['create', '--bundle', '/bundles/c1', 'c1'], passFds: 0 }, nodeEnv: { ...NODE_ENV, ...env } };
}

const TF: TemplateFacts = { setting: 'on', assets: ASSETS, accel: 'tcg', tscKhz: 2_400_000, nics: 1, ready: [], building: [], builder: { node: '/usr/bin/node', cli: '/opt/runcvm/bin/runcvm' } };

function vmPlan(p: ReturnType<typeof planCreate>): VmCreatePlan {
  if (p.kind !== 'vm') throw new Error('not a VM plan');
  return p;
}

async function printedIsApplied(p: VmCreatePlan): Promise<void> {
  const rec = recordingEffects();
  expect(await applyCreate(p, rec, 'c1')).toBe(0);
  expect(rec.records).toEqual(actionLines(p));
}

describe('create with VM templates', () => {
  it('no template yet: cold boot now, one detached builder of exactly this shape before runc, nothing bound', async () => {
    const p = vmPlan(planCreate(input(), facts(TF)));
    expect(p.template.use).toBe('cold');
    if (p.template.use !== 'cold') return;
    const key = p.template.key!;
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(p.template.reason).toBe(`no template ${key.slice(0, 12)} yet; building it`);
    expect(p.log).toContainEqual({ level: 'info', msg: `template: cold boot (no template ${key.slice(0, 12)} yet; building it)` });
    const lines = actionLines(p);
    const spawn = lines.findIndex((l) => l.startsWith('start detached'));
    expect(lines[spawn]).toBe(`start detached /usr/bin/node /opt/runcvm/bin/runcvm ${buildArgs({ hypervisor: 'qemu', accel: 'tcg', vcpus: 1, memoryMiB: 512, tscKhz: 2_400_000, nics: 1, dataDisks: 0 }, key).join(' ')} (output to /var/log/runcvm/runcvm-template-${key.slice(0, 12)}.log, nice 10; not waited for): the VM template builder for key ${key.slice(0, 12)}`);
    expect(lines[spawn + 1]).toMatch(/^run runc create/);
    expect(p.launchSpec.template).toBeUndefined();
    expect(p.config.mounts?.some((m) => m.destination === '/.runcvm/template')).toBe(false);
    expect(renderCreatePlan(p)).toContain(`# template: cold boot (no template ${key.slice(0, 12)} yet; building it)`);
    await printedIsApplied(p);

    // being built by a live builder: no second one
    const again = vmPlan(planCreate(input(), facts({ ...TF, building: [key] })));
    expect(again.template).toEqual({ use: 'cold', key, reason: `the template ${key.slice(0, 12)} is being built` });
    expect(actionLines(again).some((l) => l.startsWith('start detached'))).toBe(false);
  });

  it('a template of this shape: bound at /.runcvm/template (read-only but its RAM file), named in the LaunchSpec, pinned, no builder', async () => {
    const key = (vmPlan(planCreate(input(), facts(TF))).template as { key: string }).key;
    const p = vmPlan(planCreate(input(), facts({ ...TF, ready: [key] })));
    const dir = `/var/lib/runcvm/disks/templates/${key}`;
    expect(p.template).toEqual({ use: 'template', key, dir });
    expect(p.launchSpec.template).toEqual({ key });
    expect(launchSpecSchema.parse(p.launchSpec).template).toEqual({ key });
    const mounts = (p.config.mounts ?? []).filter((m) => m.destination.startsWith('/.runcvm/template'));
    // the folder read-only, then its RAM file read-write over it (QEMU 7.2 opens it read-write for a private mapping)
    expect(mounts).toEqual([
      { destination: '/.runcvm/template', type: 'bind', source: dir, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] },
      { destination: '/.runcvm/template/memory', type: 'bind', source: `${dir}/memory`, options: ['bind', 'rw', 'nosuid', 'nodev', 'noexec'] },
    ]);
    const lines = actionLines(p);
    expect(lines).toContain(`write /run/runcvm/c1/template 0644: the VM template this container starts from (never evicted while it exists), ${dir.length} bytes`);
    expect(lines.some((l) => l.startsWith('start detached'))).toBe(false);
    // its mount point: a file (its folder is made with it)
    expect(lines.find((l) => l.startsWith('launcher root'))).toMatch(/ \/\.runcvm\/template\/memory$/);
    expect(renderCreatePlan(p)).toContain(`# template: ${key} (restored from ${dir})`);
    await printedIsApplied(p);
    // another shape (two NICs) does not fit it
    const two = vmPlan(planCreate(input({}, []), facts({ ...TF, ready: [key], nics: 2 })));
    expect(two.template.use).toBe('cold');
  });

  it('off, refused shapes and a pod\'s own RUNCVM_TEMPLATE: cold boot with the reason, no builder', () => {
    const reason = (i: CreateInput, f: TemplateFacts | undefined) => {
      const p = vmPlan(planCreate(i, facts(f)));
      expect(actionLines(p).some((l) => l.startsWith('start detached'))).toBe(false);
      return p.template.use === 'cold' ? p.template.reason : 'template';
    };
    // create reads no template facts when the node has it off (runtime/facts.ts): a pod's RUNCVM_TEMPLATE=on is not read
    expect(reason(input({ RUNCVM_TEMPLATE: 'off' }, ['RUNCVM_TEMPLATE=on']), undefined)).toBe('RUNCVM_TEMPLATE=off');
    expect(reason(input({}, ['RUNCVM_BREAK=prerun']), TF)).toBe('RUNCVM_BREAK is set');
    expect(reason(input({}, ['RUNCVM_LOG_LEVEL=DEBUG']), TF)).toBe('debug logging (RUNCVM_LOG_LEVEL=DEBUG)');
    expect(reason(input({}, ['RUNCVM_KERNEL_APPEND=mitigations=off']), TF)).toBe('a kernel command line append (RUNCVM_KERNEL_APPEND)');
    expect(reason(input(), { ...TF, accel: undefined })).toBe('no usable accelerator');
    expect(reason(input(), { ...TF, builder: undefined })).toMatch(/yet, and no runcvm CLI to build it$/);
  });

  it('the key needs no paths of the node: two nodes with the same assets and shape compute the same key', () => {
    const spec = vmPlan(planCreate(input(), facts(TF))).launchSpec;
    const a = planTemplate(spec, qemu, TF, { stateRoot: '/a', cacheDir: '/a/cache', logDir: '/a' });
    const b = planTemplate(spec, qemu, TF, { stateRoot: '/b', cacheDir: '/b/cache', logDir: '/b' });
    expect(a.use === 'cold' && b.use === 'cold' && a.key === b.key).toBe(true);
  });

  it('Docker connects eth0 after create (its libnetwork-setkey hook): create counts it for the key', () => {
    const hook = { path: '/proc/42/exe', args: ['libnetwork-setkey', '-exec-root=/var/run/docker', 'abc', 'def'] };
    expect(dockerConnectsLater({ ociVersion: '1.0.2', hooks: { prestart: [hook] } })).toBe(true);
    expect(dockerConnectsLater({ ociVersion: '1.0.2', hooks: { createRuntime: [hook] } })).toBe(true);
    expect(dockerConnectsLater({ ociVersion: '1.0.2' })).toBe(false);
    expect(dockerConnectsLater({ ociVersion: '1.0.2', hooks: { prestart: [{ path: '/bin/true', args: ['true'] }] } })).toBe(false);
  });
});
