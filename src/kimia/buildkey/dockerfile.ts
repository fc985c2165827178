/**
 * What a Dockerfile pulls from outside the context, for the build key: the base images (FROM), the images that
 * `COPY --from` and `RUN --mount=…,from=` name, and whether anything is fetched by URL (ADD https://…, ADD of a Git
 * URL), which no key can prove unchanged. Pure; it reads the one parse of the Dockerfile (dockerfile/parse.ts), and
 * anything it cannot read with certainty makes the build unprovable, so a build is never skipped on a guess.
 */
import { createHash } from 'node:crypto';
import type { ParsedDockerfile } from '../dockerfile/parse.js';

export type ExternalInputs =
  | { kind: 'known'; images: string[] }
  | { kind: 'unprovable'; reason: string };

/**
 * The Dockerfile as the build reads it, for the build key: the escape character and every instruction exactly as
 * written (continuation lines and here-document bodies included). Comments and blank lines between instructions
 * change nothing Buildah builds, so they do not change the key.
 */
export function dockerfileDigest(df: ParsedDockerfile): string {
  return createHash('sha256').update(JSON.stringify({ escape: df.escape, instructions: df.instructions.map((i) => i.source) })).digest('hex');
}

/** An instruction's arguments: its normalized text without the keyword (a here-document's first line only). */
function argsOf(text: string): string {
  return /^\s*\S+\s*(.*)$/s.exec(text)?.[1]?.trim() ?? '';
}

/** `--name=value` flags at the start of an instruction's arguments, and the rest. */
function splitFlags(args: string): { flags: { name: string; value: string }[]; rest: string[] } {
  const words = args.split(/\s+/).filter(Boolean);
  const flags: { name: string; value: string }[] = [];
  while (words[0]?.startsWith('--')) {
    const w = words.shift()!;
    const eq = w.indexOf('=');
    flags.push(eq < 0 ? { name: w.slice(2), value: '' } : { name: w.slice(2, eq), value: w.slice(eq + 1) });
  }
  return { flags, rest: words };
}

/** `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR:+word}` expanded; undefined when a variable has no known value. */
export function expand(text: string, vars: ReadonlyMap<string, string>): string | undefined {
  let unknown = false;
  const out = text.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_all, braced: string | undefined, op: string | undefined, word: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    const value = vars.get(name);
    if (op === '-') return value ? value : word ?? '';
    if (op === '+') return value ? word ?? '' : '';
    if (value === undefined) {
      unknown = true;
      return '';
    }
    return value;
  });
  return unknown || /\$\{/.test(out) ? undefined : out;
}

/** Buildah's automatic platform ARGs, for FROM lines that use them. */
export function platformArgs(target: string, build: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const [prefix, platform] of [['TARGET', target], ['BUILD', build]] as const) {
    const [os = '', arch = '', variant = ''] = platform.split('/');
    vars.set(`${prefix}PLATFORM`, platform);
    vars.set(`${prefix}OS`, os);
    vars.set(`${prefix}ARCH`, arch);
    vars.set(`${prefix}VARIANT`, variant);
  }
  return vars;
}

/**
 * The images a build reads besides its context. `buildArgs`: the values given to the build (they override the
 * defaults of the ARGs declared before the first FROM); `platform`: target and build platform (os/arch).
 */
export function externalInputs(df: ParsedDockerfile, buildArgs: ReadonlyMap<string, string>, platform: { target: string; build: string }): ExternalInputs {
  const vars = platformArgs(platform.target, platform.build);
  const stages: string[] = [];
  const images = new Set<string>();
  const isStage = (ref: string) => stages.includes(ref.toLowerCase()) || (/^\d+$/.test(ref) && Number(ref) < stages.length);
  const image = (raw: string, what: string): string | undefined => {
    const ref = expand(raw, vars);
    if (ref === undefined || !ref) return undefined;
    if (ref.toLowerCase() === 'scratch' || isStage(ref)) return ref;
    images.add(ref);
    return `${what} ${ref}`;
  };
  for (const ins of df.instructions) {
    const { flags, rest } = splitFlags(argsOf(ins.text));
    switch (ins.keyword) {
      case 'ARG':
        // only the ARGs before the first FROM reach FROM lines; stage ARGs are in the Dockerfile text of the key
        if (stages.length) break;
        for (const decl of rest) {
          const eq = decl.indexOf('=');
          const name = eq < 0 ? decl : decl.slice(0, eq);
          const given = buildArgs.get(name);
          if (given !== undefined) vars.set(name, given);
          else if (eq >= 0) {
            const value = expand(decl.slice(eq + 1).replace(/^(["'])(.*)\1$/, '$2'), vars);
            if (value === undefined) return { kind: 'unprovable', reason: `ARG ${name} at line ${ins.line} has a default that cannot be expanded` };
            vars.set(name, value);
          }
        }
        break;
      case 'FROM': {
        if (!rest[0] || image(rest[0], 'FROM') === undefined) return { kind: 'unprovable', reason: `FROM at line ${ins.line} names an image that cannot be expanded` };
        const as = rest.findIndex((w) => w.toUpperCase() === 'AS');
        stages.push(as >= 0 && rest[as + 1] ? rest[as + 1]!.toLowerCase() : `#${stages.length}`);
        break;
      }
      case 'COPY':
      case 'ADD': {
        const from = flags.find((f) => f.name === 'from');
        if (from && image(from.value, '--from') === undefined) return { kind: 'unprovable', reason: `${ins.keyword} --from at line ${ins.line} cannot be expanded` };
        if (ins.keyword === 'ADD' && !from && rest.slice(0, -1).some((src) => /^[a-z][a-z0-9+.-]*:\/\/|^git@/i.test(src))) {
          return { kind: 'unprovable', reason: `ADD at line ${ins.line} fetches a URL, whose content can change` };
        }
        break;
      }
      case 'RUN':
        for (const f of flags.filter((x) => x.name === 'mount')) {
          const from = /(?:^|,)from=([^,]+)/.exec(f.value)?.[1];
          if (from && image(from, 'mount') === undefined) return { kind: 'unprovable', reason: `RUN --mount from= at line ${ins.line} cannot be expanded` };
        }
        break;
      default:
        break;
    }
  }
  if (!stages.length) return { kind: 'unprovable', reason: 'no FROM instruction' };
  return { kind: 'known', images: [...images] };
}
