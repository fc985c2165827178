/**
 * Go's `http: server gave HTTP response to HTTPS client`: Buildah spoke TLS to a registry that answers in plain
 * HTTP. The host it tried, from Buildah's own line (`Get "https://HOST/v2/": …` or `pinging container registry
 * HOST:`), so that the fix can name the flag with the actual host. Pure.
 */
export function plainHttpFailure(stderr: string): { host: string; text: string } | undefined {
  const text = /http: server gave HTTP response to HTTPS client/.exec(stderr)?.[0];
  if (!text) return undefined;
  const host = /"https:\/\/([^/"\s]+)\//.exec(stderr)?.[1] ?? /pinging container registry ([^\s:]+(?::\d+)?)/.exec(stderr)?.[1];
  return { host: host ?? 'REGISTRY-HOST', text };
}
