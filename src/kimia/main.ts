/**
 * kimia entry point: the only file that knows the order
 * cli → preflight → context → auth → plan → buildah → outputs. Heavy modules are imported lazily.
 */
import type { BuildRequest, Command } from './cli/request.js';
import type { Logger } from '../core/log/index.js';
import type { ToolError } from '../core/errors.js';

type Env = Record<string, string | undefined>;

function wantsJson(argv: readonly string[]): boolean {
  const i = argv.findIndex((a) => a === '--log-format' || a.startsWith('--log-format='));
  if (i < 0) return false;
  const a = argv[i]!;
  return (a.includes('=') ? a.split('=')[1] : argv[i + 1]) === 'json';
}

function printError(err: ToolError, json: boolean): void {
  if (json) process.stderr.write(JSON.stringify({ level: 'error', ...err.toJSON() }) + '\n');
  else process.stderr.write(err.render() + '\n');
}

export async function main(argv: string[], env: Env = process.env): Promise<number> {
  const { globalRedactor } = await import('../core/redact.js');
  const { isToolError } = await import('../core/errors.js');
  const json = wantsJson(argv);
  // Register secrets from the environment before anything can print.
  if (env.DOCKER_PASSWORD) globalRedactor.addBasicAuth(env.DOCKER_USERNAME ?? '', env.DOCKER_PASSWORD);
  try {
    const { parseCommand } = await import('./cli/parse.js');
    const command: Command = parseCommand(argv, env);
    switch (command.kind) {
      case 'version': {
        const { projectVersion } = await import('../core/version.js');
        process.stdout.write(`kimia ${projectVersion()}\n`);
        return 0;
      }
      case 'help': {
        const { helpText } = await import('./cli/parse.js');
        if (command.topic === 'errors') {
          const { renderErrorTable } = await import('../core/errors.js');
          const { kimiaErrors } = await import('./errors.js');
          process.stdout.write(renderErrorTable('kimia errors', kimiaErrors.table));
        } else process.stdout.write(helpText());
        return 0;
      }
      case 'lint':
        return await lint(command.argv);
      case 'check-environment':
        return await checkEnvironment(command.request, env);
      case 'build':
        return await build(command.request, env);
    }
  } catch (err) {
    const redacted = (text: string) => globalRedactor.redact(text);
    if (isToolError(err)) {
      printError(err, json);
      return err.exitCode;
    }
    const msg = redacted(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.stderr.write(json ? JSON.stringify({ level: 'error', code: 'INTERNAL', message: msg }) + '\n' : `error: ${msg}\n`);
    return 1;
  }
}

async function lint(argv: string[]): Promise<number> {
  const path = './lint/index.js';
  let mod: { lintMain?: (argv: string[]) => Promise<number> };
  try {
    mod = (await import(path)) as typeof mod;
  } catch {
    process.stderr.write('kimia lint is not available in this build\n');
    return 2;
  }
  if (typeof mod.lintMain !== 'function') {
    process.stderr.write('kimia lint is not available in this build\n');
    return 2;
  }
  return mod.lintMain(argv);
}

async function makeLogger(request: BuildRequest): Promise<Logger> {
  const { Logger } = await import('../core/log/index.js');
  return new Logger({ level: request.verbosity, format: request.logFormat, timestamps: request.logTimestamp, namespace: 'kimia' });
}

async function runPreflight(request: BuildRequest, env: Env) {
  const { probe } = await import('./preflight/probe.js');
  const { judge } = await import('./preflight/verdicts.js');
  const started = performance.now();
  const facts = await probe(request, env);
  const verdicts = judge(facts);
  return { facts, verdicts, durationMs: Math.round(performance.now() - started) };
}

async function checkEnvironment(request: BuildRequest, env: Env): Promise<number> {
  const { renderReport } = await import('./preflight/verdicts.js');
  const { verdicts, durationMs } = await runPreflight(request, env);
  if (request.logFormat === 'json') {
    for (const v of verdicts) process.stdout.write(JSON.stringify({ check: v.check, status: v.status, detail: v.detail, ...(v.error ? { error: v.error.toJSON() } : {}) }) + '\n');
    process.stdout.write(JSON.stringify({ check: 'summary', durationMs }) + '\n');
  } else process.stdout.write(renderReport(verdicts, durationMs));
  const failed = verdicts.find((v) => v.status === 'fail');
  return failed?.error ? failed.error.exitCode : 0;
}

async function build(request: BuildRequest, env: Env): Promise<number> {
  const { globalRedactor, formatCommand } = await import('../core/redact.js');
  const { CloserStack, tempDir } = await import('../core/fsx/index.js');
  const { readFile } = await import('node:fs/promises');
  const log = await makeLogger(request);
  for (const a of request.buildArgs) if (a.secret) globalRedactor.add(a.value);
  for (const n of request.notes) log.info(n);

  await using closers = new CloserStack();
  const privateDir = await tempDir('kimia', closers);

  if (!request.skipPreflight && !request.dryRun) {
    const { verdicts, durationMs } = await runPreflight(request, env);
    for (const v of verdicts) if (v.status === 'warn') log.warn(`preflight: ${v.check}: ${v.detail}`);
    const failed = verdicts.find((v) => v.status === 'fail');
    if (failed?.error) throw failed.error;
    log.info(`preflight passed in ${durationMs} ms`, { event: 'preflight', durationMs });
  }


  const { classifyContext } = await import('./context/classify.js');
  let contextDir: string;
  const source = classifyContext(request.context);
  if (request.dryRun && source.kind !== 'dir') {
    contextDir = '<fetched-context>';
  } else {
    const { fetchContext } = await import('./context/fetch.js');
    const { resolve } = await import('node:path');
    const fetched = await fetchContext(request, privateDir, log);
    contextDir = resolve(fetched.dir);
    if (fetched.source !== 'dir') log.info(`context ${fetched.description} fetched`, { event: 'context', source: fetched.source });
  }

  const { planBuild, planCommands } = await import('./plan/plan.js');
  const dockerfilePath = request.dockerfile.startsWith('/') ? request.dockerfile : `${contextDir}/${request.dockerfile}`;
  let dockerfileText: string | undefined;
  if (contextDir !== '<fetched-context>') {
    dockerfileText = await readFile(dockerfilePath, 'utf8').catch(() => undefined);
    if (dockerfileText === undefined) {
      const { fail } = await import('./errors.js');
      throw fail('DOCKERFILE_NOT_FOUND', { path: dockerfilePath });
    }
  }

  const { prepareAuth } = await import('./auth/index.js');
  const auth = request.dryRun
    ? { authFile: `${privateDir}/auth.json` }
    : await prepareAuth(request, env, privateDir);
  const { prepareCertDir } = await import('./certs.js');
  const certDir = request.dryRun && (request.registryCertificates.length || request.registryClientCerts.length) ? `${privateDir}/certs` : await prepareCertDir(request, privateDir);

  const plan = planBuild(request, {
    contextDir,
    privateDir,
    ...(auth.authFile ? { authFile: auth.authFile } : {}),
    ...(certDir ? { certDir } : {}),
    ...(dockerfileText !== undefined ? { dockerfileText } : {}),
  });
  for (const s of plan.secrets) globalRedactor.add(s);
  for (const w of plan.warnings) log.warn(w, { event: 'warning' });

  if (request.dryRun) {
    for (const cmd of planCommands(plan)) process.stdout.write(formatCommand(cmd[0]!, cmd.slice(1)) + '\n');
    return 0;
  }

  const { writePlanFiles, runBud, pushWithRetry, runExports, layerSizes, describeLayers } = await import('./buildah/run.js');
  // SIGTERM (pod deletion) or SIGINT stops buildah too, and the private files are still removed
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    log.warn(`received ${sig}: stopping buildah`);
    abort.abort();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  closers.push('signal handlers', () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  });
  const { signal } = abort;
  await writePlanFiles(plan);
  const stopped = <T>(p: Promise<T>): Promise<T | undefined> => p.catch((err: unknown) => {
    if (signal.aborted) return undefined;
    throw err;
  });
  const bud = await stopped(runBud(plan, contextDir, log, signal));
  if (!bud || signal.aborted) return 130;

  const pushed: { destination: string; digest: string }[] = [];
  if (plan.pushes.length) {
    const layers = plan.multiPlatform ? [] : await layerSizes(plan);
    if (layers.length) log.info(`layers to push: ${describeLayers(layers)}`, { event: 'layers', layers });
    const baseDelayMs = env.KIMIA_PUSH_RETRY_DELAY_MS ? Number(env.KIMIA_PUSH_RETRY_DELAY_MS) : 1000;
    for (const step of plan.pushes) {
      if (signal.aborted) return 130;
      const done = await stopped(pushWithRetry(plan, step, request.pushRetry, log, { baseDelayMs, signal }));
      if (!done) return 130;
      pushed.push(done);
    }
  }
  await runExports(plan, log);
  const { outputFiles, writeOutputs } = await import('./outputs/index.js');
  await writeOutputs(outputFiles(request, pushed));
  log.info(`done: ${pushed.length ? pushed.map((p) => `${p.destination}@${p.digest}`).join(', ') : `${plan.localImage} kept in local storage`}`, {
    event: 'done', cacheHits: bud.cacheHits, cacheMisses: bud.cacheMisses,
  });
  return 0;
}
