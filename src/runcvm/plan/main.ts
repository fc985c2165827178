/** Placeholder: replaced by the module that owns `runcvm plan`. */
export async function planMain(_argv: string[]): Promise<number> {
  process.stderr.write('runcvm plan: not available in this build yet\n');
  return 2;
}
