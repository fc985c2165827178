import { describe, expect, it } from 'vitest';
import { checkRegistry, planImages, renderReport, reportImage, type ImagesRequest } from '../../../src/images/plan.js';
import { parseImagesArgs } from '../../../src/images/main.js';

const req = (o: Partial<ImagesRequest> = {}): ImagesRequest => ({
  registry: 'registry.example.com/platform', tag: '1.2.3', images: ['kimia'], baseImage: 'docker.io/library/debian:trixie-slim',
  cacheDir: '/cache', storageDriver: 'overlay', registryCertificates: [], insecureRegistries: [], dryRun: false, ...o,
});
const facts = { kimia: '/src/bin/kimia', revision: 'abc123', workDir: '/w' };

describe('images plan', () => {
  it('builds each image with the project kimia, the base image as a build argument, the layer cache and a digest file', () => {
    const [b] = planImages(req({ registryCertificates: ['/certs'] }), facts).builds;
    expect(b!.ref).toBe('registry.example.com/platform/kimia:1.2.3');
    expect(b!.command[0]).toBe('/src/bin/kimia');
    expect(b!.command).toEqual(expect.arrayContaining([
      '--context=/w/kimia', '--dockerfile=Dockerfile', '--destination=registry.example.com/platform/kimia:1.2.3',
      '--build-arg=BASE_IMAGE=docker.io/library/debian:trixie-slim', '--cache', '--cache-dir=/cache', '--digest-file=/w/kimia.digest',
      '--label=org.opencontainers.image.revision=abc123', '--registry-certificate=/certs',
    ]));
    expect(b!.dockerfile).toBe('images/kimia/Dockerfile');
  });

  it('refuses a registry without a host or a prefix, and a bad tag', () => {
    expect(() => checkRegistry('platform')).toThrow(/HOST\[:PORT\]\/PREFIX/);
    expect(() => checkRegistry('registry.example.com')).toThrow(/HOST\[:PORT\]\/PREFIX/);
    expect(checkRegistry('127.0.0.1:5000/test/')).toBe('127.0.0.1:5000/test');
    expect(() => planImages(req({ tag: '-bad' }), facts)).toThrow(/not a valid image tag/);
  });

  it('parses the command line; the tag defaults to the project version; --registry is required', () => {
    const r = parseImagesArgs(['--registry', 'localhost:5000/x', '--image=kimia', '--storage-driver', 'vfs'], {});
    expect(r).toMatchObject({ registry: 'localhost:5000/x', images: ['kimia'], storageDriver: 'vfs' });
    expect(r === 'help' ? '' : r.tag).toMatch(/^\d+\.\d+\.\d+/);
    expect(() => parseImagesArgs([], {})).toThrow(/--registry is required/);
    expect(() => parseImagesArgs(['--registry', 'a.b/c', '--image', 'nope'], {})).toThrow(/unknown image nope/);
    expect(parseImagesArgs(['--help'], {})).toBe('help');
  });

  it('reports layers with the step that made each (empty history entries skipped) and the compressed size', () => {
    const rep = reportImage('r/kimia:1', 'sha256:d', [{ digest: 'sha256:a', size: 2 * 1024 * 1024 }, { digest: 'sha256:b', size: 512 }], [
      { created_by: '/bin/sh -c #(nop) ADD file:x in /' }, { created_by: 'ENV A=b', empty_layer: true }, { created_by: '/bin/sh -c apt-get install -y buildah' },
    ]);
    expect(rep.compressedBytes).toBe(2 * 1024 * 1024 + 512);
    expect(rep.layers.map((l) => l.createdBy)).toEqual(['ADD file:x in /', 'RUN apt-get install -y buildah']);
    expect(renderReport(rep)).toMatch(/^r\/kimia:1@sha256:d: 2 layers, 2\.0 MiB compressed\n\s+2\.0 MiB {2}sha256:a\s+ADD file:x in \/\n\s+512 B/);
  });
});
