/**
 * Pure install planners: existing config text in, new config text out. They keep everything else in the file,
 * change nothing when runcvm is already registered correctly (idempotent), and refuse — rather than write — any
 * result that does not parse or does not hold the entry afterwards.
 */
import {
  CRI_PLUGIN_V3, K3S_BASE_LINE, RUNTIME_NAME, RUNTIME_TYPE, criPluginFor, defaultRuntimeBlock, findRuntimeEntries, hasK3sBase,
  missingDefaultRuntime, parseTomlText, removeTables, runtimeBlock, runtimeSection, stripGoTemplate,
} from './runtime-config.js';

export type InstallTarget = 'containerd' | 'k3s' | 'docker';

export interface InstallPlan {
  readonly target: InstallTarget;
  readonly changed: boolean;
  readonly text: string;
  /** what was done, one line each */
  readonly actions: string[];
  readonly restart: string;
}

export class InstallRefused extends Error {
  constructor(message: string, readonly fix: string) {
    super(message);
    this.name = 'InstallRefused';
  }
}

export const RESTART: Record<InstallTarget, string> = {
  containerd: 'sudo systemctl restart containerd',
  k3s: 'sudo systemctl restart k3s',
  docker: 'sudo systemctl restart docker',
};

/** "containerd github.com/containerd/containerd 1.6.20~ds1 …" or "v2.0.1" → major version. */
export function containerdMajor(versionOutput: string): number | undefined {
  const m = /\bv?(\d+)\.(\d+)\.\d+/.exec(versionOutput);
  return m ? Number(m[1]) : undefined;
}

function ensureNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : text + '\n';
}

function appendBlock(text: string, block: string): string {
  const base = ensureNewline(text).replace(/\n{2,}$/, '\n');
  return base === '' ? block : `${base}\n${block}`;
}

export interface ContainerdOptions {
  readonly binaryName: string;
  /** the runtime handler's name (default runcvm) */
  readonly name?: string;
  /** output of `containerd --version`, used when the file does not say its version */
  readonly containerdVersion?: string;
}

export function planContainerd(existing: string, opts: ContainerdOptions): InstallPlan & { configVersion: number; section: string } {
  const parsed = parseTomlText(existing);
  if (!parsed.ok) {
    throw new InstallRefused(`the existing config is not valid TOML (line ${parsed.line}, column ${parsed.column}: ${parsed.message})`, 'fix that line first (or move the file away to start from an empty config), then run the install again');
  }
  const actions: string[] = [];
  let configVersion = typeof parsed.value.version === 'number' ? parsed.value.version : undefined;
  let text = existing;
  if (configVersion === undefined) {
    if (existing.trim() !== '' && 'plugins' in parsed.value) {
      throw new InstallRefused('the existing config has plugins but no `version` line: it is a version 1 config', 'migrate it first (`containerd config migrate` on 2.x, or add `version = 2` and rename plugin sections on 1.x)');
    }
    const major = opts.containerdVersion ? containerdMajor(opts.containerdVersion) : undefined;
    configVersion = major !== undefined && major >= 2 ? 3 : 2;
    text = `version = ${configVersion}\n${existing.trim() === '' ? '' : '\n'}${existing}`;
    actions.push(`added version = ${configVersion} (containerd ${major ?? 1}.x)`);
  } else if (configVersion < 2) {
    throw new InstallRefused(`config version ${configVersion} is not supported`, 'migrate the config to version 2 (containerd 1.x) or 3 (containerd 2.x) first');
  }
  const plugin = criPluginFor(configVersion);
  const name = opts.name ?? RUNTIME_NAME;
  const section = runtimeSection(plugin, name);
  const current = findRuntimeEntries(parsed.value, name).find((e) => e.plugin === plugin);
  const lostDefault = missingDefaultRuntime(parsed.value, plugin);
  if (current && current.runtimeType === RUNTIME_TYPE && current.binaryName === opts.binaryName && actions.length === 0 && lostDefault === undefined) {
    return { target: 'containerd', changed: false, text: existing, actions: [`${section} is already registered`], restart: RESTART.containerd, configVersion, section };
  }
  const removal = removeTables(text, ['plugins', plugin, 'containerd', 'runtimes', name]);
  if (removal.removed > 0) actions.push(`replaced the existing ${section} entry`);
  else actions.push(`added ${section}`);
  let result = removal.text;
  if (lostDefault !== undefined) {
    // naming any runtime replaces containerd's default map: keep the default runtime or the CRI plugin will not load
    result = appendBlock(result, defaultRuntimeBlock(plugin, lostDefault));
    actions.push(`added the default runtime entry "${lostDefault}" (containerd drops its built-in one once any runtime is configured)`);
  }
  result = appendBlock(result, runtimeBlock(plugin, opts.binaryName, name));
  verifyToml(result, plugin, opts.binaryName, (t) => t, name);
  return { target: 'containerd', changed: true, text: result, actions, restart: RESTART.containerd, configVersion, section };
}

export function planK3sTemplate(existing: string, opts: { binaryName: string; name?: string }): InstallPlan & { section: string } {
  const parsed = parseTomlText(stripGoTemplate(existing));
  if (!parsed.ok) {
    throw new InstallRefused(`the existing template is not valid TOML outside its {{ }} lines (line ${parsed.line}, column ${parsed.column}: ${parsed.message})`, 'fix that line first, then run the install again');
  }
  const name = opts.name ?? RUNTIME_NAME;
  const section = runtimeSection(CRI_PLUGIN_V3, name);
  const actions: string[] = [];
  const current = findRuntimeEntries(parsed.value, name).find((e) => e.plugin === CRI_PLUGIN_V3);
  const base = hasK3sBase(existing);
  if (base && current && current.runtimeType === RUNTIME_TYPE && current.binaryName === opts.binaryName) {
    return { target: 'k3s', changed: false, text: existing, actions: [`${section} is already registered`], restart: RESTART.k3s, section };
  }
  let text = existing;
  if (!base) {
    text = `${K3S_BASE_LINE}\n${existing.trim() === '' ? '' : '\n'}${existing}`;
    actions.push(`added ${K3S_BASE_LINE} (keeps k3s's own settings)`);
  }
  const removal = removeTables(text, ['plugins', CRI_PLUGIN_V3, 'containerd', 'runtimes', name]);
  actions.push(removal.removed > 0 ? `replaced the existing ${section} entry` : `added ${section}`);
  const result = appendBlock(removal.text, runtimeBlock(CRI_PLUGIN_V3, opts.binaryName, name));
  verifyToml(result, CRI_PLUGIN_V3, opts.binaryName, stripGoTemplate, name);
  return { target: 'k3s', changed: true, text: result, actions, restart: RESTART.k3s, section };
}

function verifyToml(text: string, plugin: string, binaryName: string, prepare: (t: string) => string, name: string = RUNTIME_NAME): void {
  const check = parseTomlText(prepare(text));
  if (!check.ok) {
    throw new InstallRefused(`the new config would not parse (line ${check.line}: ${check.message}); nothing was written`, `the existing file defines ${name} in a form install cannot edit (inline table or dotted keys): remove that definition and run the install again`);
  }
  const entry = findRuntimeEntries(check.value, name).find((e) => e.plugin === plugin);
  if (!entry || entry.runtimeType !== RUNTIME_TYPE || entry.binaryName !== binaryName) {
    throw new InstallRefused(`the new config does not hold the ${name} entry after editing; nothing was written`, `remove every ${name} definition from the file and run the install again`);
  }
}

/** Line (1-based) of a JSON.parse error, from the "position N" in V8's message. */
export function jsonErrorLine(text: string, err: Error): number | undefined {
  const m = /position (\d+)/.exec(err.message);
  if (m) return text.slice(0, Number(m[1])).split('\n').length;
  const l = /line (\d+)/.exec(err.message);
  return l ? Number(l[1]) : undefined;
}

export function planDocker(existing: string, opts: { runtimePath: string }): InstallPlan {
  let config: Record<string, unknown> = {};
  if (existing.trim() !== '') {
    let value: unknown;
    try {
      value = JSON.parse(existing);
    } catch (err) {
      const line = jsonErrorLine(existing, err as Error);
      throw new InstallRefused(`the existing daemon.json is not valid JSON${line ? ` (line ${line})` : ''}: ${(err as Error).message}`, 'fix the file first, then run the install again');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InstallRefused('daemon.json is not a JSON object', 'make it an object, e.g. {}');
    config = value as Record<string, unknown>;
  }
  const runtimes = (typeof config.runtimes === 'object' && config.runtimes !== null ? config.runtimes : {}) as Record<string, Record<string, unknown>>;
  const current = runtimes[RUNTIME_NAME];
  if (current && current.path === opts.runtimePath) {
    return { target: 'docker', changed: false, text: existing, actions: ['runtimes.runcvm is already registered'], restart: RESTART.docker };
  }
  const next = { ...config, runtimes: { ...runtimes, [RUNTIME_NAME]: { ...(current ?? {}), path: opts.runtimePath } } };
  const text = JSON.stringify(next, null, 2) + '\n';
  JSON.parse(text);
  return { target: 'docker', changed: true, text, actions: [current ? 'replaced runtimes.runcvm.path' : 'added runtimes.runcvm.path'], restart: RESTART.docker };
}
