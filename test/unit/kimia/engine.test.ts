import { describe, expect, it } from 'vitest';
import { describeEngine, parseEngineVersion } from '../../../src/kimia/buildah/engine.js';

describe('kimia version: the engine line', () => {
  it('names the Buildah release and its path, or why it is unknown', () => {
    const v = parseEngineVersion('buildah version 1.39.3 (image-spec 1.1.0, runtime-spec 1.2.0)\n');
    expect(describeEngine(v, '/usr/bin/buildah')).toBe('buildah 1.39.3 (/usr/bin/buildah)');
    expect(describeEngine(undefined, '/usr/bin/buildah')).toMatch(/version unknown/);
    expect(describeEngine(undefined)).toBe('buildah not found in PATH');
  });
});
