// Reads config key paths against the schema: whether a path exists, and which key a `MAOS_*`
// variable names, so keys spelt with capitals (`baseURL`, `inputPerMTok`, `certFile`) can be set too.
import { z } from 'zod';
import { configSchema } from './schema.ts';

export interface JsonSchemaNode {
  type?: string | string[];
  properties?: Record<string, JsonSchemaNode>;
  additionalProperties?: JsonSchemaNode | boolean;
  items?: JsonSchemaNode;
  anyOf?: JsonSchemaNode[];
}

let root: JsonSchemaNode | undefined;

/** The config schema as JSON Schema (input side: every key optional). */
export function schemaRoot(): JsonSchemaNode {
  root ??= z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  return root;
}

/** True when `path` (e.g. `['tls', 'certFile']`) names a key of the schema; map entries match any name. */
export function isConfigPath(path: readonly string[]): boolean {
  let nodes = [schemaRoot()];
  for (const key of path) {
    nodes = nodes.flatMap((node) => childrenOf(node, key));
    if (nodes.length === 0) return false;
  }
  return true;
}

/**
 * True when the key at `path` takes text only (a string, or one of a set of strings): a `MAOS_*`
 * variable's value is then kept as written, not read as JSON (`PORT=8080` of a runner's `env`,
 * `CI=true`, a numeric tenant id are text there, and as numbers or booleans they were refused).
 */
export function isTextPath(path: readonly string[]): boolean {
  let nodes = [schemaRoot()];
  for (const key of path) {
    nodes = nodes.flatMap((node) => childrenOf(node, key));
    if (nodes.length === 0) return false;
  }
  const options = nodes.flatMap(optionsOf);
  return options.length > 0 && options.every((option) => option.type === 'string');
}

/**
 * The key path that the words of a `MAOS_*` variable name (split at `__`) stand for: each word is
 * matched to the schema's key of the same letters (`BASE_URL` → `baseURL`, `CERT_FILE` → `certFile`);
 * `<KEY>_FILE` of a key that has no such name reads that key from a file (`URL_FILE` → `url_FILE`);
 * a map entry's name is the word in lower case (`BACKEND_ENGINEER` → `backend_engineer`; its
 * `_FILE` stays), except in a runner's `env` (kept as written) and a provider's `headers` (`-` for
 * `_`); a word the schema does not know becomes camelCase (`MAX_THINGS` → `maxThings`) for the
 * error.
 */
export function configPathOfEnvWords(words: readonly string[]): string[] {
  let nodes = [schemaRoot()];
  const path: string[] = [];
  for (const word of words) {
    const key = keyFor(nodes, word, path.at(-1));
    path.push(key);
    nodes = nodes.flatMap((node) => childrenOf(node, key));
  }
  return path;
}

function keyFor(nodes: readonly JsonSchemaNode[], word: string, parent: string | undefined): string {
  const named = (letters: string): string | undefined =>
    nodes
      .flatMap((node) => optionsOf(node))
      .flatMap((node) => Object.keys(node.properties ?? {}))
      .find((key) => key.toLowerCase() === letters);
  const exact = named(word.replace(/_/g, '').toLowerCase());
  if (exact) return exact;
  if (word.endsWith('_FILE')) {
    const target = named(word.slice(0, -'_FILE'.length).replace(/_/g, '').toLowerCase());
    if (target) return `${target}_FILE`;
  }
  const entries = nodes
    .flatMap(optionsOf)
    .map((node) => node.additionalProperties)
    .filter((entry): entry is JsonSchemaNode => typeof entry === 'object');
  if (entries.length === 0) return camelCase(word);
  // A runner's `env` keeps the name as written (`NODE_ENV` is the variable's own name); a provider's
  // `headers` too, with `-` for `_` (`X_TEAM` → `X-TEAM`; header names ignore case).
  if (parent === 'env') return word;
  if (parent === 'headers') {
    const file = word.endsWith('_FILE') ? '_FILE' : '';
    return word.slice(0, word.length - file.length).replace(/_/g, '-') + file;
  }
  // Names of other map entries (runners, providers, roles, tenants) are lower case with `_` and `-`;
  // `_FILE` still reads the entry's value from a file.
  return word.endsWith('_FILE') ? `${word.slice(0, -'_FILE'.length).toLowerCase()}_FILE` : word.toLowerCase();
}

function camelCase(word: string): string {
  const fileSuffix = word.endsWith('_FILE') ? '_FILE' : '';
  const base = fileSuffix ? word.slice(0, -fileSuffix.length) : word;
  return base.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()) + fileSuffix;
}

/** The alternatives a node stands for (`anyOf` flattened). */
export function optionsOf(node: JsonSchemaNode): JsonSchemaNode[] {
  return node.anyOf ? node.anyOf.flatMap(optionsOf) : [node];
}

function childrenOf(node: JsonSchemaNode, key: string): JsonSchemaNode[] {
  return optionsOf(node).flatMap((option) => {
    const child = option.properties?.[key];
    if (child) return [child];
    const entry = option.additionalProperties;
    return typeof entry === 'object' ? [entry] : [];
  });
}
