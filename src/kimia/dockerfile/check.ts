/**
 * What is wrong with a Dockerfile before any work starts: syntax (unknown instruction with "did you mean", flags an
 * instruction does not take, instructions outside a stage) and features the engine in use is too old for. Pure: the
 * engine's version is a fact passed in.
 */
import type { ToolError } from '../../core/errors.js';
import { fail } from '../errors.js';
import type { DockerfileInstruction, ParsedDockerfile } from './parse.js';

export const INSTRUCTIONS = [
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR',
  'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
] as const;

/** Flags each instruction takes (Dockerfile reference, BuildKit 1.x syntax). */
const FLAGS: Record<string, readonly string[]> = {
  FROM: ['platform'],
  RUN: ['mount', 'network', 'security'],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'link', 'checksum', 'keep-git-dir', 'exclude'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

export interface DockerfileProblem {
  line: number;
  /** the instruction as written on that line */
  instruction: string;
  message: string;
  /** "did you mean RUN?" or what to write instead */
  hint: string;
}

/** Edit distance where swapping two neighbours counts once (RUNN → RUN, --chwon → --chown). */
export function typoDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = typoDistance(word.toUpperCase(), c.toUpperCase());
    if (!best || d < best.d) best = { c, d };
  }
  return best && best.d <= Math.max(1, Math.floor(word.length / 3)) ? best.c : undefined;
}

function firstLine(i: DockerfileInstruction): string {
  return i.text.length > 80 ? `${i.text.slice(0, 77)}...` : i.text;
}

/** Syntax problems, in file order (the first one is what the error reports). */
export function syntaxProblems(df: ParsedDockerfile): DockerfileProblem[] {
  const out: DockerfileProblem[] = [];
  const known = INSTRUCTIONS as readonly string[];
  for (const i of df.instructions) {
    if (!known.includes(i.keyword)) {
      const guess = closest(i.keyword, known);
      out.push({
        line: i.line, instruction: firstLine(i), message: `unknown instruction ${i.written}`,
        hint: guess ? `did you mean ${guess}?` : `a Dockerfile instruction is one of ${known.join(', ')}`,
      });
      continue;
    }
    if (i.stage < 0 && i.keyword !== 'ARG' && i.keyword !== 'FROM') {
      out.push({ line: i.line, instruction: firstLine(i), message: `${i.keyword} before the first FROM (no build stage in current context)`, hint: 'only ARG may come before the first FROM; start the stage with FROM IMAGE' });
      continue;
    }
    if (i.keyword === 'FROM' && !df.stages.find((s) => s.line === i.line)?.base) {
      out.push({ line: i.line, instruction: firstLine(i), message: 'FROM needs an image', hint: 'write FROM IMAGE[:TAG] [AS NAME]' });
      continue;
    }
    if (i.keyword === 'ONBUILD') {
      const t = i.trigger?.keyword;
      if (!t) out.push({ line: i.line, instruction: firstLine(i), message: 'ONBUILD needs an instruction to trigger', hint: 'write ONBUILD RUN …, ONBUILD COPY …' });
      else if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(t)) out.push({ line: i.line, instruction: firstLine(i), message: `ONBUILD ${t} is not allowed as an ONBUILD trigger`, hint: 'a trigger is any instruction but ONBUILD, FROM and MAINTAINER' });
      else if (!known.includes(t)) {
        const guess = closest(t, known);
        out.push({ line: i.line, instruction: firstLine(i), message: `unknown instruction ${t} in ONBUILD`, hint: guess ? `did you mean ONBUILD ${guess}?` : `a trigger is one of ${known.join(', ')}` });
      }
      continue;
    }
    const allowed = FLAGS[i.keyword] ?? [];
    for (const f of i.flags) {
      if (allowed.includes(f.name)) continue;
      const guess = closest(f.name, allowed);
      out.push({
        line: i.line, instruction: firstLine(i), message: `${i.keyword} has no flag --${f.name}`,
        hint: guess ? `did you mean --${guess}?` : allowed.length ? `${i.keyword} takes ${allowed.map((a) => `--${a}`).join(', ')}` : `${i.keyword} takes no flags`,
      });
    }
  }
  if (!df.stages.length && !out.length) {
    const last = df.instructions[df.instructions.length - 1];
    out.push({ line: last?.line ?? 1, instruction: last ? firstLine(last) : '', message: 'no FROM instruction', hint: 'a Dockerfile starts a stage with FROM IMAGE (or FROM scratch)' });
  }
  return out;
}

/** A Buildah version as numbers, for comparisons. */
export interface EngineVersion {
  name: 'buildah';
  version: string;
}

export function versionAtLeast(version: string, min: string): boolean {
  const a = version.split(/[.+-]/).map((n) => Number.parseInt(n, 10) || 0);
  const b = min.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let k = 0; k < Math.max(a.length, b.length); k++) {
    if ((a[k] ?? 0) !== (b[k] ?? 0)) return (a[k] ?? 0) > (b[k] ?? 0);
  }
  return true;
}

/**
 * Dockerfile features and the first Buildah release that builds them (from Buildah's CHANGELOG). An engine older
 * than that fails late and obscurely (1.28 reads a heredoc body as instructions); kimia says so before any pull.
 */
export const ENGINE_FEATURES = [
  { id: 'heredoc', what: 'here-documents (<<EOF) in RUN, COPY and ADD', buildah: '1.33.0', test: (i: DockerfileInstruction) => i.heredoc },
  { id: 'add-checksum', what: 'ADD --checksum', buildah: '1.33.0', test: (i: DockerfileInstruction) => i.keyword === 'ADD' && i.flags.some((f) => f.name === 'checksum') },
  { id: 'healthcheck-start-interval', what: 'HEALTHCHECK --start-interval', buildah: '1.37.0', test: (i: DockerfileInstruction) => i.keyword === 'HEALTHCHECK' && i.flags.some((f) => f.name === 'start-interval') },
  { id: 'exclude', what: 'COPY/ADD --exclude', buildah: '1.38.0', test: (i: DockerfileInstruction) => (i.keyword === 'COPY' || i.keyword === 'ADD') && i.flags.some((f) => f.name === 'exclude') },
  { id: 'copy-parents', what: 'COPY --parents', buildah: '1.40.0', test: (i: DockerfileInstruction) => i.keyword === 'COPY' && i.flags.some((f) => f.name === 'parents') },
  { id: 'link', what: 'COPY/ADD --link', buildah: '1.41.0', test: (i: DockerfileInstruction) => (i.keyword === 'COPY' || i.keyword === 'ADD') && i.flags.some((f) => f.name === 'link') },
] as const;

export interface EngineProblem {
  line: number;
  instruction: string;
  feature: string;
  /** first Buildah release that has it */
  needs: string;
}

/** Features of the Dockerfile (ONBUILD triggers included) that this engine's version does not have. */
export function engineProblems(df: ParsedDockerfile, engine: EngineVersion): EngineProblem[] {
  const out: EngineProblem[] = [];
  for (const i of df.instructions) {
    for (const f of ENGINE_FEATURES) {
      if (f.test(i) && !versionAtLeast(engine.version, f.buildah)) out.push({ line: i.line, instruction: firstLine(i), feature: f.what, needs: f.buildah });
    }
  }
  return out;
}

/** The first syntax problem as kimia's error (exit 2), or undefined. */
export function syntaxError(df: ParsedDockerfile): ToolError | undefined {
  const p = syntaxProblems(df)[0];
  return p ? fail('DOCKERFILE_SYNTAX', { file: df.name, line: p.line, problem: p.message, instruction: p.instruction, hint: p.hint }) : undefined;
}

/**
 * The first feature this engine is too old for: ENGINE_TOO_OLD (exit 6) when kimia's image builds it, otherwise
 * DOCKERFILE_UNSUPPORTED (exit 2), which names what does build it.
 */
export function engineError(df: ParsedDockerfile, engine: EngineVersion, buildahPath: string, image: { version: string; distribution: string }): ToolError | undefined {
  const p = engineProblems(df, engine)[0];
  if (!p) return undefined;
  const details = { file: df.name, line: p.line, instruction: p.instruction, feature: p.feature, needs: p.needs, version: engine.version, buildah: buildahPath, imageVersion: image.version, imageDistribution: image.distribution };
  return versionAtLeast(image.version, p.needs) ? fail('ENGINE_TOO_OLD', details) : fail('DOCKERFILE_UNSUPPORTED', details);
}
