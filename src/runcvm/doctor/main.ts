/** Placeholder: replaced by the module that owns `runcvm doctor`. */
export async function doctorMain(_argv: string[]): Promise<number> {
  process.stderr.write('runcvm doctor: not available in this build yet\n');
  return 2;
}
