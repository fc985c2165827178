/**
 * Compare two images the way a user would notice a difference: the runtime config (Env, Cmd, Entrypoint, WorkingDir,
 * User, ExposedPorts, Volumes, Labels, Healthcheck, StopSignal, Shell, OnBuild) and the flattened filesystem (path,
 * type, mode, owner, symlink target, content hash; timestamps ignored).
 *
 *   const a = await snapshotImage(`docker://${ref}`, dir, { tlsVerify: false });
 *   const diffs = compareImages(kimiaSnap, dockerSnap);   // [] when they are the same
 *
 * Layers are applied in order with OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`); a hard link becomes a file with its
 * target's content. Images are read through `skopeo copy` into an OCI layout (no daemon).
 */
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/core/exec/index.js';

export const COMPARED_CONFIG = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'Healthcheck', 'StopSignal', 'Shell', 'OnBuild'] as const;
export type ConfigKey = (typeof COMPARED_CONFIG)[number];

export interface FsEntry {
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';
  /** permission bits with setuid/setgid/sticky (no file-type bits) */
  mode: number;
  uid: number;
  gid: number;
  linkTarget?: string;
  sha256?: string;
  /** the content of a small text file, for messages (the hash already says whether it differs) */
  text?: string;
}

export interface ImageSnapshot {
  config: Record<ConfigKey, unknown>;
  files: Map<string, FsEntry>;
  mediaType: string;
}

export interface Difference {
  where: 'config' | 'fs';
  /** config key, or the path in the image */
  key: string;
  kimia: unknown;
  docker: unknown;
}

function normPath(p: string): string {
  return p.replace(/^\.?\/+/, '').replace(/^\.\//, '').replace(/\/+$/, '');
}

/** Zero-valued Healthcheck durations and retries are what an unset option looks like in either engine. */
function normHealthcheck(h: unknown): unknown {
  if (!h || typeof h !== 'object') return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h as Record<string, unknown>)) if (v !== 0 && v !== undefined && v !== null) out[k] = v;
  return out;
}

/** Absent, null and empty mean the same to a container runtime; order of object keys and of Env does not matter. */
export function normalizeConfig(raw: Record<string, unknown> | undefined): Record<ConfigKey, unknown> {
  const c = raw ?? {};
  const list = (v: unknown) => (Array.isArray(v) && v.length ? v : null);
  const obj = (v: unknown) => {
    if (!v || typeof v !== 'object' || !Object.keys(v).length) return null;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)));
  };
  return {
    // the order of distinct variables has no effect (Buildah moves a variable set again, e.g. PATH, to its new place)
    Env: list(Array.isArray(c.Env) ? [...(c.Env as string[])].sort() : c.Env),
    Cmd: list(c.Cmd),
    Entrypoint: list(c.Entrypoint),
    WorkingDir: (c.WorkingDir as string | undefined) || null,
    User: (c.User as string | undefined) || null,
    ExposedPorts: obj(c.ExposedPorts),
    Volumes: obj(c.Volumes),
    Labels: obj(c.Labels),
    Healthcheck: normHealthcheck(c.Healthcheck),
    StopSignal: (c.StopSignal as string | undefined) || null,
    Shell: list(c.Shell),
    OnBuild: list(c.OnBuild),
  };
}

interface LayerEntry extends FsEntry {
  path: string;
  hardlinkTo?: string;
}

function tarString(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end >= 0 && end < off + len ? end : off + len);
}

function tarNumber(b: Buffer, off: number, len: number): number {
  // base-256 (GNU) for values that do not fit in octal: large uids such as 491327 may use it
  if (b[off]! & 0x80) {
    let v = b[off]! & 0x7f;
    for (let k = 1; k < len; k++) v = v * 256 + b[off + k]!;
    return v;
  }
  const text = tarString(b, off, len).trim();
  return text ? Number.parseInt(text, 8) : 0;
}

function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    if (space < 0) break;
    const len = Number.parseInt(data.toString('utf8', off, space), 10);
    if (!len) break;
    const rec = data.toString('utf8', space + 1, off + len - 1);
    const eq = rec.indexOf('=');
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

/**
 * A small tar reader (ustar, PAX and GNU long names, base-256 numbers). node-tar refuses entries that carry a link
 * name they should not have, and BuildKit writes its whiteouts that way, so a whiteout would silently be missed.
 */
async function readLayer(file: string): Promise<LayerEntry[]> {
  const { gunzipSync } = await import('node:zlib');
  let b = await readFile(file);
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b);
  const entries: LayerEntry[] = [];
  let off = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  while (off + 512 <= b.length) {
    if (b.subarray(off, off + 512).every((x) => x === 0)) break;
    const type = String.fromCharCode(b[off + 156] || 0x30);
    const size = pax.size !== undefined ? Number(pax.size) : tarNumber(b, off + 124, 12);
    const data = b.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') { pax = { ...pax, ...paxRecords(data) }; continue; }
    if (type === 'g') continue;
    if (type === 'L') { longName = tarString(data, 0, data.length); continue; }
    if (type === 'K') { longLink = tarString(data, 0, data.length); continue; }
    const h = off - 512 - Math.ceil(size / 512) * 512;
    const prefix = b.toString('utf8', h + 257, h + 263).startsWith('ustar') ? tarString(b, h + 345, 155) : '';
    const rawName = pax.path ?? longName ?? (prefix ? `${prefix}/${tarString(b, h, 100)}` : tarString(b, h, 100));
    const link = pax.linkpath ?? longLink ?? tarString(b, h + 157, 100);
    const base = {
      path: normPath(rawName),
      mode: tarNumber(b, h + 100, 8) & 0o7777,
      uid: pax.uid !== undefined ? Number(pax.uid) : tarNumber(b, h + 108, 8),
      gid: pax.gid !== undefined ? Number(pax.gid) : tarNumber(b, h + 116, 8),
    };
    pax = {};
    longName = undefined;
    longLink = undefined;
    switch (type) {
      case '1': entries.push({ ...base, type: 'file', hardlinkTo: normPath(link) }); break;
      case '2': entries.push({ ...base, type: 'symlink', linkTarget: link }); break;
      case '3': entries.push({ ...base, type: 'char' }); break;
      case '4': entries.push({ ...base, type: 'block' }); break;
      case '5': entries.push({ ...base, type: 'dir' }); break;
      case '6': entries.push({ ...base, type: 'fifo' }); break;
      default: {
        const entry: LayerEntry = { ...base, type: 'file', sha256: createHash('sha256').update(data).digest('hex') };
        if (size <= 200) entry.text = data.toString('utf8');
        entries.push(entry);
      }
    }
  }
  return entries;
}

function removeTree(files: Map<string, FsEntry>, path: string, keepSelf: boolean): void {
  for (const p of [...files.keys()]) {
    if (p === path ? !keepSelf : p.startsWith(`${path}/`) || path === '') files.delete(p);
  }
}

/** Apply an image's layers (tar, possibly gzipped) in order into one path → entry map. */
export async function flattenLayers(layerFiles: string[]): Promise<Map<string, FsEntry>> {
  const files = new Map<string, FsEntry>();
  for (const layer of layerFiles) {
    const entries = await readLayer(layer);
    // whiteouts hide what the lower layers had; this layer's own entries stay
    for (const e of entries) {
      const slash = e.path.lastIndexOf('/');
      const dir = slash >= 0 ? e.path.slice(0, slash) : '';
      const name = e.path.slice(slash + 1);
      if (name === '.wh..wh..opq') removeTree(files, dir, true);
      else if (name.startsWith('.wh.')) removeTree(files, (dir ? `${dir}/` : '') + name.slice(4), false);
    }
    for (const e of entries) {
      const name = e.path.slice(e.path.lastIndexOf('/') + 1);
      if (name.startsWith('.wh.') || e.path === '') continue;
      const { path, hardlinkTo, ...entry } = e;
      if (hardlinkTo !== undefined) {
        const target = files.get(hardlinkTo) ?? entries.find((x) => x.path === hardlinkTo);
        if (target?.sha256) entry.sha256 = target.sha256;
        if (target?.text !== undefined) entry.text = target.text;
      }
      // a directory entry in an upper layer replaces the metadata, not the children; anything else replaces a folder
      if (entry.type !== 'dir' && files.get(path)?.type === 'dir') removeTree(files, path, false);
      files.set(path, entry);
    }
  }
  return files;
}

/** Copy `source` (a containers-image transport reference) into an OCI layout under `dir` and read it. */
export async function snapshotImage(source: string, dir: string, opts: { tlsVerify?: boolean } = {}): Promise<ImageSnapshot> {
  const layout = join(dir, `layout-${Math.random().toString(36).slice(2)}`);
  await run('skopeo', ['copy', '--quiet', ...(opts.tlsVerify === false ? ['--src-tls-verify=false'] : []), source, `oci:${layout}:x`], { timeoutMs: 300_000 });
  const blob = (d: string) => join(layout, 'blobs', 'sha256', d.replace('sha256:', ''));
  // the media type the registry served: skopeo copy into OCI converts, so ask the source
  const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', ...(opts.tlsVerify === false ? ['--tls-verify=false'] : []), source])).stdout) as { mediaType?: string };
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as { config?: Record<string, unknown> };
  const files = await flattenLayers(manifest.layers.map((l) => blob(l.digest)));
  // the snapshot is all a comparison needs: a suite of debootstrap-based images would otherwise fill the disk
  await rm(layout, { recursive: true, force: true });
  return { config: normalizeConfig(config.config), files, mediaType: raw.mediaType ?? '' };
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Every config key and path where the two images differ (kimia first, docker second). */
export function compareImages(kimia: ImageSnapshot, docker: ImageSnapshot): Difference[] {
  const out: Difference[] = [];
  for (const k of COMPARED_CONFIG) {
    if (!same(kimia.config[k], docker.config[k])) out.push({ where: 'config', key: k, kimia: kimia.config[k], docker: docker.config[k] });
  }
  const paths = [...new Set([...kimia.files.keys(), ...docker.files.keys()])].sort();
  for (const p of paths) {
    const a = kimia.files.get(p);
    const b = docker.files.get(p);
    if (!same(a, b)) out.push({ where: 'fs', key: p, kimia: a ?? null, docker: b ?? null });
  }
  return out;
}

/** One line per difference, for assertion messages. */
export function describeDifferences(diffs: Difference[]): string {
  const show = (v: unknown) => {
    if (v && typeof v === 'object' && 'mode' in (v as object)) {
      const e = v as FsEntry;
      return `${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid}${e.linkTarget !== undefined ? ` -> ${e.linkTarget}` : ''}${e.sha256 ? ` ${e.sha256.slice(0, 12)}` : ''}${e.text !== undefined ? ` ${JSON.stringify(e.text)}` : ''}`;
    }
    return JSON.stringify(v);
  };
  return diffs.map((d) => `${d.where} ${d.key}: kimia ${show(d.kimia)} | docker ${show(d.docker)}`).join('\n');
}
