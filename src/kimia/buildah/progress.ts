/**
 * Pure parsing of buildah's output: Dockerfile steps, cache hits and misses, pushed blobs; and classification of
 * failures into kimia's exit codes.
 */

export interface StepEvent {
  kind: 'step';
  index: number;
  total: number;
  instruction: string;
}

export type ProgressEvent =
  | StepEvent
  | { kind: 'cache-hit'; id: string }
  | { kind: 'commit'; id: string }
  | { kind: 'blob'; digest: string; what: 'blob' | 'config' }
  | { kind: 'noise' }
  | { kind: 'dropped-warning' }
  | { kind: 'other'; line: string };

export function parseLine(raw: string): ProgressEvent {
  // multi-stage builds prefix lines with the stage: "[1/2] STEP 1/3: FROM ..."
  const line = raw.replace(/^\[\d+\/\d+\] /, '');
  let m = /^STEP (\d+)\/(\d+): (.*)$/.exec(line);
  if (m) return { kind: 'step', index: Number(m[1]), total: Number(m[2]), instruction: m[3]! };
  m = /^--> Using cache ([0-9a-f]{12,64})/.exec(line);
  if (m) return { kind: 'cache-hit', id: m[1]! };
  m = /^--> ([0-9a-f]{11,64})$/.exec(line);
  if (m) return { kind: 'commit', id: m[1]! };
  m = /^Copying (blob|config) (sha256:[0-9a-f]{64})/.exec(line);
  if (m) return { kind: 'blob', digest: m[2]!, what: m[1] as 'blob' | 'config' };
  if (/HEALTHCHECK is not supported for OCI image format|SHELL is not supported for OCI image format|STOPSIGNAL is not supported for OCI image format/.test(line)) return { kind: 'dropped-warning' };
  if (/^(Getting image source signatures|Writing manifest to image destination|Storing signatures|Copying blob .* done|Copying config .* done)/.test(line)) return { kind: 'noise' };
  return { kind: 'other', line };
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

export type FailureClass = 'auth' | 'retryable' | 'no-space' | 'fatal';

export function classifyFailure(stderr: string): FailureClass {
  const s = stderr.toLowerCase();
  if (/unauthorized|authentication required|status 401|401 unauthorized|invalid username\/password|denied: requested access/.test(s)) return 'auth';
  if (/no space left on device/.test(s)) return 'no-space';
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

export function backoffMs(attempt: number, baseMs: number, capMs = 30_000): number {
  return Math.min(capMs, baseMs * 2 ** attempt);
}
