/**
 * The launcher's logger: the per-container debug file (INFO, or DEBUG when asked) and the container's stderr at the
 * user's RUNCVM_LOG_LEVEL (ERROR by default, so stderr stays the workload's own unless something fails). Each sink
 * keeps its own threshold on the line's level.
 */
import { appendFileSync } from 'node:fs';
import { atLeast, Logger, type Level, type Sink } from '../../core/log/index.js';
import type { LaunchSpec } from '../launch/schema.js';

export function launcherLogger(spec: LaunchSpec | undefined): Logger {
  const userLevel: Level = spec?.log.level ?? 'error';
  const file = spec?.log.file;
  const fileLevel: Level = userLevel === 'off' ? 'off' : userLevel === 'debug' ? 'debug' : 'info';
  const sinks: Sink[] = [];
  if (file && fileLevel !== 'off') {
    sinks.push((line, level = 'error') => {
      if (!atLeast(level, fileLevel)) return;
      try {
        appendFileSync(file, line + '\n');
      } catch {
        /* never fail on logging */
      }
    });
  }
  sinks.push((line, level = 'error') => {
    if (atLeast(level, userLevel)) process.stderr.write(`runcvm: ${line}\n`);
  });
  // the logger renders what the most talkative sink wants; each sink filters for itself
  const level: Level = file && fileLevel !== 'off' ? fileLevel : userLevel;
  return new Logger({ level, namespace: `launcher ${spec?.containerId ?? ''}`.trim(), timestamps: true, sinks });
}
