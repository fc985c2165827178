import { describe, expect, it } from 'vitest';
import { FirecrackerApiError, FirecrackerClient } from '../../../../../src/runcvm/hypervisor/firecracker/client.js';
import { stopGracefully, type StopTarget } from '../../../../../src/runcvm/hypervisor/firecracker/stop.js';
import { SEND_CTRL_ALT_DEL } from '../../../../../src/runcvm/hypervisor/firecracker/plan.js';
import { requestViolations } from '../../../../../src/runcvm/hypervisor/firecracker/schema.js';
import type { ApiCall } from '../../../../../src/runcvm/hypervisor/firecracker/types.js';
import {
  CTRL_ALT_DEL_GRACE_MS, describeStop, signalAction, stopExitCode, STOP_SIGNALS, VMM_EXIT_AFTER_WORKLOAD_MS,
} from '../../../../../src/runcvm/launcher/plan-stop.js';

describe('signalAction: what the launcher does with a signal', () => {
  const base = { canStopVmm: true, channelConnected: false, stopping: false };

  it('Firecracker, guest not connected yet: SIGTERM and SIGINT stop the VM gracefully', () => {
    expect(signalAction({ ...base, name: 'SIGTERM', signal: 15 })).toEqual({ kind: 'graceful-stop', signal: 15 });
    expect(signalAction({ ...base, name: 'SIGINT', signal: 2 })).toEqual({ kind: 'graceful-stop', signal: 2 });
  });

  it('other signals are never a stop: queued for the workload as before', () => {
    for (const [name, signal] of [['SIGHUP', 1], ['SIGQUIT', 3], ['SIGUSR1', 10], ['SIGUSR2', 12]] as const) {
      expect(signalAction({ ...base, name, signal })).toEqual({ kind: 'forward', signal });
    }
  });

  it('channel connected: every signal goes to the workload (runc semantics), also under Firecracker', () => {
    expect(signalAction({ ...base, channelConnected: true, name: 'SIGTERM', signal: 15 })).toEqual({ kind: 'forward', signal: 15 });
    expect(signalAction({ ...base, channelConnected: true, name: 'SIGINT', signal: 2 })).toEqual({ kind: 'forward', signal: 2 });
  });

  it('QEMU (no API to stop through): unchanged, the signal is forwarded (queued until the channel connects)', () => {
    expect(signalAction({ ...base, canStopVmm: false, name: 'SIGTERM', signal: 15 })).toEqual({ kind: 'forward', signal: 15 });
  });

  it('a second stop signal while stopping does nothing more; others still reach the workload', () => {
    expect(signalAction({ ...base, stopping: true, name: 'SIGTERM', signal: 15 })).toEqual({ kind: 'ignore' });
    expect(signalAction({ ...base, stopping: true, name: 'SIGINT', signal: 2 })).toEqual({ kind: 'ignore' });
    expect(signalAction({ ...base, stopping: true, name: 'SIGHUP', signal: 1 })).toEqual({ kind: 'forward', signal: 1 });
  });

  it('exit code 128+N; the stop signals and the bounded waits', () => {
    expect(stopExitCode(15)).toBe(143);
    expect(stopExitCode(2)).toBe(130);
    expect(STOP_SIGNALS).toEqual({ SIGTERM: 15, SIGINT: 2 });
    // shorter than docker stop's 10 s grace, so the launcher ends the VM itself before the engine's SIGKILL
    expect(CTRL_ALT_DEL_GRACE_MS).toBeLessThan(10_000);
    expect(VMM_EXIT_AFTER_WORKLOAD_MS).toBeGreaterThan(0);
  });

  it('one log line per outcome', () => {
    expect(describeStop('SIGTERM before the guest connected', { sent: true, graceful: true, alreadyExited: false }, 5000)).toBe(
      'SIGTERM before the guest connected: sent SendCtrlAltDel; firecracker exited within 5000 ms',
    );
    expect(describeStop('x', { sent: true, graceful: false, alreadyExited: false }, 5000)).toBe('x: sent SendCtrlAltDel; firecracker did not exit within 5000 ms, killed it (SIGKILL)');
    expect(describeStop('x', { sent: false, graceful: false, alreadyExited: false, problem: 'ECONNREFUSED' }, 5000)).toBe(
      'x: SendCtrlAltDel could not be sent (ECONNREFUSED); firecracker killed (SIGKILL)',
    );
    expect(describeStop('x', { sent: false, graceful: true, alreadyExited: true }, 5000)).toBe('x: firecracker had already exited');
    expect(describeStop('x', { sent: false, graceful: true, alreadyExited: false }, 5000)).toBe('x: firecracker exited before SendCtrlAltDel could be sent');
  });
});

/** A client that records calls instead of talking HTTP; `answer` decides what each call does. */
class RecordingClient extends FirecrackerClient {
  readonly calls: ApiCall[] = [];
  constructor(private readonly answer: (call: ApiCall) => Promise<unknown>) {
    super('/nonexistent/firecracker.sock');
  }
  override call(call: ApiCall): Promise<unknown> {
    this.calls.push(call);
    return this.answer(call);
  }
}

/** A stand-in Firecracker process: ends when `end()` is called (or when killed). */
function vmm(client: FirecrackerClient) {
  let running = true;
  let end!: () => void;
  const exited = new Promise<void>((r) => {
    end = () => {
      running = false;
      r();
    };
  });
  const kills: string[] = [];
  const target: StopTarget = {
    client,
    exited,
    isRunning: () => running,
    kill: () => {
      kills.push('SIGKILL');
      if (running) end();
    },
  };
  return { target, kills, end };
}

describe('stopGracefully (shared by the driver and the launcher)', () => {
  it('sends one schema-valid SendCtrlAltDel; a VMM that then ends is not killed', async () => {
    const vmmOf: { current?: ReturnType<typeof vmm> } = {};
    const client = new RecordingClient(async () => {
      vmmOf.current?.end(); // the guest resets on Ctrl-Alt-Del and Firecracker exits
      return undefined;
    });
    const v = vmm(client);
    vmmOf.current = v;
    const out = await stopGracefully(v.target, 60_000);
    expect(out).toEqual({ sent: true, graceful: true, alreadyExited: false });
    expect(client.calls).toEqual([SEND_CTRL_ALT_DEL]);
    expect(client.calls[0]).toEqual({ method: 'PUT', path: '/actions', body: { action_type: 'SendCtrlAltDel' } });
    expect(requestViolations('PUT', '/actions', client.calls[0]!.body)).toEqual([]);
    expect(v.kills).toEqual([]);
  });

  it('a VMM that ignores it is SIGKILLed after the wait', async () => {
    const client = new RecordingClient(async () => undefined);
    const v = vmm(client);
    const out = await stopGracefully(v.target, 1);
    expect(out).toEqual({ sent: true, graceful: false, alreadyExited: false });
    expect(v.kills).toEqual(['SIGKILL']);
  });

  it('an API that refuses (e.g. not booted yet) or is not there: SIGKILL at once, with the reason', async () => {
    const refusing = new RecordingClient(async (c) => {
      throw new FirecrackerApiError(c, 400, 'The requested operation is not supported before starting the microVM.');
    });
    const v = vmm(refusing);
    const out = await stopGracefully(v.target, 60_000);
    expect(out.sent).toBe(false);
    expect(out.graceful).toBe(false);
    expect(out.problem).toContain('not supported before starting the microVM');
    expect(v.kills).toEqual(['SIGKILL']);

    const absent = vmm(
      new RecordingClient(async () => {
        throw Object.assign(new Error('connect ENOENT /.runcvm/state/firecracker.sock'), { code: 'ENOENT' });
      }),
    );
    const out2 = await stopGracefully(absent.target, 60_000);
    expect(out2).toMatchObject({ sent: false, graceful: false });
    expect(out2.problem).toMatch(/ENOENT/);
    expect(absent.kills).toEqual(['SIGKILL']);
  });

  it('an already ended VMM: no call, no kill', async () => {
    const client = new RecordingClient(async () => undefined);
    const v = vmm(client);
    v.end();
    expect(await stopGracefully(v.target, 60_000)).toEqual({ sent: false, graceful: true, alreadyExited: true });
    expect(client.calls).toEqual([]);
    expect(v.kills).toEqual([]);
  });
});
