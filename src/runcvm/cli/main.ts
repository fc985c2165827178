/**
 * `runcvm` user-facing CLI: a table of sub-commands, each imported lazily from the folder that owns it, so that
 * `runcvm version` never loads the doctor or the NFS server.
 */

type SubMain = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<SubMain> }> = {
  version: { summary: 'print the version', load: async () => versionMain },
  doctor: { summary: 'check this node (or this container) for every known failure, with cause and fix', load: async () => (await import('../doctor/main.js')).doctorMain },
  lint: { summary: 'check Kubernetes manifests for runcvm misconfigurations', load: async () => (await import('../lint/main.js')).lintMain },
  install: { summary: 'register runcvm with containerd, k3s or Docker', load: async () => (await import('../install/main.js')).installMain },
  'node-install': { summary: 'install runcvm into a Kubernetes node from the node-installer pod (files, runtime entry, restart)', load: async () => (await import('../install/node.js')).nodeInstallMain },
  plan: { summary: 'print the LaunchSpec and hypervisor invocation for a bundle without starting anything', load: async () => (await import('../plan/main.js')).planMain },
  template: { summary: 'build, list and remove VM templates (saved VMs containers start from: RUNCVM_TEMPLATE=on)', load: async () => (await import('../template/main.js')).templateMain },
  'nfs-serve': { summary: 'serve folders over NFSv3 (the volume path for Firecracker guests)', load: async () => (await import('../nfs/main.js')).nfsServeMain },
};

async function versionMain(): Promise<number> {
  const { projectVersion } = await import('../../core/version.js');
  process.stdout.write(`runcvm ${projectVersion()}\n`);
  return 0;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return ['usage: runcvm <command> [options]', '', 'commands:', ...lines, '', 'The OCI runtime itself is bin/runcvm-runtime.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(usage() + '\n');
    return command ? 0 : 2;
  }
  if (command === '--version' || command === '-v') return versionMain();
  const entry = COMMANDS[command];
  if (!entry) {
    process.stderr.write(`runcvm: unknown command "${command}"\n${usage()}\n`);
    return 2;
  }
  const sub = await entry.load();
  return sub(rest);
}
