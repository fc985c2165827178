import { mkdtemp, mkdir, readdir, rm, truncate, writeFile, appendFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { utimes } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Logger } from '../../../../src/core/log/index.js';
import { boundNodeCache } from '../../../../src/runcvm/storage/apply.js';
import {
  listTemplates,
  lockPath,
  lockTemplate,
  removeTemplate,
  templateDir,
  templatesDir,
  tmpDirFor,
  verifyTemplate,
  writeTemplate,
  type WriteTemplateSteps,
} from '../../../../src/runcvm/template/store.js';

const KEY = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);

let cache: string;
beforeEach(async () => {
  cache = await mkdtemp(join(tmpdir(), 'runcvm-tmplstore-'));
});
afterEach(async () => {
  await rm(cache, { recursive: true, force: true });
});

/** a build that writes a small state and a sparse memory file, as a real save does */
const steps = (over: Partial<WriteTemplateSteps> = {}): WriteTemplateSteps => ({
  async build(files) {
    await writeFile(files.state, 'device state '.repeat(100));
    await writeFile(files.memory, 'ram');
    await truncate(files.memory, 8 * 1024 * 1024);
  },
  async verify() {},
  ...over,
});

/** a pid that surely is not running: a child that has exited */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

async function leftovers(): Promise<string[]> {
  return (await readdir(templatesDir(cache)).catch(() => [] as string[])).filter((n) => n.startsWith('.'));
}

describe('template store', () => {
  it('writes a template that verifies, leaving no tmp folder or lock', async () => {
    const r = await writeTemplate(cache, KEY, { hypervisor: 'qemu' }, steps());
    expect(r.built).toBe(true);
    const v = await verifyTemplate(templateDir(cache, KEY), KEY);
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.files.state).toBe(join(templateDir(cache, KEY), 'state'));
      expect(v.manifest.ramBytes).toBe(8 * 1024 * 1024);
      expect(v.manifest.shape).toEqual({ hypervisor: 'qemu' });
    }
    expect(await leftovers()).toEqual([]);
    // a second build of the same key makes nothing
    const again = await writeTemplate(cache, KEY, {}, steps({ build: async () => { throw new Error('must not build'); } }));
    expect(again).toMatchObject({ built: false, reason: 'the template exists' });
  });

  it('refuses a missing template, another key, a bad sha, a truncated state or memory file, a partial folder', async () => {
    expect(await verifyTemplate(templateDir(cache, KEY), KEY)).toEqual({ ok: false, reason: expect.stringMatching(/^no template manifest .*missing or partial/) });
    await writeTemplate(cache, KEY, {}, steps());
    const dir = templateDir(cache, KEY);
    expect(await verifyTemplate(dir, OTHER)).toEqual({ ok: false, reason: `the template is for key ${KEY.slice(0, 12)}, this VM needs ${OTHER.slice(0, 12)}` });

    const st = await stat(join(dir, 'state'));
    await truncate(join(dir, 'state'), st.size - 10);
    expect(await verifyTemplate(dir, KEY)).toEqual({ ok: false, reason: expect.stringMatching(/state file has \d+ bytes, the manifest says \d+ \(truncated or changed\)/) });
    await truncate(join(dir, 'state'), st.size - 20);
    await appendFile(join(dir, 'state'), 'X'.repeat(20));
    expect(await verifyTemplate(dir, KEY)).toEqual({ ok: false, reason: "the template's state file does not match its sha256 (corrupt)" });

    await removeTemplate(cache, KEY);
    await writeTemplate(cache, KEY, {}, steps());
    await truncate(join(dir, 'memory'), 4096);
    expect(await verifyTemplate(dir, KEY)).toEqual({ ok: false, reason: expect.stringMatching(/memory file has 4096 bytes/) });
    await rm(join(dir, 'memory'));
    expect(await verifyTemplate(dir, KEY)).toEqual({ ok: false, reason: 'the template has no memory file (partial template)' });
    await writeFile(join(dir, 'manifest.json'), '{"version":1');
    expect(await verifyTemplate(dir, KEY)).toEqual({ ok: false, reason: expect.stringMatching(/is not valid$/) });
  });

  it('a build that fails mid-write (or does not restore) leaves no usable template, no tmp folder, no lock', async () => {
    await expect(writeTemplate(cache, KEY, {}, steps({ async build(files) { await writeFile(files.state, 'half'); throw new Error('qemu died'); } }))).rejects.toThrow('qemu died');
    expect(await leftovers()).toEqual([]);
    expect((await verifyTemplate(templateDir(cache, KEY), KEY)).ok).toBe(false);
    await expect(writeTemplate(cache, KEY, {}, steps({ verify: async () => { throw new Error('no READY after RESUME'); } }))).rejects.toThrow('no READY');
    expect(await leftovers()).toEqual([]);
    expect(await readdir(templatesDir(cache))).toEqual([]);
  });

  it('one builder per key: a live holder wins, a dead holder\'s lock and tmp folder are taken over', async () => {
    const held = await lockTemplate(cache, KEY);
    expect(held.ok).toBe(true);
    const r = await writeTemplate(cache, KEY, {}, steps(), process.pid + 1);
    expect(r).toMatchObject({ built: false, reason: `another builder (pid ${process.pid}) is making it` });
    if (held.ok) await held.release();

    const dead = deadPid();
    await mkdir(templatesDir(cache), { recursive: true });
    await writeFile(lockPath(cache, KEY), `${dead}\n`);
    await mkdir(tmpDirFor(cache, KEY, dead));
    await writeFile(join(tmpDirFor(cache, KEY, dead), 'state'), 'partial');
    expect((await writeTemplate(cache, KEY, {}, steps())).built).toBe(true);
    expect(await leftovers()).toEqual([]);
  });

  it('lists templates with their allocated size; rm unlinks them', async () => {
    await writeTemplate(cache, KEY, { a: 1 }, steps());
    await mkdir(join(templatesDir(cache), OTHER));
    const list = await listTemplates(cache);
    expect(list.map((e) => [e.key, Boolean(e.manifest), e.problem])).toEqual([[KEY, true, undefined], [OTHER, false, 'no manifest (partial)']]);
    // sparse memory: far less than its 8 MiB apparent size
    expect(list[0]!.bytes).toBeLessThan(1024 * 1024);
    expect(await removeTemplate(cache, KEY)).toBe(true);
    expect(await removeTemplate(cache, KEY)).toBe(false);
    expect(await removeTemplate(cache, '../x')).toBe(false);
    expect((await listTemplates(cache)).map((e) => e.key)).toEqual([OTHER]);
    expect(await leftovers()).toEqual([]);
  });

  it('templates count in RUNCVM_CACHE_MAX with the base disks: least recently used first, never one a container uses', async () => {
    const C = 'c'.repeat(64);
    for (const k of [KEY, OTHER, C]) {
      await writeTemplate(cache, k, {}, steps({ async build(files) { await writeFile(files.state, 's'); await writeFile(files.memory, Buffer.alloc(256 * 1024, 1)); } }));
    }
    const disk = join(cache, 'd'.repeat(32) + '.ext4');
    await writeFile(disk, Buffer.alloc(256 * 1024, 1));
    // ages: disk oldest, then KEY (in use), OTHER, C newest
    const t = Date.now() / 1000;
    await utimes(disk, t - 400, t - 400);
    await utimes(templateDir(cache, KEY), t - 300, t - 300);
    await utimes(templateDir(cache, OTHER), t - 200, t - 200);
    await utimes(templateDir(cache, C), t - 100, t - 100);
    const state = join(cache, 'state');
    await mkdir(join(state, 'ctr1'), { recursive: true });
    await writeFile(join(state, 'ctr1', 'template'), templateDir(cache, KEY));
    // room for two entries: the disk and OTHER go (oldest not in use), KEY (in use) and C stay
    await boundNodeCache(cache, state, 600 * 1024, templateDir(cache, C), new Logger({ level: 'off', sinks: [] }));
    expect((await listTemplates(cache)).map((e) => e.key)).toEqual([KEY, C].sort());
    expect(await stat(disk).then(() => true, () => false)).toBe(false);
    expect(await leftovers()).toEqual([]);
  });
});
