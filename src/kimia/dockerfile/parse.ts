/**
 * The one parse of the Dockerfile (dockerfile-ast, the parser behind the VS Code Dockerfile language server): lint,
 * the syntax check, the engine check, the format decision and the step → line map all read this model. Pure.
 */
import { DockerfileParser, type Instruction } from 'dockerfile-ast';

export interface DockerfileFlag {
  name: string;
  value: string | null;
}

export interface DockerfileInstruction {
  /** upper-case keyword (RUN, COPY …), or the unknown word upper-cased */
  keyword: string;
  /** the word as written (for messages: "RUNN") */
  written: string;
  /** 1-based first and last line (continuations and heredocs included) */
  line: number;
  endLine: number;
  /** the instruction as written, continuations joined: what buildah prints after "STEP n/N:" */
  text: string;
  /** the instruction exactly as in the file: every line of it, here-document bodies included (the build key) */
  source: string;
  flags: DockerfileFlag[];
  /** RUN/COPY/ADD with a here-document (<<EOF) */
  heredoc: boolean;
  /** 0-based stage index; -1 for ARGs before the first FROM */
  stage: number;
  /** 1-based position in its stage, FROM being 1 (buildah's "STEP n/N") */
  step: number;
  /** ONBUILD: the trigger's keyword and text */
  trigger?: { keyword: string; text: string };
}

export interface DockerfileStage {
  index: number;
  /** `AS name`, lower-cased as docker compares it */
  name?: string;
  /** the FROM argument as written (variables not expanded) */
  base: string;
  line: number;
  instructions: DockerfileInstruction[];
}

export interface ParsedDockerfile {
  /** how the file is named in messages: the --dockerfile value ("Dockerfile", "docker/Dockerfile.prod") */
  name: string;
  instructions: DockerfileInstruction[];
  stages: DockerfileStage[];
  /** ARGs before the first FROM */
  globalArgs: DockerfileInstruction[];
  /** the escape character (`# escape=` directive, default backslash) */
  escape: string;
}

/** Continuation lines joined, whitespace runs collapsed: how buildah prints a step, and how steps are compared. */
export function normalizeInstructionText(text: string, escape = '\\'): string {
  const esc = escape.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  return text
    .replace(new RegExp(`${esc}[ \\t]*\\r?\\n`, 'g'), ' ')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function flagsOf(i: Instruction): DockerfileFlag[] {
  const withFlags = i as Instruction & { getFlags?: () => { getName(): string; getValue(): string | null }[] };
  return typeof withFlags.getFlags === 'function' ? withFlags.getFlags().map((f) => ({ name: f.getName(), value: f.getValue() })) : [];
}

/** `source`: the instruction's text; a heredoc needs `<<` in it, and asking the parser costs ~3 ms on every build */
function heredocsOf(i: Instruction, source: string): boolean {
  if (!source.includes('<<')) return false;
  const withHeredocs = i as Instruction & { getHeredocs?: () => unknown[] };
  if (typeof withHeredocs.getHeredocs !== 'function') return false;
  return withHeredocs.getHeredocs().length > 0;
}

export function parseDockerfile(text: string, name = 'Dockerfile'): ParsedDockerfile {
  const ast = DockerfileParser.parse(text);
  const escape = ast.getEscapeCharacter();
  const lines = text.split('\n');
  const instructions: DockerfileInstruction[] = [];
  const stages: DockerfileStage[] = [];
  const globalArgs: DockerfileInstruction[] = [];
  for (const i of ast.getInstructions()) {
    const range = i.getRange();
    const line = range.start.line + 1;
    const endLine = range.end.line + 1;
    const keyword = i.getKeyword().toUpperCase();
    const raw = lines.slice(range.start.line, range.end.line + 1);
    raw[raw.length - 1] = raw[raw.length - 1]!.slice(0, range.end.character);
    raw[0] = raw[0]!.slice(range.start.character);
    const heredoc = heredocsOf(i, raw.join('\n'));
    // a heredoc's body is not part of the step text buildah prints (it prints the first line)
    const text = heredoc ? raw[0]!.trim() : normalizeInstructionText(raw.join('\n'), escape);
    const ins: DockerfileInstruction = { keyword, written: i.getInstruction(), line, endLine, text, source: raw.join('\n'), flags: flagsOf(i), heredoc, stage: -1, step: 0 };
    if (keyword === 'ONBUILD') {
      const trig = (i as Instruction & { getTriggerInstruction?: () => Instruction | null }).getTriggerInstruction?.();
      const trigText = text.replace(/^\S+\s+/, '');
      if (trig) ins.trigger = { keyword: trig.getKeyword().toUpperCase(), text: trigText };
      else if (trigText && trigText !== text) ins.trigger = { keyword: trigText.split(/\s+/)[0]!.toUpperCase(), text: trigText };
    }
    if (keyword === 'FROM') {
      const args = i.getArguments().map((a) => a.getValue());
      const as = args.findIndex((a) => a.toUpperCase() === 'AS');
      const stage: DockerfileStage = { index: stages.length, base: args[0] ?? '', line, instructions: [] };
      if (as >= 0 && args[as + 1]) stage.name = args[as + 1]!.toLowerCase();
      stages.push(stage);
    }
    const current = stages[stages.length - 1];
    if (current) {
      ins.stage = current.index;
      current.instructions.push(ins);
      ins.step = current.instructions.length;
    } else if (keyword === 'ARG') globalArgs.push(ins);
    instructions.push(ins);
  }
  return { name, instructions, stages, globalArgs, escape };
}

export const DOCKER_ONLY = ['HEALTHCHECK', 'SHELL', 'ONBUILD'] as const;
export type DockerOnly = (typeof DOCKER_ONLY)[number];

/**
 * The instructions only the Docker image format can carry: HEALTHCHECK, SHELL and ONBUILD (the OCI config has no
 * field for them). STOPSIGNAL is not one: OCI has StopSignal.
 */
export function dockerOnlyInstructions(df: ParsedDockerfile): DockerfileInstruction[] {
  return df.instructions.filter((i) => (DOCKER_ONLY as readonly string[]).includes(i.keyword));
}
