/**
 * Kubernetes manifest reader: one file may hold several YAML documents. Each document becomes a `ManifestObject`
 * with its kind, name and a `lineOf(path)` that answers the 1-based line of any path inside it, so lint findings can
 * say "pod.yaml:14: …". Pure: takes the text, never reads files.
 */
import { LineCounter, parseAllDocuments, isMap, isSeq, isScalar, type Node as YamlNode } from 'yaml';

/** A path into a document: object keys and array indexes, e.g. ['spec', 'containers', 0, 'image']. */
export type K8sPath = readonly (string | number)[];

export interface ManifestObject {
  /** 0-based index of the document in the file */
  readonly index: number;
  readonly kind: string;
  readonly apiVersion: string;
  readonly name: string;
  /** the document as plain data */
  readonly value: Record<string, unknown>;
  /** line (1-based) of the document's first content */
  readonly line: number;
  /**
   * Line of the deepest existing node along `path`: the key's line for a map entry, the item's line for a sequence
   * entry. A path that does not exist answers the line of its nearest existing parent.
   */
  lineOf(path: K8sPath): number;
}

export interface ManifestParseError {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export interface ManifestFile {
  readonly objects: ManifestObject[];
  readonly errors: ManifestParseError[];
}

export function readManifests(text: string): ManifestFile {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const objects: ManifestObject[] = [];
  const errors: ManifestParseError[] = [];
  if (!Array.isArray(docs)) return { objects, errors };
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
  docs.forEach((doc, index) => {
    for (const err of doc.errors) {
      const pos = lineCounter.linePos(err.pos[0]);
      errors.push({ line: pos.line, column: pos.col, message: err.message.split('\n')[0] ?? err.message });
    }
    if (doc.errors.length > 0) return;
    const root = doc.contents;
    if (!root || !isMap(root)) return;
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (!isRecord(value)) return;
    const startLine = root.range ? lineAt(root.range[0]) : 1;
    objects.push({
      index,
      kind: typeof value.kind === 'string' ? value.kind : '',
      apiVersion: typeof value.apiVersion === 'string' ? value.apiVersion : '',
      name: isRecord(value.metadata) && typeof value.metadata.name === 'string' ? value.metadata.name : '',
      value,
      line: startLine,
      lineOf: (path) => lineOfPath(root, path, startLine, lineAt),
    });
  });
  return { objects, errors };
}

function lineOfPath(root: YamlNode, path: K8sPath, fallback: number, lineAt: (offset: number) => number): number {
  let node: unknown = root;
  let line = fallback;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) return line;
      const key = pair.key as YamlNode;
      if (key.range) line = lineAt(key.range[0]);
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment] as YamlNode | undefined;
      if (!item) return line;
      if (item.range) line = lineAt(item.range[0]);
      node = item;
    } else {
      return line;
    }
  }
  return line;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
