/** kimia entry point (placeholder until the build pipeline lands). */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'version') {
    const { projectVersion } = await import('../core/version.js');
    process.stdout.write(`kimia ${projectVersion()}\n`);
    return 0;
  }
  process.stderr.write('kimia: not implemented yet\n');
  return 2;
}
