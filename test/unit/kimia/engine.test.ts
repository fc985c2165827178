import { describe, expect, it } from 'vitest';
import { atLeast, describeEngine, parseBuildahVersion } from '../../../src/kimia/buildah/engine.js';

describe('kimia engine version', () => {
  it('reads `buildah --version` of Debian 12 and 13', () => {
    expect(parseBuildahVersion('buildah version 1.28.2 (image-spec 1.1.0-rc.2, runtime-spec 1.0.2-dev)')).toEqual({ version: '1.28.2', major: 1, minor: 28, patch: 2 });
    expect(parseBuildahVersion('buildah version 1.39.3 (image-spec 1.1.0, runtime-spec 1.2.0)\n')!.version).toBe('1.39.3');
    expect(parseBuildahVersion('podman 5')).toBeUndefined();
  });

  it('compares and describes', () => {
    const v = parseBuildahVersion('buildah version 1.39.3')!;
    expect(atLeast(v, 1, 39)).toBe(true);
    expect(atLeast(v, 1, 40)).toBe(false);
    expect(atLeast(undefined, 1, 0)).toBe(false);
    expect(describeEngine({ path: '/usr/bin/buildah', ...v })).toBe('buildah 1.39.3 (/usr/bin/buildah)');
    expect(describeEngine(undefined)).toBe('buildah not found in PATH');
  });
});
