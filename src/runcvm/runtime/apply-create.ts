/**
 * applyCreate: performs a create plan (plan-create.ts), action by action, and nothing else. Each action that leaves
 * something behind registers its undo; a failing action, or a runc that refuses the launcher's bundle, undoes the
 * earlier ones (the state folder, the debug log unless kept) before the error is reported. Actions after runc's (a
 * foreground `run`: its clean-up) run whatever runc's exit code: runc has deleted the container either way. The
 * effects themselves are behind CreateEffects: the real ones here, and a recorder (dry mode) that only notes what
 * would be done, which the tests compare with the plan `runcvm plan` prints.
 */
import { constants as fsc, appendFileSync, closeSync, fchmodSync, fchownSync, fstatSync, openSync } from 'node:fs';
import { lchown, mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { isatty } from 'node:tty';
import { isToolError } from '../../core/errors.js';
import { atomicWrite } from '../../core/fsx/index.js';
import { Logger, type Sink } from '../../core/log/index.js';
import { run, spawnChild } from '../../core/exec/index.js';
import { runcvmErrors } from '../errors.js';
import { applyStorageAction, type StorageContext } from '../storage/apply.js';
import { describeAction, type CreateAction, type Owner } from './actions.js';
import type { CreatePlan } from './plan-create.js';

const { fail } = runcvmErrors;

export interface CreateEffects {
  /** perform one action; 'runc' answers runc's exit code */
  perform(action: CreateAction): Promise<number | void>;
  /** the log create writes into (the debug log once it is open) */
  readonly log: Logger;
}

/** Actions that build the disks: a host tool's failure there is a disk-build failure, in the tool's own words. */
const DISK_OPS = new Set<CreateAction['op']>(['base-disk', 'stage-tree', 'stage-file', 'stage-parents', 'copy', 'upper-disk']);

export async function applyCreate(plan: CreatePlan, effects: CreateEffects, id: string): Promise<number> {
  const undo: CreateAction[] = [];
  const undoAll = async () => {
    for (const a of undo.splice(0).reverse()) await effects.perform(a).catch(() => undefined);
  };
  try {
    for (const action of plan.actions) {
      if (action.op === 'runc' && plan.kind === 'vm') {
        effects.log.info('bundle rewritten for a microVM', { hypervisor: plan.hypervisor.name, vcpus: plan.launchSpec.vm.vcpus, memoryMiB: plan.launchSpec.vm.memoryMiB });
      }
      let result: number | void;
      try {
        result = await effects.perform(action);
      } catch (err) {
        if (isToolError(err) || !DISK_OPS.has(action.op)) throw err;
        throw fail('DISK_BUILD_FAILED', { which: action.op === 'base-disk' ? 'base' : 'writable', id, problem: (err as Error)?.message ?? String(err), dir: 'to' in action ? action.to : 'into' in action ? action.into : '-' }, err);
      }
      if (action.op === 'open-log') {
        if (action.removeOnFailure) undo.push({ op: 'remove', path: action.path });
        if (plan.kind === 'vm') for (const e of plan.log) effects.log.write(e.level, e.msg, e.fields);
      } else if (action.op === 'mkdir' && action.removeOnFailure) {
        undo.push({ op: 'remove', path: action.path });
      } else if (action.op === 'runc') {
        const code = typeof result === 'number' ? result : 0;
        const after = plan.actions.slice(plan.actions.indexOf(action) + 1);
        // create, run -d: a refusal undoes what create made; what follows (runc's record) is for a container only
        if (!action.foreground && code !== 0) {
          await undoAll();
          return code;
        }
        // a foreground run: runc has deleted the container either way; its clean-up follows
        undo.length = 0;
        for (const a of after) await effects.perform(a);
        return code;
      }
    }
    return 0;
  } catch (err) {
    await undoAll();
    throw err;
  }
}

/**
 * Open (or create) the debug log without trusting what is at its path: no symlink, no FIFO, a plain own file (or one
 * of `owner`, the user namespace's root, which it is then given to). Answers the open file: create's log lines go
 * there (one open, not one per line, and never to whatever replaced the path since).
 */
function openDebugLog(path: string, owner: Owner | undefined): number {
  // a plain descriptor (sync calls: nothing else runs during create's actions), never closed behind create's back
  let fd: number;
  try {
    fd = openSync(path, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW | fsc.O_NONBLOCK, 0o600);
  } catch (err) {
    throw fail('UNEXPECTED', { step: 'create', problem: (err as NodeJS.ErrnoException).code === 'ELOOP' ? `${path} became a symbolic link` : (err as Error).message }, err);
  }
  try {
    const st = fstatSync(fd);
    const uid = process.getuid?.();
    const problem = !st.isFile() ? 'is not a regular file' : st.nlink > 1 ? 'has other hard links' : uid !== undefined && st.uid !== uid && st.uid !== owner?.uid ? `belongs to uid ${st.uid}` : undefined;
    // the facts said the path was free or ours: something changed it since
    if (problem) throw fail('UNEXPECTED', { step: 'create', problem: `${path} ${problem} (it changed while create ran)` });
    fchmodSync(fd, 0o600);
    if (owner) fchownSync(fd, owner.uid, owner.gid);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** The launcher's root: the folder, then each mount point (folders 0755, empty files 0644). */
async function makeLauncherRoot(path: string, dirs: readonly string[], files: readonly string[]): Promise<void> {
  await mkdir(path, { mode: 0o755 });
  for (const d of dirs) await mkdir(join(path, d), { recursive: true, mode: 0o755 });
  for (const f of files) {
    await mkdir(dirname(join(path, f)), { recursive: true, mode: 0o755 });
    await writeFile(join(path, f), '', { mode: 0o644, flag: 'wx' });
  }
}

/** runc's state.json with its `bundle=` label changed from `from` to `to` (same mode, written whole: rename). */
async function relabelBundle(stateFile: string, from: string, to: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(stateFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const state = JSON.parse(text) as { config?: { labels?: unknown } };
  const labels = state.config?.labels;
  if (!Array.isArray(labels)) return;
  const i = labels.indexOf(`bundle=${from}`);
  if (i < 0) return;
  labels[i] = `bundle=${to}`;
  const st = await stat(stateFile);
  await atomicWrite(stateFile, JSON.stringify(state), st.mode & 0o777);
}

/** chown -R without following symlinks. */
async function chownTree(path: string, owner: Owner): Promise<void> {
  await lchown(path, owner.uid, owner.gid);
  for (const e of await readdir(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) await chownTree(p, owner);
    else await lchown(p, owner.uid, owner.gid);
  }
}

/**
 * Signals the runtime passes on to a foreground runc (which passes them on to the container, as it does itself).
 * The terminal's own (^C, ^\, hang-up, a resize) reach runc directly when stdin is a terminal (same process group):
 * then they are only kept from ending this process, or the container would get them twice.
 */
const FORWARDED = ['SIGTERM', 'SIGUSR1', 'SIGUSR2'] as const;
const FROM_TERMINAL = ['SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGWINCH'] as const;

/** The real effects: the host changes, a logger that writes the debug log once it is open. */
export function hostEffects(id: string, level: 'off' | 'error' | 'info' | 'debug'): CreateEffects {
  let logFile: { path: string; fd: number } | undefined;
  const sinks: Sink[] = [
    (line) => {
      if (!logFile) return;
      try {
        appendFileSync(logFile.fd, line + '\n');
      } catch {
        /* logging never fails a create */
      }
    },
  ];
  // the debug file always gets INFO (DEBUG when asked); stderr stays runc's
  const log = new Logger({ level: level === 'off' ? 'off' : level === 'debug' ? 'debug' : 'info', namespace: `runcvm-runtime ${id}`, timestamps: true, sinks });
  const storage: StorageContext = { log };
  return {
    log,
    async perform(a) {
      switch (a.op) {
        case 'open-log':
          logFile = { path: a.path, fd: openDebugLog(a.path, a.owner) };
          return;
        case 'launcher-root':
          await makeLauncherRoot(a.path, a.dirs, a.files);
          return;
        case 'chown':
          await chownTree(a.path, a.owner);
          return;
        case 'warn':
          process.stderr.write(`${a.text}\n`);
          return;
        case 'remove-template': {
          // never fails the container: it boots cold either way, and the rebuild replaces the folder too
          const { removeTemplateDir } = await import('../template/store.js');
          try {
            if (await removeTemplateDir(a.dir)) log.info('removed a stale VM template', { dir: a.dir, reason: a.reason });
          } catch (err) {
            log.info('could not remove a stale VM template', { dir: a.dir, problem: (err as Error)?.message ?? String(err) });
          }
          return;
        }
        case 'runc-bundle-label':
          // the container exists: a record runcvm could not relabel is worth a line in the log, not a failed create
          await relabelBundle(a.stateFile, a.from, a.to).catch((err: Error) => log.warn("runc's record keeps runcvm's private bundle path", { stateFile: a.stateFile, problem: err.message }));
          return;
        case 'spawn-detached': {
          // a failure to start it never fails the container: it boots cold either way
          try {
            // the log folder may be /tmp: never follow a link planted at the log's path
            const fh = await open(a.log, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW | fsc.O_NONBLOCK, 0o600);
            let child;
            try {
              if (!(await fh.stat()).isFile()) throw new Error(`${a.log} is not a regular file`);
              child = await spawnChild(a.file, a.argv, { detached: true, output: { file: `/proc/self/fd/${fh.fd}` } });
            } finally {
              await fh.close();
            }
            child.on('error', () => undefined);
            child.unref();
            // below the containers it works for: its QEMU (which inherits this) must not slow their boots
            try {
              if (a.nice && child.pid) setPriority(child.pid, a.nice);
            } catch {
              /* it already ended, or the node forbids it: it runs at normal priority */
            }
            log.info(`started: ${a.what}`, { pid: child.pid ?? 0, log: a.log });
          } catch (err) {
            log.info(`not started: ${a.what}`, { problem: (err as Error)?.message ?? String(err) });
          }
          return;
        }
        case 'runc': {
          if (!a.foreground) return (await run(a.file, a.argv, { stdio: 'inherit', reject: false, passFds: a.passFds })).exitCode;
          // a foreground run: the engine (or a shell) signals this process as it would signal runc
          let pid: number | undefined;
          const pass = (name: NodeJS.Signals) => () => {
            try {
              if (pid !== undefined) process.kill(pid, name);
            } catch {
              /* runc has just exited */
            }
          };
          const onTerminal = isatty(0);
          const handlers = [...FORWARDED, ...FROM_TERMINAL].map((name) => [name, onTerminal && (FROM_TERMINAL as readonly string[]).includes(name) ? () => undefined : pass(name)] as const);
          for (const [name, h] of handlers) process.on(name, h);
          try {
            return (await run(a.file, a.argv, { stdio: 'inherit', reject: false, passFds: a.passFds, onSpawn: (p) => (pid = p) })).exitCode;
          } finally {
            for (const [name, h] of handlers) process.off(name, h);
          }
        }
        case 'remove':
          // the undo of open-log (a file), of the state folder, and the plan's own removals
          if (a.path === logFile?.path) {
            // a later log line must not go to a removed file
            try {
              closeSync(logFile.fd);
            } catch {
              /* already closed */
            }
            logFile = undefined;
          }
          await rm(a.path, { recursive: true, force: true });
          return;
        default:
          await applyStorageAction(a, storage);
      }
    },
  };
}

/** Dry mode: notes each action as `runcvm plan` describes it, changes nothing; runc "exits" with `runcExit`. */
export function recordingEffects(runcExit = 0): CreateEffects & { readonly records: string[] } {
  const records: string[] = [];
  return {
    records,
    log: new Logger({ level: 'off', sinks: [] }),
    async perform(a) {
      records.push(describeAction(a));
      return a.op === 'runc' ? runcExit : undefined;
    },
  };
}
