/**
 * Which image format a build uses, so that the Dockerfile means the same in every format. Pure.
 *
 * - HEALTHCHECK, SHELL and ONBUILD have no field in the OCI image config. A Dockerfile that uses them is built in
 *   Docker format unless the user asked for OCI (BUILDAH_FORMAT=oci or --format=oci).
 * - When OCI was asked for anyway, SHELL must still govern the RUN steps and ONBUILD triggers must still run in
 *   later stages of the same Dockerfile: Buildah loses both between steps in OCI format (checked with 1.28). So the
 *   build itself runs in Docker format and every push is converted to OCI (`buildah push --format oci`), which drops
 *   exactly the three fields; the warning names what is lost, line by line.
 */
import type { ImageFormat } from '../cli/request.js';
import { dockerOnlyInstructions, type DockerfileInstruction, type ParsedDockerfile } from './parse.js';

export type FormatSource = 'flag' | 'env' | 'default';

export interface FormatDecision {
  /** --format given to buildah bud */
  build: ImageFormat;
  /** the format of what is pushed (pushes get `--format oci` when it differs from build) */
  output: ImageFormat;
  /** info line saying why the Docker format was chosen */
  note?: string;
  /** warning saying what an explicit OCI request loses */
  warning?: string;
}

function at(df: ParsedDockerfile, list: DockerfileInstruction[]): string {
  return list.map((i) => `${df.name}:${i.line}`).join(', ');
}

function lostText(df: ParsedDockerfile, keyword: string, list: DockerfileInstruction[]): string {
  switch (keyword) {
    case 'HEALTHCHECK':
      return `HEALTHCHECK at ${at(df, list)}: the image has no health check`;
    case 'SHELL':
      return `SHELL at ${at(df, list)}: the image's default shell is not recorded (containers and images built FROM it use /bin/sh -c); this build's own RUN steps still used it`;
    default:
      return `ONBUILD at ${at(df, list)}: images built FROM this one will not run ${list.map((i) => i.trigger?.text ?? i.text).join('; ')}`;
  }
}

export function decideFormat(requested: ImageFormat, source: FormatSource, df: ParsedDockerfile | undefined): FormatDecision {
  const used = df ? dockerOnlyInstructions(df) : [];
  if (requested === 'docker' || !used.length || !df) return { build: requested, output: requested };
  const byKeyword = new Map<string, DockerfileInstruction[]>();
  for (const i of used) byKeyword.set(i.keyword, [...(byKeyword.get(i.keyword) ?? []), i]);
  const keywords = ['HEALTHCHECK', 'SHELL', 'ONBUILD'].filter((k) => byKeyword.has(k));
  if (source === 'default') {
    return {
      build: 'docker',
      output: 'docker',
      note: `building in Docker format: the Dockerfile uses ${keywords.map((k) => `${k} (${at(df, byKeyword.get(k)!)})`).join(', ')}, which the OCI image format cannot carry; BUILDAH_FORMAT=oci forces OCI`,
    };
  }
  const first = keywords[0]!;
  const how = source === 'flag' ? '--format=oci' : 'BUILDAH_FORMAT=oci';
  const warning = `Warning: ${first} instruction ignored` +
    ` (${how} was asked for, and the OCI image format has no field for it). Lost from the image: ` +
    keywords.map((k) => lostText(df, k, byKeyword.get(k)!)).join('; ') +
    '. Fix: leave BUILDAH_FORMAT unset (kimia then builds in Docker format) or set BUILDAH_FORMAT=docker';
  // SHELL and ONBUILD change the build itself: build in Docker format, push OCI
  const build = keywords.some((k) => k === 'SHELL' || k === 'ONBUILD') ? 'docker' : 'oci';
  return { build, output: 'oci', warning };
}
