/**
 * Builder benchmark: kimia's overhead over the raw engine, and BuildKit as the peer to beat.
 *
 *   npx vite-node bench/kimia-build.ts            (as root; kimia and buildah run as uid 1000 like in a pod)
 *
 * Two Dockerfiles: "small" (a 12-step multi-stage build on a busybox base from a local registry) and "large" (FROM
 * the ~200 MB debootstrap image in the local registry, 2,000 small files, a 100 MB layer written by `dd`). Three
 * cases each: cold (empty image storage / pruned BuildKit cache, base pulled), unchanged rebuild (every step a cache
 * hit), and a one-line change of a file copied late, rebuilt and pushed to the local registry. Variants, interleaved
 * A/B/C/D: raw `buildah bud` with the flags kimia passes (overlay, chroot isolation, --layers; the baseline), kimia
 * with overlay, kimia with vfs (kimia's default inside a pod), and `docker build` with BuildKit (Debian's dockerd
 * 20.10 started by the harness, /usr/bin/docker with DOCKER_BUILDKIT=1). kimia runs with --cache, so an unchanged
 * rebuild is answered from its build key without buildah; the unchanged case also runs kimia with --no-build-key
 * (Buildah's layer cache), and a fourth case measures kimia's own time before buildah starts (its `-v debug` line)
 * for the bundled entry (bin/kimia) against the tsc output it is built from.
 *
 * Peak memory: RSS summed over the process tree of the build (kimia → buildah → its user-namespace children); for
 * docker build the daemon does the work, so the sampler watches dockerd's tree (dockerd, its containerd, BuildKit
 * workers) plus the CLI: that figure includes the idle daemon (~60-90 MiB).
 *
 * BENCH_REPS (default 5) and BENCH_WARMUPS (default 1) fix repetitions; the large Dockerfile is capped at 2
 * repetitions and no timed warm-up (an untimed priming build instead) to keep `npm run bench` near 20 minutes; the
 * small one-line change gets 9 (its gap to raw buildah is smaller than one run's noise).
 * Every case runs its variants interleaved, reversing their order every other round, and reports kimia overlay /
 * raw buildah as the median of the per-round ratios with their spread (and the load after each round).
 *
 *   BENCH_CASES=one-line,cold             only the cases whose name ("small: cold build", "large: one-line change,
 *                                         rebuild + push", …) contains one of these; the others stay in the JSON from
 *                                         the last run (a note says so)
 *   BENCH_CASE_REPS=one-line=12,cold=5    repetitions per case (the first entry whose text the case name contains)
 *   BENCH_VARIANTS=buildah,kimia-overlay  which variants run (raw buildah, the baseline, always does): buildah,
 *                                         kimia-overlay, kimia-vfs, docker, and buildah-kimia-flags (raw buildah with
 *                                         the flags kimia adds, --identity-label=false --iidfile --digestfile: not run
 *                                         by default, it says what those flags cost)
 *   BENCH_BUILDER_SIZES=small             only one Dockerfile
 *
 *   e.g. BENCH_CASES=one-line BENCH_VARIANTS=buildah,kimia-overlay BENCH_CASE_REPS=one-line=15 npx vite-node bench/kimia-build.ts
 *
 * Results: bench/results/kimia-build.json and one SVG per case.
 */
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunOptions } from '../src/core/exec/index.js';
import { projectPath } from '../src/core/paths.js';
import { startRegistry } from '../test/harness/services/registry.js';
import { pushBusyboxImage, pushDebootstrapImage } from '../test/harness/images.js';
import { dockerdAvailable, startDockerd, type StartedDockerd } from '../test/harness/services/dockerd.js';
import { buildKimia, ensureSubIds, workspace } from '../test/e2e/kimia-helpers.js';
import { derivedCase, measureCase, REPS, repsAtMost, WARMUPS, type CaseResult, type Variant } from './lib/measure.js';
import { writeResults } from './lib/report.js';

const BENCH = 'kimia-build';
const SMALL_REPS = repsAtMost(3);
const LARGE_REPS = repsAtMost(2);
const LARGE_COLD_REPS = repsAtMost(1);
/** the small one-line change: ~4 s a round, and a gap to raw buildah smaller than one run's noise */
const SMALL_ONE_LINE_REPS = process.env.BENCH_REPS ? REPS : 9;

/** BENCH_CASES: substrings of the case names to run (all when unset) */
const CASE_FILTER = (process.env.BENCH_CASES ?? '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
/** BENCH_VARIANTS: the variants to run besides raw buildah (the baseline) */
const VARIANTS = process.env.BENCH_VARIANTS ? process.env.BENCH_VARIANTS.split(',').map((x) => x.trim()) : ['kimia-overlay', 'kimia-vfs', 'docker'];
const wantCase = (name: string) => !CASE_FILTER.length || CASE_FILTER.some((f) => name.toLowerCase().includes(f));

/** BENCH_CASE_REPS=one-line=12,large: cold=3: repetitions of the first entry whose text the case name contains */
function caseReps(name: string, fallback: number): number {
  for (const entry of (process.env.BENCH_CASE_REPS ?? '').split(',')) {
    const eq = entry.lastIndexOf('=');
    if (eq <= 0) continue;
    const n = Number(entry.slice(eq + 1));
    if (name.toLowerCase().includes(entry.slice(0, eq).trim().toLowerCase()) && Number.isInteger(n) && n > 0) return n;
  }
  return fallback;
}

async function exec(argv: string[], sample?: (pid: number) => void, opts: RunOptions = {}): Promise<string> {
  const r = await run(argv[0]!, argv.slice(1), { reject: false, timeoutMs: 900_000, ...opts, ...(sample ? { onSpawn: sample } : {}) });
  if (r.exitCode !== 0) throw new Error(`${r.command} failed (exit ${r.exitCode}): ${(r.stderr + r.stdout).slice(-2000)}`);
  return r.stderr;
}

/** BENCH_KIMIA_TIMING=1: kimia runs with -v debug and its `timing` line (where its own time went) is printed */
const KIMIA_TIMING = process.env.BENCH_KIMIA_TIMING === '1';
/** BENCH_KIMIA_NODE_ARGS: node flags for kimia's runs (a diagnosis, e.g. --cpu-prof --cpu-prof-dir=DIR writable by uid 1000) */
const NODE_ARGS = (process.env.BENCH_KIMIA_NODE_ARGS ?? '').split(' ').filter(Boolean);

const smallDockerfile = (base: string) => `FROM ${base} AS deps
RUN mkdir -p /deps && for i in 1 2 3 4 5; do echo dep$i > /deps/$i; done
COPY a.txt /deps/a.txt
RUN cat /deps/* > /deps/all

FROM ${base} AS build
COPY --from=deps /deps/all /src/all
RUN sed 's/dep/built/' /src/all > /src/out
ENV MODE=release
RUN adduser -D -u 2001 svc 2>/dev/null || echo 'svc:x:2001:2001::/home/svc:/bin/sh' >> /etc/passwd

FROM ${base}
COPY --from=build /src/out /app/out
COPY --chown=1000:1000 b.txt /app/b.txt
RUN chown -R 1000:1000 /app
USER 1000
CMD ["cat", "/app/out"]
`;

const largeDockerfile = (base: string) => `FROM ${base}
RUN mkdir -p /opt/many && cd /opt/many && for d in $(seq 1 20); do mkdir d$d; for f in $(seq 1 100); do echo "$d/$f" > d$d/f$f; done; done
RUN dd if=/dev/urandom of=/opt/blob.bin bs=1M count=100 status=none
COPY b.txt /etc/app.conf
RUN sha256sum /etc/app.conf /opt/blob.bin > /etc/app.sums
CMD ["cat", "/etc/app.conf"]
`;

async function main(): Promise<void> {
  await Promise.all([buildKimia(), ensureSubIds()]);
  const reg = await startRegistry();
  const ws = await workspace('kimia-bench');
  let dockerd: StartedDockerd | undefined;
  const cases: CaseResult[] = [];
  const notes: string[] = [];
  try {
    const busybox = await pushBusyboxImage(reg);
    const debian = await pushDebootstrapImage(reg);
    await ws.write('small/Dockerfile', smallDockerfile(busybox));
    await ws.write('small/a.txt', 'a\n');
    await ws.write('small/b.txt', 'b line 1\nb line 2\n');
    await ws.write('large/Dockerfile', largeDockerfile(debian));
    await ws.write('large/b.txt', 'setting=1\nother=2\n');
    const conf = ws.path('containers.conf');
    await writeFile(conf, '[containers]\nnetns = "host"\n\n[engine]\nruntime = "runc"\n');
    await writeFile(ws.path('registries.conf'), `unqualified-search-registries = ["docker.io"]\n\n[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    await chown(conf, 1000, 1000);

    const asUser = (home: string, argv: string[], extra: Record<string, string> = {}) => {
      const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: home, ...extra };
      return ['setpriv', '--reuid', '1000', '--regid', '1000', '--init-groups', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
    };
    const storage = (home: string) => ['--root', `${home}/.local/share/containers/storage`, '--runroot', `${home}/.local/share/containers/run`, '--storage-driver', 'overlay'];
    const buildahEnv = { CONTAINERS_CONF: conf, CONTAINERS_REGISTRIES_CONF: ws.path('registries.conf') };

    let n = 0;
    const freshHome = async () => {
      const h = ws.path(`home-${n++}`);
      await mkdir(h);
      await chown(h, 1000, 1000);
      return h;
    };
    // rootless storage holds files owned by subordinate ids: remove as root (rm -rf), never chown -R the workspace again
    const dropHome = (h: string | undefined) => (h ? rm(h, { recursive: true, force: true }).catch(() => run('rm', ['-rf', h], { reject: false })) : Promise.resolve());

    if (!VARIANTS.includes('docker')) {
      notes.push('docker build not run in this invocation: not in BENCH_VARIANTS');
    } else if (await dockerdAvailable()) {
      dockerd = await startDockerd({ insecureRegistries: [reg.host] });
    } else {
      notes.push('docker build not measured: dockerd/docker.io not installed or not root');
    }
    /**
     * kimia's own time before buildah starts (the `-v debug` line "starting buildah N ms after kimia started",
     * counted from process start), --no-build-key so that buildah always starts: bin/kimia (the bundle) against the
     * tsc output it is built from, interleaved.
     */
    const startupCase = async (ctx: string, home: string, n: number): Promise<CaseResult> => {
      // the tsc output through an entry like bin/kimia's, without the bundle
      const tscEntry = await ws.write('entry-tsc.mjs', `import(${JSON.stringify(projectPath('dist', 'kimia', 'main.js'))}).then((m) => m.main(process.argv.slice(2))).then((c) => process.exit(c ?? 0));\n`);
      const entries = {
        'kimia (bin/kimia, bundle)': [projectPath('bin', 'kimia')],
        'kimia (tsc output)': [tscEntry],
      };
      const values = new Map<string, number[]>(Object.keys(entries).map((k) => [k, []]));
      for (let i = 0; i < n; i++) {
        for (const [name, entry] of Object.entries(entries)) {
          const argv = asUser(home, [process.execPath, ...entry, '-c', ctx, '--no-push', '--cache', '--no-build-key', '--storage-driver=overlay', '--insecure-registry', reg.host, '-v', 'debug']);
          const r = await run(argv[0]!, argv.slice(1), { reject: false, timeoutMs: 300_000 });
          values.get(name)!.push(Number(/starting buildah (\d+) ms after kimia started/.exec(r.stderr)?.[1]));
        }
      }
      return derivedCase({ bench: BENCH, case: 'small: kimia start-up before buildah', unit: 'ms', repetitions: n, notes: 'milliseconds from process start to the buildah spawn, reported by kimia -v debug; --no-build-key, layer cache warm' },
        [...values.entries()].map(([name, v]) => ({ name, values: v })));
    };
    const dockerPid = async () => Number((await readFile(join(dockerd!.dir, 'docker.pid'), 'utf8')).trim());
    const docker = async (args: string[], sample?: (pid: number) => void) => {
      const r = await dockerd!.docker(args, { reject: false, timeoutMs: 900_000, env: { DOCKER_BUILDKIT: '1' }, ...(sample ? { onSpawn: sample } : {}) });
      if (r.exitCode !== 0) throw new Error(`${r.command} failed (exit ${r.exitCode}): ${(r.stderr + r.stdout).slice(-2000)}`);
    };
    const dockerCold = async () => {
      await dockerd!.docker(['builder', 'prune', '-af'], { reject: false, timeoutMs: 120_000 });
      const ids = (await dockerd!.docker(['images', '-aq'], { reject: false })).stdout.split('\n').map((s) => s.trim()).filter(Boolean);
      if (ids.length) await dockerd!.docker(['image', 'rm', '-f', ...new Set(ids)], { reject: false, timeoutMs: 120_000 });
    };

    // BENCH_BUILDER_SIZES=small runs only the small Dockerfile (a quick check)
    const sizes = (process.env.BENCH_BUILDER_SIZES ?? 'small,large').split(',').filter((x): x is 'small' | 'large' => x === 'small' || x === 'large');
    for (const df of sizes) {
      const ctx = ws.path(df);
      const reps = df === 'large' ? LARGE_REPS : SMALL_REPS;
      const warmups = df === 'large' ? 0 : WARMUPS;
      const dest = (v: string) => `${reg.host}/bench-${v}-${df}:latest`;
      let revision = 0;
      /** the one-line change: rewrite the first line of the file that the last stage copies */
      const changeOneLine = async () => {
        const p = join(ctx, 'b.txt');
        const lines = (await readFile(p, 'utf8')).split('\n');
        lines[0] = `changed line, revision ${++revision}`;
        await writeFile(p, lines.join('\n'));
        await chown(p, 1000, 1000);
      };

      type Tool = 'buildah' | 'buildah-kimia-flags' | 'kimia-overlay' | 'kimia-vfs' | 'docker' | 'kimia-overlay-nokey';
      const labels: Record<Tool, string> = {
        buildah: 'raw buildah (overlay)',
        'buildah-kimia-flags': 'raw buildah + kimia\'s flags',
        'kimia-overlay': 'kimia overlay',
        'kimia-vfs': 'kimia vfs',
        docker: 'docker build (BuildKit)',
        'kimia-overlay-nokey': 'kimia overlay --no-build-key',
      };
      const chosen = VARIANTS;
      const tools: Tool[] = (['buildah', 'buildah-kimia-flags', 'kimia-overlay', 'kimia-vfs', 'docker'] as const)
        .filter((t) => t === 'buildah' || (chosen.includes(t) && (t !== 'docker' || dockerd)));
      const build = async (tool: Tool, home: string, push: boolean, sample?: (pid: number) => void) => {
        if (tool === 'docker') {
          if (sample) sample(await dockerPid());
          await docker(['build', '-q', '--network', 'host', '-t', dest(tool), ctx], sample);
          if (push) await docker(['push', '-q', dest(tool)], sample);
          return;
        }
        if (tool === 'buildah' || tool === 'buildah-kimia-flags') {
          // the files kimia asks for, in the home (uid 1000 writes them); the same path every run, as kimia's are fresh
          const kimiaFlags = tool === 'buildah-kimia-flags';
          const bud = kimiaFlags ? ['--identity-label=false', '--iidfile', `${home}/image-id`] : [];
          const pushFlags = kimiaFlags ? ['--digestfile', `${home}/digest`] : [];
          await exec(asUser(home, ['buildah', ...storage(home), 'bud', '--isolation', 'chroot', '--format', 'oci', '-f', join(ctx, 'Dockerfile'), '-t', dest(tool), '--layers', '--retry', '3', ...bud, ctx], buildahEnv), sample);
          if (push) await exec(asUser(home, ['buildah', ...storage(home), 'push', '--tls-verify=false', '--retry', '0', ...pushFlags, dest(tool), `docker://${dest(tool)}`], buildahEnv), sample);
          return;
        }
        const driver = tool === 'kimia-vfs' ? 'vfs' : 'overlay';
        const out = push ? ['--destination', dest(tool)] : ['--no-push'];
        const nokey = tool === 'kimia-overlay-nokey' ? ['--no-build-key'] : [];
        const stderr = await exec(asUser(home, [process.execPath, ...NODE_ARGS, projectPath('bin', 'kimia'), '-c', ctx, ...out, '--cache', ...nokey, `--storage-driver=${driver}`, '--insecure-registry', reg.host, ...(KIMIA_TIMING ? ['-v', 'debug'] : [])]), sample);
        if (KIMIA_TIMING) process.stdout.write(`    ${labels[tool]}: ${/timing \(ms since start\): .*/.exec(stderr)?.[0] ?? 'no timing line'}\n`);
      };

      // cold: a fresh, empty storage every run (docker: builder cache pruned, images removed)
      const coldHomes: Partial<Record<Tool, string>> = {};
      const coldVariant = (tool: Tool): Variant => ({
        name: labels[tool],
        before: async () => {
          if (tool === 'docker') return dockerCold();
          await dropHome(coldHomes[tool]);
          coldHomes[tool] = await freshHome();
        },
        run: (sample) => build(tool, coldHomes[tool] ?? '', false, sample),
      });
      const kimiaPair = [[labels['kimia-overlay'], labels.buildah], [labels['buildah-kimia-flags'], labels.buildah]] as const;
      const pairsOf = (ts: Tool[]) => kimiaPair.filter(([of]) => ts.some((t) => labels[t] === of));
      const coldName = `${df}: cold build`;
      if (wantCase(coldName)) {
        cases.push(await measureCase({ bench: BENCH, case: coldName, warmups, repetitions: caseReps(coldName, df === 'large' ? LARGE_COLD_REPS : reps), pairs: pairsOf(tools), alternate: true, roundLines: true, notes: 'empty storage each run (base image pulled from the local registry); docker: builder prune -af + image rm; peak RSS for docker = dockerd tree + CLI' }, tools.map(coldVariant)));
      }

      // unchanged rebuild and one-line change + push: the storage of each tool's last cold build (fully built, so
      // every step is cached); a priming build only if that is missing
      const homes = {} as Record<Tool, string>;
      const primed = new Set<Tool>();
      for (const t of tools) {
        if (coldHomes[t] || t === 'docker') primed.add(t);
        homes[t] = coldHomes[t] ?? (await freshHome());
      }
      const prime = async (tool: Tool) => {
        if (primed.has(tool)) return;
        await build(tool, homes[tool], false);
        primed.add(tool);
      };
      // kimia --no-build-key shares the storage (and the key records) of kimia overlay: the same cached layers
      const unchangedTools: Tool[] = tools.includes('kimia-overlay') ? [...tools.slice(0, tools.indexOf('kimia-overlay') + 1), 'kimia-overlay-nokey', ...tools.slice(tools.indexOf('kimia-overlay') + 1)] : tools;
      homes['kimia-overlay-nokey'] = homes['kimia-overlay'];
      primed.add('kimia-overlay-nokey');
      const unchangedName = `${df}: unchanged rebuild`;
      if (wantCase(unchangedName)) {
        cases.push(await measureCase({ bench: BENCH, case: unchangedName, warmups, repetitions: caseReps(unchangedName, reps), pairs: pairsOf(unchangedTools), alternate: true, roundLines: true, notes: 'same storage, every step a cache hit, no push; kimia answers from its build key (no buildah call), kimia --no-build-key runs buildah and its layer cache' },
          unchangedTools.map((tool) => ({ name: labels[tool], before: () => prime(tool), run: (sample) => build(tool, homes[tool], false, sample) }))));
      }
      const startupName = `${df}: kimia start-up before buildah`;
      if (df === 'small' && tools.includes('kimia-overlay') && wantCase(startupName)) {
        await prime('kimia-overlay');
        cases.push(await startupCase(ctx, homes['kimia-overlay'], caseReps(startupName, reps + warmups)));
      }
      // every variant's storage holds the build of the last revision it saw and its destination that image's layers:
      // each run rebuilds from one changed line and pushes one new layer, config and manifest
      const oneLineName = `${df}: one-line change, rebuild + push`;
      if (wantCase(oneLineName)) {
        cases.push(await measureCase({ bench: BENCH, case: oneLineName, warmups, repetitions: caseReps(oneLineName, df === 'large' ? reps : SMALL_ONE_LINE_REPS), pairs: pairsOf(tools), alternate: true, roundLines: true, notes: 'first line of the file copied by the last stage rewritten before every run; build then push to the local registry (plain HTTP); unchanged layers already in the registry' },
          tools.map((tool) => ({ name: labels[tool], before: async () => { await prime(tool); await changeOneLine(); }, run: (sample) => build(tool, homes[tool], true, sample) }))));
      }
      for (const h of new Set(Object.values(homes))) await dropHome(h);
    }
    notes.push(`repetitions capped to keep npm run bench short on a loaded 2-core machine: small Dockerfile ${SMALL_REPS} (one-line change ${SMALL_ONE_LINE_REPS}; +${WARMUPS} warm-up), large Dockerfile cold ${LARGE_COLD_REPS} and rebuilds ${LARGE_REPS} (no timed warm-up; the rebuilds reuse the storage of the last cold build)${process.env.BENCH_CASE_REPS ? `; BENCH_CASE_REPS=${process.env.BENCH_CASE_REPS}` : ''}`);
    if (process.env.BENCH_VARIANTS) notes.push(`BENCH_VARIANTS=${process.env.BENCH_VARIANTS}`);
    notes.push('raw buildah = the `buildah bud` flags kimia passes (overlay, --isolation chroot, --format oci, --layers); no raw buildah vfs variant (time budget)');
    notes.push('docker build: BuildKit inside dockerd 20.10 (DOCKER_BUILDKIT=1, /usr/bin/docker 20.10, --network host like buildah\'s netns = "host"); its cache and its push path differ from buildah\'s');
    const partial = CASE_FILTER.length > 0 || Boolean(process.env.BENCH_BUILDER_SIZES);
    process.stdout.write(`results: ${writeResults(BENCH, cases, 'n/a (no VM)', notes, partial)}\n`);
  } finally {
    if (dockerd) await dockerd.stop().catch((e: unknown) => console.error(e));
    await ws.cleanup();
    await reg.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
