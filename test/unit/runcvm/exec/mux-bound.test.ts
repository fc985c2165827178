/**
 * The exec multiplexer drops a guest port that announces an oversized frame (threat model: guest root → host through
 * the exec agent): the connection is closed at once instead of buffering what the header claims.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame, FrameType, HEADER_BYTES } from '../../../../src/runcvm/agent/codec.js';
import { startExecMux, type ExecMux } from '../../../../src/runcvm/agent/mux.js';

let dir: string | undefined;
let mux: ExecMux | undefined;
afterEach(async () => {
  await mux?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const isSocket = (p: string) => stat(p).then((st) => st.isSocket(), () => false);

describe('exec mux', () => {
  // exec-prep.c and exec/main.ts take the socket's existence for "the VM runs commands now": `exec -d` then returns
  // once the command is started (runc's `exec [tty consolesize]`), never while the VM still boots
  it('opens the exec clients\' socket only once the guest agent says READY', async () => {
    dir = await mkdtemp(join(tmpdir(), 'runcvm-mux-'));
    const client = join(dir, 'client.sock');
    mux = await startExecMux({ portSocket: join(dir, 'port.sock'), clientSocket: client });
    const port = connect(join(dir, 'port.sock'));
    await new Promise<void>((r) => port.once('connect', () => r()));
    expect(await isSocket(client)).toBe(false);
    port.write(encodeFrame(FrameType.READY, 0, Buffer.alloc(0), 0));
    let open = false;
    for (let i = 0; i < 100 && !open; i++) {
      open = await isSocket(client);
      if (!open) await new Promise((r) => setTimeout(r, 20));
    }
    expect(open).toBe(true);
    port.destroy();
  });

  it('closes the guest port that announces a 1 GiB frame, and logs why', async () => {
    dir = await mkdtemp(join(tmpdir(), 'runcvm-mux-'));
    const lines: string[] = [];
    mux = await startExecMux({ portSocket: join(dir, 'port.sock'), clientSocket: join(dir, 'client.sock'), log: { debug: (m) => lines.push(m) } });
    const sock = connect(join(dir, 'port.sock'));
    await new Promise<void>((r) => sock.once('connect', () => r()));
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32BE(1024 * 1024 * 1024, 4);
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write(header);
    await closed;
    expect(lines.join('\n')).toMatch(/frame of 1073741824 bytes announced; the limit is 65536/);
  });
});
