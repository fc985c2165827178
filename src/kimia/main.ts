/**
 * kimia entry point: the only file that knows the order
 * cli → preflight → context → auth → plan → buildah → outputs. Heavy modules are imported lazily.
 */
import type { BuildRequest, Command } from './cli/request.js';
import type { Log } from './log.js';
import type { ToolError } from '../core/errors.js';
import type { EngineFound } from './buildah/engine.js';
import { mark, timingLine } from './timing.js';

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
  mark('main');
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
        const [{ projectVersion }, { which, probeEngine, describeEngine }] = await Promise.all([
          import('../core/version.js'), import('./buildah/engine.js')]);
        const path = await which('buildah', env);
        const engine = path ? await probeEngine(path).catch(() => undefined) : undefined;
        process.stdout.write(`kimia ${projectVersion()}\nengine: ${describeEngine(engine, path)}\n`);
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
  // a literal specifier, so that the image's bundle (src/images) carries the linter too
  const { lintMain } = await import('./lint/index.js');
  return lintMain(argv);
}

async function makeLog(request: BuildRequest): Promise<Log> {
  const { createLog } = await import('./log.js');
  return createLog({ level: request.verbosity, format: request.logFormat, timestamps: request.logTimestamp });
}

/** `engine`: a build's own lookup of buildah; a build also reads and keeps passed namespace probes (preflight/cache.ts). */
async function runPreflight(request: BuildRequest, env: Env, engine?: Promise<EngineFound>) {
  const [{ probe }, { judge }, { cacheFile }] = await Promise.all([import('./preflight/probe.js'), import('./preflight/verdicts.js'), import('./preflight/cache.js')]);
  const started = performance.now();
  const facts = engine ? await probe(request, env, engine, { namespaceCache: cacheFile(env, request.home) }) : await probe(request, env);
  mark('preflight');
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
  const log = await makeLog(request);
  try {
    return await buildWith(request, env, log);
  } finally {
    // after the private files are removed and the preflight's probes are done: what is left is the process exit
    mark('closed');
    log.debug(`timing (ms since start): ${timingLine()}`, { event: 'timing' });
  }
}

async function buildWith(request: BuildRequest, env: Env, log: Log): Promise<number> {
  // Every module of the build path is requested at once: the loader reads them in parallel, and while the
  // preflight's user-namespace child runs, instead of one file after the other between the steps.
  const modules = Promise.all([
    import('../core/redact.js'), import('../core/fsx/index.js'), import('node:fs/promises'), import('./context/classify.js'),
    import('./context/fetch.js'), import('./plan/plan.js'), import('./auth/index.js'), import('./certs.js'), import('./buildah/run.js'),
    import('./errors.js'), import('./dockerfile/parse.js'), import('./dockerfile/check.js'), import('./buildah/engine.js'),
  ]);
  // buildah's path and version, looked up once at start: the preflight, the build key and the plan read this answer.
  // With the build key on, the version of a binary seen before is read from beside the keys (no buildah process).
  const engineFound = Promise.all([import('./buildah/engine.js'), import('./buildkey/key.js'), import('./buildkey/record.js'), import('./plan/plan.js')])
    .then(([{ findEngine }, { keyDisabled }, { knownEnginesFile }, { storageFor }]) => findEngine(env, keyDisabled(request) ? undefined : knownEnginesFile(storageFor(request).root)))
    .catch(() => ({}) as EngineFound);
  // Preflight starts first and runs beside the preparation below (context, Dockerfile, auth, plan, build key), which
  // has no effect outside the private folder; nothing reaches buildah until it has passed. An unchanged build does
  // not wait for it. (Starting it only after a build key missed saves ~15 ms on an unchanged build and costs ~25 ms
  // on every other one: measured with scratch runs at load 3, so it starts at once.)
  let preflight: ReturnType<typeof runPreflight> | undefined;
  const startPreflight = () => {
    if (!preflight && !request.skipPreflight && !request.dryRun) {
      preflight = runPreflight(request, env, engineFound);
      preflight.catch(() => undefined); // awaited below; this only keeps an early rejection from being "unhandled"
    }
    return preflight;
  };
  startPreflight();
  let preflightChecked = false;
  const passPreflight = async () => {
    const started = startPreflight();
    if (!started || preflightChecked) return;
    preflightChecked = true;
    const { facts, verdicts, durationMs } = await started;
    for (const v of verdicts) if (v.status === 'warn') log.warn(`preflight: ${v.check}: ${v.detail}`, { event: 'preflight-warning', check: v.check });
    const failed = verdicts.find((v) => v.status === 'fail');
    if (failed?.error) throw failed.error;
    const cached = facts.userns.cached ? ' (its user namespace probe passed earlier this boot)' : '';
    log.info(`preflight passed in ${durationMs} ms${cached}`, { event: 'preflight', durationMs, namespaceProbeCached: Boolean(facts.userns.cached) });
  };

  const [
    { globalRedactor, formatCommand }, { CloserStack, tempDir }, { readFile }, { classifyContext }, { fetchContext }, { planBuild, planCommands },
    { prepareAuth }, { prepareCertDir }, { writePlanFiles, runBud, pushWithRetry, runExports, describeLayers }, { fail },
    { parseDockerfile }, { syntaxError, engineError }, { IMAGE_ENGINE },
  ] = await modules;
  mark('modules');
  // secret values registered (and kimia's own argv rewritten) before anything can print
  await (await import('./secrets.js')).protectSecrets(request, env);
  mark('secrets');
  for (const n of request.notes) log.info(n, { event: 'note' });

  await using closers = new CloserStack();
  // a build answered without waiting for the preflight still lets it finish: its probes remove what they create
  closers.push('preflight probes', () => preflight?.then(() => undefined, () => undefined));
  const privateDir = await tempDir('kimia', closers);
  mark('private-dir');

  // SIGTERM (pod deletion) or SIGINT stops a clone, a download or buildah, and the private files are still removed
  const abort = new AbortController();
  // `on`, not `once`: a signal sent to the process group (timeout, tini -g, a shell) arrives twice, and a second one
  // without a handler would kill kimia before buildah is stopped and the private files are removed
  const onSignal = (sig: NodeJS.Signals) => {
    if (abort.signal.aborted) return;
    log.warn(`received ${sig}: stopping buildah`, { event: 'signal', signal: sig });
    abort.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  closers.push('signal handlers', () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  });
  const { signal } = abort;

  let prepared: {
    contextDir: string; plan: ReturnType<typeof planBuild>; certDir?: string; credentials: { registry: string; username: string; password: string }[];
  };
  try {
    let contextDir: string;
    const source = classifyContext(request.context);
    if (request.dryRun && source.kind !== 'dir') {
      contextDir = '<fetched-context>';
    } else {
      // a clone or a download is real work (and its own failures): only after the environment is known to be good
      if (source.kind !== 'dir') await passPreflight();
      const fetched = await fetchContext(request, privateDir, log, signal);
      mark('context');
      const { resolve } = await import('node:path');
      contextDir = resolve(fetched.dir);
      if (fetched.source !== 'dir') log.info(`context ${fetched.description} fetched`, { event: 'context', source: fetched.source });
    }

    const dockerfilePath = request.dockerfile.startsWith('/') ? request.dockerfile : `${contextDir}/${request.dockerfile}`;
    let dockerfileText: string | undefined;
    if (contextDir !== '<fetched-context>') {
      dockerfileText = await readFile(dockerfilePath, 'utf8').catch(() => undefined);
      if (dockerfileText === undefined) throw fail('DOCKERFILE_NOT_FOUND', { path: dockerfilePath });
    }
    // one parse for the syntax check, the engine check, the format decision and the step → line map;
    // a Dockerfile error is reported before anything is pulled
    mark('dockerfile-read');
    const dockerfile = dockerfileText === undefined ? undefined : parseDockerfile(dockerfileText, request.dockerfile);
    mark('dockerfile-parsed');
    const syntax = dockerfile && syntaxError(dockerfile);
    if (syntax) throw syntax;

    const auth = request.dryRun
      ? { authFile: `${privateDir}/auth.json` }
      : await prepareAuth(request, env, privateDir);
    mark('auth');
    const certDir = request.dryRun && (request.registryCertificates.length || request.registryClientCerts.length) ? `${privateDir}/certs` : await prepareCertDir(request, privateDir);
    const plan = planBuild(request, {
      contextDir,
      privateDir,
      ...(auth.authFile ? { authFile: auth.authFile } : {}),
      ...(certDir ? { certDir } : {}),
      ...(dockerfile ? { dockerfile } : {}),
    });
    prepared = {
      contextDir, plan, ...(certDir ? { certDir } : {}),
      credentials: 'merge' in auth ? auth.merge.credentials : [],
    };
  } catch (err) {
    if (signal.aborted) return 130;
    // the environment is the first thing to fix: its failure wins over what the preparation ran into meanwhile
    await passPreflight();
    throw err;
  }
  if (signal.aborted) return 130;
  mark('prepared');
  const { contextDir } = prepared;
  let { plan } = prepared;
  for (const s of plan.secrets) globalRedactor.add(s);
  for (const n of plan.notes) log.info(n, { event: 'format' });
  for (const w of plan.warnings) log.warn(w, { event: 'warning' });
  const baseDelayMs = env.KIMIA_PUSH_RETRY_DELAY_MS ? Number(env.KIMIA_PUSH_RETRY_DELAY_MS) : 1000;

  // The build key: an unchanged build is answered here, before buildah starts (and without waiting for preflight,
  // which is about running buildah). Any failure to compute it means an ordinary build.
  const buildKey = !request.dryRun && plan.dockerfile ? await import('./buildkey/index.js') : undefined;
  const keyInput = buildKey && plan.dockerfile && {
    request, plan, contextDir, dockerfile: plan.dockerfile, engine: engineFound, credentials: prepared.credentials, env, log,
    ...(prepared.certDir ? { certDir: prepared.certDir } : {}),
    ...(classifyContext(request.context).kind === 'dir' ? { contextId: contextDir } : {}),
  };
  const checked = buildKey && keyInput
    ? await buildKey.checkBuildKey(keyInput).catch((err: unknown) => {
      log.debug(`build key not used: ${(err as Error).message}`, { event: 'build-key', used: false });
      return undefined;
    })
    : undefined;
  mark('key');
  // `finish`: no recorded build can match; the key is finished once buildah runs, for the record written after it
  const keyed = checked && !('finish' in checked) ? checked : undefined;
  const finishKey = () => (checked && 'finish' in checked ? checked.finish() : Promise.resolve(keyed));
  if (buildKey && keyInput && keyed?.match) {
    const pushed = await buildKey.answerUnchanged(keyed, keyInput, { baseDelayMs, signal });
    log.info(`done: ${pushed.length ? pushed.map((p) => `${p.destination}@${p.digest}`).join(', ') : `${plan.localImage} kept in local storage`}`, { event: 'done', unchanged: true });
    return 0;
  }

  await passPreflight();
  mark('preflight-passed');
  // buildah as found on PATH at start: no second PATH search at spawn time (a dry run prints the name, as typed)
  const found = await engineFound;
  if (found.path && !request.dryRun) plan = { ...plan, buildah: found.path };
  // which engine runs, and whether it builds every feature the Dockerfile uses (before any pull)
  if (found.engine) {
    const { engine } = found;
    log.info(`engine: buildah ${engine.version} (${plan.buildah})`, { event: 'engine', engine: engine.name, version: engine.version });
    const tooOld = plan.dockerfile && engineError(plan.dockerfile, engine, plan.buildah, IMAGE_ENGINE);
    if (tooOld) throw tooOld;
    plan = { ...plan, engine };
  }

  if (request.dryRun) {
    for (const cmd of planCommands(plan)) process.stdout.write(formatCommand(cmd[0]!, cmd.slice(1)) + '\n');
    return 0;
  }

  await writePlanFiles(plan);
  mark('bud');
  // performance.now() counts from process start: this is kimia's whole start-up cost before the engine runs
  const startupMs = Math.round(performance.now());
  log.debug(`starting buildah ${startupMs} ms after kimia started`, { event: 'startup', durationMs: startupMs });
  const stopped = <T>(p: Promise<T>): Promise<T | undefined> => p.catch((err: unknown) => {
    if (signal.aborted) return undefined;
    throw err;
  });
  const bud = await stopped(runBud(plan, contextDir, log, signal, () => void finishKey())).catch(async (err: unknown) => {
    // a failure that is not a RUN command's own exit status may be the environment: the next build probes it again
    if ((err as { code?: string }).code !== 'BUILD_STEP_FAILED') {
      const [{ cacheFile, forgetPass, readKeyInput }, { storageFor }] = await Promise.all([import('./preflight/cache.js'), import('./plan/plan.js')]);
      const input = readKeyInput(storageFor(request));
      if (input) forgetPass(cacheFile(env, request.home), input);
    }
    throw err;
  });
  if (!bud || signal.aborted) return 130;
  mark('bud-done');
  if (plan.historyMask && bud.imageId) {
    const { maskImageHistory } = await import('./history/index.js');
    bud.imageId = await maskImageHistory(plan, bud.imageId, { cache: request.cache, workDir: privateDir, log, signal });
  }

  // the record's preparation (stat cache, pruning) runs beside the push; a failed build leaves no half-written file
  const recordReady = buildKey ? finishKey().then((k) => (k ? buildKey.prepareRecord(k) : undefined)) : Promise.resolve(undefined);
  closers.push('build key record', () => recordReady.then(() => undefined));
  const pushed: { destination: string; digest: string }[] = [];
  if (plan.pushes.length) {
    // the layer list is only for the log: read it beside the first push instead of before it
    const layersReported = plan.multiPlatform
      ? Promise.resolve()
      : import('./buildah/layers.js').then(({ storedLayers }) => storedLayers(plan.storage, bud.imageId)).then((layers) => {
        if (layers.length) log.info(`layers to push: ${describeLayers(layers)}`, { event: 'layers', layers });
      }, () => undefined);
    try {
      for (const step of plan.pushes) {
        if (signal.aborted) return 130;
        const done = await stopped(pushWithRetry(plan, step, request.pushRetry, log, { baseDelayMs, signal }));
        if (!done) return 130;
        pushed.push(done);
        mark('pushed');
      }
    } finally {
      await layersReported;
    }
  }
  await runExports(plan, log);
  const { outputFiles, writeOutputs } = await import('./outputs/index.js');
  await writeOutputs(outputFiles(request, pushed));
  mark('outputs');
  const toRecord = await finishKey();
  const recordPrep = await recordReady;
  if (buildKey && toRecord) await buildKey.recordBuild(toRecord, { ...(bud.imageId ? { imageId: bud.imageId } : {}), pushed }, log, recordPrep);
  mark('recorded');
  log.info(`done: ${pushed.length ? pushed.map((p) => `${p.destination}@${p.digest}`).join(', ') : `${plan.localImage} kept in local storage`}`, {
    event: 'done', cacheHits: bud.cacheHits, cacheMisses: bud.cacheMisses,
  });
  return 0;
}
