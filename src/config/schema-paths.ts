// Asks whether a key path exists in the config schema, for the loader's reading of `MAOS_*`
// names whose last word is FILE (`MAOS_TLS__CERT_FILE` names `tls.certFile`, not a `_FILE` secret).
import { z } from 'zod';
import { configSchema } from './schema.ts';

interface JsonSchemaNode {
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: JsonSchemaNode | boolean;
  anyOf?: JsonSchemaNode[];
}

let root: JsonSchemaNode | undefined;

/** True when `path` (e.g. `['tls', 'certFile']`) names a key of the schema; map entries match any name. */
export function isConfigPath(path: readonly string[]): boolean {
  root ??= z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  return walk(root, path);
}

function walk(node: JsonSchemaNode, path: readonly string[]): boolean {
  const [head, ...rest] = path;
  if (head === undefined) return true;
  if (node.anyOf) return node.anyOf.some((option) => walk(option, path));
  const child = node.properties?.[head];
  if (child) return walk(child, rest);
  const entry = node.additionalProperties;
  return typeof entry === 'object' && walk(entry, rest);
}
