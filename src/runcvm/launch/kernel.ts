/**
 * RUNCVM_KERNEL: which host file becomes the guest kernel. A node value (the runtime's own environment) may name any
 * regular file; a container's value (its environment: image ENV, pod env) may only name a regular file inside the
 * folder the node admin approved (RUNCVM_KERNELS_DIR, default /var/lib/runcvm/kernels). A container's value is judged
 * by its text first: a path outside the folder is refused before the host is looked at, with one message whatever
 * is (or is not) there, so the setting is no oracle for host paths. The chosen file is bind-mounted read-only,
 * nosuid, nodev (bundle/transforms withCustomKernelMount). Pure: the runtime reads the facts and passes them in.
 */
import { posix } from 'node:path';
import type { ToolError } from '../../core/errors.js';
import { runcvmErrors } from '../errors.js';
import type { KernelRequest } from './settings.js';

const { fail } = runcvmErrors;

/** What the host holds at the candidate path (realpath and lstat of the result), read by the runtime. */
export interface KernelFacts {
  /** realpath of the candidate; undefined when it does not resolve */
  realPath?: string;
  kind: 'file' | 'dir' | 'other' | 'missing';
  /** realpath of the approved folder (container requests) */
  realKernelsDir?: string;
}

export type KernelCandidate = { ok: true; path: string } | { ok: false; error: ToolError };

export type KernelChoice = { ok: true; hostPath: string } | { ok: false; error: ToolError };

function isInside(path: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, '') || '/';
  return d === '/' ? path.startsWith('/') : path.startsWith(`${d}/`);
}

function notApproved(req: KernelRequest, kernelsDir: string): ToolError {
  return fail('SETTING_NOT_ALLOWED', {
    name: 'RUNCVM_KERNEL',
    value: req.value,
    problem: `a container may only choose a kernel file inside the node's approved folder ${kernelsDir}`,
    fix: `name a kernel file of ${kernelsDir} (RUNCVM_KERNEL=FILE, or its full path); the node admin adds kernels there or sets RUNCVM_KERNELS_DIR in the runtime's environment; unset RUNCVM_KERNEL to boot runcvm's own kernel`,
  });
}

/** Where the request points on the host, from its text alone (no file is looked at). */
export function kernelCandidate(req: KernelRequest, kernelsDir: string): KernelCandidate {
  const value = req.value.trim();
  if (req.origin === 'node') {
    if (!value.startsWith('/')) {
      return { ok: false, error: fail('BAD_SETTING', { name: 'RUNCVM_KERNEL', value, problem: 'it is not an absolute path', fix: 'set RUNCVM_KERNEL in the runtime\'s environment to the absolute path of an uncompressed vmlinux on the node' }) };
    }
    return { ok: true, path: posix.normalize(value) };
  }
  // a container's value: a name inside the folder, or a path that is lexically inside it; `..` never
  if (value === '' || value.split('/').includes('..')) return { ok: false, error: notApproved(req, kernelsDir) };
  const path = value.startsWith('/') ? posix.normalize(value) : posix.join(kernelsDir, value);
  if (!isInside(path, posix.normalize(kernelsDir))) return { ok: false, error: notApproved(req, kernelsDir) };
  return { ok: true, path };
}

/** The host file to mount, once the runtime has looked at the candidate. */
export function kernelChoice(req: KernelRequest, kernelsDir: string, candidate: string, facts: KernelFacts): KernelChoice {
  if (req.origin === 'node') {
    if (facts.kind === 'missing' || !facts.realPath) {
      return { ok: false, error: fail('NO_KERNEL', { path: candidate, reason: 'RUNCVM_KERNEL (from the runtime\'s environment) names a file that does not exist on the host.' }) };
    }
    if (facts.kind !== 'file') {
      return { ok: false, error: fail('NO_KERNEL', { path: candidate, reason: 'RUNCVM_KERNEL (from the runtime\'s environment) names something that is not a regular file.' }) };
    }
    return { ok: true, hostPath: facts.realPath };
  }
  // a symlink in the approved folder may not lead out of it
  const dir = facts.realKernelsDir ?? kernelsDir;
  if (facts.realPath && !isInside(facts.realPath, dir)) return { ok: false, error: notApproved(req, kernelsDir) };
  if (facts.kind !== 'file' || !facts.realPath) {
    return {
      ok: false,
      error: fail('BAD_SETTING', {
        name: 'RUNCVM_KERNEL',
        value: req.value,
        problem: `the node's approved kernel folder ${kernelsDir} has no regular file ${posix.relative(kernelsDir, candidate) || candidate}`,
        fix: `name a kernel file of ${kernelsDir}, or ask the node admin to add it; unset RUNCVM_KERNEL to boot runcvm's own kernel`,
      }),
    };
  }
  return { ok: true, hostPath: facts.realPath };
}
