#!/usr/bin/env node
/**
 * Prepare Kaniko's integration Dockerfiles for our comparison harness, OUTSIDE this repository:
 *
 *   node scripts/kaniko-suite.mjs KANIKO_GIT_DIR OUT_DIR
 *
 * copies integration/ of KANIKO_GIT_DIR's HEAD into OUT_DIR, points every base image at the harness registry
 * (`{{REG}}/NAME:TAG`, digests dropped), and writes OUT_DIR/suite.json (cases with Kaniko's build args and targets
 * from integration/images.go, and the local aliases to push) and OUT_DIR/rewrites.md (every line rewritten).
 * Then: KIMIA_COMPARE_SUITE=OUT_DIR/suite.json KIMIA_COMPARE_REPORT=OUT_DIR/report.md \
 *         npx vitest run test/e2e/kimia-compare.test.ts -t external
 * See docs/kaniko-suite.md. Nothing of Kaniko's is written into this repository.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [gitDir, out] = process.argv.slice(2);
if (!gitDir || !out) {
  process.stderr.write('usage: node scripts/kaniko-suite.mjs KANIKO_GIT_DIR OUT_DIR\n');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const revision = execFileSync('git', ['--git-dir', gitDir, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
execFileSync('sh', ['-c', 'git --git-dir "$1" archive HEAD integration | tar -x -C "$2"', 'sh', gitDir, out]);
const context = join(out, 'integration');
const dir = join(context, 'dockerfiles');

// Kaniko's integration/images.go: argsMap, additionalDockerFlagsMap (targets)
const ARGS = {
  Dockerfile_test_run: ['file=/file'], Dockerfile_test_run_new: ['file=/file'], Dockerfile_test_run_redo: ['file=/file'],
  Dockerfile_test_workdir: ['workdir=/arg/workdir'], Dockerfile_test_add: ['file=context/foo'],
  Dockerfile_test_arg_secret: ['SSH_PRIVATE_KEY=ThEPriv4t3Key', 'SSH_PUBLIC_KEY=Pµbl1cK€Y'], Dockerfile_test_onbuild: ['file=/tmp/onbuild'],
  Dockerfile_test_scratch: ['image=scratch', 'hello=hello-value', 'file=context/foo', 'file3=context/b*'], Dockerfile_test_multistage: ['file=/foo2'],
};
const TARGETS = { Dockerfile_test_target: 'second' };
// not comparable here: a GCS bucket or Git context, a registry mirror, or a base image nobody can build offline
const EXCLUDED = {
  Dockerfile_test_copy_bucket: 'needs a GCS bucket context', Dockerfile_git_buildcontext: 'a Git context of Kaniko\'s own repository',
  Dockerfile_registry_mirror: 'tests --registry-mirror', Dockerfile_test_extraction: 'its base gcr.io/kaniko-test/extraction-base-image is not published as a Dockerfile',
  Dockerfile_onbuild_base: 'built first, as the base of Dockerfile_test_onbuild', Dockerfile_hardlink_base: 'built first, as the base of Dockerfile_test_hardlink',
};

// base images: busybox-like (our busybox) or Debian-like (our debootstrap bookworm)
const BUSYBOX = /^(docker\.io\/library\/)?(busybox|alpine)([^\s/]*)?$/;
const DEBIANISH = /^((docker\.io\/)?(library\/)?(debian|ubuntu|fedora|rabbitmq|php|composer)|registry\.access\.redhat\.com\/ubi\d|gcr\.io\/distroless\/base|phusion\/baseimage|jboss\/base-jdk|google\/cloud-sdk)/;
const LOCAL = { 'gcr.io/kaniko-test/onbuild-base:latest': 'onbuild-base:latest', 'gcr.io/kaniko-test/hardlink-base:latest': 'hardlink-base:latest' };

const aliases = {};
const rewrites = [];

function localRef(ref) {
  if (LOCAL[ref]) return `{{REG}}/${LOCAL[ref]}`;
  const noDigest = ref.replace(/@sha256:[0-9a-f]{64}$/, '');
  const lastColon = noDigest.lastIndexOf(':');
  const hasTag = lastColon > noDigest.lastIndexOf('/');
  const name = hasTag ? noDigest.slice(0, lastColon) : noDigest;
  const tag = hasTag ? noDigest.slice(lastColon + 1) : 'latest';
  // a name built from variables (busybox${VARIANT}:1.3${VERSION}): only the registry goes in front
  if (/[$]/.test(name)) return /^(busybox|alpine|debian)/.test(name) ? `{{REG}}/${noDigest}` : undefined;
  const kind = BUSYBOX.test(name) ? 'busybox' : DEBIANISH.test(name) ? 'debian' : undefined;
  if (!kind) return undefined;
  const repo = name.split('/').pop();
  if (!/[$]/.test(tag)) aliases[`${repo}:${tag}`] = kind;
  return `{{REG}}/${repo}:${tag}`;
}

const cases = [];
for (const file of readdirSync(dir).sort()) {
  if (file.endsWith('.dockerignore')) continue;
  const path = join(dir, file);
  const lines = readFileSync(path, 'utf8').split('\n');
  const changed = lines.map((line, i) => {
    let next = line;
    // FROM IMAGE, COPY --from=IMAGE, and ARG defaults that name an image or its registry
    next = next.replace(/^(\s*FROM\s+(?:--platform=\S+\s+)?)(\S+)/i, (all, pre, ref) => (ref === 'scratch' ? all : `${pre}${localRef(ref) ?? ref}`));
    next = next.replace(/(--from=)([^\s]+[:@][^\s]+)/, (all, pre, ref) => `${pre}${localRef(ref) ?? ref}`);
    next = next.replace(/^(\s*ARG\s+\w+=)(["']?)([a-z][\w./-]*(?::[\w.${}-]+)?)\2\s*$/i, (all, pre, q, ref) => {
      if (ref === 'docker.io') return `${pre}{{REG}}`;
      // ${REGISTRY}/${IMAGE}:${TAG}: the registry ARG already points at the harness
      if (!ref.includes(':') && !ref.includes('/') && lines.some((l) => /^\s*ARG\s+REGISTRY=/.test(l))) return all;
      const base = ref.replace(/:\$\{?\w+\}?$/, '');
      if (BUSYBOX.test(base.split(':')[0]) || DEBIANISH.test(base.split(':')[0])) {
        const local = base.includes(':') ? localRef(base) : `{{REG}}/${base.split('/').pop()}`;
        const tagVar = ref.slice(base.length);
        if (!base.includes(':')) aliases[`${base.split('/').pop()}:latest`] = BUSYBOX.test(base) ? 'busybox' : 'debian';
        return `${pre}${q}${local}${tagVar}${q}`;
      }
      return all;
    });
    if (next !== line) rewrites.push(`| ${file}:${i + 1} | \`${line.trim()}\` | \`${next.trim()}\` |`);
    return next;
  });
  writeFileSync(path, changed.join('\n'));
  if (!file.startsWith('Dockerfile_test_') && file !== '1097' && !EXCLUDED[file]) continue;
  if (EXCLUDED[file]) {
    cases.push({ name: file, excluded: EXCLUDED[file] });
    continue;
  }
  const c = { name: file, dockerfile: `dockerfiles/${file}` };
  if (ARGS[file]) c.buildArgs = Object.fromEntries(ARGS[file].map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
  if (TARGETS[file]) c.target = TARGETS[file];
  cases.push(c);
}
// tags that ARG values build (alpine:${A} with A=3.9; debian:${TAG} with TAG=9.11; busybox${VARIANT}:1.3${VERSION})
Object.assign(aliases, { 'alpine:3.9': 'busybox', 'debian:9.11': 'debian', 'busybox:1.3': 'busybox' });
const bases = [
  { name: 'onbuild-base:latest', dockerfile: 'dockerfiles/Dockerfile_onbuild_base' },
  { name: 'hardlink-base:latest', dockerfile: 'dockerfiles/Dockerfile_hardlink_base' },
];
writeFileSync(join(out, 'suite.json'), JSON.stringify({ revision, context, bases, aliases, cases }, null, 2) + '\n');
writeFileSync(join(out, 'rewrites.md'), ['| file:line | Kaniko wrote | rewritten to |', '|---|---|---|', ...rewrites, ''].join('\n'));
process.stdout.write(`Kaniko ${revision}: ${cases.length} cases (${cases.filter((c) => c.excluded).length} excluded), ${rewrites.length} lines rewritten, ${Object.keys(aliases).length} local base tags\n`);
