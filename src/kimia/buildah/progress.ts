/**
 * Pure parsing of buildah's output: Dockerfile steps, cache hits and misses, pulls, pushed blobs, buildah's own
 * log records; per-step timing for progress lines; and classification of failures into kimia's errors.
 */

export interface StepEvent {
  kind: 'step';
  index: number;
  total: number;
  instruction: string;
  /** multi-stage builds number their stages: "[2/3] STEP 1/4: …" */
  stage?: { index: number; total: number };
}

export type ProgressEvent =
  | StepEvent
  | { kind: 'cache-hit'; id: string }
  | { kind: 'commit'; id: string }
  | { kind: 'pull'; image: string }
  | { kind: 'blob'; digest: string; what: 'blob' | 'config' }
  | { kind: 'noise' }
  | { kind: 'dropped-warning'; instruction: string }
  | { kind: 'engine-log'; level: string; msg: string }
  | { kind: 'other'; line: string };

/** Instructions the OCI format has no field for: buildah warns and drops them (STOPSIGNAL is kept, OCI has StopSignal). */
const DROPPED_BY_OCI = /\b(HEALTHCHECK|SHELL|ONBUILD) is not supported for OCI image format/;

export function parseLine(raw: string): ProgressEvent {
  const stageMatch = /^\[(\d+)\/(\d+)\] /.exec(raw);
  const line = stageMatch ? raw.slice(stageMatch[0].length) : raw;
  let m = /^STEP (\d+)\/(\d+): (.*)$/.exec(line);
  if (m) {
    const ev: StepEvent = { kind: 'step', index: Number(m[1]), total: Number(m[2]), instruction: m[3]! };
    if (stageMatch) ev.stage = { index: Number(stageMatch[1]), total: Number(stageMatch[2]) };
    return ev;
  }
  m = /^--> Using cache ([0-9a-f]{12,64})/.exec(line);
  if (m) return { kind: 'cache-hit', id: m[1]! };
  m = /^--> ([0-9a-f]{11,64})$/.exec(line);
  if (m) return { kind: 'commit', id: m[1]! };
  m = /^Trying to pull (\S+?)\.\.\.$/.exec(line);
  if (m) return { kind: 'pull', image: m[1]! };
  m = /^Copying (blob|config) (sha256:[0-9a-f]{64})/.exec(line);
  if (m) return { kind: 'blob', digest: m[2]!, what: m[1] as 'blob' | 'config' };
  m = DROPPED_BY_OCI.exec(line);
  if (m) return { kind: 'dropped-warning', instruction: m[1]! };
  if (/^(Getting image source signatures|Writing manifest to image destination|Storing signatures|Copying blob .* done|Copying config .* done|COMMIT\b|Successfully tagged |Resolved "|[0-9a-f]{64}$)/.test(line)) return { kind: 'noise' };
  m = /^time="[^"]*" level=(\w+) msg="((?:[^"\\]|\\.)*)"/.exec(line);
  if (m) return { kind: 'engine-log', level: m[1]!, msg: m[2]!.replace(/\\"/g, '"') };
  return { kind: 'other', line };
}

/** "step 2/4: COPY a /b", with the stage in multi-stage builds: "stage 1/3, step 2/4: COPY a /b". */
export function stepLabel(ev: Pick<StepEvent, 'index' | 'total' | 'stage'>): string {
  return `${ev.stage ? `stage ${ev.stage.index}/${ev.stage.total}, ` : ''}step ${ev.index}/${ev.total}`;
}

/** 850 ms, 12.3 s, 4 min 05 s: precise for short spans, readable for long ones. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

export interface StepSummary {
  step: StepEvent;
  durationMs: number;
  cached: boolean;
}

/**
 * Times the running step so that long work shows progress: `tick` says when a step has run for another
 * `heartbeatMs` without finishing (a RUN compiling for minutes would otherwise leave the log silent), and `begin` /
 * `finish` return the step that just ended with its duration. Time is passed in, so tests need no clock.
 */
export class StepClock {
  private current: { step: StepEvent; startedAt: number; reportedAt: number; cached: boolean } | undefined;

  constructor(readonly heartbeatMs = 30_000) {}

  begin(step: StepEvent, now: number): StepSummary | undefined {
    const ended = this.finish(now);
    this.current = { step, startedAt: now, reportedAt: now, cached: false };
    return ended;
  }

  hit(): void {
    if (this.current) this.current.cached = true;
  }

  finish(now: number): StepSummary | undefined {
    const c = this.current;
    this.current = undefined;
    return c ? { step: c.step, durationMs: now - c.startedAt, cached: c.cached } : undefined;
  }

  /** the running step and how long it has run, once per heartbeat interval */
  tick(now: number): { step: StepEvent; elapsedMs: number } | undefined {
    const c = this.current;
    if (!c || now - c.reportedAt < this.heartbeatMs) return undefined;
    c.reportedAt = now;
    return { step: c.step, elapsedMs: now - c.startedAt };
  }
}

/** Counts cache hits and misses over the steps that can be cached (every step except FROM). */
export class CacheCounter {
  hits = 0;
  misses = 0;
  private open: { cacheable: boolean; hit: boolean } | undefined;

  feed(ev: ProgressEvent): void {
    if (ev.kind === 'step') {
      this.close();
      this.open = { cacheable: !/^FROM\s/i.test(ev.instruction), hit: false };
    } else if (ev.kind === 'cache-hit' && this.open) {
      this.open.hit = true;
    }
  }

  close(): void {
    if (this.open?.cacheable) {
      if (this.open.hit) this.hits++;
      else this.misses++;
    }
    this.open = undefined;
  }
}

export type FailureClass = 'auth' | 'retryable' | 'no-space' | 'dns' | 'fatal';

export function classifyFailure(stderr: string): FailureClass {
  const s = stderr.toLowerCase();
  if (/unauthorized|authentication required|status 401|401 unauthorized|invalid username\/password|denied: requested access/.test(s)) return 'auth';
  if (/no space left on device/.test(s)) return 'no-space';
  // NXDOMAIN is an answer, not a hiccup: retrying the same name gives the same answer
  if (/dial tcp: lookup [^\s:]+.*: no such host/.test(s)) return 'dns';
  if (/\b5\d\d\b|service unavailable|bad gateway|gateway timeout|internal server error|\beof\b|connection reset|broken pipe|connection refused|i\/o timeout|tls handshake timeout|server misbehaving|unexpected eof|http2: /.test(s)) return 'retryable';
  return 'fatal';
}

/** The most telling line of a child's stderr, quoted in kimia's error. */
export function quoteChildError(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const err = [...lines].reverse().find((l) => /^(error|Error:|time=.*level=(error|fatal))/i.test(l)) ?? lines[lines.length - 1] ?? '';
  const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(err)?.[1];
  return (msg ?? err).replace(/\\"/g, '"');
}

/**
 * A base image the registry does not have: containers/image's "initializing source docker://REF: reading manifest
 * TAG in HOST/REPO: manifest unknown" (or "name unknown" for a repository the registry has never heard of).
 */
export function baseImageMissing(stderr: string): { image: string; registry: string; repository: string; answer: string; what: string } | undefined {
  const m = /initializing source docker:\/\/(\S+?): reading manifest (\S+) in (\S+?): ((?:manifest|name) unknown)/.exec(stderr);
  if (!m) return undefined;
  const repository = m[3]!;
  const registry = repository.split('/')[0]!;
  const answer = m[4]!;
  return {
    image: m[1]!, registry, repository, answer,
    what: answer === 'name unknown' ? `repository ${repository.slice(registry.length + 1)}` : `${m[2]!.startsWith('sha256:') ? 'manifest' : 'tag'} ${m[2]} in ${repository.slice(registry.length + 1)}`,
  };
}

/**
 * The step buildah stopped at: 'building at STEP "TEXT": DETAIL'; `status` when DETAIL is a command's exit status
 * (a RUN that returned non-zero: buildah's own exit code is then that status too).
 */
export function stepFailure(stderr: string, printed?: string): { text: string; detail: string; status?: number } | undefined {
  // buildah does not escape quotes inside the step text (RUN adduser --gecos "" …): the step line it printed is known
  if (printed) {
    const marker = `building at STEP "${printed}": `;
    const at = stderr.lastIndexOf(marker);
    if (at >= 0) {
      const detail = stderr.slice(at + marker.length).split('\n')[0]!.trim();
      const status = /(?:^|: )exit status (\d+)$/.exec(detail);
      return { text: printed, detail, ...(status ? { status: Number(status[1]) } : {}) };
    }
  }
  const m = /building at STEP "((?:[^"\\]|\\.)*)": (.*)$/m.exec(stderr);
  if (!m) return undefined;
  const detail = m[2]!.trim();
  const status = /(?:^|: )exit status (\d+)$/.exec(detail);
  return { text: m[1]!.replace(/\\"/g, '"'), detail, ...(status ? { status: Number(status[1]) } : {}) };
}

/**
 * Buildah before 1.38 cannot COPY/ADD a file whose name holds glob characters ("arr[0].txt"): it matches the name
 * as a pattern, and an escaped pattern (arr[[]0].txt) matches nothing either.
 */
export function globNameFailure(detail: string, instruction: string): boolean {
  // the name is in the instruction (COPY arr[0].txt) or comes from a wildcard that matched it (ADD context/* …)
  return (/[[\]]/.test(instruction) && /globs \[.*\] matched nothing|copier: stat: \["[^"]*[[\]]/.test(detail)) ||
    /globs \[[^\]]*\[[^\]]*\][^\]]*\] matched nothing/.test(detail);
}

/** An owner the user namespace cannot represent: buildah's "error setting ownership of P to UID:GID: lchown P: invalid argument". */
export function ownerOutOfRange(stderr: string): { path: string; uid: number; gid: number } | undefined {
  const m = /error setting ownership of "([^"]*)" to (\d+):(\d+): lchown [^:]*: invalid argument/.exec(stderr);
  return m ? { path: m[1]!, uid: Number(m[2]), gid: Number(m[3]) } : undefined;
}

/** The guide's symptom inside buildah's error: `dial tcp: lookup HOST[ on NS]: no such host`, and the host. */
export function dnsFailure(stderr: string): { host: string; text: string } | undefined {
  const m = /dial tcp: lookup ([^\s:]+)(?: on [^\s]+)?: no such host/.exec(stderr);
  return m ? { host: m[1]!, text: m[0] } : undefined;
}

/**
 * Every write that failed with ENOSPC: the path and buildah's short statement of it ("write /x/y: no space left on
 * device"). One failure usually surfaces several times (the write, then the clean-up that could not save its state).
 */
export function noSpaceWrites(stderr: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const m of stderr.matchAll(/(?:(\w+) )?(\/[^\s:"'()]+): no space left on device/gi)) {
    out.push({ path: m[2]!, text: m[0] });
  }
  return out;
}

/** The path buildah could not write (the first one reported). */
export function noSpacePath(stderr: string): string | undefined {
  return noSpaceWrites(stderr)[0]?.path;
}

/**
 * A write into the image storage refused with EACCES or EPERM (the guide's "Cache Directory Permission Denied"):
 * the first such path under the storage or run root, and buildah's short statement of it.
 */
export function storagePermissionFailure(stderr: string, storage: { root: string; runroot: string }): { path: string; errno: 'EACCES' | 'EPERM'; text: string } | undefined {
  const under = (path: string, dir: string) => path === dir || path.startsWith(dir.replace(/\/+$/, '') + '/');
  for (const m of stderr.matchAll(/(?:(\w+) )?(\/[^\s:"'()]+): (permission denied|operation not permitted)/gi)) {
    const path = m[2]!;
    if (under(path, storage.root) || under(path, storage.runroot)) {
      return { path, errno: /permission denied/i.test(m[3]!) ? 'EACCES' : 'EPERM', text: m[0] };
    }
  }
  return undefined;
}

/** vfs keeps a full copy of the root filesystem per layer: the usual reason a small volume fills up. */
export function driverSpaceNote(driver: string): string {
  return driver === 'vfs' ? '. With vfs every layer is a full copy of the filesystem; --storage-driver=overlay needs far less' : '';
}

export interface NoSpaceInput {
  stderr: string;
  phase: 'build' | 'push';
  storage: { root: string; runroot: string; driver: string };
  /** buildah's temporary folder ($TMPDIR, else /var/tmp) */
  tmpDir: string;
  /** free bytes left where the write failed, measured after the failure, already formatted */
  free?: string;
}

/**
 * Details for the NO_SPACE_DURING_BUILD error: which storage filled up (the image storage and its driver, or
 * buildah's temporary folder), in words a person can act on.
 */
export function describeNoSpace(input: NoSpaceInput): { where: string; phase: string; free: string; detail: string; driverNote: string; path: string } {
  const writes = noSpaceWrites(input.stderr);
  const under = (path: string, dir: string) => path === dir || path.startsWith(dir.replace(/\/+$/, '') + '/');
  const inStorage = writes.find((w) => under(w.path, input.storage.root) || under(w.path, input.storage.runroot));
  const inTmp = writes.find((w) => under(w.path, input.tmpDir));
  // Paths that are neither (e.g. "/big.bin", seen from inside the container being written) still land in the
  // image storage: that is where buildah keeps every container's filesystem.
  const tmp = !inStorage && inTmp !== undefined;
  const chosen = tmp ? inTmp : inStorage ?? writes[0];
  return {
    where: tmp
      ? `buildah's temporary folder ${input.tmpDir} (set TMPDIR to a folder on a bigger volume)`
      : `the image storage at ${input.storage.root} (${input.storage.driver} driver)`,
    phase: input.phase,
    free: input.free ?? 'an unknown amount',
    detail: chosen?.text ?? quoteChildError(input.stderr),
    driverNote: tmp ? '' : driverSpaceNote(input.storage.driver),
    path: tmp ? input.tmpDir : input.storage.root,
  };
}

export function backoffMs(attempt: number, baseMs: number, capMs = 30_000): number {
  return Math.min(capMs, baseMs * 2 ** attempt);
}
