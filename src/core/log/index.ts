/**
 * Namespaced logger with levels, text or JSON lines, optional timestamps, and redaction of every secret value.
 * Sinks are plain functions so that tests and the per-container debug file can capture lines.
 */
import { globalRedactor, type Redactor } from '../redact.js';

export const LEVELS = ['debug', 'info', 'warn', 'error', 'off'] as const;
export type Level = (typeof LEVELS)[number];
export type LogFormat = 'text' | 'json';

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, off: 100 };

/** Where a rendered line goes; Logger also passes the line's level, so a sink can keep its own threshold. */
export type Sink = (line: string, level?: Exclude<Level, 'off'>) => void;

/** True when `level` is at least `threshold` ('off' lets nothing through). */
export function atLeast(level: Level, threshold: Level): boolean {
  return threshold !== 'off' && level !== 'off' && RANK[level] >= RANK[threshold];
}

export interface LoggerOptions {
  level?: Level;
  format?: LogFormat;
  timestamps?: boolean;
  namespace?: string;
  redactor?: Redactor;
  sinks?: Sink[];
  /** fields added to every JSON record (e.g. container id) */
  fields?: Record<string, unknown>;
}

/** A log line as data, for pure plans that say what to log (written by whoever performs the plan). */
export interface LogEntry {
  level: Exclude<Level, 'off'>;
  msg: string;
  fields?: Record<string, unknown>;
}

export const stderrSink: Sink = (line) => {
  process.stderr.write(line + '\n');
};

/** Parse a user-given level, accepting RUNCVM's upper-case names and Kaniko's aliases. */
export function parseLevel(value: string | undefined, fallback: Level = 'info'): Level {
  if (!value) return fallback;
  const v = value.trim().toLowerCase();
  const alias: Record<string, Level> = { trace: 'debug', warning: 'warn', fatal: 'error', panic: 'error', none: 'off' };
  const level = (alias[v] ?? v) as Level;
  if (!(LEVELS as readonly string[]).includes(level)) {
    throw new RangeError(`unknown log level "${value}" (use one of: ${LEVELS.join(', ')})`);
  }
  return level;
}

export class Logger {
  readonly level: Level;
  readonly format: LogFormat;
  private readonly timestamps: boolean;
  private readonly namespace: string;
  private readonly redactor: Redactor;
  private readonly sinks: Sink[];
  private readonly fields: Record<string, unknown>;

  constructor(options: LoggerOptions = {}) {
    this.level = options.level ?? 'info';
    this.format = options.format ?? 'text';
    this.timestamps = options.timestamps ?? false;
    this.namespace = options.namespace ?? '';
    this.redactor = options.redactor ?? globalRedactor;
    this.sinks = options.sinks ?? [stderrSink];
    this.fields = options.fields ?? {};
  }

  child(namespace: string, fields: Record<string, unknown> = {}): Logger {
    return new Logger({
      level: this.level,
      format: this.format,
      timestamps: this.timestamps,
      namespace: this.namespace ? `${this.namespace}:${namespace}` : namespace,
      redactor: this.redactor,
      sinks: this.sinks,
      fields: { ...this.fields, ...fields },
    });
  }

  withSink(sink: Sink): Logger {
    return new Logger({
      level: this.level,
      format: this.format,
      timestamps: this.timestamps,
      namespace: this.namespace,
      redactor: this.redactor,
      sinks: [...this.sinks, sink],
      fields: this.fields,
    });
  }

  enabled(level: Level): boolean {
    return RANK[level] >= RANK[this.level] && level !== 'off';
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.write('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write('warn', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.write('error', msg, fields);
  }

  write(level: Exclude<Level, 'off'>, msg: string, fields: Record<string, unknown> = {}): void {
    if (!this.enabled(level)) return;
    const line = this.format === 'json' ? this.jsonLine(level, msg, fields) : this.textLine(level, msg, fields);
    const safe = this.redactor.redact(line);
    for (const sink of this.sinks) sink(safe, level);
  }

  private textLine(level: string, msg: string, fields: Record<string, unknown>): string {
    const parts: string[] = [];
    if (this.timestamps) parts.push(new Date().toISOString());
    parts.push(level.toUpperCase().padEnd(5));
    if (this.namespace) parts.push(`[${this.namespace}]`);
    parts.push(msg);
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    if (extra.length) parts.push(extra.join(' '));
    return parts.join(' ');
  }

  private jsonLine(level: string, msg: string, fields: Record<string, unknown>): string {
    const record: Record<string, unknown> = {};
    if (this.timestamps) record.time = new Date().toISOString();
    record.level = level;
    if (this.namespace) record.ns = this.namespace;
    record.msg = msg;
    Object.assign(record, this.fields, fields);
    return JSON.stringify(record);
  }
}
