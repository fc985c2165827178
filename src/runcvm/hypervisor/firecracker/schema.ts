/**
 * Our re-expression of Firecracker's published API (schemas/firecracker-api.json, taken from Firecracker v1.16.1),
 * checked with zod: the JSON-Schema subset it uses (type, required, properties, additionalProperties, enum, minimum,
 * maximum, pattern, items, $ref) becomes zod schemas, with Firecracker's own wording in the messages. Every builder
 * checks its own output before returning. The fake Firecracker used in tests plays Firecracker's side: it checks
 * every request it receives with its own interpreter of the same file (it runs from the guest package, without our
 * node_modules, and must not share our code, or a bug in one would hide in the other). Pure: no I/O.
 */
import { z } from 'zod';
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

/** zod issue → one violation (or several, one per unknown key), in Firecracker's (serde's) words */
const typeMessage = (expected: string) => (_issue: z.ZodIssueOptionalMessage, ctx: { data: unknown; defaultError: string }) => ({
  message: ctx.data === undefined ? 'missing' : `invalid type: expected ${expected}, got ${typeOf(ctx.data)}`,
});

/**
 * The JSON-Schema subset of SUPPORTED_KEYWORDS as a zod schema, built once per node: zod does the checking, the
 * messages say what Firecracker's serde says (unknown field, invalid type, missing field, unknown variant).
 */
const compiled = new WeakMap<SchemaNode, z.ZodTypeAny>();

function toZod(node: SchemaNode): z.ZodTypeAny {
  const hit = compiled.get(node);
  if (hit) return hit;
  const built = build(node);
  compiled.set(node, built);
  return built;
}

function build(node: SchemaNode): z.ZodTypeAny {
  if (node.$ref) {
    const ref = node.$ref;
    return z.lazy(() => toZod(resolveRef(ref)));
  }
  const types: readonly string[] = node.type === undefined ? [] : typeof node.type === 'string' ? [node.type] : node.type;
  if (types.length > 1) return z.union(types.map((t) => build({ ...node, type: t })) as unknown as [z.ZodTypeAny, z.ZodTypeAny]);
  const type = types[0];
  let schema: z.ZodTypeAny;
  if (type === 'object') {
    const props = node.properties ?? {};
    const required = new Set(node.required ?? []);
    const shape = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, required.has(k) ? toZod(v) : toZod(v).optional()]));
    // a required field that has no schema of its own still has to be there
    for (const k of required) if (!(k in shape)) shape[k] = z.unknown().refine((v) => v !== undefined, { message: 'missing' });
    const obj = z.object(shape, { errorMap: typeMessage('object') });
    const ap = node.additionalProperties;
    schema = ap === false ? obj.strict() : typeof ap === 'object' ? obj.catchall(toZod(ap)) : obj.passthrough();
  } else if (type === 'array') {
    schema = z.array(node.items ? toZod(node.items) : z.unknown(), { errorMap: typeMessage('array') });
  } else if (type === 'integer' || type === 'number') {
    const n = z.number({ errorMap: typeMessage(type) });
    schema = type === 'integer' ? n.int({ message: 'invalid type: expected integer, got number' }) : n;
    const { minimum, maximum } = node;
    if (minimum !== undefined) schema = schema.refine((v: number) => v >= minimum, (v: number) => ({ message: `${v} is below the minimum ${minimum}` }));
    if (maximum !== undefined) schema = schema.refine((v: number) => v <= maximum, (v: number) => ({ message: `${v} is above the maximum ${maximum}` }));
  } else if (type === 'string') {
    schema = z.string({ errorMap: typeMessage('string') });
    const { pattern } = node;
    if (pattern !== undefined) {
      const re = new RegExp(pattern);
      schema = schema.refine((v: string) => re.test(v), (v: string) => ({ message: `${JSON.stringify(v)} does not match ${pattern}` }));
    }
  } else if (type === 'boolean') {
    schema = z.boolean({ errorMap: typeMessage('boolean') });
  } else if (type === 'null') {
    schema = z.null({ errorMap: typeMessage('null') });
  } else {
    schema = z.unknown();
  }
  const choices = node.enum;
  if (choices) {
    schema = schema.refine(
      (v: unknown) => choices.includes(v as string | number | boolean),
      (v: unknown) => ({ message: `unknown variant ${JSON.stringify(v)}, expected one of ${choices.map((e) => JSON.stringify(e)).join(', ')}` }),
    );
  }
  return schema;
}

function pointer(path: readonly (string | number)[]): string {
  return path.map((p) => `/${p}`).join('');
}

function fromIssue(issue: z.ZodIssue, node: (path: readonly (string | number)[]) => SchemaNode | undefined): SchemaViolation[] {
  if (issue.message === 'missing') {
    const parent = issue.path.slice(0, -1);
    return [{ path: pointer(parent), problem: `missing field \`${String(issue.path.at(-1))}\`` }];
  }
  if (issue.code === 'unrecognized_keys') {
    const props = Object.keys(node(issue.path)?.properties ?? {});
    const expected = props.map((k) => `\`${k}\``).join(', ');
    return issue.keys.map((k) => ({ path: pointer(issue.path), problem: `unknown field \`${k}\`, expected one of ${expected}` }));
  }
  return [{ path: pointer(issue.path), problem: issue.message }];
}

/** The schema node at a value path (for the expected field names of an unknown-field message). */
function nodeAt(root: SchemaNode, path: readonly (string | number)[]): SchemaNode | undefined {
  let n: SchemaNode | undefined = root;
  for (const p of path) {
    while (n?.$ref) n = resolveRef(n.$ref);
    if (!n) return undefined;
    n = typeof p === 'number' ? n.items : (n.properties?.[p] ?? (typeof n.additionalProperties === 'object' ? n.additionalProperties : undefined));
  }
  while (n?.$ref) n = resolveRef(n.$ref);
  return n;
}

/** Check `value` against a definition (or any node); returns every violation, empty when valid. */
export function violations(def: DefinitionName | SchemaNode, value: unknown): SchemaViolation[] {
  const node = typeof def === 'string' ? resolveRef(`#/definitions/${def}`) : def;
  const r = toZod(node).safeParse(value);
  return r.success ? [] : r.error.issues.flatMap((i) => fromIssue(i, (p) => nodeAt(node, p)));
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
