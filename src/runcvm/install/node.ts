/**
 * `runcvm node-install`: the node installer's effects (the decisions are in ./node-plan.ts). Reads the node through
 * its hostPath mounts, copies the payload, writes the engine's config (backup, atomic write), restarts the engine
 * where it can, and prints what it did. A node it cannot install into gets the reason and the fix, exit 1.
 */
import { cp, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite, readOptional } from '../../core/fsx/index.js';
import { run } from '../../core/exec/index.js';
import { projectPath } from '../../core/paths.js';
import { InstallRefused } from './plan.js';
import { K3S_CONFIG, NODE_CONFIG, planNodeInstall, type NodeFacts, type NodePlan } from './node-plan.js';

export const NODE_HELP = `usage: runcvm node-install [--host-root DIR] [--prefix DIR] [--payload DIR] [--dry-run]

Installs runcvm into a Kubernetes node from inside the node-installer DaemonSet pod, whose hostPath mounts show the
node's /opt, /etc/containerd, /var/lib/rancher/k3s/agent/etc/containerd and /run under --host-root:
  1. copies the payload (runtime, shim, CLI, guest kernel, initramfs and package) to --prefix on the node, unless
     the same payload is already there (the replaced one stays in PREFIX.previous for running VMs);
  2. registers the runtime with the node's engine: k3s when ${K3S_CONFIG} exists,
     containerd otherwise (${NODE_CONFIG.containerd}); the original is saved as .bak;
  3. restarts the engine when its config changed: systemctl through the node's PID 1 (hostPID) on a systemd node;
     otherwise it says what to restart.
Running it again changes nothing.

options:
  --host-root DIR   where the node's filesystem is mounted (default /host)
  --prefix DIR      runcvm's folder on the node (default /opt/runcvm)
  --payload DIR     the files to install (default: this installation)
  --dry-run         print the report, change nothing
environment: RUNCVM_INSTALL_RESTART=auto|never (default auto)

exit status: 0 installed (or already installed) · 1 this node cannot be installed into (reason and fix printed) · 2 usage
`;

const exists = (p: string) => stat(p).then(() => true, () => false);

interface Payload {
  id: string;
  version: string;
}

async function readPayload(dir: string): Promise<Payload | undefined> {
  const text = await readOptional(join(dir, '.payload'));
  if (!text) return undefined;
  const p = JSON.parse(text) as Partial<Payload>;
  return typeof p.id === 'string' && typeof p.version === 'string' ? { id: p.id, version: p.version } : undefined;
}

export async function gatherNodeFacts(o: { hostRoot: string; prefix: string; payloadDir: string; env: Record<string, string | undefined> }): Promise<NodeFacts> {
  const payload = await readPayload(o.payloadDir);
  if (!payload) throw new InstallRefused(`${o.payloadDir} holds no runcvm payload (.payload is missing)`, 'run the installer image built by `npm run images`, or give --payload DIR');
  if (!(await exists(o.hostRoot))) throw new InstallRefused(`the node's filesystem is not mounted at ${o.hostRoot}`, 'mount the node\'s /opt, /etc/containerd, /run (and the k3s folder) under /host as deploy/kubernetes/node-installer-daemonset.yaml does');
  const installed = await readPayload(join(o.hostRoot, o.prefix));
  const pid1 = (await readOptional('/proc/1/comm'))?.trim();
  const restart = o.env.RUNCVM_INSTALL_RESTART === 'never' ? 'never' : 'auto';
  if (o.env.RUNCVM_INSTALL_RESTART && !['auto', 'never'].includes(o.env.RUNCVM_INSTALL_RESTART)) {
    throw new InstallRefused(`RUNCVM_INSTALL_RESTART=${o.env.RUNCVM_INSTALL_RESTART} is not auto or never`, 'set RUNCVM_INSTALL_RESTART to auto (the default) or never');
  }
  const containerdConfig = await readOptional(join(o.hostRoot, NODE_CONFIG.containerd));
  const facts: NodeFacts = {
    hostRoot: o.hostRoot,
    prefix: o.prefix,
    payload: { dir: o.payloadDir, ...payload },
    k3sConfigExists: await exists(join(o.hostRoot, K3S_CONFIG)),
    // both the node's boot (its /run) and this pod's view of PID 1 (hostPID) must say systemd
    systemd: (await exists(join(o.hostRoot, 'run', 'systemd', 'system'))) && pid1 === 'systemd',
    restart,
  };
  if (installed) facts.installed = installed;
  if (containerdConfig !== undefined) facts.containerdConfig = containerdConfig;
  const template = await readOptional(join(o.hostRoot, NODE_CONFIG.k3s));
  if (template !== undefined) facts.k3sTemplate = template;
  return facts;
}

async function applyNodePlan(plan: NodePlan, say: (line: string) => void): Promise<void> {
  for (const step of plan.steps) {
    if (step.kind === 'copy-payload') {
      await rm(step.staging, { recursive: true, force: true });
      try {
        await cp(step.from, step.staging, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
      } catch (err) {
        await rm(step.staging, { recursive: true, force: true });
        throw err;
      }
      if (await exists(step.to)) {
        await rm(step.previous, { recursive: true, force: true });
        await rename(step.to, step.previous);
      }
      await rename(step.staging, step.to);
    } else if (step.kind === 'write-config') {
      const existing = await readOptional(step.path);
      let mode = 0o644;
      if (existing !== undefined) {
        mode = (await stat(step.path)).mode & 0o777;
        await atomicWrite(`${step.path}.bak`, existing, 0o600);
      }
      await atomicWrite(step.path, step.text, mode);
    } else {
      const r = await run(step.argv[0]!, step.argv.slice(1), { reject: false, timeoutMs: 120_000 });
      if (r.exitCode !== 0) {
        throw new InstallRefused(`systemctl restart ${step.unit} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`,
          `the runtime entry is written; restart ${step.unit} on the node by hand (sudo systemctl restart ${step.unit}) and look at journalctl -u ${step.unit}`);
      }
      say(`restarted ${step.unit}`);
    }
  }
}

export async function nodeInstallMain(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let hostRoot = '/host';
  let prefix = '/opt/runcvm';
  let payloadDir = projectPath();
  let dryRun = false;
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    const value = () => (eq > 0 ? raw.slice(eq + 1) : argv[++i]);
    switch (flag) {
      case '-h': case '--help': process.stdout.write(NODE_HELP); return 0;
      case '--host-root': hostRoot = value() ?? ''; break;
      case '--prefix': prefix = value() ?? ''; break;
      case '--payload': payloadDir = value() ?? ''; break;
      case '--dry-run': dryRun = true; break;
      default:
        process.stderr.write(`runcvm node-install: unknown argument ${raw}\n\n${NODE_HELP}`);
        return 2;
    }
  }
  const say = (line: string) => process.stdout.write(`runcvm node-install: ${line}\n`);
  try {
    const facts = await gatherNodeFacts({ hostRoot, prefix, payloadDir, env });
    const plan = planNodeInstall(facts);
    say(`node engine: ${plan.engine} (${plan.configPath})`);
    if (!dryRun) await applyNodePlan(plan, say);
    for (const line of plan.report) say(dryRun ? `(dry run) ${line}` : line);
    say(plan.changed ? (dryRun ? 'dry run: nothing was changed' : 'done') : 'nothing to change');
    return 0;
  } catch (err) {
    if (err instanceof InstallRefused) {
      process.stderr.write(`runcvm node-install: error: ${err.message}\nruncvm node-install: fix: ${err.fix}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EROFS' || e.code === 'EACCES' || e.code === 'EPERM') {
      process.stderr.write(`runcvm node-install: error: cannot write ${e.path ?? 'the node'}: ${e.message}\nruncvm node-install: fix: the installer must run privileged with the node's /opt and engine config mounted read-write (deploy/kubernetes/node-installer-daemonset.yaml)\n`);
      return 1;
    }
    throw err;
  }
}
