// `maos login` / `maos logout`: check a token or API key against `--server` and store it (0600)
// for later commands, so scripts need neither --token nor MAOS_TOKEN after logging in.
import { mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { writeFileDurablySync } from '../../store/durable-file.ts';
import { syncDirectorySync } from '../../store/sync-directory.ts';
import { ApiProblemError, createApiClient } from '../client.ts';
import { withoutBearerPrefix } from '../client-errors.ts';
import {
  type ActionFactory,
  type CliContext,
  CREDENTIALS_OPTION_HELP,
  DEFAULT_SERVER,
  nearestOptions,
} from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { acquireFileLock, type FileLock, FileLockTimeoutError } from '../file-lock.ts';

interface LoginOptions {
  server?: string;
  token?: string;
}

interface CredentialsFile {
  servers: Record<string, { token: string; savedAt: string }>;
}

/** Default location of stored credentials. */
export function defaultCredentialsPath(): string {
  return join(homedir(), '.config', 'maos', 'credentials.json');
}

/** Normalises a server URL so `http://h:1/` and `http://h:1` share one entry. */
function serverKey(server: string): string {
  try {
    const url = new URL(server);
    return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  } catch {
    throw new CliError('VALIDATION_FAILED', `--server: "${server}" is not a URL`, EXIT.USAGE);
  }
}

/**
 * The stored credentials; a missing file is empty. One that exists but cannot be read as a
 * credentials file is refused (CliError): `login` and `logout` write the file back, and would
 * otherwise replace it by one holding only this server, dropping the tokens of every other server
 * without a word.
 */
function readCredentials(path: string): CredentialsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { servers: {} };
    throw new CliError(
      'VALIDATION_FAILED',
      `cannot read the credentials file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); it was left unchanged`,
      EXIT.USAGE,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const servers = (parsed as Partial<CredentialsFile> | undefined)?.servers;
  if (
    parsed === null ||
    typeof parsed !== 'object' ||
    Array.isArray(parsed) ||
    (servers !== undefined && (typeof servers !== 'object' || servers === null || Array.isArray(servers)))
  ) {
    throw new CliError(
      'VALIDATION_FAILED',
      `the credentials file ${path} is not one \`maos login\` wrote (not a JSON object with "servers"); it was left unchanged: fix or delete it`,
      EXIT.USAGE,
    );
  }
  return { servers: servers ?? {} };
}

/**
 * Replaces the credentials file as a whole: the new content goes to a temporary file beside it
 * (0600), is flushed to disk and renamed over the file, so a crash or a full disk midway leaves the
 * previous file, every server's token in it, as it was. A symlinked file is replaced at its target.
 */
function writeCredentials(path: string, content: CredentialsFile): void {
  // Its folder was made by updateCredentials, the only caller.
  const target = fileWritten(path);
  try {
    writeFileDurablySync(target, `${JSON.stringify(content, null, 2)}\n`, { syncDirectory: false });
  } catch (error) {
    throw unwritable(path, error);
  }
  try {
    syncDirectorySync(dirname(target));
  } catch (error) {
    throw new CliError(
      'VALIDATION_FAILED',
      `the credentials file ${path} was written, but its directory could not be flushed to disk (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      EXIT.USAGE,
    );
  }
}

/** The file a write of the credentials file `path` replaces: a symlink's target, else `path` itself. */
function fileWritten(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    // No file yet: it is created at `path`.
    return resolve(path);
  }
}

/** What `maos login` stored, as a command sent without --token or MAOS_TOKEN uses it. */
export interface StoredCredentials {
  /** The token stored for the server, if any. */
  token: string | undefined;
  /**
   * Without one: the other servers a token is stored for, named when the server refuses the
   * command for want of a token.
   */
  otherServers: string[];
}

/**
 * A lock left by a login that died this long ago is taken over (by one waiting login only:
 * file-lock.ts). A login holds it for milliseconds, so 30 s means its holder is gone.
 */
const STALE_LOCK_MS = 30_000;
/** How long a login waits for another one to finish with the file. */
const LOCK_WAIT_MS = 10_000;

/**
 * Reads the credentials file afresh, applies `change` and writes it back when `change` says so,
 * under a lock file beside it (`<file>.lock`): two `maos login` at once (parallel CI jobs, two
 * terminals) each wrote back what it had read before asking its server, and the later one dropped
 * the token the other had just stored.
 */
async function updateCredentials(path: string, change: (content: CredentialsFile) => boolean): Promise<void> {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (error) {
    throw unwritable(path, error);
  }
  // Beside the file written (a symlink's target), so a login through the link and one naming the
  // target take turns too.
  const lock = `${fileWritten(path)}.lock`;
  let held: FileLock;
  try {
    held = await acquireFileLock(lock, { staleMs: STALE_LOCK_MS, waitMs: LOCK_WAIT_MS });
  } catch (error) {
    if (!(error instanceof FileLockTimeoutError)) throw unwritable(path, error);
    throw new CliError(
      'CONFLICT',
      `another maos login or logout is updating the credentials file ${path} (lock ${lock}); try again, or delete the lock if none runs`,
      EXIT.CONFLICT,
    );
  }
  try {
    const content = readCredentials(path);
    if (change(content)) writeCredentials(path, content);
  } finally {
    held.release();
  }
}

function unwritable(path: string, error: unknown): CliError {
  return new CliError(
    'VALIDATION_FAILED',
    `cannot write the credentials file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}); it was left unchanged`,
    EXIT.USAGE,
  );
}

/**
 * The token stored by `maos login` for `server` and, when there is none, the servers that have one,
 * from one reading of the credentials file; nothing from a file that cannot be read.
 */
export function readStoredCredentials(server: string, path = defaultCredentialsPath()): StoredCredentials {
  try {
    const { servers } = readCredentials(path);
    const key = serverKey(server);
    const token = servers[key]?.token;
    return {
      token,
      otherServers: token === undefined ? Object.keys(servers).filter((stored) => stored !== key) : [],
    };
  } catch {
    return { token: undefined, otherServers: [] };
  }
}

/**
 * The token stored by `maos login` for `server`, if any (used when neither --token nor MAOS_TOKEN is
 * set); none from a file that cannot be read.
 */
export function readStoredToken(server: string, path = defaultCredentialsPath()): string | undefined {
  return readStoredCredentials(server, path).token;
}

/** Registers `maos login` and `maos logout`. */
export function registerLoginCommand(program: Command, act: ActionFactory): void {
  // The common options, but login's --token is the credential to store (MAOS_TOKEN is not read:
  // the token comes from stdin), and logout sends none: a --token there was accepted and ignored.
  program
    .command('login')
    .description('check a bearer token or API key against the server and store it for later commands')
    .option('--server <url>', `MAOS server URL (env MAOS_SERVER; default ${DEFAULT_SERVER})`)
    .option('--token <token>', 'the token or API key to check and store (default: read from stdin)')
    .option('--credentials <file>', CREDENTIALS_OPTION_HELP)
    .option('--json', 'machine-readable output')
    .action(act(runLogin));
  program
    .command('logout')
    .description('forget the stored credential of the server')
    .option('--server <url>', `MAOS server URL (env MAOS_SERVER; default ${DEFAULT_SERVER})`)
    .option('--credentials <file>', CREDENTIALS_OPTION_HELP)
    .option('--json', 'machine-readable output')
    .action(act(runLogout));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

/** The credentials file login and logout write (an empty --credentials is refused before: program.ts). */
function credentialsFile(ctx: CliContext): string {
  return ctx.credentialsPath ?? defaultCredentialsPath();
}

async function runLogin(ctx: CliContext, command: Command): Promise<number> {
  const options = nearestOptions<LoginOptions>(command);
  const server = options.server ?? ctx.server ?? DEFAULT_SERVER;
  const path = credentialsFile(ctx);
  // Prefer stdin over a flag: flags end up in shell history and process listings.
  // Stored as sent: without a `Bearer ` copied with it.
  const token = withoutBearerPrefix(options.token ?? (process.stdin.isTTY ? '' : await readStdin()));
  if (!token) {
    throw new CliError(
      'VALIDATION_FAILED',
      'give the token on stdin (echo $TOKEN | maos login) or with --token',
      EXIT.USAGE,
    );
  }
  // Before the server is asked: a file that cannot be updated fails the login either way.
  readCredentials(path);
  const status = await checkCredential(server, token);
  // A server with auth mode `none` takes any token: say that this one proved nothing.
  const open = status === 200 && (await answersWithoutCredential(server));
  await updateCredentials(path, (content) => {
    content.servers[serverKey(server)] = { token, savedAt: new Date().toISOString() };
    return true;
  });
  if (ctx.out.json) {
    ctx.out.printJson({ server: serverKey(server), stored: path, status, credentialsRequired: !open });
  } else {
    ctx.out.line(`logged in to ${serverKey(server)}; credential stored in ${path}`);
    if (status === 403) ctx.out.note('note: the credential is valid but may not read roles (HTTP 403)');
    if (open) {
      ctx.out.note(
        'note: this server asks for no credentials (auth mode none), so it accepts any token: this one was not checked',
      );
    }
  }
  return EXIT.OK;
}

/**
 * Reads the roles with the credential (through the API client, so a base path in --server is kept
 * and errors read like every other command's): 200 or 403 means the server knows the credential.
 */
async function checkCredential(server: string, token: string): Promise<number> {
  const client = createApiClient({ server, token, requestTimeoutMs: 10_000 });
  try {
    await client.listRoles();
    return 200;
  } catch (error) {
    if (!(error instanceof ApiProblemError)) throw error;
    if (error.status === 403) return 403;
    if (error.status === 401 || error.status === 400) {
      throw new CliError(
        'INVALID_TOKEN',
        `the server rejected the credential (HTTP ${error.status}: ${error.message})`,
        EXIT.AUTH,
      );
    }
    if (error.status === 404) {
      throw new CliError(
        'NOT_FOUND',
        `${server} has no MAOS API (GET v1/roles answered 404); check --server`,
        EXIT.NOT_FOUND,
      );
    }
    throw error;
  }
}

/** Whether the server answers a request without any credential (auth mode `none`). */
async function answersWithoutCredential(server: string): Promise<boolean> {
  try {
    await createApiClient({ server, requestTimeoutMs: 10_000 }).listRoles();
    return true;
  } catch {
    return false;
  }
}

async function runLogout(ctx: CliContext, command: Command): Promise<number> {
  const options = nearestOptions<LoginOptions>(command);
  const server = serverKey(options.server ?? ctx.server ?? DEFAULT_SERVER);
  const path = credentialsFile(ctx);
  let existed = false;
  await updateCredentials(path, (content) => {
    existed = server in content.servers;
    delete content.servers[server];
    return existed;
  });
  if (ctx.out.json) ctx.out.printJson({ server, removed: existed });
  else ctx.out.line(existed ? `logged out of ${server}` : `no stored credential for ${server}`);
  return EXIT.OK;
}
