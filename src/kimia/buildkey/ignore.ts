/**
 * .dockerignore for the build key, on the safe side. Pure.
 *
 * The key must cover every file the build can see: hashing a file the build ignores only costs a rebuild, leaving
 * out one it sees would answer "unchanged" for a changed build. So this matcher excludes only what it is sure
 * Buildah excludes (moby's pattern rules: `*`, `?`, `**`, a pattern excluding a folder excludes its content), skips
 * any pattern it does not read with certainty (character classes, escapes), and excludes nothing at all when a
 * pattern re-includes (`!`), since the order of exceptions then matters.
 */

export interface IgnoreMatcher {
  /** is this context path (relative, `/`-separated) excluded from what the build sees? */
  excluded(path: string): boolean;
  /** why some patterns were not used, for the debug log */
  skipped: string[];
}

function clean(pattern: string): string | undefined {
  const parts: string[] = [];
  for (const p of pattern.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (!parts.length) return undefined; // leaves the context: matches nothing inside it
      parts.pop();
    } else parts.push(p);
  }
  return parts.length ? parts.join('/') : undefined;
}

function toRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export function ignoreMatcher(text: string | undefined): IgnoreMatcher {
  const skipped: string[] = [];
  const patterns: RegExp[] = [];
  const lines = (text ?? '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (lines.some((l) => l.startsWith('!'))) {
    return { excluded: () => false, skipped: ['a pattern re-includes files (!): every file is hashed'] };
  }
  for (const line of lines) {
    if (/[[\]\\]/.test(line)) {
      skipped.push(`${line} (character class or escape)`);
      continue;
    }
    const p = clean(line);
    if (p === undefined) continue;
    patterns.push(toRegExp(p));
  }
  return {
    skipped,
    excluded(path: string): boolean {
      // the path itself or any folder above it
      const parts = path.split('/');
      for (let n = 1; n <= parts.length; n++) {
        const prefix = parts.slice(0, n).join('/');
        if (patterns.some((re) => re.test(prefix))) return true;
      }
      return false;
    },
  };
}
