/** Placeholder: replaced by the module that owns `runcvm nfs`. */
export async function nfsServeMain(_argv: string[]): Promise<number> {
  process.stderr.write('runcvm nfs: not available in this build yet\n');
  return 2;
}
