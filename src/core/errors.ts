/**
 * Errors are values: each carries a stable code, the process exit status, what happened (message), why (cause)
 * and what to do (fix). Each tool declares its own table with `defineErrors`; `docs/dev/errors.md` is rendered from
 * those tables so the docs and the code never drift apart.
 */

export interface ErrorSpec {
  /** exit status of the command when this error ends it */
  readonly exit: number;
  /** one line, may hold {placeholders} filled from the details */
  readonly message: string;
  /** why it happens, in the user's terms */
  readonly cause: string;
  /** the exact command or YAML that fixes it */
  readonly fix: string;
}

export type ErrorTable = Record<string, ErrorSpec>;

export type Details = Record<string, string | number | boolean | undefined>;

/**
 * Fill `{name}` placeholders from the details. A detail that is itself a text with placeholders (a `fix` passed in by
 * the caller that names `{debugLog}`) is filled once more, one level deep.
 */
export function fillTemplate(template: string, details: Details, depth = 1): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const value = details[key];
    if (value === undefined) return whole;
    return depth > 0 && typeof value === 'string' ? fillTemplate(value, details, depth - 1) : String(value);
  });
}

export class ToolError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly causeText: string;
  readonly fix: string;
  readonly details: Details;
  readonly spec: ErrorSpec;

  constructor(code: string, spec: ErrorSpec, details: Details = {}, options?: { cause?: unknown }) {
    super(fillTemplate(spec.message, details), options);
    this.spec = spec;
    this.name = 'ToolError';
    this.code = code;
    this.exitCode = spec.exit;
    this.causeText = fillTemplate(spec.cause, details);
    this.fix = fillTemplate(spec.fix, details);
    this.details = details;
  }

  /**
   * The same error with placeholders only the boundary knows filled in (e.g. `{debugLog}`, the container's debug log
   * where RUNCVM_LOG_DIR put it). Details the error already has win.
   */
  withDetails(extra: Details): ToolError {
    return new ToolError(this.code, this.spec, { ...extra, ...this.details }, this.cause === undefined ? undefined : { cause: this.cause });
  }

  /** Multi-line human rendering: "error: …", "cause: …", "fix: …". */
  render(): string {
    const lines = [`error: ${this.message}`];
    if (this.causeText) lines.push(`cause: ${this.causeText}`);
    if (this.fix) lines.push(`fix: ${indentRest(this.fix)}`);
    const inner = this.cause;
    if (inner instanceof Error && inner.message && !this.message.includes(inner.message)) {
      lines.push(`detail: ${inner.message}`);
    }
    return lines.join('\n');
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, exitCode: this.exitCode, message: this.message, cause: this.causeText, fix: this.fix };
  }
}

function indentRest(text: string): string {
  return text.split('\n').join('\n     ');
}

/**
 * Declare a tool's error table. Returns the table plus a typed constructor:
 * `const { fail } = defineErrors({...}); throw fail('AUTH', { registry })`.
 */
export function defineErrors<T extends ErrorTable>(table: T) {
  function fail(code: keyof T & string, details: Details = {}, cause?: unknown): ToolError {
    const spec = table[code];
    if (!spec) throw new Error(`unknown error code ${code}`);
    return new ToolError(code, spec, details, cause === undefined ? undefined : { cause });
  }
  return { table, fail };
}

export function isToolError(value: unknown): value is ToolError {
  return value instanceof ToolError;
}

/** Render an error table as a Markdown table (used by docs generation and `--help errors`). */
export function renderErrorTable(title: string, table: ErrorTable): string {
  const rows = Object.entries(table).map(
    ([code, s]) => `| \`${code}\` | ${s.exit} | ${escapeCell(s.message)} | ${escapeCell(s.cause)} | ${escapeCell(s.fix)} |`,
  );
  return [`## ${title}`, '', '| code | exit | message | cause | fix |', '|---|---|---|---|---|', ...rows, ''].join('\n');
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, '<br>');
}
