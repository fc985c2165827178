/**
 * `runcvm template build|ls|rm` (issue 17; docs/runcvm/templates.md): the node's VM templates, kept in
 * `${RUNCVM_CACHE_DIR}/templates/<key>/` (template/store.ts). `build` makes the template of one VM shape ahead of
 * need (create starts the same command detached, `--key` set, when a container's shape has none yet); `ls` lists
 * them with their size, age and the containers using them; `rm` unlinks them (running VMs keep their private mapping
 * of the memory file, so removal is always safe). Node paths come from the runtime's own settings (RUNCVM_CACHE_DIR,
 * RUNCVM_ASSETS, RUNCVM_STATE_DIR), never from a container.
 */
import { mkdtemp, readdir, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSize, parseSize } from '../../core/config.js';
import { isToolError } from '../../core/errors.js';
import { Logger } from '../../core/log/index.js';
import { runcvmErrors } from '../errors.js';
import { MAX_VCPUS, MIN_MEMORY_MIB, DEFAULT_MEMORY_MIB } from '../launch/build.js';
import { CONTAINER_PATHS } from '../launch/schema.js';
import { parseNodeSettings, SettingError } from '../launch/settings.js';
import { hostDirs } from '../state/index.js';
import { assetFolders } from '../runtime/facts.js';
import { decideAccel } from '../hypervisor/accel.js';
import { gatherAccelFacts, kvmDevicePath, tscKhz } from '../hypervisor/facts.js';
import { HYPERVISORS } from '../hypervisor/index.js';
import type { VmPlan } from '../hypervisor/types.js';
import { templateKey, templateVm, type TemplateRequest } from './key.js';
import { readTemplateAssets } from './facts.js';
import { boundTemplates, templatesInUse } from './bound.js';
import { KEY_PATTERN, listTemplates, removeTemplate, templatesDir, writeTemplate } from './store.js';

const { fail } = runcvmErrors;
const MiB = 1024 * 1024;

const usage = (problem: string) => fail('TEMPLATE_USAGE', { problem });

function intFlag(name: string, value: string | undefined, min: number, max: number): number {
  const n = Number(value);
  if (value === undefined || !/^\d+$/.test(value) || n < min || n > max) throw usage(`${name} needs a whole number from ${min} to ${max}, not "${value ?? ''}"`);
  return n;
}

/** `--memory 512M` / `--memory 1G` / `--memory 512` (MiB), as docker -m. */
function memoryFlag(value: string | undefined): number {
  if (value === undefined) throw usage('--memory needs a size such as 512M or 1G');
  const mib = /^\d+$/.test(value) ? Number(value) : Math.floor(parseSizeOr(value) / MiB);
  if (!(mib >= MIN_MEMORY_MIB)) throw usage(`--memory "${value}" is below the ${MIN_MEMORY_MIB} MiB a VM needs (or not a size such as 512M)`);
  return mib;
}

function parseSizeOr(value: string): number {
  try {
    return parseSize(value);
  } catch {
    return NaN;
  }
}

interface BuildArgs {
  request: Omit<TemplateRequest, 'accel' | 'tscKhz'> & { accel: 'auto' | 'kvm' | 'tcg' };
  key?: string;
}

function parseBuildArgs(argv: string[], env: Readonly<Record<string, string | undefined>>): BuildArgs {
  const hv = (env.RUNCVM_HYPERVISOR ?? '').trim().toLowerCase();
  const request: BuildArgs['request'] = {
    hypervisor: hv === 'firecracker' ? 'firecracker' : 'qemu',
    accel: (['auto', 'kvm', 'tcg'] as const).find((a) => a === (env.RUNCVM_ACCEL ?? '').trim().toLowerCase()) ?? 'auto',
    vcpus: 1,
    memoryMiB: DEFAULT_MEMORY_MIB,
    nics: 1,
    dataDisks: 0,
  };
  let key: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    const value = () => (raw.startsWith('--') && eq > 0 ? raw.slice(eq + 1) : argv[++i]);
    switch (flag) {
      case '--cpus':
        request.vcpus = intFlag('--cpus', value(), 1, MAX_VCPUS);
        break;
      case '--memory':
      case '-m':
        request.memoryMiB = memoryFlag(value());
        break;
      case '--nics':
        request.nics = intFlag('--nics', value(), 0, 16);
        break;
      case '--data-disks':
        request.dataDisks = intFlag('--data-disks', value(), 0, 16);
        break;
      case '--hypervisor': {
        const v = value();
        if (v !== 'qemu' && v !== 'firecracker') throw usage(`--hypervisor is qemu or firecracker, not "${v ?? ''}"`);
        request.hypervisor = v;
        break;
      }
      case '--accel': {
        const v = value();
        if (v !== 'auto' && v !== 'kvm' && v !== 'tcg') throw usage(`--accel is auto, kvm or tcg, not "${v ?? ''}"`);
        request.accel = v;
        break;
      }
      case '--key': {
        const v = value();
        if (!v || !KEY_PATTERN.test(v)) throw usage(`--key needs a whole template key (64 hex digits), not "${v ?? ''}"`);
        key = v;
        break;
      }
      default:
        throw usage(`unknown argument ${raw}`);
    }
  }
  return { request, ...(key ? { key } : {}) };
}

/**
 * The template VM as the builder runs it on the node: the launcher's VM (same shape, so the same key) with the
 * node's kernel files and the build's own sockets; the backend makes placeholder disks (bootAndSave).
 */
export function builderVm(vm: VmPlan, kernelDir: string, workDir: string): VmPlan {
  const host = (p: string) => (p.startsWith(`${CONTAINER_PATHS.kernelDir}/`) ? join(kernelDir, p.slice(CONTAINER_PATHS.kernelDir.length + 1)) : p);
  return {
    ...vm,
    kernel: host(vm.kernel),
    initrd: host(vm.initrd),
    console: { socket: join(workDir, 'console.sock') },
    io: { ...vm.io, socket: join(workDir, 'io.sock') },
    ...(vm.agent ? { agent: { ...vm.agent, socket: join(workDir, 'agent.sock') } } : {}),
  };
}

async function buildMain(argv: string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const args = parseBuildArgs(argv, env);
  const dirs = hostDirs(env);
  const node = parseNodeSettings(env);
  const folders = assetFolders(env);
  const kernelDir = await realpath(folders.kernelDir).catch(() => folders.kernelDir);
  const guestDir = await realpath(folders.guestDir).catch(() => folders.guestDir);
  const decision = decideAccel(args.request.accel, gatherAccelFacts(undefined, kvmDevicePath(env)));
  if (!decision.ok) throw fail('KVM_REQUIRED', { reason: decision.reason });
  const khz = tscKhz();
  const request: TemplateRequest = { ...args.request, accel: decision.accel, ...(khz ? { tscKhz: khz } : {}) };
  const vm = templateVm(request);
  const hv = HYPERVISORS[request.hypervisor];
  // an explicit build is the node admin's request: RUNCVM_TEMPLATE decides only whether containers use templates
  const k = templateKey(vm, hv, { setting: 'on', assets: await readTemplateAssets(kernelDir, guestDir) });
  if (!k.ok) throw fail('TEMPLATE_REFUSED', { reason: k.reason, fix: 'containers of this shape boot cold; nothing to build.' });
  if (args.key && args.key !== k.key) {
    throw fail('TEMPLATE_REFUSED', { reason: `this node makes key ${k.key.slice(0, 12)} for the shape, not the ${args.key.slice(0, 12)} asked for (the assets or the host changed since create)`, fix: 'nothing to do: the next container of this shape starts a build of the right key.' });
  }
  const level = (env.RUNCVM_LOG_LEVEL ?? '').toLowerCase() === 'debug' ? 'debug' : 'info';
  const log = new Logger({ level, namespace: `runcvm template ${k.key.slice(0, 12)}`, timestamps: true });
  log.info('template build', { key: k.key, hypervisor: hv.name, accel: request.accel, vcpus: request.vcpus, memoryMiB: request.memoryMiB, nics: request.nics, dataDisks: request.dataDisks });
  const started = Date.now();
  const { bootAndSave, checkRestore } = await import('./boot-and-save.js');
  const workDirs: string[] = [];
  const work = async () => {
    const d = await mkdtemp(join(tmpdir(), 'runcvm-template-'));
    workDirs.push(d);
    return d;
  };
  let result;
  try {
    result = await writeTemplate(dirs.cacheDir, k.key, k.shape, {
      async build(files) {
        const workDir = await work();
        await bootAndSave(builderVm(vm, kernelDir, workDir), hv, files, { workDir, guestDir, log });
      },
      async verify(files) {
        const workDir = await work();
        await checkRestore(builderVm(vm, kernelDir, workDir), hv, files, { workDir, guestDir, log });
      },
    });
  } catch (err) {
    if (isToolError(err) && err.code !== 'UNEXPECTED') throw fail('TEMPLATE_BUILD_FAILED', { key: k.key, problem: err.message }, err);
    throw fail('TEMPLATE_BUILD_FAILED', { key: k.key, problem: (err as Error)?.message ?? String(err) }, err);
  } finally {
    for (const d of workDirs) await rm(d, { recursive: true, force: true }).catch(() => undefined);
  }
  if (!result.built) {
    process.stdout.write(`${k.key} ${result.reason}\n`);
    return 0;
  }
  log.info('template built', { dir: result.dir, ms: Date.now() - started, state: result.manifest.stateBytes });
  await boundTemplates(dirs, node.cacheMaxBytes, result.dir, log);
  process.stdout.write(`${k.key}\n`);
  return 0;
}

async function lsMain(argv: string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const json = argv.includes('--json');
  const other = argv.find((a) => a !== '--json');
  if (other) throw usage(`unknown argument ${other}`);
  const dirs = hostDirs(env);
  const inUse = await templatesInUse(dirs.stateRoot);
  const list = await listTemplates(dirs.cacheDir);
  const rows = list.map((t) => ({
    key: t.key,
    bytes: t.bytes,
    created: t.manifest?.created ?? null,
    inUse: inUse.get(t.dir) ?? 0,
    shape: t.manifest ? summary(t.manifest.shape) : null,
    ...(t.problem ? { problem: t.problem } : {}),
  }));
  if (json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  const lines = [['KEY', 'SIZE', 'CREATED', 'IN USE', 'SHAPE']];
  for (const r of rows) lines.push([r.key, formatSize(r.bytes), r.created ?? '-', String(r.inUse), r.problem ? `(${r.problem})` : (r.shape ?? '')]);
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  process.stdout.write(lines.map((l) => l.map((c, i) => (i === l.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n');
  return 0;
}

/** one line of the shape for `ls`: hypervisor, accel, vCPUs, memory, NICs, disks */
function summary(shape: Record<string, unknown>): string {
  const disks = Array.isArray(shape.disks) ? shape.disks.length : '?';
  return `${String(shape.hypervisor)} ${String(shape.accel)} ${String(shape.vcpus)} vCPU ${String(shape.memoryMiB)} MiB ${String(shape.nics)} NIC ${disks} disks`;
}

async function rmMain(argv: string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const dirs = hostDirs(env);
  if (argv.length !== 1) throw usage('rm needs one KEY (or --all)');
  const list = await listTemplates(dirs.cacheDir);
  const wanted = argv[0]!;
  let keys: string[];
  if (wanted === '--all') keys = list.map((t) => t.key);
  else {
    const hits = wanted.length >= 8 && /^[0-9a-f]+$/.test(wanted) ? list.filter((t) => t.key.startsWith(wanted)) : [];
    if (hits.length !== 1) throw fail('TEMPLATE_NOT_FOUND', { key: wanted, dir: templatesDir(dirs.cacheDir) });
    keys = [hits[0]!.key];
  }
  const inUse = await templatesInUse(dirs.stateRoot);
  for (const key of keys) {
    const users = inUse.get(join(templatesDir(dirs.cacheDir), key)) ?? 0;
    if (await removeTemplate(dirs.cacheDir, key)) {
      process.stdout.write(`removed ${key}${users ? ` (${users} running container${users > 1 ? 's' : ''} keep their private mapping of it until they stop)` : ''}\n`);
    }
  }
  // stale build leftovers of builders that died (their tmp folders and locks) go with --all
  if (wanted === '--all') {
    for (const name of await readdir(templatesDir(dirs.cacheDir)).catch(() => [] as string[])) {
      if (!/^\.(tmp|rm|lock)-/.test(name)) continue;
      const pid = Number((name.startsWith('.lock-') ? await readFile(join(templatesDir(dirs.cacheDir), name), 'utf8').catch(() => '') : name.split('-')[2] ?? '').trim());
      if (pid > 0 && pidAliveSafe(pid)) continue;
      await rm(join(templatesDir(dirs.cacheDir), name), { recursive: true, force: true });
    }
  }
  return 0;
}

function pidAliveSafe(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const USAGE = [
  'usage: runcvm template build [--cpus N] [--memory SIZE] [--nics N] [--data-disks N] [--hypervisor qemu|firecracker] [--accel auto|kvm|tcg]',
  '       runcvm template ls [--json]',
  '       runcvm template rm KEY|--all',
  '',
  'Templates are saved VMs that containers of the same shape start from (RUNCVM_TEMPLATE=on in the runtime\'s',
  'environment). They live in $RUNCVM_CACHE_DIR/templates and count in RUNCVM_CACHE_MAX.',
].join('\n');

export async function templateMain(argv: string[], env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    switch (verb) {
      case 'build':
        return await buildMain(rest, env);
      case 'ls':
      case 'list':
        return await lsMain(rest, env);
      case 'rm':
      case 'remove':
        return await rmMain(rest, env);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        return verb ? 0 : 2;
      default:
        throw usage(`unknown command "${verb}"`);
    }
  } catch (err) {
    const te = err instanceof SettingError ? fail(err.code, err.details()) : isToolError(err) ? err : undefined;
    if (!te) throw err;
    process.stderr.write(`${te.render()}\n`);
    return te.exitCode;
  }
}
