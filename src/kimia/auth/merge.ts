/**
 * Pure merge of registry credentials: $DOCKER_CONFIG/config.json entries, else the DOCKER_USERNAME /
 * DOCKER_PASSWORD / DOCKER_REGISTRY fallback → one containers-auth.json document plus the secret values that must
 * be redacted everywhere.
 */

export interface Credential {
  registry: string;
  username: string;
  password: string;
}

export interface AuthMerge {
  authJson: { auths: Record<string, { auth: string }> };
  credentials: Credential[];
  /** values (passwords, base64 user:password) to register with the redactor */
  secrets: string[];
  source: 'config.json' | 'environment' | 'none';
}

interface DockerConfigEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** "https://index.docker.io/v1/" → "docker.io"; "https://r.example:5000/v2/" → "r.example:5000". */
export function normalizeRegistry(key: string): string {
  let k = key.trim().replace(/^[a-z]+:\/\//i, '');
  k = k.split('/')[0]!;
  if (k === 'index.docker.io' || k === 'registry-1.docker.io' || k === 'registry.hub.docker.com') return 'docker.io';
  return k;
}

export function parseDockerConfig(text: string): Credential[] {
  const doc = JSON.parse(text) as { auths?: Record<string, DockerConfigEntry> };
  if (typeof doc !== 'object' || doc === null) throw new Error('not a JSON object');
  const out: Credential[] = [];
  for (const [key, entry] of Object.entries(doc.auths ?? {})) {
    if (!entry || typeof entry !== 'object') continue;
    let username = entry.username ?? '';
    let password = entry.password ?? entry.identitytoken ?? '';
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new Error(`auths["${key}"].auth is not base64 of user:password`);
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
    if (!username && !password) continue;
    out.push({ registry: normalizeRegistry(key), username, password });
  }
  return out;
}

export function mergeAuth(input: {
  configJson?: string;
  env: Record<string, string | undefined>;
  destinations: string[];
}): AuthMerge {
  let credentials: Credential[] = [];
  let source: AuthMerge['source'] = 'none';
  if (input.configJson !== undefined) {
    credentials = parseDockerConfig(input.configJson);
    source = 'config.json';
  } else if (input.env.DOCKER_USERNAME && input.env.DOCKER_PASSWORD) {
    const registry = input.env.DOCKER_REGISTRY
      ? normalizeRegistry(input.env.DOCKER_REGISTRY)
      : registryOf(input.destinations[0] ?? 'docker.io/library/x');
    credentials = [{ registry, username: input.env.DOCKER_USERNAME, password: input.env.DOCKER_PASSWORD }];
    source = 'environment';
  }
  const auths: Record<string, { auth: string }> = {};
  const secrets: string[] = [];
  for (const c of credentials) {
    const basic = Buffer.from(`${c.username}:${c.password}`).toString('base64');
    auths[c.registry] = { auth: basic };
    secrets.push(c.password, basic);
  }
  return { authJson: { auths }, credentials, secrets: secrets.filter(Boolean), source };
}

export function registryOf(ref: string): string {
  const first = ref.split('/')[0]!;
  return ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
}
