/**
 * `runcvm doctor`: every failure in the RunCVM troubleshooting guide as a check with cause and fix.
 * Node side by default; container side with --inside (or automatically when /.runcvm exists).
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { assetsDir } from '../../core/paths.js';
import { DEFAULTS, probeContainer, probeNode } from './probe.js';
import { containerChecks, exitCodeFor, nodeChecks, renderText } from './verdicts.js';

export const HELP = `usage: runcvm doctor [--inside [--root DIR] | --node] [--json] [--containerd-config PATH] [--k3s-template PATH]
                     [--docker-config PATH] [--cache-dir DIR]

Checks this node (default) or, with --inside, this runcvm container, for every failure in the RunCVM Kubernetes
troubleshooting guide. Each check prints PASS, WARN or FAIL, what was seen (with the guide's symptom text) and the fix.

node checks: kvm-device, kvm-usable, tun-device, runc, qemu, guest-kernel, guest-package, containerd-config,
  k3s-template, docker-config, runtime-registered, cache-disk, state-disk, debug-logs, user-namespaces
container checks (--inside; automatic when /.runcvm exists): entrypoint, proc, guest-path, bridge-ip,
  bridge-members, nfs-volumes

options:
  --inside                  container-side checks
  --node                    node checks even when /.runcvm exists
  --json                    print {mode, checks: [{id, title, status, cause, fix}], summary}
  --containerd-config PATH  default ${DEFAULTS.containerdConfig}
  --k3s-template PATH       default ${DEFAULTS.k3sTemplate}
  --docker-config PATH      default ${DEFAULTS.dockerConfig}
  --cache-dir DIR           where VM root filesystems are made (default $RUNCVM_CACHE_DIR or ${DEFAULTS.cacheDir})
  --root DIR                with --inside: look for .runcvm/ under DIR instead of / (for tests and chroots)
  -h, --help                this text
Guest assets are looked up in $RUNCVM_ASSETS (default var/assets of this installation); the runtime's folders in
$RUNCVM_STATE_DIR (/run/runcvm) and $RUNCVM_LOG_DIR (/tmp), as the runtime reads them.

exit status:
  0  no check failed (warnings allowed)
  1  at least one check failed
  2  usage error
`;

const VALUE_OPTIONS = ['--containerd-config', '--k3s-template', '--docker-config', '--cache-dir', '--root'] as const;

export async function doctorMain(argv: string[]): Promise<number> {
  const opts: Record<string, string> = {};
  let json = false;
  let mode: 'inside' | 'node' | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      return 0;
    } else if (arg === '--json') json = true;
    else if (arg === '--inside') mode = 'inside';
    else if (arg === '--node') mode = 'node';
    else if ((VALUE_OPTIONS as readonly string[]).includes(name)) {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (!value) return usage(`${name} needs a value`);
      opts[name.slice(2)] = value;
    } else return usage(`unknown argument ${arg}`);
  }
  const env = process.env;
  if (!mode) mode = (await access(join('/', '.runcvm')).then(() => true, () => false)) ? 'inside' : 'node';
  const checks = mode === 'inside'
    ? containerChecks(await probeContainer(env, opts.root ?? '/'))
    : nodeChecks(await probeNode({
      containerdConfig: opts['containerd-config'],
      k3sTemplate: opts['k3s-template'],
      dockerConfig: opts['docker-config'],
      assetsDir: assetsDir(env),
      cacheDir: opts['cache-dir'] ?? env.RUNCVM_CACHE_DIR ?? DEFAULTS.cacheDir,
      env,
    }));
  if (json) {
    const count = (s: string) => checks.filter((c) => c.status === s).length;
    process.stdout.write(JSON.stringify({ mode, checks, summary: { pass: count('pass'), warn: count('warn'), fail: count('fail') } }, null, 2) + '\n');
  } else {
    process.stdout.write(`runcvm doctor (${mode === 'inside' ? 'container side' : 'node'})\n` + renderText(checks));
  }
  return exitCodeFor(checks);
}

function usage(message: string): number {
  process.stderr.write(`runcvm doctor: ${message}\n\n${HELP}`);
  return 2;
}
