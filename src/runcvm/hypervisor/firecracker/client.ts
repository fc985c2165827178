/**
 * A minimal client for Firecracker's API: HTTP/1.1 over its Unix socket (node:http with socketPath). Requests are
 * schema-checked before they leave; responses are parsed, and errors carry Firecracker's fault_message.
 */
import { requestViolations, SchemaError, violations, type DefinitionName } from './schema.js';
import type { ApiCall } from './types.js';

export interface ApiResponse {
  status: number;
  body: unknown;
}

export class FirecrackerApiError extends Error {
  constructor(
    readonly call: ApiCall,
    readonly status: number,
    readonly fault: string,
  ) {
    super(`firecracker ${call.method} ${call.path} answered HTTP ${status}: ${fault}`);
    this.name = 'FirecrackerApiError';
  }
}

/** The socket is not there yet, or nobody listens on it yet (Firecracker still starting). */
export function isNotListening(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ECONNREFUSED';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class FirecrackerClient {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 10_000,
  ) {}

  /** One request, no retry. Rejects on transport errors; any HTTP status resolves. */
  async send(call: ApiCall): Promise<ApiResponse> {
    const vs = requestViolations(call.method, call.path, call.body);
    if (vs.length) throw new SchemaError(`${call.method} ${call.path}`, vs);
    // loaded on first use: runtime create and the QEMU launcher never need it, and node:http cannot be in a V8
    // start-up snapshot on Node 20 (scripts/assets/30-runtime.sh builds one for the runtime bundle)
    const { request: httpRequest } = await import('node:http');
    const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { Accept: 'application/json' };
      if (payload !== undefined) {
        headers['Content-Type'] = 'application/json';
        headers['Content-Length'] = Buffer.byteLength(payload);
      }
      const req = httpRequest({ socketPath: this.socketPath, path: call.path, method: call.method, headers, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          if (text) {
            try {
              body = JSON.parse(text);
            } catch {
              /* keep the text */
            }
          } else body = undefined;
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`firecracker API ${call.method} ${call.path} timed out after ${this.timeoutMs} ms`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** Send and require a 2xx answer; otherwise throw FirecrackerApiError with the fault_message. */
  async call(call: ApiCall): Promise<unknown> {
    const res = await this.send(call);
    if (res.status >= 200 && res.status < 300) return res.body;
    throw new FirecrackerApiError(call, res.status, faultMessage(res.body));
  }

  async get(path: string, response: DefinitionName): Promise<unknown> {
    const body = await this.call({ method: 'GET', path });
    const vs = violations(response, body);
    if (vs.length) throw new SchemaError(`response of GET ${path}`, vs);
    return body;
  }

  /**
   * Wait until the API answers GET /, retrying while the socket is absent or refuses connections. `alive` lets the
   * caller stop early when the process has already exited. Resolves with the InstanceInfo.
   */
  async waitReady(opts: { timeoutMs: number; intervalMs?: number; alive?: () => boolean }): Promise<{ state: string; id: string; vmm_version: string }> {
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      try {
        return (await this.get('/', 'InstanceInfo')) as { state: string; id: string; vmm_version: string };
      } catch (err) {
        if (!isNotListening(err)) throw err;
        if (opts.alive && !opts.alive()) throw new NotListeningError(this.socketPath, 'exited');
        if (Date.now() >= deadline) throw new NotListeningError(this.socketPath, 'timeout');
        await sleep(opts.intervalMs ?? 10);
      }
    }
  }
}

export class NotListeningError extends Error {
  constructor(
    readonly socketPath: string,
    readonly why: 'exited' | 'timeout',
  ) {
    super(`firecracker API socket ${socketPath} is not answering (${why})`);
    this.name = 'NotListeningError';
  }
}

export function faultMessage(body: unknown): string {
  if (body && typeof body === 'object' && typeof (body as { fault_message?: unknown }).fault_message === 'string') {
    return (body as { fault_message: string }).fault_message;
  }
  return typeof body === 'string' && body ? body : '(no fault_message)';
}
