/**
 * Where kimia's own time goes in a build (Node start-up, preparation, preflight, build key, the gaps around
 * Buildah's processes), for `-v debug`: marks are taken on every run (an array push each) and printed only at debug
 * level, as one `timing:` line of milliseconds since the process started.
 */
const marks: { name: string; at: number }[] = [];

/** Record that `name` happened now (performance.now() counts from process start). */
export function mark(name: string): void {
  marks.push({ name, at: performance.now() });
  if (name === 'bud') cpuAtBud = ownCpuMs();
}
let cpuAtBud = 0;

/**
 * "main 52 · modules 61 · …": each mark in the order taken, in ms since the process started; then kimia's own CPU
 * time (user + system, its children not included), in all and up to the buildah spawn.
 */
export function timingLine(list: readonly { name: string; at: number }[] = marks, cpu = { totalMs: ownCpuMs(), beforeBudMs: cpuAtBud }): string {
  return `${list.map((m) => `${m.name} ${Math.round(m.at)}`).join(' · ')}; kimia's own cpu ${Math.round(cpu.totalMs)} ms (${Math.round(cpu.beforeBudMs)} ms before buildah)`;
}

function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** The marks taken so far (tests). */
export function timingMarks(): readonly { name: string; at: number }[] {
  return marks;
}
