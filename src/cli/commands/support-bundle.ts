// `maos support-bundle`: one .tar.gz an operator can attach to a support request: version, redacted
// config, doctor report, recent logs, a metrics snapshot and database statistics. No secret values.
import {
  accessSync,
  chmodSync,
  closeSync,
  constants,
  existsSync,
  openSync,
  readSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform, release } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { readClientEnv } from '../../config/client-env.ts';
import { loadConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { collectSecretValues, redactConfig } from '../../config/secrets-in-config.ts';
import { describeFetchFailure } from '../../errors/fetch-failure.ts';
import { createSecretRedactor } from '../../security/secret-redaction.ts';
import { collectDatabaseStats, isDatabaseFile } from '../../store/backup.ts';
import { resolveSqlitePath } from '../../store/db.ts';
import { isPostgresUrl } from '../../store/postgres-dialect.ts';
import { VERSION } from '../../version.ts';
import { normaliseBaseUrl } from '../client.ts';
import { withoutBearerPrefix } from '../client-errors.ts';
import { type ActionFactory, type CliContext, CREDENTIALS_OPTION_HELP, nearestOptions } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { connectHostFor, urlHost } from '../loopback-address.mjs';
import { runDoctor } from '../ops/doctor-checks.ts';
import { createTarGz, type TarEntry } from '../ops/tar-writer.ts';
import { renderDoctorReport } from './doctor.ts';
import { readStoredToken } from './login.ts';

// Enough recent log lines to see what led to a failure, small enough to attach to a ticket.
const LOG_TAIL_BYTES = 2 * 1024 * 1024;

interface BundleFlags {
  config?: string;
  output?: string;
  server?: string;
  token?: string;
  credentials?: string;
  logFile?: string;
}

export interface SupportBundleOptions {
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Base URL of the running server, for the metrics snapshot. */
  server?: string;
  /**
   * Bearer token for /metrics on the API port; a function so that the token `maos login` stored
   * for the server in effect (from the config when no server is given) can be looked up.
   */
  token?: string | ((server: string) => string | undefined);
  logFile?: string;
  now?: Date;
}

/** Registers `maos support-bundle` on the program. */
export function registerSupportBundleCommand(program: Command, act: ActionFactory): void {
  program
    .command('support-bundle')
    // The common options, but --server defaults to the config's address, not the CLI's default.
    .option(
      '--server <url>',
      'server to take the metrics snapshot from (default: MAOS_SERVER, else the config)',
    )
    .option('--token <token>', 'bearer token for its /metrics (env MAOS_TOKEN)')
    .option('--credentials <file>', CREDENTIALS_OPTION_HELP)
    .option('--json', 'machine-readable output')
    .description(
      'write a .tar.gz with version, redacted config, doctor report, logs, metrics and database stats',
    )
    .option('-o, --output <file>', 'archive to write (default: maos-support-<time>.tar.gz)')
    .option('-c, --config <file>', 'config file (default: MAOS_CONFIG)')
    .option('--log-file <file>', 'log file to include the tail of')
    .addHelpText(
      'after',
      '\nThe metrics snapshot comes from --server (default: MAOS_SERVER, else the address in the config);\n' +
        'with /metrics on the API port it sends --token, MAOS_TOKEN or the token `maos login` stored.',
    )
    .action(act(runSupportBundle));
}

/** Refuses an --output whose folder is missing or read-only, or that is a folder itself. */
function checkOutputPath(output: string): void {
  const target = resolve(output);
  if (existsSync(target) && statSync(target).isDirectory()) {
    throw new CliError('USAGE', `cannot write --output ${target} (EISDIR: it is a folder)`, EXIT.USAGE);
  }
  try {
    accessSync(dirname(target), constants.W_OK);
  } catch (error) {
    throw outputError(output, error);
  }
}

/**
 * Refuses an --output naming a file the bundle is made from: the SQLite database (by any path to
 * it, or a file SQLite keeps beside it), the config file or the log file. The archive replaced it,
 * so a mistyped -o erased every session, key and audit record (or the config the server runs on).
 */
function refuseSourceAsOutput(
  output: string,
  configPath: string | undefined,
  logFile: string | undefined,
): void {
  const refuse = (what: string) =>
    new CliError('USAGE', `--output ${resolve(output)} is the ${what}: name another file`, EXIT.USAGE);
  if (configPath !== undefined && sameFile(output, configPath)) {
    throw refuse('config file the bundle reads');
  }
  let config: Readonly<Config> | undefined;
  try {
    config = loadConfig({ configPath });
  } catch {
    // An invalid config is a note in the bundle; it names no database or log file to protect.
  }
  if (config && !isPostgresUrl(config.store.url) && isDatabaseFile(output, resolveSqlitePath(config))) {
    throw refuse('database the bundle reads, or a file SQLite keeps beside it');
  }
  const log = logFile ?? (config ? readLooseString(config, ['logging', 'file']) : undefined);
  if (log !== undefined && sameFile(output, log)) throw refuse('log file the bundle reads');
}

/** Whether two paths name one file: the same path, or (both existing) the same inode. */
function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    const [first, second] = [statSync(a), statSync(b)];
    return first.dev === second.dev && first.ino === second.ino;
  } catch {
    return false;
  }
}

function outputError(output: string, error: unknown): CliError {
  const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new CliError('USAGE', `cannot write --output ${resolve(output)} (${reason})`, EXIT.USAGE);
}

async function runSupportBundle(ctx: CliContext, command: Command): Promise<number> {
  const flags = nearestOptions<BundleFlags>(command);
  const clientEnv = readClientEnv();
  const now = new Date();
  const output = flags.output ?? `maos-support-${stamp(now)}.tar.gz`;
  // Checked before the (slow) collection: a bad path is a usage error, not a crash at the end.
  checkOutputPath(output);
  refuseSourceAsOutput(output, flags.config ?? clientEnv.configPath, flags.logFile);
  // A server that is no usable http(s) URL is a bad option (exit 2) as for `maos doctor`, not a note
  // in the bundle (which repeated a password in the URL for support to read).
  const server = flags.server ?? clientEnv.server;
  if (server !== undefined) normaliseBaseUrl(server);
  const { archive, files, notes } = await createSupportBundle({
    configPath: flags.config ?? clientEnv.configPath,
    server,
    token: (server) => flags.token ?? clientEnv.token ?? readStoredToken(server, ctx.credentialsPath),
    logFile: flags.logFile,
    now,
  });
  try {
    // `mode` applies to a new file only: an existing one (a bundle name reused) is made owner-only first.
    if (existsSync(output)) chmodSync(output, 0o600);
    writeFileSync(output, archive, { mode: 0o600 });
  } catch (error) {
    throw outputError(output, error);
  }
  if (ctx.out.json) ctx.out.printJson({ output, files, notes });
  else {
    ctx.out.line(`Wrote ${output} (${files.join(', ')})`);
    for (const note of notes) ctx.out.line(`  ${note}`);
  }
  return EXIT.OK;
}

/** Builds the bundle in memory; returns the archive and the names of the files in it. */
export async function createSupportBundle(
  options: SupportBundleOptions,
): Promise<{ archive: Buffer; files: string[]; notes: string[] }> {
  const now = options.now ?? new Date();
  const root = `maos-support-${stamp(now)}`;
  const notes: string[] = [];
  const entries: { name: string; content: string }[] = [];
  let config: Readonly<Config> | undefined;
  try {
    config = loadConfig({ configPath: options.configPath, env: options.env });
  } catch (error) {
    notes.push(`config: invalid (${(error as Error).message.split('\n')[0]}); see doctor.txt`);
  }
  entries.push({
    name: 'version.json',
    content: json({
      maos: VERSION,
      node: process.version,
      platform: platform(),
      arch: arch(),
      kernel: release(),
      createdAt: now.toISOString(),
    }),
  });
  if (config) entries.push({ name: 'config.json', content: json(redactConfig(config, [])) });

  const report = await runDoctor({
    configPath: options.configPath,
    env: options.env,
    server: options.server,
  });
  entries.push(
    { name: 'doctor.json', content: json(report) },
    { name: 'doctor.txt', content: renderDoctorReport(report) },
  );

  const logFile = options.logFile ?? (config ? readLooseString(config, ['logging', 'file']) : undefined);
  if (logFile && existsSync(logFile)) {
    // A log file this user cannot read (or a folder) is a note, like a missing one: the rest of the
    // bundle is what the operator came for.
    try {
      entries.push({ name: 'logs.txt', content: readTail(logFile, LOG_TAIL_BYTES) });
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      notes.push(`logs: cannot read ${logFile} (${reason})`);
    }
  } else
    notes.push(
      logFile
        ? `logs: ${logFile} not found`
        : 'logs: no log file configured (logs go to stdout; use --log-file)',
    );

  if (config) {
    const metrics = await fetchMetrics(config, options);
    if (metrics.text !== undefined) entries.push({ name: 'metrics.txt', content: metrics.text });
    else notes.push(`metrics: ${metrics.reason}`);
    try {
      entries.push({ name: 'database.json', content: json(collectDatabaseStats(resolveSqlitePath(config))) });
    } catch (error) {
      notes.push(`database: no statistics (${(error as Error).message})`);
    }
  }
  entries.push({
    name: 'manifest.json',
    content: json({ files: entries.map((entry) => entry.name), notes }),
  });

  // Belt and braces: whatever a file holds, no configured secret value leaves in the bundle, nor a
  // long part of one, as written, JSON-escaped (ECS log lines, doctor.json) or URL-encoded.
  const redact = createSecretRedactor(config ? collectSecretValues(config, []) : []);
  const tarEntries: TarEntry[] = entries.map((entry) => ({
    name: `${root}/${entry.name}`,
    content: redact(entry.content),
    mode: 0o600,
    mtime: now,
  }));
  return { archive: createTarGz(tarEntries), files: entries.map((entry) => entry.name), notes };
}

/** The host of a URL that reaches a local listener bound to `host` (wildcard binds become loopback). */
function reachableHost(host: string): string {
  return urlHost(connectHostFor(host));
}

/**
 * The separate metrics listener needs no credentials; /metrics on the API port may. The API port
 * serves HTTPS when tls.certFile is set (the metrics listener never does).
 */
function metricsEndpoint(
  config: Readonly<Config>,
  server: string | undefined,
): { url: string; api: boolean; base: string } {
  const scheme = config.tls.certFile ? 'https' : 'http';
  const base = (server ?? `${scheme}://${reachableHost(config.host)}:${config.port}`).replace(/\/+$/, '');
  if (config.metrics.port) {
    const url = `http://${reachableHost(config.metrics.host)}:${config.metrics.port}/metrics`;
    return { url, api: false, base };
  }
  return { url: `${base}/metrics`, api: true, base };
}

async function fetchMetrics(
  config: Readonly<Config>,
  options: SupportBundleOptions,
): Promise<{ text?: string; reason?: string }> {
  const { url, api, base } = metricsEndpoint(config, options.server);
  const token = withoutBearerPrefix(
    typeof options.token === 'function' ? options.token(base) : options.token,
  );
  try {
    const response = await fetch(url, {
      signal: AbortSignal.timeout(5000),
      headers: token && api ? { authorization: `Bearer ${token}` } : {},
    });
    if (!response.ok) return { reason: `${url} answered HTTP ${response.status}` };
    return { text: await response.text() };
  } catch (error) {
    return { reason: `${url} unreachable (${describeFetchFailure(error, url)})` };
  }
}

function readTail(path: string, maxBytes: number): string {
  const size = statSync(path).size;
  const start = Math.max(0, size - maxBytes);
  const buffer = Buffer.alloc(size - start);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, start);
  } finally {
    closeSync(fd);
  }
  const text = buffer.toString('utf8');
  // Drop the partial first line of a cut file.
  return start > 0 ? text.slice(text.indexOf('\n') + 1) : text;
}

function readLoose(config: Readonly<Config>, path: string[]): unknown {
  let node: unknown = config;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

function readLooseString(config: Readonly<Config>, path: string[]): string | undefined {
  const value = readLoose(config, path);
  return typeof value === 'string' ? value : undefined;
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function stamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}
