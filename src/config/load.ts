// Resolves the configuration from its sources (file < MAOS_* env < flags; a key's `_FILE` form
// counts as the key), reads `*_FILE` secrets, validates once and freezes. The only place in MAOS
// that reads process.env.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { parseDocument, parse as parseYaml, YAMLError } from 'yaml';
import { AppError } from '../errors/app-error.ts';
import { CLIENT_ENV_NAMES, RUNNER_ENV_NAMES } from './client-env.ts';
import { type Config, configSchema } from './schema.ts';
import { configPathOfEnvWords, isConfigPath, isTextPath } from './schema-paths.ts';
import { collectSecretValues } from './secrets-in-config.ts';

export interface LoadConfigOptions {
  /** Path of a YAML or JSON config file (`--config`); `MAOS_CONFIG` is used when absent. */
  configPath?: string;
  /** Environment to read `MAOS_*` variables from. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Values from CLI flags, highest precedence. Same shape as the file. */
  overrides?: Record<string, unknown>;
}

type Tree = Record<string, unknown>;

const ENV_PREFIX = 'MAOS_';
/** Env variables with this prefix that are not configuration (client settings, runner context). */
const NON_CONFIG_ENV: ReadonlySet<string> = new Set([...CLIENT_ENV_NAMES, ...RUNNER_ENV_NAMES]);

/**
 * The config file `loadConfig` reads for these options (`--config`, else `MAOS_CONFIG`) as an
 * absolute path, or undefined without one: what another command must be given to use the same
 * configuration from any directory.
 */
export function resolveConfigFile(
  options: Pick<LoadConfigOptions, 'configPath' | 'env'> = {},
): string | undefined {
  const configPath = options.configPath ?? (options.env ?? process.env).MAOS_CONFIG;
  return configPath ? resolve(configPath) : undefined;
}

/** Loads, merges and validates the configuration; throws CONFIG_INVALID listing every problem. */
export function loadConfig(options: LoadConfigOptions = {}): Readonly<Config> {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  let configPath = options.configPath ?? env.MAOS_CONFIG;
  // Empty is not unset, as for every MAOS_* variable: `MAOS_CONFIG=$CONFIG` with CONFIG unset ran on
  // the defaults (SQLite in ./.maos, another database than the one meant) without a word.
  if (configPath !== undefined && configPath.trim() === '') {
    problems.push(
      options.configPath === undefined
        ? 'MAOS_CONFIG: is empty, not a file path; unset it to run without a config file'
        : 'config file path: is empty, not a file path; leave it out to run without a config file',
    );
    configPath = undefined;
  }
  const envNames = new Map<string, string>();
  const reportProtoKey = (path: readonly string[]) => {
    const name = envNameOf([...path, '__proto__'], envNames);
    const from = name === undefined ? '' : ` (from the environment: ${name})`;
    problems.push(`${[...path, '__proto__'].join('.')}: ${PROTO_KEY_PROBLEM}${from}`);
  };
  const fromFile = withoutProtoKeys(
    configPath ? readConfigFile(configPath, problems) : {},
    [],
    reportProtoKey,
  );
  const fromEnv = withoutProtoKeys(readEnv(env, problems, envNames), [], reportProtoKey);
  const overrides = withoutProtoKeys(options.overrides ?? {}, [], reportProtoKey);
  const merged = deepMerge(deepMerge(fromFile, fromEnv), overrides);
  const resolved = resolveFileReferences(merged, '', [], { problems, envNames });
  const parsed = configSchema.safeParse(resolved);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // A key no file holds (`MAOS_NOSUCH=1` reads as `nosuch`) is found by the variable's name.
      const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
      const names = keys.map((key) =>
        envNameOf([...issue.path, ...(key === undefined ? [] : [key])], envNames),
      );
      const from = names.some((name) => name !== undefined)
        ? ` (from the environment: ${[...new Set(names.filter((name) => name !== undefined))].join(', ')})`
        : '';
      problems.push(`${issue.path.join('.') || '(root)'}: ${issue.message}${from}`);
    }
  }
  if (problems.length > 0 || !parsed.success) {
    throw new AppError('CONFIG_INVALID', `Invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      details: problems,
    });
  }
  return deepFreeze(parsed.data);
}

/**
 * Why no key may be named `__proto__`. JSON and YAML keep such a key, but every later step drops it
 * without a word (an assignment sets the object's prototype instead; zod's records and objects skip
 * it), so `llm.approval.tenants.__proto__: required` was accepted and never applied: that tenant's
 * sessions ran without the approval or budget meant for them. Refused rather than kept: every copy
 * of the configuration (merges, redaction, `maos config print`) would have to take care of it.
 */
const PROTO_KEY_PROBLEM =
  'a key named "__proto__" is not supported (it would be dropped and its entry never apply); a tenant, IdP group or other name "__proto__" cannot have an entry of its own';

/** `tree` without its `__proto__` keys at any depth, each reported with its path. */
function withoutProtoKeys<T>(
  value: T,
  path: readonly string[],
  report: (path: readonly string[]) => void,
): T {
  if (Array.isArray(value)) {
    return value.map((item, i) => withoutProtoKeys(item, [...path, String(i)], report)) as T;
  }
  if (!isTree(value)) return value;
  const out: Tree = {};
  for (const [key, child] of Object.entries(value)) {
    if (key === '__proto__') report(path);
    else out[key] = withoutProtoKeys(child, [...path, key], report);
  }
  return out as T;
}

function readConfigFile(path: string, problems: string[]): Tree {
  let text: string;
  try {
    text = withoutBom(readLimitedText(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    problems.push(
      code === TOO_LARGE
        ? `config file ${path}: is larger than ${FILE_VALUE_LIMIT_BYTES} bytes, more than any configuration holds`
        : `config file ${path}: cannot be read (${code})`,
    );
    return {};
  }
  try {
    const value: unknown = extname(path) === '.json' ? parseJson(text) : parseYaml(text);
    if (value === null || value === undefined) return {};
    if (!isTree(value)) {
      problems.push(`config file ${path}: must contain an object at the top level`);
      return {};
    }
    return value;
  } catch (error) {
    problems.push(`config file ${path}: ${(error as Error).message.split('\n')[0]}`);
    return {};
  }
}

/**
 * A JSON config file's value. A key given twice in one object is refused, as YAML refuses it:
 * JSON.parse keeps the last without a word, so a second `auth` replaced the first unseen. JSON is
 * YAML's flow style, so the YAML parser finds the repeated key (its line and column) of valid JSON.
 */
function parseJson(text: string): unknown {
  const value: unknown = JSON.parse(text);
  const repeated = parseDocument(text, { uniqueKeys: true }).errors.find(
    (error) => error.code === 'DUPLICATE_KEY',
  );
  if (repeated) throw repeated;
  return value;
}

/** Where parseJson found a key given twice (`line 1, column 16`), or null for another error. */
function repeatedKeyAt(error: unknown): string | null {
  if (!(error instanceof YAMLError) || error.code !== 'DUPLICATE_KEY') return null;
  const at = error.linePos?.[0];
  return at === undefined ? 'at one place' : `line ${at.line}, column ${at.col}`;
}

/** A `MAOS_*` variable of the environment that sets a configuration key. */
export interface ConfigEnvVariable {
  name: string;
  /** The key path it sets: `MAOS_STORE__URL_FILE` → `['store', 'url_FILE']`. */
  path: string[];
  value: string;
  /** The value is a secret (or holds one, as a URL's password): say the name, never the value. */
  secret: boolean;
}

/**
 * Sections whose keys say which database and which audit signing key a process uses: what a local
 * command (`maos keys create`) must share with a server to act on its store. `dataDir` is not
 * among them: the commands printed for it say the resolved directory.
 */
const STORE_SECTIONS: ReadonlySet<string> = new Set(['store', 'audit']);

/**
 * The `MAOS_*` variables of `env` that set the store or audit keys (`MAOS_STORE__URL`,
 * `MAOS_AUDIT__SIGNING_KEY_FILE` …), by name: another shell lacks them, so a command printed for
 * it must carry them. A `_FILE` variable's value is a path, never secret.
 */
export function storeEnvVariables(env: NodeJS.ProcessEnv = process.env): ConfigEnvVariable[] {
  const out: ConfigEnvVariable[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || isKubernetesServiceLink(name, value)) continue;
    const path = configPathOfEnvName(name);
    if (path === undefined || !STORE_SECTIONS.has(path[0] as string)) continue;
    const key = path[path.length - 1] as string;
    const parsed = isTextPath(path) ? value : parseEnvValue(value);
    const secret = !key.endsWith('_FILE') && collectSecretValues(parsed, path, 1).length > 0;
    out.push({ name, path, value, secret });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * `MAOS_PORT=8080` → `port`; `MAOS_TASKS__LEASE_SECONDS=10` → `tasks.leaseSeconds` (double underscore
 * nests, single underscore joins words). Values are parsed as JSON when they are JSON, else kept as
 * text; a key that takes text only keeps the value as written (`MAOS_RUNNERS__X__ENV__PORT=8080`).
 */
function readEnv(env: NodeJS.ProcessEnv, problems: string[], names: Map<string, string>): Tree {
  const tree: Tree = {};
  const variables: { name: string; raw: string; path: string[] }[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined || isKubernetesServiceLink(name, raw)) continue;
    const path = configPathOfEnvName(name);
    if (path !== undefined) variables.push({ name, raw, path });
  }
  // A map or section as JSON first, then the variables of its keys, which go into it (and win over
  // its value for the same key): taken in the environment's order, `MAOS_RUNNERS='{…}'` after
  // `MAOS_RUNNERS__B__COMMAND` replaced the tree holding runner b, which was then dropped unseen.
  variables.sort((a, b) => a.path.length - b.path.length || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const { name, raw, path } of variables) {
    if (path.some((segment) => segment.length === 0)) {
      problems.push(`environment ${name}: malformed variable name`);
      continue;
    }
    const refuse = (at: string) =>
      problems.push(
        `environment ${name}: its JSON gives a key twice in one object (${at}); ${REPEATED_KEY_ADVICE}`,
      );
    const value = isTextPath(path) ? raw : parseEnvValue(raw, refuse);
    const blocked = setPath(tree, path, value);
    if (blocked !== undefined) {
      const other = names.get(blocked.join('.')) ?? 'another variable';
      problems.push(
        `environment ${name}: sets a key inside ${blocked.join('.')}, which ${other} sets to a value that is not an object; use one of them`,
      );
      continue;
    }
    names.set(path.join('.'), name);
  }
  return tree;
}

/**
 * A variable Kubernetes adds to every container for each Service of its namespace (service links,
 * on unless a pod sets `enableServiceLinks: false`): a Service named `maos` or `maos-canary` gives
 * `MAOS_SERVICE_HOST`, `MAOS_CANARY_PORT=tcp://10.0.0.7:80`, `MAOS_PORT_80_TCP_ADDR` …, which
 * read as config keys would stop the server with CONFIG_INVALID. No config key has these forms, and
 * `port` is a number, never a `tcp://` address.
 */
function isKubernetesServiceLink(name: string, value: string): boolean {
  if (/^MAOS_(?:[A-Z0-9_]+_)?SERVICE_(?:HOST|PORT(?:_[A-Z0-9_]+)?)$/.test(name)) return true;
  if (/^MAOS_(?:[A-Z0-9_]+_)?PORT_\d+_(?:TCP|UDP|SCTP)(?:_(?:PROTO|PORT|ADDR))?$/.test(name)) return true;
  return /^MAOS_(?:[A-Z0-9_]+_)?PORT$/.test(name) && /^(?:tcp|udp|sctp):\/\//.test(value);
}

/**
 * The `MAOS_*` variable that set the value at `path`, or a map or object holding it (JSON in one
 * variable), directly or through its `_FILE` form; undefined when the environment did not set it.
 */
function envNameOf(path: ReadonlyArray<PropertyKey>, names: ReadonlyMap<string, string>): string | undefined {
  for (let length = path.length; length > 0; length--) {
    const key = path.slice(0, length).map(String).join('.');
    const name = names.get(key) ?? names.get(`${key}_FILE`);
    if (name !== undefined) return name;
  }
  return undefined;
}

/**
 * The config key path a `MAOS_*` variable sets (`MAOS_TASKS__LEASE_SECONDS` → `tasks.leaseSeconds`,
 * `MAOS_STORE__URL_FILE` → `store.url_FILE`), or undefined for other and client-side variables.
 */
export function configPathOfEnvName(name: string): string[] | undefined {
  if (!name.startsWith(ENV_PREFIX) || NON_CONFIG_ENV.has(name)) return undefined;
  const words = name.slice(ENV_PREFIX.length).split('__');
  return words.some((word) => word.length === 0) ? [''] : configPathOfEnvWords(words);
}

/**
 * A `MAOS_*` value (or a `_FILE`'s text) as JSON when it is JSON, else as written. JSON with a key
 * given twice in one object is refused through `refuse` (told where), as in a JSON config file:
 * JSON.parse would keep the last without a word. Without `refuse` it is read as JSON.parse reads it.
 */
function parseEnvValue(raw: string, refuse?: (repeatedKeyAt: string) => void): unknown {
  const trimmed = raw.trim();
  if (/^(-?\d+(\.\d+)?|true|false|null|\[.*\]|\{.*\})$/s.test(trimmed)) {
    try {
      return parseJson(trimmed);
    } catch (error) {
      const at = repeatedKeyAt(error);
      if (at === null) return raw;
      refuse?.(at);
      return JSON.parse(trimmed);
    }
  }
  return raw;
}

/** Why JSON with a key given twice is refused, after where it is. */
const REPEATED_KEY_ADVICE = 'give each key once (JSON would keep only the last)';

/**
 * Replaces every `key_FILE: path` with `key: <file contents, trailing newline trimmed>`, read as a
 * `MAOS_*` value is: as JSON for a key that takes a number, a boolean or a list (`port_FILE`), as
 * written for a key that takes text (every secret).
 */
function resolveFileReferences(
  value: unknown,
  at: string,
  path: readonly string[],
  context: { problems: string[]; envNames: ReadonlyMap<string, string> },
): unknown {
  if (Array.isArray(value))
    return value.map((item, i) => resolveFileReferences(item, `${at}[${i}]`, [...path, `[${i}]`], context));
  if (!isTree(value)) return value;
  const out: Tree = {};
  for (const [key, child] of Object.entries(value)) {
    if (!key.endsWith('_FILE')) {
      out[key] = resolveFileReferences(child, at ? `${at}.${key}` : key, [...path, key], context);
    }
  }
  for (const [key, child] of Object.entries(value)) {
    if (!key.endsWith('_FILE')) continue;
    const target = key.slice(0, -'_FILE'.length);
    const where = at ? `${at}.${target}` : target;
    const targetPath = [...path, target];
    const name = envNameOf([...path, key], context.envNames);
    const from = name === undefined ? '' : ` (from the environment: ${name})`;
    const problem = (text: string) => context.problems.push(`${where}_FILE: ${text}${from}`);
    // Own keys only: a map's key `constructor_FILE` (a tenant's entry) has no `constructor` beside it.
    const overlay = Object.hasOwn(value, target) && FILE_OVERLAYS.has(value[target] as object);
    const underlay = Object.hasOwn(value, target) && FILE_UNDERLAYS.has(value[target] as object);
    if (Object.hasOwn(value, target) && value[target] !== undefined && !overlay && !underlay) {
      context.problems.push(`${where}: set both directly and through ${key}; use one`);
      continue;
    }
    if (typeof child !== 'string') {
      problem('must be a file path');
      continue;
    }
    // An empty path (`MAOS_SECRETS__KEK_RING_FILE=`) is no file to read; as for any key, empty is
    // not unset (see store.url), so it is refused by name rather than read as `cannot read  (ENOENT)`.
    if (child.trim() === '') {
      problem(`is empty, not a file path; remove it to leave ${target} unset`);
      continue;
    }
    let text: string;
    try {
      text = withoutBom(readLimitedText(child)).replace(/\r?\n$/, '');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      if (code === TOO_LARGE) {
        problem(`${child} is larger than ${FILE_VALUE_LIMIT_BYTES} bytes, more than any setting holds`);
        continue;
      }
      // A value that is not an absolute path may be the secret itself put where its file goes (a
      // URL, a key): not repeated, as the message lands in the log.
      problem(
        isAbsolute(child)
          ? unreadableAbsolutePath(child, code)
          : `is not an absolute path and cannot be read (${code}); a _FILE setting names a file holding the secret, not the secret (value not shown)`,
      );
      continue;
    }
    // An empty file is a secret not filled in, not a value: read as '', an empty store.url would
    // quietly mean the SQLite file in the data directory instead of the PostgreSQL database meant.
    if (text.trim() === '') {
      problem(`${child} is empty`);
      continue;
    }
    const refuse = (at: string) =>
      problem(`${child} gives a key twice in one JSON object (${at}); ${REPEATED_KEY_ADVICE}`);
    // Its `__proto__` keys are refused as those of every source are (they were dropped unseen).
    const read = withoutProtoKeys(
      isConfigPath(targetPath) && !isTextPath(targetPath) ? parseEnvValue(text, refuse) : text,
      targetPath,
      (at) => problem(`${child} has the key ${[...at, '__proto__'].join('.')}: ${PROTO_KEY_PROBLEM}`),
    );
    if (underlay) {
      // An earlier source writes out keys of it (out[target], resolved above): the file's win.
      if (!isTree(read)) {
        problem(`${child} holds no JSON object, so it cannot go into the ${target} an earlier source sets`);
        continue;
      }
      out[target] = deepMerge(out[target] as Tree, read);
      continue;
    }
    if (!overlay) {
      out[target] = read;
      continue;
    }
    // A later source sets keys inside it (out[target], resolved above): they win over the file's.
    if (!isTree(read)) {
      problem(
        `${child} holds no JSON object, so the keys a later source sets inside ${target} cannot go into it`,
      );
      continue;
    }
    out[target] = deepMerge(read, out[target] as Tree);
  }
  return out;
}

/**
 * Why the absolute `_FILE` value `path` cannot be read, naming it only when it is plainly a path: its
 * directory exists and is not `/`. A secret that starts with `/` (half of the base64 keys that do
 * have no other `/`) put where its file goes would otherwise be printed to the log: for it, and for
 * a path whose directory is missing (a secret not mounted), only the deepest directory of it that
 * exists is named, with its length.
 */
function unreadableAbsolutePath(path: string, code: string): string {
  const parent = dirname(path);
  if (parent !== dirname(parent) && isDirectory(parent)) return `cannot read ${path} (${code})`;
  let existing = parent;
  while (existing !== dirname(existing) && !isDirectory(existing)) existing = dirname(existing);
  return `cannot read it (${code}): no directory of it exists below ${existing}; a _FILE setting names a file holding the secret, not the secret (value not shown, ${path.length} characters)`;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Largest file a `_FILE` setting (or the config file) reads: a secret, a map such as `runners`, a
 * whole configuration, is far smaller. */
const FILE_VALUE_LIMIT_BYTES = 16 * 1024 * 1024;
const TOO_LARGE = 'MAOS_FILE_TOO_LARGE';

/**
 * The file's text, refused past FILE_VALUE_LIMIT_BYTES (code TOO_LARGE) as it is read: a `_FILE`
 * naming a device that never ends (`/dev/zero`, `/dev/urandom`) filled the memory until the
 * process died, and a huge file was read whole first. Read in chunks, so a pipe (`<(pass show db)`)
 * works as a file does.
 */
function readLimitedText(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const read = readSync(fd, chunk, 0, chunk.length, null);
      if (read === 0) break;
      total += read;
      if (total > FILE_VALUE_LIMIT_BYTES) {
        throw Object.assign(new Error('file too large'), { code: TOO_LARGE });
      }
      chunks.push(chunk.subarray(0, read));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * The text without a leading byte order mark, which editors on Windows write: JSON.parse refuses
 * it, and in a secret it would become part of the value (an API key no provider knows).
 */
function withoutBom(text: string): string {
  return text.startsWith('\uFEFF') ? text.slice(1) : text;
}

function isTree(value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Sets `value` at `path`, making the objects on the way. Returns the path of a value on the way
 * that is not an object (set by an earlier variable), leaving the tree as it was; else undefined.
 */
function setPath(tree: Tree, path: string[], value: unknown): string[] | undefined {
  let node = tree;
  for (const [i, segment] of path.slice(0, -1).entries()) {
    const next = Object.hasOwn(node, segment) ? node[segment] : undefined;
    if (next !== undefined && !isTree(next)) return path.slice(0, i + 1);
    if (next === undefined) node[segment] = {};
    node = node[segment] as Tree;
  }
  node[path[path.length - 1] as string] = value;
  return undefined;
}

/**
 * `over` (a later source) on top of `base`. A key and its `_FILE` form are one setting: either in
 * `over` replaces both in `base` (`MAOS_STORE__URL_FILE` wins over the file's `store.url` as
 * `MAOS_STORE__URL` does); both in one source stay, for resolveFileReferences to refuse.
 */
function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const other = key.endsWith('_FILE') ? key.slice(0, -'_FILE'.length) : `${key}_FILE`;
    const overHasOther = Object.hasOwn(over, other) && over[other] !== undefined;
    const current = Object.hasOwn(out, key) ? out[key] : undefined;
    // Keys of a map or section that an earlier source reads from a file (`runnerAccess.tenants_FILE`
    // in the file, `MAOS_RUNNER_ACCESS__TENANTS__GAMMA`): they go into what the file holds, as into
    // the same map written out; replacing the file's map dropped its entries without a word.
    if (
      !key.endsWith('_FILE') &&
      isTree(value) &&
      !overHasOther &&
      current === undefined &&
      typeof out[other] === 'string'
    ) {
      out[key] = value;
      FILE_OVERLAYS.add(value);
      continue;
    }
    // A map or section an earlier source writes out (the file's `llm.approval.tenants`) and a later
    // one reads from a file (`MAOS_LLM__APPROVAL__TENANTS_FILE`): what the file holds goes into it, as
    // the same value given as JSON would; replacing it dropped the earlier entries without a word.
    const earlier = Object.hasOwn(out, other) ? out[other] : undefined;
    if (key.endsWith('_FILE') && typeof value === 'string' && !overHasOther && isTree(earlier)) {
      const underlay = { ...earlier };
      FILE_UNDERLAYS.add(underlay);
      out[other] = underlay;
      out[key] = value;
      continue;
    }
    // Keys going into an earlier source's file value (an overlay) keep that file.
    if (!overHasOther && !(isTree(value) && isTree(current) && FILE_OVERLAYS.has(current))) delete out[other];
    if (isTree(current) && isTree(value)) {
      const merged = deepMerge(current, value);
      if (FILE_OVERLAYS.has(current)) FILE_OVERLAYS.add(merged);
      out[key] = merged;
    } else out[key] = value;
  }
  return out;
}

/**
 * Trees deepMerge put beside a `_FILE` key of an earlier source: keys to go into the file's value
 * once resolveFileReferences has read it, not a value set both directly and through the file.
 */
const FILE_OVERLAYS = new WeakSet<object>();

/**
 * Trees of an earlier source that deepMerge kept beside a later source's `_FILE` key: the file's
 * value goes into them (winning for a key both give) once resolveFileReferences has read it.
 */
const FILE_UNDERLAYS = new WeakSet<object>();

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
