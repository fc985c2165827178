/** `runcvm lint FILE.yaml…`: check Kubernetes manifests for runcvm misconfigurations (rules in ./rules.ts). */
import { runLintCommand } from '../../core/k8s/cli.js';
import { lintRuncvm, RULES } from './rules.js';

export const HELP = `usage: runcvm lint [--json] FILE.yaml… ('-' reads stdin)

Checks pods (Pod, Job, CronJob, Deployment, StatefulSet, DaemonSet, ReplicaSet) that use runtimeClassName: runcvm,
and RuntimeClass objects, for the mistakes in the RunCVM Kubernetes troubleshooting guide.
Output: one line per finding "FILE:LINE: level rule-id: message", then "  fix: …".

options:
  --json     print {findings: [...], summary: {errors, warnings, infos}}
  -h, --help this text

rules:
${Object.entries(RULES).map(([id, text]) => `  ${id.padEnd(30)} ${text}`).join('\n')}

exit status:
  0  no error-level finding (info and warnings only)
  1  at least one error-level finding
  2  usage error: unknown option, missing file, invalid YAML (reported with its line)
`;

export async function lintMain(argv: string[]): Promise<number> {
  return runLintCommand({ name: 'runcvm lint', help: HELP, lint: (files) => lintRuncvm(files) }, argv);
}
