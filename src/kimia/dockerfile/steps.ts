/**
 * Buildah's "[s/S] STEP n/N: TEXT" lines → the Dockerfile instruction (and so its line). Pure.
 *
 * Buildah numbers stages by their place in the Dockerfile (stages it skips keep their numbers) and steps within a
 * stage with FROM as step 1; without --target it prints no "[s/S]" prefix for a one-stage build, and with --target
 * none for the target stage when it is the only one built. ONBUILD triggers inherited from a base stage run as
 * extra steps, which shifts the numbers, so the text decides first and the number second.
 */
import { normalizeInstructionText, type DockerfileInstruction, type ParsedDockerfile } from './parse.js';

/** One "[s/S] STEP n/N: TEXT" line (the shape of buildah/progress's StepEvent). */
export interface StepRef {
  /** 1-based stage from the "[s/S]" prefix, undefined without one */
  stage?: { index: number };
  /** n: 1-based step in the stage */
  index: number;
  /** the instruction as buildah printed it */
  instruction: string;
}

export interface LocatedStep {
  instruction: DockerfileInstruction;
  /** the step is an ONBUILD trigger inherited from the base (instruction is that ONBUILD) */
  trigger: boolean;
}

function stageFor(df: ParsedDockerfile, ref: StepRef, target: string | undefined): number {
  if (ref.stage !== undefined) return ref.stage.index - 1;
  if (target) {
    const t = df.stages.find((s) => s.name === target.toLowerCase());
    if (t) return t.index;
  }
  return df.stages.length - 1;
}

const norm = (s: string) => normalizeInstructionText(s).toLowerCase();

export function locateStep(df: ParsedDockerfile, ref: StepRef, target?: string): LocatedStep | undefined {
  const stage = df.stages[stageFor(df, ref, target)];
  if (!stage) return undefined;
  const text = norm(ref.instruction);
  const keyword = text.split(' ')[0]!.toUpperCase();
  const byIndex = stage.instructions[ref.index - 1];
  if (byIndex && norm(byIndex.text) === text) return { instruction: byIndex, trigger: false };
  // FROM is printed with its variables expanded; the first step is always the stage's FROM
  if (ref.index === 1 && keyword === 'FROM') return { instruction: stage.instructions[0]!, trigger: false };
  const same = stage.instructions.filter((i) => norm(i.text) === text);
  if (same.length) {
    // the nearest candidate at or after the printed position (triggers only ever push steps later)
    const before = same.filter((i) => i.step <= ref.index);
    return { instruction: before[before.length - 1] ?? same[0]!, trigger: false };
  }
  const trigger = df.instructions.find((i) => i.keyword === 'ONBUILD' && i.trigger && norm(i.trigger.text) === text);
  if (trigger) return { instruction: trigger, trigger: true };
  // variables expanded by buildah (ENV, ARG, LABEL …): the keyword at that position is still good evidence
  if (byIndex && byIndex.keyword === keyword) return { instruction: byIndex, trigger: false };
  return undefined;
}

/** "RUN at Dockerfile:12" (or "RUN (ONBUILD trigger at Dockerfile:3)"). */
export function describeStep(df: ParsedDockerfile, located: LocatedStep): string {
  const i = located.instruction;
  if (located.trigger) return `${i.trigger?.keyword ?? 'ONBUILD'} (ONBUILD trigger at ${df.name}:${i.line})`;
  return `${i.keyword} at ${df.name}:${i.line}`;
}
