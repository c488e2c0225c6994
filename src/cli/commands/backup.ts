// `maos backup <file>`: a consistent copy of the SQLite database while the server keeps running
// (SQLite online backup API). PostgreSQL deployments use pg_dump (docs/operations.md).
import type { Command } from 'commander';
import { readClientEnv } from '../../config/client-env.ts';
import { loadConfig } from '../../config/load.ts';
import { AppError } from '../../errors/app-error.ts';
import { backupSqliteDatabase } from '../../store/backup.ts';
import { resolveSqlitePath } from '../../store/db.ts';
import { formatBytes } from '../ops/doctor-checks.ts';

interface BackupFlags {
  config?: string;
  json?: boolean;
}

/** Registers `maos backup` on the program. */
export function registerBackupCommand(program: Command): void {
  program
    .command('backup')
    .description('write a consistent copy of the SQLite database to <file> (safe while serving)')
    .argument(
      '<file>',
      'backup file to create (must not exist); `-` is refused: the backup is a file, never written to stdout',
    )
    .option('-c, --config <file>', 'config file (default: MAOS_CONFIG)')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, flags: BackupFlags, command: Command) => {
      refuseStdout(file);
      const globals = command.optsWithGlobals() as BackupFlags;
      const config = loadConfig({ configPath: flags.config ?? globals.config ?? readClientEnv().configPath });
      const source = resolveBackupSource(config);
      const result = await backupSqliteDatabase(source, file);
      if (flags.json ?? globals.json) {
        process.stdout.write(`${JSON.stringify({ source, ...result })}\n`);
      } else {
        process.stdout.write(
          `Backed up ${source} to ${result.path} (${formatBytes(result.bytes)}, ${result.pages} pages)\n`,
        );
      }
    });
}

/**
 * `-`, which other commands read as stdout: SQLite's backup API writes a database file (and the
 * backup is then switched to a rollback journal, synced and moved into place), which cannot be
 * streamed; it was written as a file named `-` in the current directory. `./-` names that file.
 */
function refuseStdout(file: string): void {
  if (file !== '-') return;
  throw new AppError(
    'VALIDATION_FAILED',
    'maos backup cannot write to stdout (`-`): a backup is a SQLite database file; name the file to create (`./-` for a file named -)',
  );
}

/** The SQLite file to back up (or restore); PostgreSQL is backed up and restored with its own tools. */
export function resolveBackupSource(
  config: Parameters<typeof resolveSqlitePath>[0],
  purpose: 'backup' | 'restore' = 'backup',
): string {
  const url = config.store.url ?? '';
  if (/^postgres(ql)?:/.test(url)) {
    throw new AppError(
      'INVALID_STATE',
      purpose === 'backup'
        ? 'store.url is PostgreSQL: back it up with `pg_dump --format=custom` (see docs/operations.md)'
        : 'store.url is PostgreSQL: restore it with `pg_restore --clean --if-exists` from a `pg_dump` (see docs/operations.md)',
    );
  }
  return resolveSqlitePath(config);
}
