/** runcvm user-facing CLI entry point (placeholder until doctor/install land). */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'version') {
    const { projectVersion } = await import('../../core/version.js');
    process.stdout.write(`runcvm ${projectVersion()}\n`);
    return 0;
  }
  process.stderr.write('runcvm: not implemented yet\n');
  return 2;
}
