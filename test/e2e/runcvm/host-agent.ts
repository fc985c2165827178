/**
 * The guest exec agent run on the host in its test mode (`runcvm-agent --socket PATH`), behind the launcher's real
 * exec mux: what exec-agent.test.ts and caps-agent.test.ts talk to without booting a VM. The source lists match
 * scripts/assets/30-runtime.sh, so a new guest source file is added in one place for the tests.
 */
import { join } from 'node:path';
import { run, spawnChild } from '../../../src/core/exec/index.js';
import type { CloserStack } from '../../../src/core/fsx/index.js';
import { projectPath } from '../../../src/core/paths.js';
import { startExecMux } from '../../../src/runcvm/agent/mux.js';

const guest = (f: string) => projectPath('src', 'runcvm', 'guest', f);
export const AGENT_SOURCES = ['agent.c', 'io.c', 'caps.c'].map(guest);
export const EXEC_CLIENT_SOURCES = ['exec-client.c', 'io.c'].map(guest);

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
  return { clientSocket };
}
