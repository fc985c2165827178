/** Run a BuildPlan: bud with live progress, pushes with retry/backoff, exports. Failures map to exit codes. */
import { chmod, mkdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { run, type RunResult } from '../../core/exec/index.js';
import { formatSize } from '../../core/config.js';
import type { Log } from '../log.js';
import type { BuildPlan, PushStep } from '../plan/plan.js';
import { fail } from '../errors.js';
import { plainHttpFailure } from './plain-http.js';
import {
  CacheCounter, StepClock, backoffMs, baseImageMissing, classifyFailure, describeNoSpace, dnsFailure, formatDuration, globNameFailure, ownerOutOfRange,
  parseLine, quoteChildError, stepFailure, stepLabel, storagePermissionFailure, type StepEvent,
} from './progress.js';
import { describeStep, locateStep } from '../dockerfile/steps.js';
import { versionAtLeast } from '../dockerfile/check.js';
import { IMAGE_ENGINE } from './engine.js';
import { mark } from '../timing.js';

export interface BudResult {
  steps: number;
  cacheHits: number;
  cacheMisses: number;
  imageId?: string;
  durationMs: number;
}

/** A step that ran at least this long gets a "done in …" line: short steps would only add noise. */
const LONG_STEP_MS = 10_000;
/** How often long work without output says it is still running. */
const HEARTBEAT_MS = 30_000;

export async function writePlanFiles(plan: BuildPlan): Promise<void> {
  // ephemeral files in a fresh private 0700 folder: no rename dance or fsync needed (fsync costs tens of ms on a busy disk)
  await Promise.all([
    ...plan.files.map((f) => writeFile(f.path, f.content, { mode: f.mode, flag: 'wx' })),
    mkdir(plan.storage.root, { recursive: true }),
    mkdir(plan.storage.runroot, { recursive: true, mode: 0o700 }).then(() => chmod(plan.storage.runroot, 0o700)).catch(() => undefined),
  ]);
}

/** Calls `tick` every `ms` until stopped; the timer never keeps the process alive on its own. */
function every(ms: number, tick: () => void): () => void {
  const timer = setInterval(tick, ms);
  timer.unref();
  return () => clearInterval(timer);
}

/** `onSpawn`: called once buildah has started (work that must not delay its start goes there). */
export async function runBud(plan: BuildPlan, cwd: string, log: Log, signal?: AbortSignal, onSpawn?: () => void): Promise<BudResult> {
  const counter = new CacheCounter();
  const clock = new StepClock(HEARTBEAT_MS);
  let steps = 0;
  let lastStep: StepEvent | undefined;
  let droppedWarned = plan.warnings.length > 0;
  const ended = (summary: ReturnType<StepClock['finish']>) => {
    if (!summary) return;
    const { step, durationMs, cached } = summary;
    const fields = { event: 'step-done', step: step.index, total: step.total, durationMs, cached };
    if (durationMs >= LONG_STEP_MS) log.info(`${stepLabel(step)} done in ${formatDuration(durationMs)}`, fields);
    else log.debug(`${stepLabel(step)} done in ${formatDuration(durationMs)}`, fields);
  };
  const onLine = (line: string) => {
    const ev = parseLine(line);
    counter.feed(ev);
    switch (ev.kind) {
      case 'step':
        ended(clock.begin(ev, performance.now()));
        steps = ev.total;
        lastStep = ev;
        log.info(`${stepLabel(ev)}: ${ev.instruction}`, { event: 'step', step: ev.index, total: ev.total, ...(ev.stage ? { stage: ev.stage.index } : {}) });
        break;
      case 'cache-hit':
        clock.hit();
        log.detail(`using cache ${ev.id.slice(0, 12)}`, { event: 'cache', cache: 'hit', id: ev.id });
        break;
      case 'pull':
        log.info(`pulling ${ev.image}`, { event: 'pull', image: ev.image });
        break;
      case 'commit':
        log.debug(`layer ${ev.id}`, { event: 'commit', id: ev.id });
        break;
      case 'dropped-warning':
        if (!droppedWarned) log.warn(`Warning: ${ev.instruction} instruction ignored — set BUILDAH_FORMAT=docker to keep it`);
        droppedWarned = true;
        break;
      case 'engine-log':
        if (ev.level === 'warning') log.warn(ev.msg, { event: 'buildah', buildahLevel: ev.level });
        else if (ev.level === 'error' || ev.level === 'fatal') log.error(ev.msg, { event: 'buildah', buildahLevel: ev.level });
        else log.debug(ev.msg, { event: 'buildah', buildahLevel: ev.level });
        break;
      case 'blob':
      case 'noise':
        log.debug(line);
        break;
      default:
        // the build's own output (RUN commands): indented under its step
        if (ev.line.trim()) log.detail(ev.line, { event: 'output' });
    }
  };
  const stopHeartbeat = every(1000, () => {
    const running = clock.tick(performance.now());
    if (running) {
      log.info(`${stepLabel(running.step)} still running after ${formatDuration(running.elapsedMs)}: ${running.step.instruction}`, {
        event: 'step-running', step: running.step.index, total: running.step.total, elapsedMs: Math.round(running.elapsedMs),
      });
    }
  });
  let result: RunResult;
  // working containers that exist before the build are someone else's; those that appear during it are this build's
  const before = await containerIds(plan.cleanup.containersFile);
  try {
    for (const argv of plan.prepare) await run(plan.buildah, argv, { env: plan.env, reject: false });
    log.debug(`running buildah ${plan.bud.join(' ')}`);
    result = await run(plan.buildah, plan.bud, {
      cwd,
      env: plan.env,
      reject: false,
      onStdoutLine: onLine,
      onStderrLine: onLine,
      ...(signal ? { signal } : {}),
      ...(onSpawn ? { onSpawn: () => onSpawn() } : {}),
    });
    mark('bud-exit');
  } finally {
    stopHeartbeat();
    await removeLeftovers(plan, before, log);
  }
  ended(clock.finish(performance.now()));
  counter.close();
  if (result.exitCode !== 0) throw await budFailure(plan, result, lastStep);
  const iid = plan.bud.indexOf('--iidfile');
  const imageId = iid >= 0 ? await readFile(plan.bud[iid + 1]!, 'utf8').then((s) => s.trim(), () => undefined) : undefined;
  const out: BudResult = { steps, cacheHits: counter.hits, cacheMisses: counter.misses, durationMs: result.durationMs };
  if (imageId) out.imageId = imageId;
  log.info(`built ${plan.localImage}${imageId ? ` (${imageId.slice(0, 19)})` : ''} in ${formatDuration(result.durationMs)}; cache: ${counter.hits} hit(s), ${counter.misses} miss(es)`, {
    event: 'built', durationMs: result.durationMs, cacheHits: counter.hits, cacheMisses: counter.misses,
  });
  return out;
}

/** Free space left on the volume holding `path` (or its nearest existing parent), for the ENOSPC message. */
async function freeAt(path: string): Promise<string | undefined> {
  for (let p = path; ; p = dirname(p)) {
    if (await stat(p).then(() => true, () => false)) {
      const fs = await statfs(p).catch(() => undefined);
      return fs ? formatSize(Number(fs.bavail) * Number(fs.bsize)) : undefined;
    }
    if (dirname(p) === p) return undefined;
  }
}

async function noSpaceError(plan: BuildPlan, stderr: string, phase: 'build' | 'push') {
  const input = { stderr, phase, storage: plan.storage, tmpDir: process.env.TMPDIR || '/var/tmp' } as const;
  const free = await freeAt(describeNoSpace(input).path);
  return fail('NO_SPACE_DURING_BUILD', describeNoSpace(free === undefined ? input : { ...input, free }));
}

/** IDs of the containers in the storage (c/storage's containers.json: read directly, no buildah process). */
export async function containerIds(containersFile: string): Promise<Set<string>> {
  try {
    const list = JSON.parse(await readFile(containersFile, 'utf8')) as { id?: string }[] | null;
    return new Set((list ?? []).map((c) => c.id).filter((id): id is string => typeof id === 'string'));
  } catch {
    return new Set();
  }
}

/**
 * Remove the working containers this build left (Buildah 1.28 keeps one after a stage that is only FROM, and any
 * version leaves them when it is killed): `buildah rm` unmounts and deletes them, so none pile up in a persistent
 * --cache-dir. Failures are logged, never thrown: the build's own outcome is what the user needs to see.
 */
export async function removeLeftovers(plan: BuildPlan, before: Set<string>, log: Log): Promise<string[]> {
  const after = await containerIds(plan.cleanup.containersFile);
  const left = [...after].filter((id) => !before.has(id));
  if (!left.length) return [];
  const r = await run(plan.buildah, [...plan.cleanup.rm, ...left], { env: plan.env, reject: false });
  if (r.exitCode === 0) log.debug(`removed ${left.length} working container(s) left by buildah: ${left.map((id) => id.slice(0, 12)).join(', ')}`, { event: 'cleanup', containers: left.length });
  else log.warn(`could not remove working container(s) ${left.map((id) => id.slice(0, 12)).join(', ')}: ${quoteChildError(r.stderr)}`, { event: 'cleanup' });
  return left;
}

async function budFailure(plan: BuildPlan, result: RunResult, lastStep?: StepEvent) {
  const output = result.stderr || result.stdout;
  const quoted = quoteChildError(output);
  // Go's TLS-to-plain-HTTP text is Buildah's own pull (of a base or cache image), whichever step was last
  const plain = plainHttpFailure(output);
  if (plain) return fail('PULL_PLAIN_HTTP', plain);
  const located = plan.dockerfile && lastStep ? locateStep(plan.dockerfile, lastStep, plan.target) : undefined;
  const where = located ? describeStep(plan.dockerfile!, located) : lastStep ? `${lastStep.instruction.split(' ')[0]} (step ${lastStep.index})` : undefined;
  const stage = lastStep?.stage && plan.dockerfile ? ` in stage ${lastStep.stage.index}${plan.dockerfile.stages[lastStep.stage.index - 1]?.name ? ` (${plan.dockerfile.stages[lastStep.stage.index - 1]!.name})` : ''}` : '';
  const missing = baseImageMissing(output);
  if (missing) {
    return fail('BASE_IMAGE_NOT_FOUND', {
      image: missing.image, registry: missing.registry, repository: missing.repository, answer: missing.answer, what: missing.what,
      where: located ? ` (FROM at ${plan.dockerfile!.name}:${located.instruction.line})` : '',
    });
  }
  const step = stepFailure(output, lastStep?.instruction);
  const owner = ownerOutOfRange(output);
  if (owner && where) {
    return fail('OWNER_OUT_OF_RANGE', { step: where, uid: owner.uid, gid: owner.gid, path: owner.path, max: 65535 });
  }
  if (step && where && located && globNameFailure(step.detail, located.instruction.text)) {
    if (!plan.engine || versionAtLeast(plan.engine.version, '1.38.0')) return fail('GLOB_NAME', { step: where, text: located.instruction.text });
    return fail('ENGINE_TOO_OLD', {
      file: plan.dockerfile!.name, line: located.instruction.line, instruction: located.instruction.text, feature: 'a file name with glob characters ([ ]) in COPY/ADD',
      needs: '1.38.0', version: plan.engine.version, buildah: plan.buildah, imageVersion: IMAGE_ENGINE.version, imageDistribution: IMAGE_ENGINE.distribution,
    });
  }
  if (step && where) {
    const text = located?.instruction.text ?? lastStep?.instruction ?? step.text;
    if (step.status !== undefined) return fail('BUILD_STEP_FAILED', { step: where, status: step.status, text: text.replace(/^RUN\s+/i, ''), stage });
    // an ADD of a URL whose host does not resolve is the step's failure, not a registry's
    const urlStep = located && located.instruction.keyword !== 'FROM' && classifyFailure(output) === 'dns';
    if (urlStep || (classifyFailure(output) === 'fatal' && !storagePermissionFailure(output, plan.storage))) return fail('BUILD_STEP_ERROR', { step: where, detail: step.detail, text, stage });
  }
  switch (classifyFailure(output)) {
    case 'auth':
      return fail('PULL_UNAUTHORIZED', { detail: quoted });
    case 'no-space':
      return noSpaceError(plan, output, 'build');
    case 'dns': {
      const dns = dnsFailure(output)!;
      return fail('PULL_UNREACHABLE', { host: dns.host, dns: dns.text });
    }
    default: {
      const denied = storagePermissionFailure(output, plan.storage);
      const uid = String(process.getuid?.() ?? 0);
      if (denied?.errno === 'EACCES') {
        return fail('CACHE_NOT_WRITABLE', { dir: plan.storage.root, uid, where: `: buildah could not write ${denied.path} (permission denied)` });
      }
      if (denied) return fail('CACHE_SAVE_NOT_PERMITTED', { dir: plan.storage.root, uid, detail: denied.text });
      return fail('BUILD_FAILED', { detail: quoted, code: result.exitCode });
    }
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
  log: Log,
  opts: { baseDelayMs: number; signal?: AbortSignal; sleep?: (ms: number) => Promise<void> },
): Promise<PushResult> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 0; ; attempt++) {
    log.info(`pushing ${step.destination}${attempt ? ` (attempt ${attempt + 1}/${retries + 1})` : ''}`, { event: 'push', destination: step.destination, attempt: attempt + 1 });
    const onLine = (l: string) => {
      const ev = parseLine(l);
      if (ev.kind === 'blob') log.detail(`${ev.what} ${ev.digest.slice(0, 19)}`, { event: 'push-blob', what: ev.what, digest: ev.digest });
    };
    const started = performance.now();
    let lastReport = started;
    const stopHeartbeat = every(1000, () => {
      const now = performance.now();
      if (now - lastReport < HEARTBEAT_MS) return;
      lastReport = now;
      log.info(`still pushing ${step.destination} after ${formatDuration(now - started)}`, { event: 'push-running', destination: step.destination, elapsedMs: Math.round(now - started) });
    });
    let result: RunResult;
    try {
      mark('push');
      result = await run(plan.buildah, step.argv, {
        env: plan.env,
        reject: false,
        onStdoutLine: onLine,
        onStderrLine: onLine,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } finally {
      stopHeartbeat();
    }
    mark('push-exit');
    if (result.exitCode === 0) {
      const digest = (await readFile(step.digestFile, 'utf8')).trim();
      log.info(`pushed ${step.destination}@${digest} in ${formatDuration(result.durationMs)}`, { event: 'pushed', destination: step.destination, digest, durationMs: result.durationMs });
      return { destination: step.destination, digest, attempts: attempt + 1 };
    }
    const quoted = quoteChildError(result.stderr);
    const plain = plainHttpFailure(result.stderr);
    if (plain) throw fail('PUSH_PLAIN_HTTP', { ...plain, destination: step.destination });
    const kind = classifyFailure(result.stderr);
    if (kind === 'auth') throw fail('PUSH_UNAUTHORIZED', { destination: step.destination, detail: quoted });
    if (kind === 'no-space') throw await noSpaceError(plan, result.stderr, 'push');
    if (kind === 'dns') {
      const dns = dnsFailure(result.stderr)!;
      throw fail('PUSH_UNREACHABLE', { host: dns.host, dns: dns.text, destination: step.destination });
    }
    if (kind !== 'retryable' || attempt >= retries) {
      throw fail('PUSH_FAILED', { destination: step.destination, attempts: attempt + 1, detail: quoted });
    }
    const delay = backoffMs(attempt, opts.baseDelayMs);
    log.warn(`push of ${step.destination} failed (${quoted}); retrying in ${delay} ms`, { event: 'push-retry', attempt: attempt + 1, delayMs: delay });
    await sleep(delay);
  }
}

export function describeLayers(layers: { digest: string; size: number }[]): string {
  return layers.map((l) => `${l.digest.slice(0, 19)} ${formatSize(l.size)}`).join(', ');
}

export async function runExports(plan: BuildPlan, log: Log): Promise<void> {
  for (const e of plan.exports) {
    await mkdir(dirname(e.path), { recursive: true });
    if (e.kind === 'tar') await rm(e.path, { force: true });
    const r = await run(plan.buildah, e.argv, { env: plan.env, reject: false });
    if (r.exitCode !== 0) throw fail('OUTPUT_FAILED', { what: e.kind === 'tar' ? 'tarball' : 'OCI layout', path: e.path, detail: quoteChildError(r.stderr) });
    log.info(`saved ${e.kind === 'tar' ? 'docker-archive tarball' : 'OCI layout'} ${e.path}`, { event: 'export', kind: e.kind, path: e.path });
  }
}
