/**
 * A reverse proxy on 127.0.0.1 that fails the first N requests (503, or a dropped connection, or 401), then
 * forwards everything to the target. Used to prove that pushes retry with backoff on 5xx and dropped connections and
 * never retry an auth failure.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FailMode = '503' | 'drop' | '401';

export interface FlakyProxy extends AsyncDisposable {
  host: string;
  /** requests received, in order, with what the proxy did */
  log: { method: string; path: string; action: 'failed' | 'forwarded' }[];
  /** fail the next n requests (that match, when a matcher is given) with the given mode */
  failNext(n: number, mode: FailMode, match?: (method: string, path: string) => boolean): void;
  stop(): Promise<void>;
}

export async function startFlakyProxy(targetHost: string, opts: { failFirst?: number; mode?: FailMode } = {}): Promise<FlakyProxy> {
  let remaining = opts.failFirst ?? 0;
  let mode: FailMode = opts.mode ?? '503';
  let matcher: ((method: string, path: string) => boolean) | undefined;
  const log: FlakyProxy['log'] = [];
  const [targetName, targetPort] = targetHost.split(':') as [string, string];

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (remaining > 0 && (!matcher || matcher(req.method ?? '', req.url ?? ''))) {
      remaining--;
      log.push({ method: req.method ?? '', path: req.url ?? '', action: 'failed' });
      if (mode === 'drop') {
        req.socket.destroy();
        return;
      }
      const status = mode === '401' ? 401 : 503;
      res.writeHead(status, { 'Content-Type': 'application/json', ...(status === 401 ? { 'WWW-Authenticate': 'Basic realm="proxy"' } : {}) });
      res.end(JSON.stringify({ errors: [{ code: status === 401 ? 'UNAUTHORIZED' : 'UNAVAILABLE', message: status === 401 ? 'authentication required' : 'service unavailable' }] }));
      return;
    }
    log.push({ method: req.method ?? '', path: req.url ?? '', action: 'forwarded' });
    const headers = { ...req.headers, host: targetHost };
    const upstream = httpRequest({ host: targetName, port: Number(targetPort), method: req.method, path: req.url, headers }, (up) => {
      // Location headers point at the target: rewrite them to the proxy so that uploads keep going through us
      const out = { ...up.headers };
      if (typeof out.location === 'string') out.location = out.location.replace(`//${targetHost}`, `//${host}`);
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const proxy: FlakyProxy = {
    host,
    log,
    failNext(n, m, match) {
      remaining = n;
      mode = m;
      matcher = match;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async [Symbol.asyncDispose]() {
      await proxy.stop();
    },
  };
  return proxy;
}
