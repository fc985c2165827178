/**
 * Go's `http: server gave HTTP response to HTTPS client`: Buildah spoke TLS to a registry that answers in plain
 * HTTP. The host it tried, from Buildah's own words on the same line (`pinging container registry HOST` or
 * `Get "https://HOST/v2/": …`), so that the fix can name the flag with the actual host. The same Go text from a
 * program a RUN step runs names no registry endpoint, and is left to the step's own failure. Pure.
 */
export function plainHttpFailure(stderr: string): { host: string; text: string } | undefined {
  const text = 'http: server gave HTTP response to HTTPS client';
  for (const line of stderr.split('\n')) {
    if (!line.includes(text)) continue;
    const host = /pinging container registry ([^\s:]+(?::\d+)?)/.exec(line)?.[1] ?? /"https:\/\/([^/"\s\\]+)\/v2\//.exec(line)?.[1];
    if (host) return { host, text };
  }
  return undefined;
}
