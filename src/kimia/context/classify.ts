/**
 * Pure classification of `--context`. Only a URL that looks like Git is Git: `git://`, a path ending in `.git`,
 * or a `#ref` fragment. A URL ending in .tar.gz/.tgz is a tarball (the reference builder treated every https URL as
 * Git). Anything else over http(s) is decided by the fetcher from the response's content type.
 */

export type ContextSource =
  | { kind: 'dir'; path: string }
  | { kind: 'tar-file'; path: string }
  | { kind: 'tar-url'; url: string }
  | { kind: 'git'; url: string; ref?: string; revision?: string; subdir?: string }
  | { kind: 'http'; url: string }
  | { kind: 'unsupported'; scheme: string };

const TARBALL = /\.(tar\.gz|tgz|tar)$/i;

export function classifyContext(context: string): ContextSource {
  const c = context.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(c)?.[1]?.toLowerCase();
  if (!scheme) {
    if (/^git@[^:]+:/.test(c)) return gitSource(c);
    return TARBALL.test(c) ? { kind: 'tar-file', path: c } : { kind: 'dir', path: c };
  }
  const rest = c.slice(scheme.length + 3);
  switch (scheme) {
    case 'dir':
      return { kind: 'dir', path: rest };
    case 'tar':
      return { kind: 'tar-file', path: rest };
    case 'git':
    case 'ssh':
      return gitSource(c);
    case 'http':
    case 'https': {
      const [base] = c.split('#', 1) as [string];
      const pathname = new URL(base).pathname;
      if (TARBALL.test(pathname)) return { kind: 'tar-url', url: base };
      if (pathname.endsWith('.git') || c.includes('#')) return gitSource(c);
      return { kind: 'http', url: c };
    }
    default:
      return { kind: 'unsupported', scheme };
  }
}

/** `URL#ref:subdir`, `URL#ref`, Kaniko's `URL#refs/heads/b#<commit>`. */
export function gitSource(text: string): ContextSource {
  const parts = text.split('#');
  const url = parts[0]!;
  const src: { kind: 'git'; url: string; ref?: string; revision?: string; subdir?: string } = { kind: 'git', url };
  const frag = parts[1];
  if (frag) {
    const colon = frag.indexOf(':');
    const ref = colon >= 0 ? frag.slice(0, colon) : frag;
    const subdir = colon >= 0 ? frag.slice(colon + 1) : '';
    if (/^[0-9a-f]{40}$/i.test(ref)) src.revision = ref;
    else if (ref) src.ref = ref.replace(/^refs\/(heads|tags)\//, '');
    if (subdir) src.subdir = subdir;
  }
  if (parts[2] && /^[0-9a-f]{7,40}$/i.test(parts[2])) src.revision = parts[2];
  return src;
}

/** A URL safe to print: user info (tokens) removed. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]+@/, '//');
  }
}

/** Does `child` (a normalized relative path) stay inside its parent? */
export function staysInside(relative: string): boolean {
  if (relative.startsWith('/')) return false;
  const out: string[] = [];
  for (const part of relative.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (!out.length) return false;
      out.pop();
    } else out.push(part);
  }
  return true;
}
