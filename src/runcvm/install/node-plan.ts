/**
 * `runcvm node-install`: what the node installer (the DaemonSet's init container, deploy/kubernetes/
 * node-installer-daemonset.yaml) does to a node, decided from facts read through the node's hostPath mounts. Pure.
 *
 *   1. runcvm's files: the image's payload (runtime, shim, CLI, guest kernel, initramfs and package) copied to
 *      /opt/runcvm on the node, unless the same payload (by content id) is already there; the version it replaces
 *      stays at /opt/runcvm.previous, so VMs started from it keep their files;
 *   2. the engine's runtime entry: containerd's config.toml or k3s's config-v3.toml.tmpl (./plan.ts), BinaryName
 *      /opt/runcvm/bin/runcvm-runtime, backed up and validated before it is written;
 *   3. the engine restart: only when the entry changed, with systemctl through the host's PID 1 (hostPID) on a
 *      systemd node; on a node without systemd, or with RUNCVM_INSTALL_RESTART=never, the report says what to
 *      restart instead.
 * Run twice, the second run changes nothing and restarts nothing.
 */
import { InstallRefused, planContainerd, planK3sTemplate, type InstallPlan } from './plan.js';

export type NodeEngine = 'containerd' | 'k3s';

export interface NodeFacts {
  /** where the node's filesystem is mounted in the installer container, e.g. /host */
  hostRoot: string;
  /** runcvm's home on the node, e.g. /opt/runcvm */
  prefix: string;
  payload: { dir: string; id: string; version: string };
  /** the payload already on the node (its .payload file), undefined when none */
  installed?: { id: string; version: string };
  /** k3s writes agent/etc/containerd/config.toml itself: its presence says the node runs k3s */
  k3sConfigExists: boolean;
  /** the engine's config file as it is now (undefined: absent) */
  containerdConfig?: string;
  k3sTemplate?: string;
  /** the node boots with systemd (/run/systemd/system on the node) and PID 1 is systemd (hostPID) */
  systemd: boolean;
  restart: 'auto' | 'never';
  /** `containerd --version` output when the config does not say its version */
  containerdVersion?: string;
}

export type NodeStep =
  | { kind: 'copy-payload'; from: string; to: string; staging: string; previous: string; replaces?: string }
  | { kind: 'write-config'; path: string; text: string; backup: boolean; actions: string[] }
  | { kind: 'restart'; argv: string[]; unit: NodeEngine };

export interface NodePlan {
  engine: NodeEngine;
  /** the config file as the node names it, e.g. /etc/containerd/config.toml */
  configPath: string;
  steps: NodeStep[];
  /** what the installer reports, one line each, in the order it happens */
  report: string[];
  changed: boolean;
}

export const NODE_CONFIG = {
  containerd: '/etc/containerd/config.toml',
  k3s: '/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl',
} as const;
export const K3S_CONFIG = '/var/lib/rancher/k3s/agent/etc/containerd/config.toml';

const join = (...parts: string[]) => parts.join('/').replace(/\/+/g, '/');

export function planNodeInstall(f: NodeFacts): NodePlan {
  if (!f.prefix.startsWith('/') || f.prefix === '/') throw new InstallRefused(`the install prefix ${f.prefix} must be an absolute folder`, 'set --prefix to e.g. /opt/runcvm');
  const engine: NodeEngine = f.k3sConfigExists ? 'k3s' : 'containerd';
  const configPath = NODE_CONFIG[engine];
  const steps: NodeStep[] = [];
  const report: string[] = [];
  const runtime = join(f.prefix, 'bin', 'runcvm-runtime');

  if (f.installed?.id === f.payload.id) {
    report.push(`runcvm ${f.payload.version} is already installed in ${f.prefix} (payload ${f.payload.id.slice(0, 12)})`);
  } else {
    const to = join(f.hostRoot, f.prefix);
    steps.push({
      kind: 'copy-payload', from: f.payload.dir, to, staging: `${to}.new`, previous: `${to}.previous`,
      ...(f.installed ? { replaces: f.installed.version } : {}),
    });
    report.push(f.installed
      ? `runcvm ${f.payload.version} installed in ${f.prefix} (payload ${f.payload.id.slice(0, 12)}); the previous ${f.installed.version} stays in ${f.prefix}.previous for running VMs`
      : `runcvm ${f.payload.version} installed in ${f.prefix} (payload ${f.payload.id.slice(0, 12)})`);
  }

  // two handlers: runcvm (the guest keeps the container's security, runc parity) and runcvm-userns (the workload
  // may use user namespaces inside the VM; src/runcvm/launch/guest-privileges.ts)
  let plan: InstallPlan;
  try {
    const handlers = [{ name: 'runcvm', binaryName: runtime }, { name: 'runcvm-userns', binaryName: join(f.prefix, 'bin', 'runcvm-runtime-userns') }];
    let text = engine === 'k3s' ? (f.k3sTemplate ?? '') : (f.containerdConfig ?? '');
    const actions: string[] = [];
    let changed = false;
    let last: InstallPlan | undefined;
    for (const h of handlers) {
      last = engine === 'k3s'
        ? planK3sTemplate(text, h)
        : planContainerd(text, { ...h, ...(f.containerdVersion ? { containerdVersion: f.containerdVersion } : {}) });
      if (last.changed) {
        changed = true;
        text = last.text;
        actions.push(...last.actions);
      } else actions.push(...last.actions);
    }
    plan = { ...last!, changed, text, actions };
  } catch (err) {
    // name the node's file: the reader is looking at the node, not at the installer's mounts
    if (err instanceof InstallRefused) throw new InstallRefused(`${configPath}: ${err.message}`, err.fix);
    throw err;
  }
  const existing = engine === 'k3s' ? f.k3sTemplate : f.containerdConfig;
  if (plan.changed) {
    steps.push({ kind: 'write-config', path: join(f.hostRoot, configPath), text: plan.text, backup: existing !== undefined, actions: plan.actions });
    for (const a of plan.actions) report.push(`${configPath}: ${a}`);
    if (existing !== undefined) report.push(`${configPath}: the original is saved as ${configPath}.bak`);
    const argv = ['nsenter', '--target', '1', '--mount', '--uts', '--ipc', '--net', '--pid', '--', 'systemctl', 'restart', engine];
    if (f.restart === 'never') {
      report.push(`restart: not done (RUNCVM_INSTALL_RESTART=never): run \`sudo systemctl restart ${engine}\` on the node to load runcvm`);
    } else if (!f.systemd) {
      report.push(`restart: this node does not run systemd, so the installer cannot restart ${engine}: restart it yourself to load runcvm (${engine} reads its config only when it starts)`);
    } else {
      steps.push({ kind: 'restart', argv, unit: engine });
      report.push(`restart: systemctl restart ${engine} (through the node's PID 1)`);
    }
  } else {
    report.push(`${configPath}: ${plan.actions.join('; ')}; nothing to restart`);
  }
  return { engine, configPath, steps, report, changed: steps.length > 0 };
}
