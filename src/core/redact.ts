/**
 * Redaction by value: whoever learns a secret (password, token, secret build-arg) registers it here, and every
 * command line, output line and error message passes through `redact` before it is printed or logged.
 */

export const MASK = '***';

// Very short values would mask unrelated text everywhere ("a", "1"); below this length they are not matched.
const MIN_SECRET_LENGTH = 3;

export class Redactor {
  private readonly secrets = new Set<string>();

  constructor(initial: Iterable<string> = []) {
    for (const s of initial) this.add(s);
  }

  add(secret: string | undefined | null): void {
    if (!secret) return;
    const trimmed = secret.trim();
    if (trimmed.length < MIN_SECRET_LENGTH) return;
    this.secrets.add(trimmed);
    // A secret also leaks in its common encodings: URL-encoded and base64 (docker config "auth" fields).
    const encoded = encodeURIComponent(trimmed);
    if (encoded !== trimmed) this.secrets.add(encoded);
  }

  /** Register user:password the way it appears in a basic-auth header or a docker config "auth" field. */
  addBasicAuth(user: string, password: string): void {
    this.add(password);
    this.add(Buffer.from(`${user}:${password}`).toString('base64'));
  }

  get size(): number {
    return this.secrets.size;
  }

  values(): string[] {
    return [...this.secrets];
  }

  redact(text: string): string {
    if (this.secrets.size === 0 || !text) return text;
    // Longest first so that a secret containing another is masked whole.
    let out = text;
    for (const s of [...this.secrets].sort((a, b) => b.length - a.length)) {
      if (out.includes(s)) out = out.split(s).join(MASK);
    }
    return out;
  }

  redactArgs(args: readonly string[]): string[] {
    return args.map((a) => this.redact(a));
  }
}

/** One process-wide redactor: the runner and the logger both use it, so no caller can forget. */
export const globalRedactor = new Redactor();

// Words that make a name secret wherever they appear (separators removed: API_KEY → apikey), and words that do so
// only as a whole part of the name (DB_PASS, BASIC_AUTH, SSH_KEY, GH_PAT, but not PASSPORT, AUTHOR, MONKEY).
const SECRET_WORDS = /password|passwd|passphrase|secret|token|credential|apikey|privatekey|accesskey|signingkey|authorization/;
const SECRET_PARTS = new Set(['pass', 'pwd', 'pw', 'auth', 'oauth', 'key', 'pat', 'cred', 'creds', 'jwt']);

/**
 * Names that look secret (used to mark build-args and env values as secrets by name, on top of by value):
 * *PASSWORD*, *PASSWD*, *PASSPHRASE*, *SECRET*, *TOKEN*, *CREDENTIAL*, *API_KEY*, *PRIVATE_KEY*, *ACCESS_KEY*,
 * *SIGNING_KEY*, *AUTHORIZATION*, and names with a part PASS, PWD, PW, AUTH, OAUTH, KEY, PAT, CRED(S) or JWT
 * (parts split at `_`, `-`, `.` and lower-to-upper case changes).
 */
export function looksSecretName(name: string): boolean {
  const parts = name.split(/[_\-.]+|(?<=[a-z0-9])(?=[A-Z])/).map((p) => p.toLowerCase()).filter(Boolean);
  return SECRET_WORDS.test(parts.join('')) || parts.some((p) => SECRET_PARTS.has(p));
}

/** Quote an argv for display (shell-like), after redaction. */
export function formatCommand(file: string, args: readonly string[], redactor: Redactor = globalRedactor): string {
  return [file, ...args].map((a) => quoteArg(redactor.redact(a))).join(' ');
}

function quoteArg(a: string): string {
  if (a === '') return "''";
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}
