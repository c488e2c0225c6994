// The `maos` command tree (commander): global options, every subcommand, usage errors → exit 2,
// any failure → `error CODE: message` on stderr with its exit code, never a stack trace.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import { registerBackupCommand } from './commands/backup.ts';
import { registerConfigCommands } from './commands/config.ts';
import { registerDoctorCommand } from './commands/doctor.ts';
import { registerLogsCommand } from './commands/logs.ts';
import { registerMigrateCommand } from './commands/migrate.ts';
import { registerRestoreCommand } from './commands/restore.ts';
import { registerRolesCommand } from './commands/roles.ts';
import { registerRunCommand } from './commands/run.ts';
import { registerSessionsCommands } from './commands/sessions.ts';
import { registerSupportBundleCommand } from './commands/support-bundle.ts';
import { type ActionFactory, type CliIo, createContext, DEFAULT_SERVER } from './context.ts';
import { EXIT, toCliError } from './exit-codes.ts';
import { createOutput } from './output.ts';

/** Builds the program; `act` turns command handlers into actions that record the exit code. */
export function createProgram(io: CliIo, act: ActionFactory): Command {
  const program = new Command('maos')
    .description('MAOS — multi-agent orchestration: submit objectives, follow sessions, run the server.')
    .version(VERSION, '-V, --version', 'print the version')
    .option('--server <url>', `MAOS server URL (env MAOS_SERVER; default ${DEFAULT_SERVER})`)
    .option('--token <token>', 'bearer token for the server (env MAOS_TOKEN)')
    .option('--json', 'machine-readable output: one JSON document (JSON lines when following)')
    .enablePositionalOptions()
    .showHelpAfterError('(run `maos --help` or `maos <command> --help` for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(text),
    });
  registerRunCommand(program, act);
  registerSessionsCommands(program, act);
  registerLogsCommand(program, act);
  registerRolesCommand(program, act);
  registerConfigCommands(program, act);
  registerMigrateCommand(program, act);
  // Operations commands parse their own flags and report through CliError like the rest.
  registerDoctorCommand(program);
  registerBackupCommand(program);
  registerRestoreCommand(program);
  registerSupportBundleCommand(program);
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
  const program = createProgram(io, act);
  try {
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
