/**
 * The --git-token-file token, scoped to the context's origin (scheme + host + port). Pure.
 *
 * git gets the token from a credential helper given through GIT_CONFIG_* variables (never argv, never a URL, never a
 * file). git asks the helper only when a server answers 401, and says which protocol and host it is talking to; the
 * helper answers only for the context's origin. So a submodule on another host, or the server a redirect leads to,
 * never receives the token: git resets its credentials when a redirect changes the base URL and asks again, for
 * the new host. (A header set with http.extraHeader, which kimia used before, goes on every request git makes,
 * submodules and redirect targets included.)
 */

export interface GitOrigin {
  /** `http` or `https`, as git names the protocol to a credential helper */
  protocol: string;
  /** `host` or `host:port` exactly as written in the URL (git passes it to the helper as written) */
  host: string;
}

/** The origin of an http(s) Git URL, from its text (not normalised: git sends the host as written). */
export function gitOrigin(url: string): GitOrigin | undefined {
  const m = /^(https?):\/\/([^/?#]*)/i.exec(url.trim());
  if (!m) return undefined;
  const authority = m[2]!;
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  return host ? { protocol: m[1]!.toLowerCase(), host } : undefined;
}

export function originText(o: GitOrigin): string {
  return `${o.protocol}://${o.host}`;
}

/**
 * The credential helper: git runs `!…` values with sh, appending the action (get/store/erase) and writing
 * `key=value` lines on stdin. It prints the user and token (shell builtins only: the token is in no argv) for the
 * origin and nothing for any other host, whose name it appends to $KIMIA_GIT_REFUSED so that kimia can say so.
 */
export const CREDENTIAL_HELPER = [
  '!f() {',
  ' test "$1" = get || { cat >/dev/null; exit 0; };',
  ' p=; h=;',
  ' while IFS== read -r k v; do case "$k" in protocol) p=$v;; host) h=$v;; esac; done;',
  ' if [ "$p" = "$KIMIA_GIT_PROTOCOL" ] && [ "$h" = "$KIMIA_GIT_HOST" ]; then',
  '  printf "username=%s\\npassword=%s\\n" "$KIMIA_GIT_USER" "$KIMIA_GIT_TOKEN";',
  ' elif [ -n "$KIMIA_GIT_REFUSED" ]; then printf "%s://%s\\n" "$p" "$h" >> "$KIMIA_GIT_REFUSED";',
  ' fi;',
  ' }; f',
].join('');

/**
 * Environment for every git command of a clone: prompts off, network transports only. With a token: the scoped
 * credential helper (after an empty value, which drops any helper of the system or user configuration) and
 * redirects followed only for the first request (git's default, set explicitly against a user configuration that
 * says `true`).
 */
export function gitAuthEnv(opts: { user: string; token?: string; origin?: GitOrigin; refusedFile?: string }): Record<string, string> {
  const env: Record<string, string> = { GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '/bin/false', SSH_ASKPASS: '/bin/false', GIT_PROTOCOL_FROM_USER: '0' };
  // The transports a repository may name (in .gitmodules): the network ones. `ext::` (runs a command) and
  // `file://` (reads the build pod's own files) are refused whatever the git version or its configuration says.
  const config: [string, string][] = [
    ['protocol.allow', 'never'],
    ...['https', 'http', 'git', 'ssh'].map((p): [string, string] => [`protocol.${p}.allow`, 'always']),
  ];
  if (opts.token && opts.origin) {
    config.push(['credential.helper', ''], ['credential.helper', CREDENTIAL_HELPER], ['http.followRedirects', 'initial']);
  }
  env.GIT_CONFIG_COUNT = String(config.length);
  config.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  if (!opts.token || !opts.origin) return env;
  env.KIMIA_GIT_PROTOCOL = opts.origin.protocol;
  env.KIMIA_GIT_HOST = opts.origin.host;
  env.KIMIA_GIT_USER = opts.user;
  env.KIMIA_GIT_TOKEN = opts.token;
  if (opts.refusedFile) env.KIMIA_GIT_REFUSED = opts.refusedFile;
  return env;
}

/**
 * `git config -f .gitmodules --get-regexp '^submodule\..*\.url$'` output → the submodules whose URL is on another
 * origin than the context (relative URLs such as `../lib.git` resolve against the context, so they stay on it).
 */
export function foreignSubmodules(configOutput: string, origin: GitOrigin): { name: string; url: string }[] {
  const out: { name: string; url: string }[] = [];
  for (const line of configOutput.split('\n')) {
    const m = /^submodule\.(.+)\.url\s+(.+)$/.exec(line.trim());
    if (!m) continue;
    const url = m[2]!.trim();
    if (url.startsWith('./') || url.startsWith('../')) continue;
    const o = gitOrigin(url);
    if (o && o.protocol === origin.protocol && o.host === origin.host) continue;
    out.push({ name: m[1]!, url });
  }
  return out;
}
