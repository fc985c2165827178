/**
 * The command-line driver both lint commands share: parse `[--json] [--VALUE-FLAG V]… FILE…`, read and parse each
 * file (a missing file or invalid YAML is a usage error, exit 2, with its line), hand the parsed set to the tool's
 * pure rules, print text or JSON, and return the exit code. The only effect here is reading the named files.
 */
import { readFile } from 'node:fs/promises';
import { readManifests, type ManifestObject } from './manifest.js';
import { formatJson, formatText, lintExitCode, type Finding } from './findings.js';

export interface LoadedManifest {
  readonly file: string;
  readonly objects: ManifestObject[];
}

export interface LintCommand {
  readonly name: string;
  readonly help: string;
  /** flags that take a value (e.g. `--dockerfile`), collected into `options` */
  readonly valueFlags?: readonly string[];
  lint(files: readonly LoadedManifest[], options: Readonly<Record<string, string>>): Promise<Finding[]> | Finding[];
}

export interface LintIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: LintIo = { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) };

export async function runLintCommand(command: LintCommand, argv: readonly string[], io: LintIo = defaultIo): Promise<number> {
  let json = false;
  const files: string[] = [];
  const options: Record<string, string> = {};
  const valueFlags = new Set(command.valueFlags ?? []);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      io.stdout(command.help);
      return 0;
    }
    if (arg === '--json') json = true;
    else if (arg.startsWith('--') && arg.includes('=') && valueFlags.has(arg.slice(0, arg.indexOf('=')))) {
      options[arg.slice(2, arg.indexOf('='))] = arg.slice(arg.indexOf('=') + 1);
    } else if (valueFlags.has(arg)) {
      const value = argv[++i];
      if (value === undefined) return usage(command, io, `${arg} needs a value`);
      options[arg.slice(2)] = value;
    } else if (arg.startsWith('-') && arg !== '-') return usage(command, io, `unknown option ${arg}`);
    else files.push(arg);
  }
  if (files.length === 0) return usage(command, io, 'no manifest file given');

  const loaded: LoadedManifest[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      io.stderr(`${command.name}: ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}\n`);
      return 2;
    }
    const parsed = readManifests(text);
    if (parsed.errors.length > 0) {
      for (const e of parsed.errors) io.stderr(`${file}:${e.line}:${e.column}: invalid YAML: ${e.message}\n`);
      return 2;
    }
    loaded.push({ file, objects: parsed.objects });
  }
  let findings: Finding[];
  try {
    findings = await command.lint(loaded, options);
  } catch (err) {
    io.stderr(`${(err as Error).message}\n`);
    return 2;
  }
  io.stdout(json ? formatJson(findings) : formatText(findings));
  return lintExitCode(findings);
}

function usage(command: LintCommand, io: LintIo, message: string): number {
  io.stderr(`${command.name}: ${message}\n\n${command.help}`);
  return 2;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
