import { readFileSync } from 'node:fs';
import { projectPath } from './paths.js';

export function projectVersion(): string {
  const pkg = JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
