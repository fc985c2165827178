/**
 * `runcvm install --containerd|--k3s|--docker`: register runcvm with the node's container engine. Effects only:
 * read the config, ask `containerd --version` when the file does not say, back up, write atomically, print the
 * restart step. Every decision is in ./plan.ts.
 */
import { access, constants, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { atomicWrite, readOptional } from '../../core/fsx/index.js';
import { run } from '../../core/exec/index.js';
import { projectPath } from '../../core/paths.js';
import { InstallRefused, planContainerd, planDocker, planK3sTemplate, type InstallPlan, type InstallTarget } from './plan.js';

export const DEFAULT_CONFIG: Record<InstallTarget, string> = {
  containerd: '/etc/containerd/config.toml',
  k3s: '/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl',
  docker: '/etc/docker/daemon.json',
};

export const HELP = `usage: runcvm install (--containerd | --k3s | --docker) [--config PATH] [--runtime PATH] [--handler NAME] [--dry-run]

Registers the runcvm runtime:
  --containerd  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runcvm] (config version = 2, containerd 1.x)
                or [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runcvm] (version = 3, containerd 2.x),
                runtime_type = "io.containerd.runc.v2", options.BinaryName = the runtime
                (default config ${DEFAULT_CONFIG.containerd})
  --k3s         the same section in k3s's template, after {{ template "base" . }}
                (default ${DEFAULT_CONFIG.k3s})
  --docker      runtimes.runcvm.path in daemon.json (default ${DEFAULT_CONFIG.docker})

options:
  --config PATH              the file to edit
  --runtime PATH             absolute path of runcvm-runtime (default: this installation's bin/runcvm-runtime)
  --handler NAME             the runtime handler (the RuntimeClass's handler; default runcvm), for --containerd and
                             --k3s: e.g. --handler runcvm-userns --runtime /opt/runcvm/bin/runcvm-runtime-userns
  --containerd-version TEXT  use this instead of asking \`containerd --version\` (for files without a version line)
  --dry-run                  print the new file, write nothing
  -h, --help                 this text

Installing twice changes nothing. The rest of the file is kept; the original is saved as PATH.bak (mode 0600);
the result is parsed before it is written atomically.

exit status:
  0  registered (or already registered)
  1  refused: the existing file is invalid or cannot be edited safely (nothing written), or the write failed
  2  usage error
`;

interface Args {
  target: InstallTarget;
  config: string;
  runtime: string;
  handler: string;
  containerdVersion: string | undefined;
  dryRun: boolean;
}

function parseArgs(argv: readonly string[]): Args | string {
  const targets: InstallTarget[] = [];
  let config: string | undefined;
  let runtime: string | undefined;
  let handler = 'runcvm';
  let containerdVersion: string | undefined;
  let dryRun = false;
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    const inline = raw.startsWith('--') && eq > 0 ? raw.slice(eq + 1) : undefined;
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--containerd': targets.push('containerd'); break;
      case '--k3s': targets.push('k3s'); break;
      case '--docker': targets.push('docker'); break;
      case '--dry-run': dryRun = true; break;
      case '--config': config = value(); if (!config) return '--config needs a path'; break;
      case '--runtime': runtime = value(); if (!runtime) return '--runtime needs a path'; break;
      case '--handler': handler = value() ?? ''; if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(handler)) return '--handler needs a name of lower-case letters, digits and dashes (a RuntimeClass handler)'; break;
      case '--containerd-version': containerdVersion = value(); if (!containerdVersion) return '--containerd-version needs a value'; break;
      default: return `unknown argument ${raw}`;
    }
  }
  if (targets.length !== 1) return 'give exactly one of --containerd, --k3s, --docker';
  const target = targets[0]!;
  if (target === 'docker' && handler !== 'runcvm') return '--handler is for --containerd and --k3s (docker names the runtime in docker run --runtime)';
  return { target, config: config ?? DEFAULT_CONFIG[target], runtime: resolve(runtime ?? projectPath('bin', 'runcvm-runtime')), handler, containerdVersion, dryRun };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

async function backupPath(path: string): Promise<string> {
  for (let n = 0; ; n++) {
    const candidate = n === 0 ? `${path}.bak` : `${path}.bak.${n}`;
    if (!(await exists(candidate))) return candidate;
  }
}

export async function installMain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    process.stderr.write(`runcvm install: ${args}\n\n${HELP}`);
    return 2;
  }
  const existing = await readOptional(args.config);
  let plan: InstallPlan;
  try {
    if (args.target === 'containerd') {
      let version = args.containerdVersion;
      if (version === undefined && !/^\s*version\s*=/m.test(existing ?? '')) {
        version = await run('containerd', ['--version']).then((r) => r.stdout.trim(), () => undefined);
      }
      plan = planContainerd(existing ?? '', { binaryName: args.runtime, name: args.handler, ...(version !== undefined ? { containerdVersion: version } : {}) });
    } else if (args.target === 'k3s') {
      plan = planK3sTemplate(existing ?? '', { binaryName: args.runtime, name: args.handler });
    } else {
      plan = planDocker(existing ?? '', { runtimePath: args.runtime });
    }
  } catch (err) {
    if (err instanceof InstallRefused) {
      process.stderr.write(`runcvm install: refused: ${args.config}: ${err.message}\n  fix: ${err.fix}\n`);
      return 1;
    }
    throw err;
  }
  const out = (line: string) => process.stdout.write(line + '\n');
  const canRun = await access(args.runtime, constants.X_OK).then(() => true, () => false);
  if (!canRun) process.stderr.write(`runcvm install: warning: ${args.runtime} is not an executable file yet; copy the runtime there before starting pods\n`);
  for (const a of plan.actions) out(`${args.config}: ${a}`);
  if (!plan.changed) {
    out('nothing to change');
    return 0;
  }
  if (args.dryRun) {
    out(`--- new ${args.config} (dry run, not written) ---`);
    process.stdout.write(plan.text);
    return 0;
  }
  let mode = 0o644;
  if (existing !== undefined) {
    mode = (await stat(args.config)).mode & 0o777;
    const bak = await backupPath(args.config);
    await atomicWrite(bak, existing, 0o600);
    out(`saved the original as ${bak}`);
  }
  await atomicWrite(args.config, plan.text, mode);
  out(`wrote ${args.config}`);
  out(`next: ${plan.restart}`);
  return 0;
}
