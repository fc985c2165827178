/** Placeholder: replaced by the module that owns `runcvm install`. */
export async function installMain(_argv: string[]): Promise<number> {
  process.stderr.write('runcvm install: not available in this build yet\n');
  return 2;
}
