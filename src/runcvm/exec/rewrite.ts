/**
 * The exec rewrite (pure): the process runc is asked to exec is replaced by the exec client (run from the guest
 * package through its loader, as root, in the launcher container); the original process (args, env, cwd, user,
 * terminal) travels to the guest in a request file and is run INSIDE the VM by the agent. runc and the engine
 * still see an ordinary process whose stdio (or pty) is the exec's, and whose exit code is the command's.
 */
import type { LaunchProcess } from '../launch/schema.js';
import type { OciProcess } from '../launch/oci.js';
import { capabilitiesFromSpec } from '../launch/capabilities.js';
import { EXEC_PATHS, type ExecRequest } from '../agent/exec.js';
import { EXEC_CLIENT_ENV } from '../guest/contract.js';
export { requestFileName } from '../agent/exec.js';
import { ExecArgsError, parseUserFlag, type ExecArgs } from './args.js';

/** argv of the exec client inside the container (static: no loader needed); the request id is the last argument. */
export function clientArgs(requestId: string): string[] {
  return [EXEC_PATHS.client, requestId];
}

export const CLIENT_ENV: readonly string[] = EXEC_CLIENT_ENV;

/** Later entries win (`-e A=2` overrides the image's `A=1`); order of first appearance is kept. */
export function mergeEnv(...lists: readonly (readonly string[])[]): string[] {
  const order: string[] = [];
  const values = new Map<string, string>();
  for (const list of lists) {
    for (const entry of list) {
      const eq = entry.indexOf('=');
      const key = eq < 0 ? entry : entry.slice(0, eq);
      if (!values.has(key)) order.push(key);
      values.set(key, entry);
    }
  }
  return order.map((k) => values.get(k)!);
}

/**
 * runc's rule for `exec` without --process: start from the container's process (for runcvm: the ORIGINAL one kept
 * in launch.json, not the launcher's), then apply the flags: command, --cwd, --env (appended; later wins), --tty,
 * --user UID[:GID], --additional-gids, --cap, --no-new-privs, --apparmor, --process-label.
 */
export function processFromFlags(base: LaunchProcess, a: ExecArgs): OciProcess {
  const user = { uid: base.user.uid, gid: base.user.gid, additionalGids: [...base.user.additionalGids] };
  if (a.user !== undefined) {
    const u = parseUserFlag(a.user);
    user.uid = u.uid;
    if (u.gid !== undefined) user.gid = u.gid;
  }
  if (a.additionalGids.length) user.additionalGids = [...a.additionalGids];
  const p: OciProcess = {
    args: [...a.command],
    env: mergeEnv(base.env, a.env),
    cwd: a.cwd ?? base.cwd,
    user,
    terminal: a.tty,
    noNewPrivileges: a.noNewPrivs || base.noNewPrivileges,
  };
  // runc's exec takes the container's rlimits
  if (base.rlimits?.length) p.rlimits = base.rlimits.map((r) => ({ type: r.type, soft: r.soft, hard: r.hard }));
  // runc 1.1 `exec --cap X`: the container's sets plus X in bounding, effective, permitted and ambient (not
  // inheritable, so the ambient raise fails, silently, unless X was inheritable already)
  const caps = base.capabilities;
  if (caps || a.caps.length) {
    const add = (set: readonly string[] | undefined) => [...(set ?? []), ...a.caps];
    p.capabilities = { bounding: add(caps?.bounding), effective: add(caps?.effective), inheritable: [...(caps?.inheritable ?? [])], permitted: add(caps?.permitted), ambient: add(caps?.ambient) };
  }
  if (a.apparmor) p.apparmorProfile = a.apparmor;
  if (a.processLabel) p.selinuxLabel = a.processLabel;
  return p;
}

export interface ExecRewrite {
  /** what the agent runs in the VM (stored 0600 in the state dir) */
  request: ExecRequest;
  /** what runc execs in the launcher container */
  process: OciProcess;
}

/** Pure: original exec process → (request for the guest, client process for runc). */
export function rewriteExecProcess(original: OciProcess, requestId: string): ExecRewrite {
  const args = original.args ?? [];
  if (args.length === 0) throw new ExecArgsError('the exec process has no args (process.args is empty)');
  const request: ExecRequest = {
    args: [...args],
    env: mergeEnv(original.env ?? []),
    cwd: original.cwd || '/',
    user: { uid: original.user?.uid ?? 0, gid: original.user?.gid ?? 0, additionalGids: [...(original.user?.additionalGids ?? [])] },
    terminal: Boolean(original.terminal),
  };
  if (original.terminal && original.consoleSize) {
    request.rows = original.consoleSize.height;
    request.cols = original.consoleSize.width;
  }
  // applied in the guest as runc applies them (none in the process → five empty sets, as runc 1.1)
  request.capabilities = capabilitiesFromSpec(original.capabilities).sets;
  // runc sets no_new_privs for the exec as the process asks (the agent loads the container's seccomp filter
  // accordingly: early without it, last before exec with it)
  if (original.noNewPrivileges) request.noNewPrivileges = true;
  // runc sets the process's rlimits on the exec (the container's, or the --process file's): so does the agent
  if (original.rlimits?.length) request.rlimits = original.rlimits.map((r) => ({ type: r.type, soft: r.soft, hard: r.hard }));
  // Everything else (capabilities, apparmor, selinux label, no-new-privileges, consoleSize) stays: it is the
  // engine's policy for the process it believes it runs, and the client needs none of the dropped privileges.
  const process: OciProcess = { ...original, args: clientArgs(requestId), env: [...CLIENT_ENV], cwd: '/', user: { uid: 0, gid: 0 }, terminal: Boolean(original.terminal) };
  delete process.commandLine;
  // the command's rlimits are set by the agent in the guest; the client in the launcher container keeps runcvm's own
  delete process.rlimits;
  return { request, process };
}

/**
 * runc's argv for the rewritten exec: the global flags, then only the flags that are about HOW runc runs the
 * process (detach, pid file, console socket, preserved fds, cgroup, ignore-paused) and the rewritten --process
 * file. The process-shaping flags (--cwd, --env, --user, --tty, --cap, …) and the command are already in it (runc
 * ignores them when --process is given anyway).
 */
export function runcExecArgv(globals: readonly string[], a: ExecArgs, processFile: string): string[] {
  const out = [...globals, 'exec'];
  if (a.detach) out.push('--detach');
  if (a.pidFile !== undefined) out.push('--pid-file', a.pidFile);
  if (a.consoleSocket !== undefined) out.push('--console-socket', a.consoleSocket);
  if (a.preserveFds) out.push('--preserve-fds', String(a.preserveFds));
  if (a.cgroup !== undefined) out.push('--cgroup', a.cgroup);
  if (a.ignorePaused) out.push('--ignore-paused');
  out.push('--process', processFile, a.id);
  return out;
}
