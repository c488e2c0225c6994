// What every `maos` command gets: its output, an API client built from --server/--token (or
// MAOS_SERVER/MAOS_TOKEN, or the token `maos login` stored in --credentials), and a signal that
// aborts on Ctrl-C for long-running commands.
import type { Command } from 'commander';
import type { ClientEnv } from '../config/client-env.ts';
import { type ApiClient, createApiClient } from './client.ts';
import { readStoredCredentials } from './commands/login.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { maosCommand } from './invocation.ts';
import { createOutput, type Output } from './output.ts';

/** Default server: the local `maos serve` with its default host and port. */
export const DEFAULT_SERVER = 'http://127.0.0.1:7070';

/** Options shared by every command (defined on the root program). */
export interface GlobalOptions {
  server?: string;
  token?: string;
  /** The credentials file of `maos login` (its default when absent). */
  credentials?: string;
  json?: boolean;
}

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  env: ClientEnv;
}

export interface CliContext {
  out: Output;
  /** The API client (created on first use so local commands never need a server URL). */
  client(): ApiClient;
  /** Server base URL in effect. */
  server: string;
  /** The credentials file given (`--credentials`, else MAOS_CREDENTIALS); undefined: the default. */
  credentialsPath: string | undefined;
  /** `maos` as the user started it, for commands printed for them to run (invocation.ts). */
  maos: string;
  /**
   * A signal aborted by the first Ctrl-C (SIGINT); the handler is installed on first call and
   * removed when the command ends.
   */
  interruptSignal(): AbortSignal;
  /** Removes handlers installed for this command. */
  dispose(): void;
}

/**
 * The options of `command` and of the commands above it, the one given nearest the command winning:
 * `maos --server A sessions list --server B` goes to B, as a later option overrides an earlier one
 * (a wrapper or shell alias that puts a default `--server` before the command). commander's
 * optsWithGlobals lets the root's win, so such a command went to the wrapper's server. A default
 * value counts only where no command level was given the option.
 */
export function nearestOptions<T extends object>(command: Command): T {
  const given: Record<string, unknown> = {};
  const defaults: Record<string, unknown> = {};
  for (let level: Command | null = command; level; level = level.parent) {
    for (const [key, value] of Object.entries(level.opts())) {
      const into = level.getOptionValueSource(key) === 'default' ? defaults : given;
      if (value !== undefined && !Object.hasOwn(into, key)) into[key] = value;
    }
  }
  return { ...defaults, ...given } as T;
}

/** Builds the context for the command being run. */
export function createContext(command: Command, io: CliIo): CliContext {
  const globals = nearestOptions<GlobalOptions>(command);
  const json = globals.json === true;
  const color = !json && io.stdout.isTTY === true && !io.env.noColor;
  const out = createOutput({ json, color, stdout: io.stdout, stderr: io.stderr });
  const server = globals.server ?? io.env.server ?? DEFAULT_SERVER;
  const credentialsPath = globals.credentials ?? io.env.credentialsPath;
  const given = globals.token ?? io.env.token;
  let client: ApiClient | undefined;
  let controller: AbortController | undefined;
  const onSigint = () => controller?.abort();
  return {
    out,
    server,
    credentialsPath,
    maos: maosCommand(io.env, process.argv[1]),
    client: () => {
      if (client) return client;
      // A token stored by `maos login` for this server is the last resort; the file is read once,
      // and only by a command that talks to the server.
      const stored = given === undefined ? readStoredCredentials(server, credentialsPath) : undefined;
      client = createApiClient({
        server,
        token: given ?? stored?.token,
        storedForOtherServers: stored?.otherServers ?? [],
      });
      return client;
    },
    interruptSignal: () => {
      if (!controller) {
        controller = new AbortController();
        process.once('SIGINT', onSigint);
      }
      return controller.signal;
    },
    dispose: () => {
      process.removeListener('SIGINT', onSigint);
    },
  };
}

/** A command body: reads its arguments from `command`, returns an exit code (default 0). */
export type CommandHandler = (ctx: CliContext, command: Command) => Promise<number | undefined>;

/** Wraps a handler into a commander action; the wrapper gets the io and records the exit code. */
export type ActionFactory = (handler: CommandHandler) => (...args: unknown[]) => Promise<void>;

/** Parser of a repeatable option (`--agent a --agent b`): every value, in order. */
export const collectRepeated = (value: string, previous: string[] | undefined): string[] => [
  ...(previous ?? []),
  value,
];

/**
 * An option given an empty value (`--cursor "$UNSET"`) is a usage error, not the option left out:
 * read as absent, it silently did something else (the first page again, every tenant, stdout).
 */
export function refuseEmptyOption(flag: string, value: string | undefined): void {
  if (value !== undefined && value.trim() === '') {
    throw new CliError('USAGE', `${flag} must not be empty`, EXIT.USAGE);
  }
}

/** Help of `--credentials`, on the root program and on every command that talks to the server. */
export const CREDENTIALS_OPTION_HELP =
  'file of the tokens `maos login` stores (env MAOS_CREDENTIALS; default ~/.config/maos/credentials.json)';

/**
 * Adds `--json` (and, for commands that talk to the server, `--server`, `--token` and
 * `--credentials`) to a command.
 * The root program has the same options; they are repeated on each command because the root uses
 * positional options, so that commands with their own flags of the same name keep them.
 */
export function addCommonOptions(command: Command, remote: boolean): Command {
  if (remote) {
    command
      .option('--server <url>', `MAOS server URL (env MAOS_SERVER; default ${DEFAULT_SERVER})`)
      .option('--token <token>', 'bearer token for the server (env MAOS_TOKEN)')
      .option('--credentials <file>', CREDENTIALS_OPTION_HELP);
  }
  return command.option('--json', 'machine-readable output');
}
