/**
 * The guest exec agent run on the host in its test mode (`runcvm-agent --socket PATH`), behind the launcher's real
 * exec mux: what exec-agent.test.ts and caps-agent.test.ts talk to without booting a VM. The source lists come from
 * src/runcvm/guest/sources.txt, as scripts/assets/30-runtime.sh reads them: a new guest source file is added there once.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { run, spawnChild } from '../../../src/core/exec/index.js';
import type { CloserStack } from '../../../src/core/fsx/index.js';
import { startExecMux } from '../../../src/runcvm/agent/mux.js';
import { guestSources } from '../guest-helpers.js';

export const AGENT_SOURCES = guestSources('runcvm-agent');
export const EXEC_CLIENT_SOURCES = guestSources('runcvm-exec');

/** gcc -static with warnings as errors: the same flags for every guest binary a test builds. */
export async function buildGuestBinary(output: string, sources: string[]): Promise<string> {
  await run('gcc', ['-static', '-Os', '-Wall', '-Wextra', '-Werror', '-o', output, ...sources], { timeoutMs: 120_000 });
  return output;
}

/** Build the agent into `dir`, start the mux and the agent; both are stopped by `closers`. */
export async function startHostAgent(dir: string, closers: CloserStack): Promise<{ clientSocket: string }> {
  const agent = await buildGuestBinary(join(dir, 'runcvm-agent'), AGENT_SOURCES);
  const clientSocket = join(dir, 'exec.sock');
  const mux = await startExecMux({ portSocket: join(dir, 'agent.sock'), clientSocket });
  closers.push('mux', () => mux.close());
  const child = await spawnChild(agent, ['--socket', join(dir, 'agent.sock')], { output: { file: join(dir, 'agent.log') }, detached: true });
  closers.push('agent', async () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  // the mux opens the clients' socket once the agent said READY (as the launcher does for a booted VM)
  for (let i = 0; i < 200 && !(await stat(clientSocket).then((st) => st.isSocket(), () => false)); i++) await new Promise((r) => setTimeout(r, 50));
  return { clientSocket };
}
