/**
 * The LaunchSpec: the one typed hand-off from `runcvm-runtime create` (host) to the launcher (container PID 1) and,
 * rendered by guest-config.ts, to the guest init. Versioned and schema-checked at both ends; lives in the
 * per-container state dir (0700) as launch.json (0600), bind-mounted read-only at /.runcvm/state.
 */
import { z } from 'zod';
import { volumeSchema } from './volume-schema.js';
import { seccompProfileSchema } from '../seccomp/profile.js';

export const LAUNCH_SPEC_VERSION = 1;

/** Paths inside the container (the launcher's view); fixed so host and launcher agree without env vars. */
export const CONTAINER_PATHS = {
  guest: '/.runcvm/guest',
  state: '/.runcvm/state',
  launchSpec: '/.runcvm/state/launch.json',
  kernelDir: '/.runcvm/kernel',
  baseDisk: '/.runcvm/disks/base.ext4',
  upperDisk: '/.runcvm/state/upper.ext4',
  ioSocket: '/.runcvm/state/io.sock',
  consoleSocket: '/.runcvm/state/console.sock',
  debugLog: '/.runcvm/debug.log',
  launcher: '/.runcvm/guest/lib/runcvm/launcher.mjs',
  /** the V8 start-up snapshot of the same launcher (30-runtime.sh), used when create finds it fits (facts.ts) */
  launcherSnapshot: '/.runcvm/guest/lib/runcvm/launcher.blob',
  loader: '/.runcvm/guest/lib/ld',
  node: '/.runcvm/guest/bin/node',
  /** the firecracker binary the runtime chose on the node (package, RUNCVM_FIRECRACKER or PATH), bound read-only */
  firecracker: '/.runcvm/firecracker',
  /** RUNCVM_KERNEL's file (launch/kernel.ts), bound read-only, nosuid, nodev */
  customKernel: '/.runcvm/kernel-custom/vmlinux',
  /** the VM template create chose (LaunchSpec.template; issue 17: manifest.json, state, memory), bound read-only */
  template: '/.runcvm/template',
} as const;

/** Paths inside the VM (the guest's view). */
export const GUEST_PATHS = {
  entrypoint: '/.runcvm/entrypoint',
  config: '/.runcvm/config',
  init: '/.runcvm/guest/bin/runcvm-init',
  bin: '/.runcvm/guest/bin',
} as const;

const capabilitySets = z.object({
  bounding: z.array(z.string()),
  effective: z.array(z.string()),
  inheritable: z.array(z.string()),
  permitted: z.array(z.string()),
  ambient: z.array(z.string()),
});

const idMapping = z.object({ containerID: z.number().int().nonnegative(), hostID: z.number().int().nonnegative(), size: z.number().int().positive() });

const rlimit = z.object({ type: z.string(), soft: z.number().int().nonnegative(), hard: z.number().int().nonnegative() });

export const processSchema = z.object({
  args: z.array(z.string()),
  env: z.array(z.string()),
  cwd: z.string(),
  user: z.object({
    uid: z.number().int().nonnegative(),
    gid: z.number().int().nonnegative(),
    additionalGids: z.array(z.number().int().nonnegative()),
    umask: z.number().int().nonnegative().optional(),
  }),
  terminal: z.boolean(),
  rlimits: z.array(rlimit),
  noNewPrivileges: z.boolean(),
  /**
   * OCI process.capabilities with unknown names left out (launch/capabilities.ts); applied by the guest init as runc
   * applies them. Optional only so older launch.json files still parse: buildLaunchSpec always sets it.
   */
  capabilities: capabilitySets.optional(),
  /** OCI process.oomScoreAdj: the workload's and every exec's /proc/self/oom_score_adj in the guest */
  oomScoreAdj: z.number().int().optional(),
});

export const guestMountSchema = z.object({
  destination: z.string(),
  /** tmpfs today; virtiofs / nfs volumes slot in here later */
  type: z.enum(['tmpfs']),
  options: z.array(z.string()),
});

/** The workload's /proc, /dev, /sys in the guest (launch/rootfs.ts, applied by guest/rootfs.c). */
export const rootfsSchema = z.object({
  /** the spec's mounts there, in its order, replayed in the workload's own mount namespace */
  mounts: z.array(z.object({ type: z.string(), source: z.string(), destination: z.string(), options: z.array(z.string()) })),
  /** nodes made in the workload's /dev: runc's defaults, then linux.devices */
  devices: z.array(
    z.object({
      path: z.string(),
      type: z.enum(['c', 'b', 'p']),
      major: z.number().int().nonnegative(),
      minor: z.number().int().nonnegative(),
      fileMode: z.number().int().nonnegative(),
      uid: z.number().int().nonnegative(),
      gid: z.number().int().nonnegative(),
    }),
  ),
  maskedPaths: z.array(z.string()),
  readonlyPaths: z.array(z.string()),
});

export const diskSchema = z.object({
  id: z.string(),
  /** path inside the container */
  path: z.string(),
  readOnly: z.boolean(),
  role: z.enum(['root', 'upper', 'data']),
});

export const launchSpecSchema = z.object({
  version: z.literal(LAUNCH_SPEC_VERSION),
  containerId: z.string(),
  process: processSchema,
  hostname: z.string(),
  /** OCI root.readonly: the guest init remounts the workload's / read-only (its other mounts stay as they are) */
  root: z
    .object({
      readonly: z.boolean(),
      /** with readonly: the workload's /run (the init's tmpfs) is read-only too, as under runc without a /run mount */
      readonlyRun: z.literal(true).optional(),
    })
    .optional(),
  /** optional only so older launch.json files still parse: buildLaunchSpec always sets it */
  rootfs: rootfsSchema.optional(),
  /**
   * A new user namespace (OCI `linux.namespaces` entry `user` without a path) with linux.uidMappings/gidMappings: the
   * guest init puts the workload in a user namespace of the guest with the same maps, and every exec joins it
   */
  userns: z
    .object({
      uidMappings: z.array(idMapping),
      gidMappings: z.array(idMapping),
    })
    .optional(),
  /** OCI linux.sysctl, written to the guest's /proc/sys before the workload starts */
  sysctl: z.record(z.string()).optional(),
  /**
   * OCI linux.seccomp: the workload's profile, compiled on the host (src/runcvm/seccomp) and loaded in the guest for
   * the workload and every exec. Absent: no profile, or the node turned guest seccomp off (RUNCVM_GUEST_SECCOMP=off).
   */
  seccomp: seccompProfileSchema.optional(),
  vm: z.object({
    hypervisor: z.enum(['qemu', 'firecracker']),
    /** what the user asked for; the launcher decides auto → kvm|tcg from what it can open */
    accel: z.enum(['auto', 'kvm', 'tcg']),
    vcpus: z.number().int().positive(),
    memoryMiB: z.number().int().positive(),
  }),
  kernel: z.object({
    path: z.string(),
    initrd: z.string(),
    /** extra kernel command line from RUNCVM_KERNEL_APPEND */
    append: z.string(),
    debug: z.boolean(),
  }),
  disks: z.array(diskSchema),
  mounts: z.array(guestMountSchema),
  /** volumes (virtiofs shares) and RUNCVM_DISKS data disks, in mount order (src/runcvm/volumes) */
  volumes: z.array(volumeSchema).optional(),
  /**
   * networking (src/runcvm/network): 'auto' hands every eth* of the container's own network namespace to the VM
   * (none found → loopback only, as `--network none`); 'none' never touches the namespace (e.g. the host's).
   */
  network: z.object({ mode: z.enum(['auto', 'none']) }),
  log: z.object({
    level: z.enum(['off', 'error', 'info', 'debug']),
    /** the debug log in the container (CONTAINER_PATHS.debugLog), when the runtime provides one */
    file: z.string().optional(),
    /** the same log's path on the node ($RUNCVM_LOG_DIR/runcvm-<id>.debug): error messages name it, never open it */
    hostPath: z.string().optional(),
  }),
  break: z.string().optional(),
  /**
   * VM templates (issue 17): create found the template of this VM's shape (template/key.ts) and bound its folder at
   * CONTAINER_PATHS.template; the launcher checks it (template/store.ts verifyTemplate, and the key of its own VmPlan)
   * and restores it, or boots cold with the reason. Absent: a cold boot (the reason is in the debug log).
   */
  template: z.object({ key: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
  channel: z.object({ io: z.string(), console: z.string() }),
});

export type LaunchSpec = z.infer<typeof launchSpecSchema>;
export type LaunchProcess = z.infer<typeof processSchema>;
export type GuestMount = z.infer<typeof guestMountSchema>;
export type LogLevelName = LaunchSpec['log']['level'];

export function parseLaunchSpec(json: string): LaunchSpec {
  return launchSpecSchema.parse(JSON.parse(json));
}
