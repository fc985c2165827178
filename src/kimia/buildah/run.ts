/** Run a BuildPlan: bud with live progress, pushes with retry/backoff, exports. Failures map to exit codes. */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { runLight as run, type RunResult } from '../../core/exec/index.js';
import type { Logger } from '../../core/log/index.js';
import { formatSize } from '../../core/config.js';
import type { BuildPlan, PushStep } from '../plan/plan.js';
import { fail } from '../errors.js';
import { CacheCounter, backoffMs, classifyFailure, parseLine, quoteChildError } from './progress.js';

export interface BudResult {
  steps: number;
  cacheHits: number;
  cacheMisses: number;
  imageId?: string;
  durationMs: number;
}

export async function writePlanFiles(plan: BuildPlan): Promise<void> {
  // ephemeral files in a fresh private 0700 folder: no rename dance or fsync needed (fsync costs tens of ms on a busy disk)
  await Promise.all(plan.files.map((f) => writeFile(f.path, f.content, { mode: f.mode, flag: 'wx' })));
  await mkdir(plan.storage.root, { recursive: true });
  await mkdir(plan.storage.runroot, { recursive: true, mode: 0o700 });
  await chmod(plan.storage.runroot, 0o700).catch(() => undefined);
}

export async function runBud(plan: BuildPlan, cwd: string, log: Logger, signal?: AbortSignal): Promise<BudResult> {
  const counter = new CacheCounter();
  let steps = 0;
  let droppedWarned = plan.warnings.length > 0;
  const onLine = (line: string) => {
    const ev = parseLine(line);
    counter.feed(ev);
    switch (ev.kind) {
      case 'step':
        steps = ev.total;
        log.info(`step ${ev.index}/${ev.total}: ${ev.instruction}`, { event: 'step', step: ev.index, total: ev.total });
        break;
      case 'cache-hit':
        log.info(`cache hit ${ev.id.slice(0, 12)}`, { event: 'cache', cache: 'hit' });
        break;
      case 'commit':
        log.debug(`layer ${ev.id}`);
        break;
      case 'dropped-warning':
        if (!droppedWarned) log.warn('Warning: HEALTHCHECK instruction ignored — set BUILDAH_FORMAT=docker to keep it');
        droppedWarned = true;
        break;
      case 'blob':
      case 'noise':
        log.debug(line);
        break;
      default:
        if (ev.line.trim()) log.info(ev.line, { event: 'output' });
    }
  };
  for (const argv of plan.prepare) await run(plan.buildah, argv, { env: plan.env, reject: false });
  log.debug(`running buildah ${plan.bud.join(' ')}`);
  const result = await run(plan.buildah, plan.bud, {
    cwd,
    env: plan.env,
    reject: false,
    onStdoutLine: onLine,
    onStderrLine: onLine,
    ...(signal ? { signal } : {}),
  });
  counter.close();
  if (result.exitCode !== 0) throw budFailure(result);
  const iid = plan.bud.indexOf('--iidfile');
  const imageId = iid >= 0 ? await readFile(plan.bud[iid + 1]!, 'utf8').then((s) => s.trim(), () => undefined) : undefined;
  const out: BudResult = { steps, cacheHits: counter.hits, cacheMisses: counter.misses, durationMs: result.durationMs };
  if (imageId) out.imageId = imageId;
  log.info(`built ${plan.localImage}${imageId ? ` (${imageId.slice(0, 19)})` : ''} in ${result.durationMs} ms; cache: ${counter.hits} hit(s), ${counter.misses} miss(es)`, {
    event: 'built', cacheHits: counter.hits, cacheMisses: counter.misses,
  });
  return out;
}

function budFailure(result: RunResult) {
  const quoted = quoteChildError(result.stderr || result.stdout);
  switch (classifyFailure(result.stderr)) {
    case 'auth':
      return fail('PULL_UNAUTHORIZED', { detail: quoted });
    case 'no-space':
      return fail('NO_SPACE', { free: 'not enough', dir: 'the image storage', need: 'more' });
    default:
      return fail('BUILD_FAILED', { detail: quoted, code: result.exitCode });
  }
}

export interface PushResult {
  destination: string;
  digest: string;
  attempts: number;
}

export async function pushWithRetry(
  plan: BuildPlan,
  step: PushStep,
  retries: number,
  log: Logger,
  opts: { baseDelayMs: number; signal?: AbortSignal; sleep?: (ms: number) => Promise<void> },
): Promise<PushResult> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 0; ; attempt++) {
    log.info(`pushing ${step.destination}${attempt ? ` (attempt ${attempt + 1}/${retries + 1})` : ''}`, { event: 'push', destination: step.destination });
    const onLine = (l: string) => {
      const ev = parseLine(l);
      if (ev.kind === 'blob') log.info(`push ${ev.what} ${ev.digest.slice(0, 19)}`, { event: 'push-blob', digest: ev.digest });
    };
    const result = await run(plan.buildah, step.argv, {
      env: plan.env,
      reject: false,
      onStdoutLine: onLine,
      onStderrLine: onLine,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (result.exitCode === 0) {
      const digest = (await readFile(step.digestFile, 'utf8')).trim();
      log.info(`pushed ${step.destination}@${digest}`, { event: 'pushed', destination: step.destination, digest });
      return { destination: step.destination, digest, attempts: attempt + 1 };
    }
    const quoted = quoteChildError(result.stderr);
    const kind = classifyFailure(result.stderr);
    if (kind === 'auth') throw fail('PUSH_UNAUTHORIZED', { destination: step.destination, detail: quoted });
    if (kind !== 'retryable' || attempt >= retries) {
      throw fail('PUSH_FAILED', { destination: step.destination, attempts: attempt + 1, detail: quoted });
    }
    const delay = backoffMs(attempt, opts.baseDelayMs);
    log.warn(`push of ${step.destination} failed (${quoted}); retrying in ${delay} ms`, { event: 'push-retry', attempt: attempt + 1 });
    await sleep(delay);
  }
}

/** Layer sizes of the built image, from buildah's stored manifest (for the progress report). */
export async function layerSizes(plan: BuildPlan): Promise<{ digest: string; size: number }[]> {
  const global = plan.bud.slice(0, plan.bud.indexOf('bud'));
  const r = await run(plan.buildah, [...global, 'inspect', '--type', 'image', '--format', '{{.Manifest}}', plan.localImage], { env: plan.env, reject: false });
  if (r.exitCode !== 0) return [];
  try {
    const m = JSON.parse(r.stdout) as { layers?: { digest: string; size: number }[] };
    return (m.layers ?? []).map((l) => ({ digest: l.digest, size: l.size }));
  } catch {
    return [];
  }
}

export function describeLayers(layers: { digest: string; size: number }[]): string {
  return layers.map((l) => `${l.digest.slice(0, 19)} ${formatSize(l.size)}`).join(', ');
}

export async function runExports(plan: BuildPlan, log: Logger): Promise<void> {
  for (const e of plan.exports) {
    await mkdir(dirname(e.path), { recursive: true });
    if (e.kind === 'tar') await rm(e.path, { force: true });
    const r = await run(plan.buildah, e.argv, { env: plan.env, reject: false });
    if (r.exitCode !== 0) throw fail('OUTPUT_FAILED', { what: e.kind === 'tar' ? 'tarball' : 'OCI layout', path: e.path, detail: quoteChildError(r.stderr) });
    log.info(`saved ${e.kind === 'tar' ? 'docker-archive tarball' : 'OCI layout'} ${e.path}`, { event: 'export', kind: e.kind, path: e.path });
  }
}
