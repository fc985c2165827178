/**
 * Secret build-arg values out of an image config. Pure.
 *
 * Buildah records the build args of a stage in the history of each of its RUN steps
 * (`|2 API_TOKEN=v DB_PASSWORD=w /bin/sh -c make`), and compares those histories to find cached layers, so the
 * values cannot be kept out while building without losing the layer cache (`--omit-history` does exactly that).
 * kimia lets Buildah build as usual and then rewrites the history of the result only: `NAME=value` becomes
 * `NAME=***`, and any other occurrence of the value in a history entry becomes `***`. A value found anywhere else
 * in the config (ENV, LABEL, CMD… put there by the Dockerfile) cannot be masked without changing the image, and is
 * reported instead.
 */
import { MASK } from '../../core/redact.js';

/** Shorter values would match unrelated text; below this length only `NAME=value` is masked and nothing reported. */
const MIN_VALUE_LENGTH = 3;

export interface MaskResult {
  /** the new config text (unchanged when `changed` is false) */
  config: string;
  changed: boolean;
  /** where a value still is, outside the history: `config.Env[1] (API_TOKEN)` */
  leaks: string[];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function maskText(text: string, args: readonly { name: string; value: string }[]): string {
  let out = text;
  for (const { name, value } of args) {
    if (!value) continue;
    out = out.replace(new RegExp(`(^|[\\s|])${escapeRegExp(name)}=${escapeRegExp(value)}(?=\\s|$)`, 'g'), `$1${name}=${MASK}`);
  }
  for (const { value } of [...args].sort((a, b) => b.value.length - a.value.length)) {
    if (value.length >= MIN_VALUE_LENGTH) out = out.split(value).join(MASK);
  }
  return out;
}

function findLeaks(node: unknown, path: string, args: readonly { name: string; value: string }[], out: string[]): void {
  if (typeof node === 'string') {
    for (const { name, value } of args) if (value.length >= MIN_VALUE_LENGTH && node.includes(value)) out.push(`${path} (${name})`);
  } else if (Array.isArray(node)) {
    node.forEach((v, i) => findLeaks(v, `${path}[${i}]`, args, out));
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) findLeaks(v, path ? `${path}.${k}` : k, args, out);
  }
}

export function maskConfig(configText: string, args: readonly { name: string; value: string }[]): MaskResult {
  const config = JSON.parse(configText) as { history?: Record<string, unknown>[] } & Record<string, unknown>;
  let changed = false;
  for (const entry of config.history ?? []) {
    for (const key of ['created_by', 'comment', 'author']) {
      const v = entry[key];
      if (typeof v !== 'string') continue;
      const masked = maskText(v, args);
      if (masked !== v) {
        entry[key] = masked;
        changed = true;
      }
    }
  }
  const leaks: string[] = [];
  findLeaks(config, '', args, leaks);
  return { config: changed ? JSON.stringify(config) : configText, changed, leaks };
}
