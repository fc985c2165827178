import { describe, expect, it } from 'vitest';
import {
  CacheCounter, StepClock, backoffMs, classifyFailure, describeNoSpace, dnsFailure, formatDuration, noSpacePath, parseLine, quoteChildError, stepLabel,
  storagePermissionFailure,
} from '../../../src/kimia/buildah/progress.js';
import { fail } from '../../../src/kimia/errors.js';

describe('buildah output', () => {
  it('counts hits and misses over cacheable steps, multi-stage prefixes included', () => {
    const out = [
      '[1/2] STEP 1/2: FROM busybox AS b',
      '[1/2] STEP 2/2: RUN x',
      '--> Using cache 0123456789abcdef0123456789abcdef',
      '[2/2] STEP 1/3: FROM busybox',
      '[2/2] STEP 2/3: COPY a b',
      '--> 0123456789a',
      '[2/2] STEP 3/3: USER app',
      '--> Using cache fedcba9876543210fedcba98',
    ];
    const c = new CacheCounter();
    for (const l of out) c.feed(parseLine(l));
    c.close();
    expect([c.hits, c.misses]).toEqual([2, 1]);
    expect(parseLine('[2/2] STEP 3/3: USER app')).toEqual({ kind: 'step', index: 3, total: 3, instruction: 'USER app', stage: { index: 2, total: 2 } });
  });

  it('recognises pushed blobs and the OCI HEALTHCHECK warning', () => {
    expect(parseLine('Copying blob sha256:' + 'a'.repeat(64))).toMatchObject({ kind: 'blob', what: 'blob' });
    expect(parseLine('time="x" level=warning msg="HEALTHCHECK is not supported for OCI image format and will be ignored. Must use `docker` format"')).toEqual({ kind: 'dropped-warning', instruction: 'HEALTHCHECK' });
  });

  it('classifies failures: 401 is auth (never retried), 5xx and dropped connections are retryable', () => {
    expect(classifyFailure('Error: pushing: unauthorized: authentication required')).toBe('auth');
    expect(classifyFailure('received unexpected HTTP status: 503 Service Unavailable')).toBe('retryable');
    expect(classifyFailure('writing blob: Patch "http://x/v2/": EOF')).toBe('retryable');
    expect(classifyFailure('read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer')).toBe('retryable');
    expect(classifyFailure('manifest unknown')).toBe('fatal');
    expect(classifyFailure('write /x: no space left on device')).toBe('no-space');
  });

  it('quotes the child error message', () => {
    expect(quoteChildError('STEP 1\ntime="t" level=error msg="pulling \\"x\\": not found"\n')).toBe('pulling "x": not found');
    expect(quoteChildError('something\nError: building at STEP "RUN false": exit status 1\n')).toBe('Error: building at STEP "RUN false": exit status 1');
  });

  it('backs off exponentially, capped', () => {
    expect([0, 1, 2, 10].map((a) => backoffMs(a, 1000))).toEqual([1000, 2000, 4000, 30000]);
  });
});

describe('buildah output for people', () => {
  it('keeps the stage of multi-stage builds and recognises pulls, buildah\'s own log records and noise', () => {
    expect(parseLine('[2/3] STEP 1/4: FROM busybox AS build')).toEqual({ kind: 'step', index: 1, total: 4, instruction: 'FROM busybox AS build', stage: { index: 2, total: 3 } });
    expect(stepLabel({ index: 1, total: 4, stage: { index: 2, total: 3 } })).toBe('stage 2/3, step 1/4');
    expect(stepLabel({ index: 3, total: 4 })).toBe('step 3/4');
    expect(parseLine('Trying to pull 127.0.0.1:5000/busybox:1...')).toEqual({ kind: 'pull', image: '127.0.0.1:5000/busybox:1' });
    expect(parseLine('time="2026-01-01T00:00:00Z" level=warning msg="missing \\"X\\" build argument"')).toEqual({ kind: 'engine-log', level: 'warning', msg: 'missing "X" build argument' });
    for (const l of ['COMMIT localhost/kimia-build:latest', 'Successfully tagged localhost/kimia-build:latest', 'a'.repeat(64), 'Writing manifest to image destination']) {
      expect(parseLine(l)).toEqual({ kind: 'noise' });
    }
    expect(parseLine('time="x" level=warning msg="ONBUILD is not supported for OCI image format, RUN true will be ignored. Must use `docker` format"')).toEqual({ kind: 'dropped-warning', instruction: 'ONBUILD' });
    expect(parseLine('hello from RUN')).toEqual({ kind: 'other', line: 'hello from RUN' });
  });

  it('formats durations for reading: ms, then seconds, then minutes', () => {
    expect([850, 12_345, 245_000].map(formatDuration)).toEqual(['850 ms', '12.3 s', '4 min 05 s']);
  });

  it('StepClock: a heartbeat per interval while a step runs, and each step\'s duration when the next begins', () => {
    const clock = new StepClock(30_000);
    const step = (index: number, instruction: string) => ({ kind: 'step' as const, index, total: 3, instruction });
    expect(clock.begin(step(1, 'FROM busybox'), 0)).toBeUndefined();
    expect(clock.begin(step(2, 'RUN make'), 200)).toEqual({ step: step(1, 'FROM busybox'), durationMs: 200, cached: false });
    expect(clock.tick(20_000)).toBeUndefined();
    expect(clock.tick(30_200)).toEqual({ step: step(2, 'RUN make'), elapsedMs: 30_000 });
    expect(clock.tick(40_000)).toBeUndefined(); // once per interval, not on every tick
    expect(clock.tick(60_200)).toEqual({ step: step(2, 'RUN make'), elapsedMs: 60_000 });
    const ended = clock.begin(step(3, 'COPY a b'), 75_200);
    expect(ended).toMatchObject({ durationMs: 75_000, cached: false });
    clock.hit();
    expect(clock.finish(75_300)).toMatchObject({ step: step(3, 'COPY a b'), durationMs: 100, cached: true });
    expect(clock.finish(80_000)).toBeUndefined();
    expect(clock.tick(200_000)).toBeUndefined(); // nothing running, nothing to say
  });
});

describe('diagnosis of failures', () => {
  it('an unresolvable registry is a DNS failure (not retried), with the guide\'s "dial tcp: lookup … no such host" quoted', () => {
    const stderr = 'Error: creating build container: initializing source docker://registry.invalid/app:1: pinging container registry registry.invalid: Get "https://registry.invalid/v2/": dial tcp: lookup registry.invalid on 10.96.0.10:53: no such host';
    expect(classifyFailure(stderr)).toBe('dns');
    expect(dnsFailure(stderr)).toEqual({ host: 'registry.invalid', text: 'dial tcp: lookup registry.invalid on 10.96.0.10:53: no such host' });
    expect(dnsFailure('dial tcp: lookup myregistry.io: no such host')).toEqual({ host: 'myregistry.io', text: 'dial tcp: lookup myregistry.io: no such host' });
    expect(classifyFailure('dial tcp 127.0.0.1:5000: connect: connection refused')).toBe('retryable');
  });

  it('finds the path buildah could not write', () => {
    expect(noSpacePath('STEP 2/2: COPY big.bin /\nError: building at STEP "COPY big.bin /": storing "/h/.local/share/containers/storage/overlay/abc/diff/big.bin": write /h/.local/share/containers/storage/overlay/abc/diff/big.bin: no space left on device')).toBe('/h/.local/share/containers/storage/overlay/abc/diff/big.bin');
    expect(noSpacePath('write error: no space left on device')).toBeUndefined();
  });
});

describe('ENOSPC during the build: cause and fix in plain words', () => {
  const storage = { root: '/home/kimia/.local/share/containers/storage', runroot: '/home/kimia/.local/share/containers/run', driver: 'overlay' };
  const render = (d: ReturnType<typeof describeNoSpace>) => fail('NO_SPACE_DURING_BUILD', d);

  it('names the image storage and its driver when that is what filled up', () => {
    const e = render(describeNoSpace({
      stderr: 'Error: committing container for step {...}: copying layers: write /home/kimia/.local/share/containers/storage/overlay/l/diff/x: no space left on device',
      phase: 'build', storage, tmpDir: '/var/tmp', free: '12 KiB',
    }));
    expect(e.message).toBe('error building: no space left on device');
    expect(e.exitCode).toBe(6);
    expect(e.causeText).toBe('Insufficient ephemeral storage: the image storage at /home/kimia/.local/share/containers/storage (overlay driver) ran out of space during the build, '
      + '12 KiB left. Buildah reported: write /home/kimia/.local/share/containers/storage/overlay/l/diff/x: no space left on device');
    expect(e.fix).toContain('ephemeral-storage: "20Gi"  # Increase as needed');
    expect(e.fix).toContain('--cache-dir=/cache');
    expect(e.render()).not.toMatch(/\{\w+\}/); // every placeholder filled
  });

  it('with vfs it says why the volume filled so fast and that overlay needs less', () => {
    const e = render(describeNoSpace({ stderr: 'write /cache/storage/vfs/dir/x/big: no space left on device', phase: 'build', storage: { root: '/cache/storage', runroot: '/cache/run', driver: 'vfs' }, tmpDir: '/var/tmp' }));
    expect(e.causeText).toContain('the image storage at /cache/storage (vfs driver) ran out of space during the build, an unknown amount left.');
    expect(e.causeText).toContain('With vfs every layer is a full copy of the filesystem; --storage-driver=overlay needs far less.');
  });

  it('buildah 1.28\'s real output (container-relative path first, clean-up errors after): still the image storage, its own line quoted', () => {
    // shortened from a real run: 48 MiB COPY into a 24 MiB tmpfs HOME, vfs
    const stderr = [
      'time="t" level=error msg="error unmounting container: unmounting build container \\"a82a\\": write /t/home/.local/share/containers/run/vfs-layers/.tmp-mountpoints.json2701735604: no space left on device"',
      'Error: deleting build container "a82a": 2 errors occurred:',
      '\t* write /t/home/.local/share/containers/storage/vfs-containers/.tmp-containers.json1273945777: no space left on device',
      ': building at STEP "COPY big.bin /": 3 errors occurred:',
      '\t* storing "/t/ctx-big/big.bin": error during bulk transfer for copier.request{...}: copier: put: error writing file "/big.bin": write /big.bin: no space left on device',
    ].join('\n');
    const d = describeNoSpace({ stderr, phase: 'build', storage: { root: '/t/home/.local/share/containers/storage', runroot: '/t/home/.local/share/containers/run', driver: 'vfs' }, tmpDir: '/var/tmp', free: '1.1 MiB' });
    expect(fail('NO_SPACE_DURING_BUILD', d).causeText).toBe('Insufficient ephemeral storage: the image storage at /t/home/.local/share/containers/storage (vfs driver) ran out of space during the build, 1.1 MiB left. '
      + 'With vfs every layer is a full copy of the filesystem; --storage-driver=overlay needs far less. '
      + 'Buildah reported: write /t/home/.local/share/containers/run/vfs-layers/.tmp-mountpoints.json2701735604: no space left on device');
    expect(d.path).toBe('/t/home/.local/share/containers/storage');
  });

  it('names buildah\'s temporary folder when the push staged blobs there', () => {
    const d = describeNoSpace({ stderr: 'Error: writing blob: open /var/tmp/buildah123/layer: no space left on device', phase: 'push', storage, tmpDir: '/var/tmp', free: '0 B' });
    expect(render(d).causeText).toMatch(/^Insufficient ephemeral storage: buildah's temporary folder \/var\/tmp \(set TMPDIR to a folder on a bigger volume\) ran out of space during the push, 0 B left\./);
    expect(d.path).toBe('/var/tmp');
    expect(d.detail).toBe('open /var/tmp/buildah123/layer: no space left on device');
  });
});

describe('a storage write refused during the build (Cache Directory Permission Denied)', () => {
  const storage = { root: '/cache/storage', runroot: '/cache/run' };
  it('finds EACCES and EPERM on paths in the image storage, and nothing elsewhere', () => {
    expect(storagePermissionFailure('Error: creating build container: creating container: open /cache/storage/overlay-layers/layers.lock: permission denied', storage))
      .toEqual({ path: '/cache/storage/overlay-layers/layers.lock', errno: 'EACCES', text: 'open /cache/storage/overlay-layers/layers.lock: permission denied' });
    expect(storagePermissionFailure('Error: committing: lchown /cache/storage/overlay/abc/diff/etc: operation not permitted', storage))
      .toMatchObject({ errno: 'EPERM', text: 'lchown /cache/storage/overlay/abc/diff/etc: operation not permitted' });
    expect(storagePermissionFailure('RUN: sh: /app/run.sh: permission denied', storage)).toBeUndefined();
  });

  it('EPERM reads as the guide\'s second line, with the volume and the fix', () => {
    const e = fail('CACHE_SAVE_NOT_PERMITTED', { dir: '/cache/storage', uid: '1000', detail: 'lchown /cache/storage/overlay/abc/diff/etc: operation not permitted' });
    expect(e.message).toBe('unable to save layer to cache: operation not permitted');
    expect(e.exitCode).toBe(6);
    expect(e.causeText).toContain('the volume under /cache/storage refused a change by UID 1000 (lchown /cache/storage/overlay/abc/diff/etc: operation not permitted)');
    expect(e.fix).toContain('fsGroup: 1000');
    expect(e.fix).toContain('chown -R 1000:1000 /cache/storage');
  });
});
