import { describe, expect, it } from 'vitest';
import { parseDockerfile } from '../../../src/kimia/dockerfile/parse.js';
import { engineError, engineProblems, syntaxError, syntaxProblems, typoDistance, versionAtLeast } from '../../../src/kimia/dockerfile/check.js';
import { decideFormat } from '../../../src/kimia/dockerfile/format.js';
import { describeStep, locateStep } from '../../../src/kimia/dockerfile/steps.js';
import { parseLine, baseImageMissing, stepFailure, type StepEvent } from '../../../src/kimia/buildah/progress.js';
import { parseEngineVersion, IMAGE_ENGINE } from '../../../src/kimia/buildah/engine.js';

const MULTI = `# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM \${BASE} AS Build
RUN echo a \\
    && echo b
ONBUILD RUN echo trig > /trig
FROM build
COPY --from=build /etc/passwd /p
RUN exit 7
`;

describe('parseDockerfile', () => {
  it('numbers stages and steps as buildah does (FROM is step 1), keeps lines and joins continuations', () => {
    const df = parseDockerfile(MULTI);
    expect(df.globalArgs.map((i) => i.line)).toEqual([2]);
    expect(df.stages.map((s) => [s.index, s.name, s.base, s.line])).toEqual([[0, 'build', '${BASE}', 3], [1, undefined, 'build', 7]]);
    expect(df.stages[0]!.instructions.map((i) => [i.keyword, i.step, i.line, i.endLine])).toEqual([['FROM', 1, 3, 3], ['RUN', 2, 4, 5], ['ONBUILD', 3, 6, 6]]);
    expect(df.stages[0]!.instructions[1]!.text).toBe('RUN echo a && echo b');
    expect(df.stages[0]!.instructions[2]!.trigger).toEqual({ keyword: 'RUN', text: 'RUN echo trig > /trig' });
    expect(df.stages[1]!.instructions[1]!.flags).toEqual([{ name: 'from', value: 'build' }]);
  });

  it('sees here-documents', () => {
    const df = parseDockerfile('FROM a\nRUN <<EOF\necho hi\nEOF\nCOPY <<X /f\ncontent\nX\nRUN echo plain\n');
    expect(df.instructions.map((i) => [i.keyword, i.heredoc, i.line, i.endLine])).toEqual([
      ['FROM', false, 1, 1], ['RUN', true, 2, 4], ['COPY', true, 5, 7], ['RUN', false, 8, 8],
    ]);
  });
});

describe('syntax check (before any pull)', () => {
  it('an unknown instruction names the file, the line and the instruction, with "did you mean"', () => {
    const err = syntaxError(parseDockerfile('FROM busybox\nRUN true\nRUNN echo hi\n', 'docker/Dockerfile.prod'))!;
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe('Dockerfile syntax error at docker/Dockerfile.prod:3: unknown instruction RUNN');
    expect(err.causeText).toBe('line 3 reads `RUNN echo hi`; kimia checks the Dockerfile before pulling anything.');
    expect(err.fix).toBe('did you mean RUN?');
    expect(syntaxProblems(parseDockerfile('FROM a\ncopy x /y\nWORKDRI /x\nEXPOSE 80\nENTRYPOINT ["a"]\n')).map((p) => p.hint)).toEqual(['did you mean WORKDIR?']);
    expect(syntaxProblems(parseDockerfile('FROM a\nFOOBAR x\n'))[0]!.hint).toMatch(/^a Dockerfile instruction is one of FROM, RUN/);
  });

  it('flags an instruction does not take, instructions before FROM, a Dockerfile without FROM, bad ONBUILD triggers', () => {
    const msgs = (t: string) => syntaxProblems(parseDockerfile(t)).map((p) => `${p.line}: ${p.message} | ${p.hint}`);
    expect(msgs('FROM a\nCOPY --chwon=1:1 a /b\nRUN --mout=type=cache,target=/x true\nHEALTHCHECK --intervall=3s CMD true\n')).toEqual([
      '2: COPY has no flag --chwon | did you mean --chown?',
      '3: RUN has no flag --mout | did you mean --mount?',
      '4: HEALTHCHECK has no flag --intervall | did you mean --interval?',
    ]);
    expect(msgs('ARG X=1\nRUN true\nFROM a\n')).toEqual(['2: RUN before the first FROM (no build stage in current context) | only ARG may come before the first FROM; start the stage with FROM IMAGE']);
    expect(msgs('# only a comment\nARG X=1\n')).toEqual(['2: no FROM instruction | a Dockerfile starts a stage with FROM IMAGE (or FROM scratch)']);
    expect(msgs('FROM a\nONBUILD FROM b\nONBUILD RUNN x\n')).toEqual([
      '2: ONBUILD FROM is not allowed as an ONBUILD trigger | a trigger is any instruction but ONBUILD, FROM and MAINTAINER',
      '3: unknown instruction RUNN in ONBUILD | did you mean ONBUILD RUN?',
    ]);
    expect(msgs(MULTI)).toEqual([]);
    expect(msgs('FROM --platform=linux/amd64 a AS b\nCOPY --from=b --chown=1 --chmod=644 --link a /b\nADD --checksum=sha256:00 https://x/y /z\nRUN --mount=type=cache,target=/c --network=none true\n')).toEqual([]);
  });

  it('edit distance counts a swap of neighbours once', () => {
    expect(typoDistance('CHWON', 'CHOWN')).toBe(1);
    expect(typoDistance('RUNN', 'RUN')).toBe(1);
    expect(typoDistance('ENV', 'ARG')).toBe(3);
  });
});

describe('engine check', () => {
  const old = { name: 'buildah', version: '1.28.2' } as const;
  it('names the feature, the Buildah release that has it and the engine in use; kimia\'s image is the fix when it has it', () => {
    const df = parseDockerfile('FROM a\nRUN <<EOF\necho hi\nEOF\nHEALTHCHECK --start-interval=2s CMD true\n');
    expect(engineProblems(df, old).map((p) => [p.line, p.feature, p.needs])).toEqual([
      [2, 'here-documents (<<EOF) in RUN, COPY and ADD', '1.33.0'],
      [5, 'HEALTHCHECK --start-interval', '1.37.0'],
    ]);
    const err = engineError(df, old, '/usr/bin/buildah', IMAGE_ENGINE)!;
    expect(err.code).toBe('ENGINE_TOO_OLD');
    expect(err.exitCode).toBe(6);
    expect(err.message).toBe('Dockerfile:2: here-documents (<<EOF) in RUN, COPY and ADD needs Buildah 1.33.0 or later; this engine is Buildah 1.28.2');
    expect(err.fix).toContain('kimia\'s image, which carries Buildah 1.39.3 from Debian 13 (trixie)');
    expect(engineError(df, { name: 'buildah', version: '1.39.3' }, '/usr/bin/buildah', IMAGE_ENGINE)).toBeUndefined();
  });

  it('a feature newer than kimia\'s image is a Dockerfile error naming what builds it', () => {
    const err = engineError(parseDockerfile('FROM a\nCOPY --link a /b\n'), { name: 'buildah', version: '1.39.3' }, 'buildah', IMAGE_ENGINE)!;
    expect(err.code).toBe('DOCKERFILE_UNSUPPORTED');
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('COPY/ADD --link is not supported by kimia\'s engines (it needs Buildah 1.41.0 or later');
    expect(err.causeText).toContain('docker build (BuildKit) and Buildah 1.41.0 or later build it');
  });

  it('reads buildah --version and compares versions', () => {
    expect(parseEngineVersion('buildah version 1.28.2 (image-spec 1.1.0-rc2, runtime-spec 1.0.2-dev)\n')).toEqual({ name: 'buildah', version: '1.28.2' });
    expect(parseEngineVersion('buildah version 1.39.3 (image-spec 1.1.0, runtime-spec 1.2.0)')).toEqual({ name: 'buildah', version: '1.39.3' });
    expect(parseEngineVersion('nonsense')).toBeUndefined();
    expect(versionAtLeast('1.39.3', '1.37.0')).toBe(true);
    expect(versionAtLeast('1.28.2', '1.33.0')).toBe(false);
    expect(versionAtLeast('1.33.0', '1.33.0')).toBe(true);
  });
});

describe('format decision', () => {
  const df = (t: string) => parseDockerfile(`FROM a\n${t}\n`);
  it('Docker format by default for HEALTHCHECK/SHELL/ONBUILD; OCI otherwise; an explicit choice wins', () => {
    expect(decideFormat('oci', 'default', df('RUN true'))).toEqual({ build: 'oci', output: 'oci' });
    expect(decideFormat('oci', 'default', df('STOPSIGNAL SIGINT'))).toEqual({ build: 'oci', output: 'oci' });
    expect(decideFormat('oci', 'default', df('HEALTHCHECK CMD true'))).toMatchObject({ build: 'docker', output: 'docker' });
    expect(decideFormat('docker', 'env', df('RUN true'))).toEqual({ build: 'docker', output: 'docker' });
    expect(decideFormat('oci', 'env', df('HEALTHCHECK CMD true'))).toMatchObject({ build: 'oci', output: 'oci' });
    expect(decideFormat('oci', 'flag', df('SHELL ["/bin/bash", "-c"]'))).toMatchObject({ build: 'docker', output: 'oci' });
    expect(decideFormat('oci', 'env', df('ONBUILD RUN x'))).toMatchObject({ build: 'docker', output: 'oci' });
    expect(decideFormat('oci', 'default', undefined)).toEqual({ build: 'oci', output: 'oci' });
  });
});

const step = (line: string) => parseLine(line) as StepEvent;

describe('buildah step → Dockerfile line', () => {
  const df = parseDockerfile(MULTI);
  it('maps "[s/S] STEP n/N" to the instruction, ONBUILD triggers to their ONBUILD line', () => {
    const at = (line: string, target?: string) => {
      const l = locateStep(df, step(line), target);
      return l ? describeStep(df, l) : undefined;
    };
    expect(at('[1/2] STEP 2/3: RUN echo a     && echo b')).toBe('RUN at Dockerfile:4');
    expect(at('[2/2] STEP 1/3: FROM 0123abcd')).toBe('FROM at Dockerfile:7');
    expect(at('[2/2] STEP 2/4: RUN echo trig > /trig')).toBe('RUN (ONBUILD trigger at Dockerfile:6)');
    expect(at('[2/2] STEP 4/4: RUN exit 7')).toBe('RUN at Dockerfile:9');
    // without a prefix: the --target stage, else the last one
    expect(at('STEP 2/3: RUN echo a && echo b', 'build')).toBe('RUN at Dockerfile:4');
    expect(at('STEP 3/3: RUN exit 7')).toBe('RUN at Dockerfile:9');
    // variables expanded by buildah: the keyword at that position
    expect(at('STEP 1/2: LABEL v=1', undefined)).toBeUndefined();
    const env = parseDockerfile('FROM a\nARG V=1\nLABEL v=$V\n');
    expect(describeStep(env, locateStep(env, step('STEP 3/3: LABEL v=1'))!)).toBe('LABEL at Dockerfile:3');
  });
});

describe('buildah failures', () => {
  it('a RUN\'s exit status and the step it stopped at', () => {
    expect(stepFailure('x\nsubprocess exited with status 7\nError: building at STEP "RUN echo x && exit 7": exit status 7\n')).toEqual({ text: 'RUN echo x && exit 7', detail: 'exit status 7', status: 7 });
    expect(stepFailure('Error: building at STEP "RUN false": while running runtime: exit status 1')).toMatchObject({ status: 1 });
    expect(stepFailure('Error: building at STEP "COPY nothere /x": checking on sources under "/ctx": copier: stat: "/nothere": no such file or directory')).toEqual({
      text: 'COPY nothere /x', detail: 'checking on sources under "/ctx": copier: stat: "/nothere": no such file or directory',
    });
  });
  it('a base image the registry does not have', () => {
    expect(baseImageMissing('Error: creating build container: initializing source docker://127.0.0.1:5000/nosuch:1.0: reading manifest 1.0 in 127.0.0.1:5000/nosuch: manifest unknown: manifest unknown')).toEqual({
      image: '127.0.0.1:5000/nosuch:1.0', registry: '127.0.0.1:5000', repository: '127.0.0.1:5000/nosuch', answer: 'manifest unknown', what: 'tag 1.0 in nosuch',
    });
    expect(baseImageMissing('initializing source docker://r.io/a/b@sha256:00: reading manifest sha256:00 in r.io/a/b: manifest unknown')?.what).toBe('manifest sha256:00 in a/b');
    expect(baseImageMissing('error: unauthorized')).toBeUndefined();
  });
});

describe('buildah failures: quoting and names', () => {
  it('a step text with unescaped quotes is found through the printed step line', () => {
    const err = 'Error: building at STEP "RUN adduser --gecos "" --uid 1000 user": exit status 127';
    expect(stepFailure(err, 'RUN adduser --gecos "" --uid 1000 user')).toEqual({ text: 'RUN adduser --gecos "" --uid 1000 user', detail: 'exit status 127', status: 127 });
  });
  it('a wildcard that matched a name with brackets is the glob-name failure too', async () => {
    const { globNameFailure } = await import('../../../src/kimia/buildah/progress.js');
    expect(globNameFailure('reading "/ctx/context/*": copier: get: globs [/context/arr[0].txt] matched nothing (0 filtered out)', 'ADD $contextenv/* /tmp/')).toBe(true);
    expect(globNameFailure('copier: get: globs [/a.txt] matched nothing', 'COPY a.txt /')).toBe(false);
    expect(globNameFailure('copier: stat: ["/arr[0].txt"]: no such file or directory', 'COPY arr[0].txt /x/')).toBe(true);
  });
});
