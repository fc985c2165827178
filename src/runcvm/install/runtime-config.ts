/**
 * What a correct runcvm registration looks like in containerd, k3s and Docker configs, and how to read those
 * configs. Shared by the install planners (which write it) and the doctor (which checks it). Pure.
 */
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';

export const RUNTIME_NAME = 'runcvm';
export const RUNTIME_TYPE = 'io.containerd.runc.v2';
/** containerd 1.x config `version = 2` */
export const CRI_PLUGIN_V2 = 'io.containerd.grpc.v1.cri';
/** containerd 2.x config `version = 3` (and k3s config-v3.toml.tmpl) */
export const CRI_PLUGIN_V3 = 'io.containerd.cri.v1.runtime';
export const K3S_BASE_LINE = '{{ template "base" . }}';

export function criPluginFor(configVersion: number): string {
  return configVersion >= 3 ? CRI_PLUGIN_V3 : CRI_PLUGIN_V2;
}

/** The table header of the runtime entry, exactly as the guide writes it (note the quotes). */
export function runtimeSection(plugin: string): string {
  return `[plugins."${plugin}".containerd.runtimes.${RUNTIME_NAME}]`;
}

/** One runtime entry as TOML (smol-toml writes it; its table header is runtimeSection's). */
function runtimeEntry(plugin: string, name: string, entry: Record<string, unknown>): string {
  return stringifyToml({ plugins: { [plugin]: { containerd: { runtimes: { [name]: entry } } } } });
}

export function runtimeBlock(plugin: string, binaryName: string): string {
  return runtimeEntry(plugin, RUNTIME_NAME, { runtime_type: RUNTIME_TYPE, options: { BinaryName: binaryName } });
}

export type ParsedToml = { ok: true; value: Record<string, unknown> } | { ok: false; line: number; column: number; message: string };

export function parseTomlText(text: string): ParsedToml {
  try {
    return { ok: true, value: parseToml(text) as Record<string, unknown> };
  } catch (err) {
    if (err instanceof TomlError) {
      return { ok: false, line: err.line, column: err.column, message: (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '') };
    }
    throw err;
  }
}

/** Blank out Go-template lines (`{{ … }}`) so the rest of a k3s template parses as TOML with the same line numbers. */
export function stripGoTemplate(text: string): string {
  return text
    .split('\n')
    .map((l) => (/\{\{.*\}\}/.test(l) ? '' : l))
    .join('\n');
}

export function hasK3sBase(text: string): boolean {
  return text.split('\n').some((l) => l.replace(/\s+/g, ' ').trim() === K3S_BASE_LINE);
}

function rec(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

export interface RuntimeEntry {
  /** which CRI plugin section holds it */
  readonly plugin: string;
  readonly runtimeType: unknown;
  readonly binaryName: unknown;
}

/** The runcvm runtime entries found in a parsed containerd config (under either CRI plugin name). */
export function findRuntimeEntries(config: Record<string, unknown>): RuntimeEntry[] {
  const plugins = rec(config.plugins) ?? {};
  return [CRI_PLUGIN_V2, CRI_PLUGIN_V3].flatMap((plugin) => {
    const entry = rec(rec(rec(rec(plugins[plugin])?.containerd)?.runtimes)?.[RUNTIME_NAME]);
    return entry ? [{ plugin, runtimeType: entry.runtime_type, binaryName: rec(entry.options)?.BinaryName }] : [];
  });
}

/** Split a TOML table header's key into its parts: `plugins."a.b".c` → ['plugins', 'a.b', 'c']. */
export function headerKey(header: string): string[] | undefined {
  const m = /^\s*\[\s*([^[\]]+?)\s*\]\s*(#.*)?$/.exec(header);
  if (!m) return undefined;
  const parts: string[] = [];
  let cur = '';
  let quote: string | undefined;
  for (const ch of m[1]!) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '.') {
      parts.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  parts.push(cur.trim());
  return parts;
}

/** Remove the tables `prefix` and `prefix.*` (header line up to the next table header) from TOML text. */
export function removeTables(text: string, prefix: readonly string[]): { text: string; removed: number } {
  const lines = text.split('\n');
  const out: string[] = [];
  let skipping = false;
  let removed = 0;
  for (const line of lines) {
    const isHeader = /^\s*\[/.test(line);
    if (isHeader) {
      const key = headerKey(line);
      skipping = !!key && key.length >= prefix.length && prefix.every((p, i) => key[i] === p);
      if (skipping) removed++;
    }
    if (!skipping) out.push(line);
  }
  return { text: out.join('\n'), removed };
}

/**
 * containerd replaces (does not merge) its default `runtimes` map when the config names any runtime, so a config
 * that adds only runcvm loses `runc` and the CRI plugin refuses to load ("no corresponding runtime configured in
 * `containerd.runtimes` for `containerd` `default_runtime_name = "runc"`"). Answers the default runtime's name when
 * the config lacks its entry.
 */
export function missingDefaultRuntime(config: Record<string, unknown>, plugin: string): string | undefined {
  const ctd = rec(rec(rec(config.plugins)?.[plugin])?.containerd);
  const name = typeof ctd?.default_runtime_name === 'string' ? ctd.default_runtime_name : 'runc';
  const runtimes = rec(ctd?.runtimes) ?? {};
  return name in runtimes ? undefined : name;
}

export function defaultRuntimeBlock(plugin: string, name: string): string {
  return runtimeEntry(plugin, name, { runtime_type: RUNTIME_TYPE });
}
