/**
 * kimia's overhead over the raw engine, and BuildKit as the peer to beat.
 *
 *   npx vite-node bench/kimia-build.ts            (as root; builds run as uid 1000 like in a pod)
 *
 * Same Dockerfile (a 12-step multi-stage build on a busybox base from a local registry), same storage driver
 * (overlay), same isolation (chroot), --no-push. For each tool: "cold" = a fresh, empty image storage each run (base
 * pulled, every step executed); "cached" = the same storage again with layer caching (every step a cache hit).
 * Median of 5 each; runs of kimia and raw buildah alternate so that machine noise hits both alike.
 * Target: kimia / raw buildah <= 1.05. Results also go to bench/results/kimia-build.json.
 */
import { mkdir, writeFile, chown } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../src/core/exec/index.js';
import { projectPath } from '../src/core/paths.js';
import { startRegistry } from '../test/harness/services/registry.js';
import { pushBusyboxImage } from '../test/harness/images.js';
import { dockerdAvailable, startDockerd } from '../test/harness/services/dockerd.js';
import { buildKimia, ensureSubIds, workspace } from '../test/e2e/kimia-helpers.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function timed(file: string, args: string[], env?: Record<string, string>): Promise<number> {
  const t = performance.now();
  const r = await run(file, args, { reject: false, ...(env ? { env } : {}), timeoutMs: 600_000 });
  if (r.exitCode !== 0) throw new Error(`${r.command} failed (exit ${r.exitCode}): ${(r.stderr + r.stdout).slice(-2000)}`);
  return performance.now() - t;
}

const dockerfile = (base: string) => `FROM ${base} AS deps
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

async function main(): Promise<void> {
  await Promise.all([buildKimia(), ensureSubIds()]);
  const reg = await startRegistry();
  const ws = await workspace('kimia-bench');
  try {
    const base = await pushBusyboxImage(reg);
    await ws.write('ctx/Dockerfile', dockerfile(base));
    await ws.write('ctx/a.txt', 'a\n');
    await ws.write('ctx/b.txt', 'b\n');
    const ctx = ws.path('ctx');
    const conf = ws.path('containers.conf');
    await writeFile(conf, '[containers]\nnetns = "host"\n\n[engine]\nruntime = "runc"\n');
    await writeFile(ws.path('registries.conf'), `unqualified-search-registries = ["docker.io"]\n\n[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    await chown(conf, 1000, 1000);

    const asUser = (home: string, argv: string[], extra: Record<string, string> = {}) => {
      const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: home, ...extra };
      return ['setpriv', '--reuid', '1000', '--regid', '1000', '--init-groups', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
    };
    const storage = (home: string) => ['--root', `${home}/.local/share/containers/storage`, '--runroot', `${home}/.local/share/containers/run`, '--storage-driver', 'overlay'];
    const kimiaCmd = (home: string) => asUser(home, [process.execPath, projectPath('bin', 'kimia'), '-c', ctx, '--no-push', '--cache', '--storage-driver=overlay', '--insecure-registry', reg.host]);
    const buildahCmd = (home: string) => asUser(home, ['buildah', ...storage(home), 'bud', '--isolation', 'chroot', '--format', 'oci', '--layers', '-t', 'localhost/kimia-build:latest', ctx],
      { CONTAINERS_CONF: conf, CONTAINERS_REGISTRIES_CONF: ws.path('registries.conf') });

    let n = 0;
    const freshHome = async () => {
      const h = ws.path(`home-${n++}`);
      await mkdir(h);
      await chown(h, 1000, 1000);
      return h;
    };
    const exec = (argv: string[]) => timed(argv[0]!, argv.slice(1));

    const cold = { kimia: [] as number[], buildah: [] as number[] };
    const cached = { kimia: [] as number[], buildah: [] as number[] };
    // warm-up (page cache, node compile cache) — not counted
    await exec(kimiaCmd(await freshHome()));
    await exec(buildahCmd(await freshHome()));
    for (let i = 0; i < RUNS; i++) {
      const order: ('kimia' | 'buildah')[] = i % 2 ? ['buildah', 'kimia'] : ['kimia', 'buildah'];
      for (const tool of order) cold[tool].push(await exec(tool === 'kimia' ? kimiaCmd(await freshHome()) : buildahCmd(await freshHome())));
    }
    const kh = await freshHome();
    const bh = await freshHome();
    await exec(kimiaCmd(kh));
    await exec(buildahCmd(bh));
    for (let i = 0; i < RUNS; i++) {
      const order: ('kimia' | 'buildah')[] = i % 2 ? ['buildah', 'kimia'] : ['kimia', 'buildah'];
      for (const tool of order) cached[tool].push(await exec(tool === 'kimia' ? kimiaCmd(kh) : buildahCmd(bh)));
    }

    const result: Record<string, unknown> = {
      runs: RUNS,
      coldMs: { kimia: median(cold.kimia), buildah: median(cold.buildah) },
      cachedMs: { kimia: median(cached.kimia), buildah: median(cached.buildah) },
      minMs: { coldKimia: Math.min(...cold.kimia), coldBuildah: Math.min(...cold.buildah), cachedKimia: Math.min(...cached.kimia), cachedBuildah: Math.min(...cached.buildah) },
      loadAverage: (await import('node:os')).loadavg(),
      ratioCold: median(cold.kimia) / median(cold.buildah),
      ratioCached: median(cached.kimia) / median(cached.buildah),
      samples: { cold, cached },
    };

    if (await dockerdAvailable()) {
      const d = await startDockerd({ insecureRegistries: [reg.host] });
      try {
        const dCold: number[] = [];
        const dCached: number[] = [];
        // BuildKit through the CLI needs the buildx plugin, which Debian bookworm does not ship; fall back to the
        // daemon's classic builder and say so.
        let env = { DOCKER_BUILDKIT: '1', DOCKER_HOST: d.host };
        let builder = 'BuildKit';
        const probe = await run('docker', ['build', '-q', '-t', 'bench:warm', ctx], { env, reject: false });
        if (probe.exitCode !== 0 && /buildx/.test(probe.stderr)) {
          env = { DOCKER_BUILDKIT: '0', DOCKER_HOST: d.host };
          builder = 'classic builder (buildx plugin missing, BuildKit unreachable from the CLI)';
        }
        result.dockerBuilder = builder;
        const docker = (args: string[]) => timed('docker', args, env);
        await docker(['build', '-q', '-t', 'bench:warm', ctx]);
        for (let i = 0; i < RUNS; i++) {
          await run('docker', ['builder', 'prune', '-af'], { env, reject: false });
          await run('docker', ['image', 'rm', '-f', 'bench:x', 'bench:warm', base], { env, reject: false });
          dCold.push(await docker(['build', '-q', '--no-cache', '-t', 'bench:x', ctx]));
        }
        for (let i = 0; i < RUNS; i++) dCached.push(await docker(['build', '-q', '-t', 'bench:x', ctx]));
        result.dockerBuildkitMs = { cold: median(dCold), cached: median(dCached) };
        result.kimiaOverDocker = { cold: median(cold.kimia) / median(dCold), cached: median(cached.kimia) / median(dCached) };
      } catch (err) {
        result.docker = `docker build failed: ${(err as Error).message}`;
      } finally {
        await d.stop();
      }
    } else {
      result.docker = 'dockerd not available (install docker.io to compare with BuildKit)';
    }

    const fmt = (x: number) => `${Math.round(x)} ms`;
    console.log(`kimia vs raw buildah bud (overlay, chroot, median of ${RUNS}):`);
    console.log(`  cold:   kimia ${fmt(median(cold.kimia))}  buildah ${fmt(median(cold.buildah))}  ratio ${(result.ratioCold as number).toFixed(3)}`);
    console.log(`  cached: kimia ${fmt(median(cached.kimia))}  buildah ${fmt(median(cached.buildah))}  ratio ${(result.ratioCached as number).toFixed(3)}`);
    console.log(`  min:    cold ${fmt(Math.min(...cold.kimia))} / ${fmt(Math.min(...cold.buildah))}, cached ${fmt(Math.min(...cached.kimia))} / ${fmt(Math.min(...cached.buildah))}; load average ${(result.loadAverage as number[]).map((x) => x.toFixed(1)).join(' ')}`);
    if (result.dockerBuildkitMs) {
      const dm = result.dockerBuildkitMs as { cold: number; cached: number };
      console.log(`  docker build (${String(result.dockerBuilder)}): cold ${fmt(dm.cold)}  cached ${fmt(dm.cached)}`);
    } else console.log(`  ${String(result.docker)}`);
    await mkdir(projectPath('bench', 'results'), { recursive: true });
    await writeFile(join(projectPath('bench', 'results'), 'kimia-build.json'), JSON.stringify(result, null, 2) + '\n');
  } finally {
    await ws.cleanup();
    await reg.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
