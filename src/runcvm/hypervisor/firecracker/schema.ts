/**
 * Our re-expression of Firecracker's published API (schemas/firecracker-api.json, taken from Firecracker v1.16.1) and
 * a small validator for the JSON-Schema subset it uses: type, required, properties, additionalProperties, enum,
 * minimum, maximum, pattern, items, $ref. Every builder checks its own output with it before returning; the fake
 * Firecracker used in tests checks every request it receives with an independent implementation of the same subset.
 * Pure: no I/O.
 */
import { FIRECRACKER_API_SCHEMA } from './api-schema.js';

/** A node of the schema as data (the subset we interpret). */
export interface SchemaNode {
  readonly type?: string | readonly string[];
  readonly required?: readonly string[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly additionalProperties?: boolean | SchemaNode;
  readonly enum?: readonly (string | number | boolean)[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly pattern?: string;
  readonly items?: SchemaNode;
  readonly $ref?: string;
  readonly description?: string;
}

export const SUPPORTED_KEYWORDS: ReadonlySet<string> = new Set([
  'type', 'required', 'properties', 'additionalProperties', 'enum', 'minimum', 'maximum', 'pattern', 'items', '$ref',
  'description',
]);

export type DefinitionName = keyof typeof FIRECRACKER_API_SCHEMA.definitions;
export const FIRECRACKER_VERSION: string = FIRECRACKER_API_SCHEMA['x-firecracker'].version;

const definitions = FIRECRACKER_API_SCHEMA.definitions as unknown as Record<string, SchemaNode>;

export interface SchemaViolation {
  /** JSON pointer into the value ('' for the root) */
  path: string;
  problem: string;
}

export function resolveRef(ref: string): SchemaNode {
  const m = /^#\/definitions\/(\w+)$/.exec(ref);
  const def = m?.[1] === undefined ? undefined : definitions[m[1]];
  if (!def) throw new Error(`schema: unresolvable $ref ${ref}`);
  return def;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(expected: string, actual: string): boolean {
  return expected === actual || (expected === 'number' && actual === 'integer');
}

function walk(node: SchemaNode, value: unknown, path: string, out: SchemaViolation[]): void {
  if (node.$ref) {
    walk(resolveRef(node.$ref), value, path, out);
    return;
  }
  const actual = typeOf(value);
  if (node.type !== undefined) {
    const types: readonly string[] = typeof node.type === 'string' ? [node.type] : node.type;
    if (!types.some((t) => typeMatches(t, actual))) {
      out.push({ path, problem: `invalid type: expected ${types.join(' or ')}, got ${actual}` });
      return;
    }
  }
  if (node.enum && !node.enum.includes(value as string | number | boolean)) {
    out.push({ path, problem: `unknown variant ${JSON.stringify(value)}, expected one of ${node.enum.map((e) => JSON.stringify(e)).join(', ')}` });
  }
  if (typeof value === 'number') {
    if (node.minimum !== undefined && value < node.minimum) out.push({ path, problem: `${value} is below the minimum ${node.minimum}` });
    if (node.maximum !== undefined && value > node.maximum) out.push({ path, problem: `${value} is above the maximum ${node.maximum}` });
  }
  if (typeof value === 'string' && node.pattern !== undefined && !new RegExp(node.pattern).test(value)) {
    out.push({ path, problem: `${JSON.stringify(value)} does not match ${node.pattern}` });
  }
  if (actual === 'array' && node.items) {
    (value as unknown[]).forEach((item, i) => walk(node.items as SchemaNode, item, `${path}/${i}`, out));
  }
  if (actual === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of node.required ?? []) {
      if (!(key in obj)) out.push({ path, problem: `missing field \`${key}\`` });
    }
    const props = node.properties ?? {};
    for (const [key, v] of Object.entries(obj)) {
      const child = props[key];
      if (child) walk(child, v, `${path}/${key}`, out);
      else if (node.additionalProperties === false) {
        out.push({ path, problem: `unknown field \`${key}\`, expected one of ${Object.keys(props).map((k) => `\`${k}\``).join(', ')}` });
      } else if (typeof node.additionalProperties === 'object') walk(node.additionalProperties, v, `${path}/${key}`, out);
    }
  }
}

/** Check `value` against a definition (or any node); returns every violation, empty when valid. */
export function violations(def: DefinitionName | SchemaNode, value: unknown): SchemaViolation[] {
  const node = typeof def === 'string' ? resolveRef(`#/definitions/${def}`) : def;
  const out: SchemaViolation[] = [];
  walk(node, value, '', out);
  return out;
}

export function formatViolations(what: string, vs: readonly SchemaViolation[]): string {
  return `${what}: ${vs.map((v) => (v.path ? `${v.path}: ${v.problem}` : v.problem)).join('; ')}`;
}

/** Our own output failed our schema: a runcvm bug, never a user error. */
export class SchemaError extends Error {
  constructor(
    readonly what: string,
    readonly violations: readonly SchemaViolation[],
  ) {
    super(formatViolations(`${what} does not match Firecracker ${FIRECRACKER_VERSION}'s API schema`, violations));
    this.name = 'SchemaError';
  }
}

export function assertValid(def: DefinitionName | SchemaNode, value: unknown, what: string): void {
  const vs = violations(def, value);
  if (vs.length) throw new SchemaError(what, vs);
}

export type HttpMethod = 'GET' | 'PUT' | 'PATCH';

export interface EndpointSpec {
  template: string;
  body?: DefinitionName;
  response?: DefinitionName;
  phase?: 'pre-boot' | 'post-boot';
  idField?: string;
}

const endpoints = FIRECRACKER_API_SCHEMA['x-endpoints'] as unknown as Record<string, Omit<EndpointSpec, 'template'>>;

/** Find the endpoint for `METHOD /path` ('/drives/root' matches 'PUT /drives/{drive_id}'); returns the path id too. */
export function findEndpoint(method: HttpMethod, path: string): { spec: EndpointSpec; id?: string } | undefined {
  for (const [key, spec] of Object.entries(endpoints)) {
    const [m, template] = key.split(' ') as [string, string];
    if (m !== method) continue;
    const re = new RegExp(`^${template.replace(/\{\w+\}/g, '([^/]+)')}$`);
    const match = re.exec(path);
    if (!match) continue;
    const result: { spec: EndpointSpec; id?: string } = { spec: { template, ...spec } };
    if (match[1] !== undefined) result.id = decodeURIComponent(match[1]);
    return result;
  }
  return undefined;
}

/** Validate one API request as Firecracker's API server would parse it (route, body schema, path id = body id). */
export function requestViolations(method: HttpMethod, path: string, body: unknown): SchemaViolation[] {
  const found = findEndpoint(method, path);
  if (!found) return [{ path: '', problem: `no such endpoint: ${method} ${path}` }];
  const { spec, id } = found;
  if (!spec.body) return body === undefined ? [] : [{ path: '', problem: `${method} ${spec.template} takes no body` }];
  if (body === undefined) return [{ path: '', problem: `${method} ${spec.template} needs a body` }];
  const vs = violations(spec.body, body);
  if (spec.idField && id !== undefined) {
    if (!/^\w+$/.test(id)) vs.push({ path: '', problem: `invalid id in the path: ${JSON.stringify(id)}` });
    const bodyId = (body as Record<string, unknown> | null)?.[spec.idField];
    if (typeof bodyId === 'string' && bodyId !== id) vs.push({ path: `/${spec.idField}`, problem: 'the id in the path does not match the id in the body' });
  }
  return vs;
}

/** The schema node of the --config-file document. */
export const CONFIG_FILE_DEFINITION: DefinitionName = 'VmmConfigFile';

/** Every keyword the schema file uses is one the validators implement (checked by a unit test). */
export function unsupportedKeywords(node: unknown = FIRECRACKER_API_SCHEMA.definitions, at = '#/definitions'): string[] {
  const found: string[] = [];
  if (node === null || typeof node !== 'object') return found;
  for (const [name, def] of Object.entries(node as Record<string, unknown>)) {
    if (def === null || typeof def !== 'object') continue;
    for (const key of Object.keys(def)) {
      if (!SUPPORTED_KEYWORDS.has(key)) found.push(`${at}/${name}: ${key}`);
    }
    const d = def as Record<string, unknown>;
    if (d.properties) found.push(...unsupportedKeywords(d.properties, `${at}/${name}/properties`));
    if (d.items && typeof d.items === 'object') found.push(...unsupportedKeywords({ items: d.items }, `${at}/${name}`));
    if (d.additionalProperties && typeof d.additionalProperties === 'object') {
      found.push(...unsupportedKeywords({ additionalProperties: d.additionalProperties }, `${at}/${name}`));
    }
  }
  return found;
}
