/**
 * Readiness checks for test services.
 *
 *   await waitFor('registry GET /v2/ → 200|401', async () => { ... throw if not ready ... }, { timeoutMs: 10_000 });
 *   const port = await freePort();
 *
 * A probe is ready when it resolves to anything but `false`; it is retried (every `intervalMs`) when it throws or
 * returns `false`. On timeout the error says what was awaited and why the last probe failed:
 * "timed out after 10000ms waiting for <name>: <last probe error>". A probe may throw `GiveUp` to stop at once
 * (for example when the service process has already exited).
 */
import { createServer } from 'node:net';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  signal?: AbortSignal;
}

/** Thrown by a probe to stop waiting immediately (the service died, retrying is pointless). */
export class GiveUp extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GiveUp';
  }
}

export class WaitTimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly lastError: string,
  ) {
    super(`timed out after ${timeoutMs}ms waiting for ${what}: ${lastError}`);
    this.name = 'WaitTimeoutError';
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(
  name: string,
  probe: () => Promise<T | false> | T | false,
  { timeoutMs = 15_000, intervalMs = 50, signal }: WaitOptions = {},
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = 'probe never ran';
  for (;;) {
    signal?.throwIfAborted();
    try {
      const value = await probe();
      if (value !== false) return value;
      last = 'probe returned false';
    } catch (err) {
      if (err instanceof GiveUp) throw new Error(`gave up waiting for ${name}: ${err.message}`, { cause: err });
      last = err instanceof Error ? err.message : String(err);
    }
    if (performance.now() >= deadline) throw new WaitTimeoutError(name, timeoutMs, last);
    await sleep(Math.min(intervalMs, Math.max(1, deadline - performance.now())));
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago (the kernel picks it; tiny race until the service binds). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('could not read the port of a probe listener'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Strategy: an HTTP GET that answers with one of `statuses` (TLS verification off: readiness only). */
export async function httpStatus(url: string, statuses: number[], timeoutMs = 2000): Promise<number> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      if (statuses.includes(status)) resolve(status);
      else reject(new Error(`GET ${url} answered ${status}, expected ${statuses.join('|')}`));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} took longer than ${timeoutMs}ms`)));
    req.on('error', (e: Error) => reject(new Error(`GET ${url}: ${e.message}`)));
    req.end();
  });
}
