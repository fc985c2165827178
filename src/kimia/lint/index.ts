/**
 * `kimia lint [--dockerfile PATH] FILE.yaml…`: check pods that run kimia against the troubleshooting guide.
 * Effects here are only reading the manifests and, when reachable from the cwd, the Dockerfile.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { runLintCommand } from '../../core/k8s/cli.js';
import { dockerfileLocation, kimiaTargets, lintKimia, RULES, type DockerfileFact, type KimiaTarget } from './rules.js';

export const HELP = `usage: kimia lint [--json] [--dockerfile PATH] FILE.yaml… ('-' reads stdin)

Checks every container that runs kimia (image name contains "kimia", or args such as --context/--destination) in
Pod, Job, CronJob, Deployment, StatefulSet, DaemonSet and ReplicaSet objects against the Kimia troubleshooting guide.
The Dockerfile is read from --dockerfile PATH, or from the pod's local --context/--dockerfile when that path is
reachable from the current directory (it is never fetched).
Output: one line per finding "FILE:LINE: level rule-id: message", then "  fix: …".

options:
  --dockerfile PATH  Dockerfile to check for HEALTHCHECK/SHELL/ONBUILD
  --json             print {findings: [...], summary: {errors, warnings, infos}}
  -h, --help         this text

rules:
${Object.entries(RULES).map(([id, text]) => `  ${id.padEnd(32)} ${text}`).join('\n')}

exit status:
  0  no error-level finding (info and warnings only)
  1  at least one error-level finding
  2  usage error: unknown option, missing file, invalid YAML (reported with its line)
`;

async function tryRead(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

export async function lintMain(argv: string[]): Promise<number> {
  return runLintCommand(
    {
      name: 'kimia lint',
      help: HELP,
      valueFlags: ['--dockerfile'],
      async lint(files, options) {
        const targets = kimiaTargets(files);
        const dockerfiles = new Map<KimiaTarget, DockerfileFact>();
        const given = options.dockerfile;
        const givenText = given ? await tryRead(given) : undefined;
        if (given && givenText === undefined) throw new Error(`kimia lint: cannot read --dockerfile ${given}`);
        for (const t of targets) {
          if (given && givenText !== undefined) {
            dockerfiles.set(t, { path: given, text: givenText });
            continue;
          }
          const loc = dockerfileLocation(t);
          if (!loc) continue;
          const path = isAbsolute(loc.dockerfile) ? loc.dockerfile : join(loc.context, loc.dockerfile);
          const text = await tryRead(path);
          if (text !== undefined) dockerfiles.set(t, { path, text });
        }
        return lintKimia(targets, dockerfiles);
      },
    },
    argv,
  );
}
