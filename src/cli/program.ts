// The `maos` command tree (commander): global options, every subcommand, usage errors → exit 2,
// any failure → `error CODE: message` on stderr with its exit code, never a stack trace.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import {
  type ActionFactory,
  type CliIo,
  CREDENTIALS_OPTION_HELP,
  createContext,
  DEFAULT_SERVER,
  nearestOptions,
} from './context.ts';
import { CliError, EXIT, toCliError } from './exit-codes.ts';
import { createOutput } from './output.ts';

type Registrar = (program: Command, act: ActionFactory) => void;

/**
 * Every command, in help order, loaded on demand: `maos run` should not pay for loading the whole
 * server (engine, HTTP, providers) that `maos serve` needs.
 */
const COMMANDS: Record<string, () => Promise<Registrar>> = {
  run: async () => (await import('./commands/run.ts')).registerRunCommand,
  sessions: async () => (await import('./commands/sessions.ts')).registerSessionsCommands,
  approve: async () => (await import('./commands/approve.ts')).registerApproveCommand,
  reject: async () => (await import('./commands/approve.ts')).registerRejectCommand,
  steer: async () => (await import('./commands/approve.ts')).registerSteerCommand,
  logs: async () => (await import('./commands/logs.ts')).registerLogsCommand,
  roles: async () => (await import('./commands/roles.ts')).registerRolesCommand,
  usage: async () => (await import('./commands/usage.ts')).registerUsageCommand,
  quotas: async () => (await import('./commands/quotas.ts')).registerQuotasCommand,
  webhooks: async () => (await import('./commands/webhooks.ts')).registerWebhooksCommand,
  login: async () => (await import('./commands/login.ts')).registerLoginCommand,
  whoami: async () => (await import('./commands/whoami.ts')).registerWhoamiCommand,
  serve: async () => (await import('./commands/serve.ts')).registerServeCommand,
  mcp: async () => (await import('./commands/mcp.ts')).registerMcpCommand,
  migrate: async () => (await import('./commands/migrate.ts')).registerMigrateCommand,
  config: async () => (await import('./commands/config.ts')).registerConfigCommands,
  keys: async () => (await import('./commands/keys.ts')).registerKeysCommand,
  access: async () => (await import('./commands/access.ts')).registerAccessCommand,
  tenants: async () => (await import('./commands/tenants.ts')).registerTenantsCommand,
  audit: async () => (await import('./commands/audit.ts')).registerAuditCommand,
  secrets: async () => (await import('./commands/secrets.ts')).registerSecretsCommand,
  doctor: async () => (await import('./commands/doctor.ts')).registerDoctorCommand,
  backup: async () => (await import('./commands/backup.ts')).registerBackupCommand,
  restore: async () => (await import('./commands/restore.ts')).registerRestoreCommand,
  store: async () => (await import('./commands/store.ts')).registerStoreCommand,
  'support-bundle': async () => (await import('./commands/support-bundle.ts')).registerSupportBundleCommand,
};

/** Root options that take a value, so the scan for the command name can skip it. */
const ROOT_OPTIONS_WITH_VALUE = new Set(['--server', '--token', '--credentials']);

/** The command named in argv, when it is a known one (else undefined: help, typo, none). */
export function findCommandName(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (ROOT_OPTIONS_WITH_VALUE.has(token)) {
      i += 1;
      continue;
    }
    if (token.startsWith('-')) continue;
    // `logout` is registered together with `login`.
    if (token === 'logout') return 'login';
    return Object.hasOwn(COMMANDS, token) ? token : undefined;
  }
  return undefined;
}

/**
 * Builds the program with the command `only` (all commands when undefined, none when null); `act` turns command
 * handlers into actions that record the exit code.
 */
export async function createProgram(io: CliIo, act: ActionFactory, only?: string | null): Promise<Command> {
  const program = new Command('maos')
    .description('MAOS — multi-agent orchestration: submit objectives, follow sessions, run the server.')
    .version(VERSION, '-V, --version', 'print the version')
    .option('--server <url>', `MAOS server URL (env MAOS_SERVER; default ${DEFAULT_SERVER})`)
    .option('--token <token>', 'bearer token for the server (env MAOS_TOKEN)')
    .option('--credentials <file>', CREDENTIALS_OPTION_HELP)
    .option('--json', 'machine-readable output: one JSON document (JSON lines when following)')
    .enablePositionalOptions()
    .showHelpAfterError('(run `maos --help` or `maos <command> --help` for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(text),
    })
    // Every local command's --config: an empty one (`-c "$CONFIG"` with CONFIG unset) read as no
    // file at all, MAOS_CONFIG ignored too, so the command ran on the defaults and ./.maos.
    .hook('preAction', (_program, command) => {
      const config = command.opts<{ config?: unknown }>().config;
      if (typeof config === 'string' && config.trim() === '') {
        throw new CliError('USAGE', '--config must not be empty', EXIT.USAGE);
      }
      // Likewise an empty --credentials: a command reading its token from there ran without one
      // (the file named '' cannot be read), and login or logout had no file to write.
      const credentials = nearestOptions<{ credentials?: unknown }>(command).credentials;
      if (typeof credentials === 'string' && credentials.trim() === '') {
        throw new CliError('USAGE', '--credentials must not be empty', EXIT.USAGE);
      }
    });
  const names = only === null ? [] : only ? [only] : Object.keys(COMMANDS);
  const loaded = await Promise.allSettled(
    names.map((name) => (COMMANDS[name] as () => Promise<Registrar>)()),
  );
  for (const [i, result] of loaded.entries()) {
    if (result.status === 'fulfilled') result.value(program, act);
    // The command being run must load; for help and usage errors, one broken module must not hide the rest.
    else if (only) throw result.reason;
    else
      io.stderr.write(`warning: command ${names[i]} is unavailable: ${(result.reason as Error).message}\n`);
  }
  return program;
}

/** Runs the CLI with `argv` (user arguments only, no node/script) and returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.OK;
  const act: ActionFactory =
    (handler) =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const ctx = createContext(command, io);
      try {
        exitCode = (await handler(ctx, command)) ?? EXIT.OK;
      } finally {
        ctx.dispose();
      }
    };
  try {
    // `maos --version` needs no command at all; help and unknown commands need them all.
    const versionOnly = argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V');
    const program = await createProgram(io, act, versionOnly ? null : findCommandName(argv));
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (thrown) {
    if (thrown instanceof CommanderError) {
      // Help and --version end through exitOverride too, with exit code 0.
      return thrown.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const error = toCliError(thrown);
    const json = argv.includes('--json');
    createOutput({ json, color: false, stdout: io.stdout, stderr: io.stderr }).printError(error);
    return error.exitCode;
  }
}
