/**
 * kimia's log: two renderings of the same calls. JSON keeps every structured field (event, step, digest …) for
 * machines; text is for a person reading `kubectl logs`, so it carries only the message, marks warnings and errors,
 * and drops the `key=value` suffix and the namespace (the pod runs nothing but kimia). Every line goes through the
 * redactor in both formats.
 */
import { Logger, stderrSink, type Level, type Sink } from '../core/log/index.js';
import { globalRedactor, type Redactor } from '../core/redact.js';

export type LogLevel = Exclude<Level, 'off'>;
export type Fields = Record<string, unknown>;

export interface Log {
  readonly format: 'text' | 'json';
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** an info line that belongs to the one before it (cache hit of a step, RUN output, pushed blob): indented in text */
  detail(msg: string, fields?: Fields): void;
}

export interface LogOptions {
  level: LogLevel;
  format: 'text' | 'json';
  timestamps: boolean;
  sink?: Sink;
  redactor?: Redactor;
  /** clock for timestamps (tests) */
  now?: () => Date;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Pure: the text rendering of one record. Info is the bare message; other levels say what they are. */
export function textLine(level: LogLevel, msg: string, timestamp?: string): string {
  let body = msg;
  if (level === 'warn' && !/^warning:/i.test(msg)) body = `warning: ${msg}`;
  else if (level === 'error' && !/^error:/i.test(msg)) body = `error: ${msg}`;
  else if (level === 'debug') body = `debug: ${msg}`;
  return timestamp ? `${timestamp} ${body}` : body;
}

export function createLog(options: LogOptions): Log {
  const sink = options.sink ?? stderrSink;
  const redactor = options.redactor ?? globalRedactor;
  if (options.format === 'json') {
    // the shared logger's JSON records (level, ns, msg, fields) are what existing consumers parse
    const json = new Logger({ level: options.level, format: 'json', timestamps: options.timestamps, namespace: 'kimia', redactor, sinks: [sink] });
    return {
      format: 'json',
      enabled: (level) => json.enabled(level),
      debug: (m, f) => json.debug(m, f),
      info: (m, f) => json.info(m, f),
      warn: (m, f) => json.warn(m, f),
      error: (m, f) => json.error(m, f),
      detail: (m, f) => json.info(m, f),
    };
  }
  const now = options.now ?? (() => new Date());
  const enabled = (level: LogLevel) => RANK[level] >= RANK[options.level];
  const write = (level: LogLevel, msg: string) => {
    if (!enabled(level)) return;
    sink(redactor.redact(textLine(level, msg, options.timestamps ? now().toISOString() : undefined)));
  };
  return {
    format: 'text',
    enabled,
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
    detail: (m) => write('info', `  ${m}`),
  };
}
