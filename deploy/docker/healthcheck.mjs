// Container HEALTHCHECK: exits 0 when GET /healthz on the local server answers 2xx within 4 s.
// Plain node (no curl in the slim image). It probes where `maos serve` listens, resolved as the
// server resolves it: the server's own flags (--port, --host, --config; read from the container's
// command, PID 1: tini -- node bin/maos.js serve …), then the environment the check shares with
// the server (MAOS_PORT, MAOS_CONFIG …), then the config file. A server with tls.certFile serves
// only HTTPS; like a kubelet probe, the check does not verify the certificate of this connection.
// On failure it prints why on stderr (shown by `docker inspect`).
//
// It runs every 15 s, so it stays light: plain JavaScript that reads only `host`, `port` and
// `tls.certFile` from the flags, the environment and the config file (the `yaml` package only when
// there is a config file). Whatever that reading cannot settle for certain (a `_FILE` form, a value
// the server would refuse, a flag written another way) goes to the server's own config loader and
// flag parser, which also word any error.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { getHealthz } from '../../src/cli/local-healthz.mjs';
import { connectHostFor, urlHost } from '../../src/cli/loopback-address.mjs';

/** The config keys' defaults (src/config/schema.ts); a test holds them to the loader's. */
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 7070;

/**
 * The options of `maos` itself that take a value as the next word (`maos --server URL serve`), as
 * the CLI's own scan for its command skips them (src/cli/program.ts; a test holds the two alike).
 */
const ROOT_OPTIONS_WITH_VALUE = new Set(['--server', '--token', '--credentials']);

/**
 * The arguments after `serve` of a `maos serve` command line (`tini -- node bin/maos.js … serve …`),
 * or none when it runs another command or no `maos`.
 * @param {readonly string[]} argv
 * @returns {string[]}
 */
export function serveArgumentsOf(argv) {
  const entry = argv.findIndex((arg) => /(^|\/)maos(\.js)?$/.test(arg));
  if (entry < 0) return [];
  // The command is the first word after the entry that is neither a flag nor a root option's value
  // (`maos --json serve …`, `maos --server http://x serve …`).
  for (let i = entry + 1; i < argv.length; i++) {
    const arg = /** @type {string} */ (argv[i]);
    if (ROOT_OPTIONS_WITH_VALUE.has(arg)) i += 1;
    else if (!arg.startsWith('-')) return arg === 'serve' ? argv.slice(i + 1) : [];
  }
  return [];
}

/** The arguments after `serve` of the `maos serve` the container runs, or none. */
function serveArguments() {
  let argv;
  try {
    argv = readFileSync('/proc/1/cmdline', 'utf8').split('\0');
  } catch {
    return [];
  }
  if (argv.at(-1) === '') argv.pop();
  return serveArgumentsOf(argv);
}

/** The flags of `maos serve` that choose its configuration, by the option each sets. */
const SERVE_FLAGS = new Map([
  ['--config', 'config'],
  ['-c', 'config'],
  ['--host', 'host'],
  ['--port', 'port'],
  ['-p', 'port'],
  ['--data-dir', 'dataDir'],
  ['-d', 'dataDir'],
]);

/**
 * The serve flags (`--port 8080`, `--port=8080`, `-p 8080`, `--json`), or undefined for anything
 * else (`-p8080`, a value that starts with `-`, a flag it does not know): serve-options.ts decides.
 * @param {readonly string[]} args
 * @returns {Record<string, string> | undefined}
 */
function readServeFlags(args) {
  /** @type {Record<string, string>} */
  const flags = {};
  for (let i = 0; i < args.length; i++) {
    const arg = /** @type {string} */ (args[i]);
    if (arg === '--json') continue;
    const equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = equals > 0 ? arg.slice(0, equals) : arg;
    const value = equals > 0 ? arg.slice(equals + 1) : args[++i];
    const option = SERVE_FLAGS.get(name);
    if (option === undefined || value === undefined || value.startsWith('-')) return undefined;
    flags[option] = value;
  }
  return flags;
}

/** A port as the loader takes it from text: a whole number 0–65535, written plainly; else undefined. */
function portOfText(/** @type {string} */ text) {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** A plain object (not null, not an array). */
function isTree(/** @type {unknown} */ value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `host`, `port` and `tls.certFile` of the config file at `path`, or undefined when the file or one
 * of them is not plainly valid (unreadable, not YAML/JSON, `port_FILE`, a port that is text …).
 * @param {string} path
 */
async function readConfigFile(path) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  let tree;
  try {
    const yaml = await import('yaml');
    if (extname(path) === '.json') {
      tree = JSON.parse(text);
      // A key given twice in one object is refused by the loader (JSON.parse keeps the last), found
      // as it finds it: by the YAML parser (JSON is YAML's flow style), a name written with an
      // escape (`"p\u006frt"`) too.
      const { errors } = yaml.parseDocument(text, { uniqueKeys: true });
      if (errors.some((error) => error.code === 'DUPLICATE_KEY')) return undefined;
    } else {
      tree = yaml.parse(text);
    }
  } catch {
    return undefined;
  }
  if (tree === null || tree === undefined) return {};
  if (!isTree(tree)) return undefined;
  /** @type {{ host?: string, port?: number, certFile?: string }} */
  const found = {};
  for (const key of ['host_FILE', 'port_FILE', 'tls_FILE']) if (Object.hasOwn(tree, key)) return undefined;
  if (tree.host !== undefined) {
    if (typeof tree.host !== 'string' || tree.host === '') return undefined;
    found.host = tree.host;
  }
  if (tree.port !== undefined) {
    if (!Number.isInteger(tree.port) || tree.port < 0 || tree.port > 65535) return undefined;
    found.port = tree.port;
  }
  if (tree.tls !== undefined) {
    if (!isTree(tree.tls) || Object.hasOwn(tree.tls, 'certFile_FILE')) return undefined;
    if (tree.tls.certFile !== undefined) {
      if (typeof tree.tls.certFile !== 'string' || tree.tls.certFile === '') return undefined;
      found.certFile = tree.tls.certFile;
    }
  }
  return found;
}

/** The letters of a word of a `MAOS_*` name, as the loader matches them to a key (`CERT_FILE` → certfile). */
function lettersOf(/** @type {string} */ word) {
  return word.replace(/_/g, '').toLowerCase();
}

/** A variable Kubernetes sets for a Service named maos… (config/load.ts: never configuration). */
function isKubernetesServiceLink(/** @type {string} */ name, /** @type {string} */ value) {
  if (/^MAOS_(?:[A-Z0-9_]+_)?SERVICE_(?:HOST|PORT(?:_[A-Z0-9_]+)?)$/.test(name)) return true;
  if (/^MAOS_(?:[A-Z0-9_]+_)?PORT_\d+_(?:TCP|UDP|SCTP)(?:_(?:PROTO|PORT|ADDR))?$/.test(name)) return true;
  return /^MAOS_(?:[A-Z0-9_]+_)?PORT$/.test(name) && /^(?:tcp|udp|sctp):\/\//.test(value);
}

/**
 * `host`, `port` and `tls.certFile` as the `MAOS_*` variables of `env` set them, or undefined for a
 * form only the loader reads for certain: `MAOS_PORT_FILE`, `MAOS_TLS` as JSON, a value it would
 * refuse, one key set by two spellings (`MAOS_PORT`, `MAOS_Port`).
 * @param {Record<string, string | undefined>} env
 */
function readEnv(env) {
  /** @type {{ host?: string, port?: number, certFile?: string }} */
  const found = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !name.startsWith('MAOS_') || isKubernetesServiceLink(name, value)) continue;
    const words = name.slice('MAOS_'.length).split('__');
    const first = lettersOf(words[0] ?? '');
    const section = ['host', 'port', 'tls'].includes(first) ? first : undefined;
    if (section === undefined) {
      // `MAOS_PORT_FILE` and the like: the loader reads the file.
      const base = words[0]?.endsWith('_FILE') ? lettersOf(words[0].slice(0, -'_FILE'.length)) : '';
      if (['host', 'port', 'tls'].includes(base)) return undefined;
      continue;
    }
    let key = section;
    if (section === 'tls') {
      if (words.length === 1) return undefined;
      const second = words[1] ?? '';
      if (lettersOf(second) !== 'certfile') {
        if (second.endsWith('_FILE') && lettersOf(second.slice(0, -'_FILE'.length)) === 'certfile') {
          return undefined;
        }
        continue;
      }
      key = 'certFile';
      if (words.length > 2) return undefined;
    } else if (words.length > 1) {
      return undefined;
    }
    if (Object.hasOwn(found, key)) return undefined;
    if (key === 'port') {
      const port = portOfText(value.trim());
      if (port === undefined) return undefined;
      found.port = port;
    } else {
      // Text keys take the value as written; empty is refused.
      if (value === '') return undefined;
      found[key === 'host' ? 'host' : 'certFile'] = value;
    }
  }
  return found;
}

/**
 * Where to send GET /healthz, read without the config loader: the server's address (loopback for
 * a wildcard bind), its port and whether it serves HTTPS; undefined when the flags, the environment
 * or the file hold something only the loader settles for certain.
 * @param {readonly string[]} args the arguments after `serve`
 * @param {Record<string, string | undefined>} env
 */
export async function readTargetQuickly(args, env) {
  const flags = readServeFlags(args);
  if (flags === undefined) return undefined;
  let flagPort;
  if (flags.port !== undefined) {
    flagPort = portOfText(flags.port);
    if (flagPort === undefined) return undefined;
  }
  if (flags.host === '') return undefined;
  const configPath = flags.config ?? env.MAOS_CONFIG;
  let fromFile = {};
  if (configPath !== undefined) {
    if (configPath.trim() === '') return undefined;
    fromFile = await readConfigFile(configPath);
    if (fromFile === undefined) return undefined;
  }
  const fromEnv = readEnv(env);
  if (fromEnv === undefined) return undefined;
  const host = flags.host ?? fromEnv.host ?? fromFile.host ?? DEFAULT_HOST;
  return {
    host: connectHostFor(host),
    port: flagPort ?? fromEnv.port ?? fromFile.port ?? DEFAULT_PORT,
    tls: Boolean(fromEnv.certFile ?? fromFile.certFile),
  };
}

/**
 * Where to send GET /healthz as `maos serve` itself resolves it: its flag parser and the whole
 * config loader. Throws what they throw for flags or a configuration the server would refuse.
 * @param {readonly string[]} args the arguments after `serve`
 * @param {Record<string, string | undefined>} env
 */
export async function readTarget(args, env) {
  const { readServeArguments } = await import('../../src/cli/serve-options.ts');
  const { loadConfig } = await import('../../src/config/load.ts');
  const { configPath, overrides } = readServeArguments(args);
  const config = loadConfig({ configPath, overrides, env });
  return { host: connectHostFor(config.host), port: config.port, tls: Boolean(config.tls.certFile) };
}

async function main() {
  const deadline = Date.now() + 4000;
  const args = serveArguments();
  let where;
  try {
    where = (await readTargetQuickly(args, process.env)) ?? (await readTarget(args, process.env));
  } catch (error) {
    process.stderr.write(`healthcheck: cannot read the server's configuration: ${error.message}\n`);
    process.exit(1);
  }
  if (where.port === 0) {
    process.stderr.write(
      'healthcheck: the server listens on port 0 (a free port picked at start): set a port\n',
    );
    process.exit(1);
  }
  const status = await getHealthz(where, deadline - Date.now());
  if (typeof status === 'number' && status >= 200 && status < 300) process.exitCode = 0;
  else {
    const url = `${where.tls ? 'https' : 'http'}://${urlHost(where.host)}:${where.port}/healthz`;
    process.stderr.write(`healthcheck: GET ${url}: ${status}\n`);
    process.exitCode = 1;
  }
}

if (import.meta.main) await main();
