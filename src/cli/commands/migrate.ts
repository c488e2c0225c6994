// `maos migrate [--status]`: applies pending schema migrations to the configured database (local,
// no server needed), or shows what is applied and pending. Refuses a database newer than the code.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { createDatabase, openSqliteReadOnly, resolveSqlitePath } from '../../store/db.ts';
import { getMigrationStatus, type MigrationStatus, migrateToLatest } from '../../store/migrate.ts';
import { MIGRATIONS } from '../../store/migrations/index.ts';
import { isPostgresUrl } from '../../store/postgres-dialect.ts';
import { waitForDatabase } from '../../store/wait-for-database.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import { type Output, plural } from '../output.ts';

interface MigrateOptions {
  config?: string;
  status?: boolean;
}

/** Registers `maos migrate`. */
export function registerMigrateCommand(program: Command, act: ActionFactory): void {
  addCommonOptions(program.command('migrate'), false)
    .description('apply pending database migrations (the server also applies them at start)')
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .option('--status', 'only show applied and pending migrations; change no data')
    .action(act(runMigrate));
}

async function runMigrate(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<MigrateOptions>();
  const config = loadConfig({ configPath: options.config });
  const { out } = ctx;
  if (options.status) return showStatus(out, config);
  const handle = createDatabase(config);
  try {
    // A migration Job started beside its PostgreSQL waits for it, as `maos serve` does.
    const { value: applied } = await waitForDatabase(handle, config, () => migrateToLatest(handle.db), {
      onWaiting: (line) => out.note(line),
    });
    if (out.json) out.printJson({ database: handle.location, applied });
    else {
      out.line(`database  ${handle.location}`);
      if (applied.length === 0) out.line('up to date: no migration to apply');
      for (const name of applied) out.line(`${out.paint.green('applied')}   ${name}`);
    }
    return EXIT.OK;
  } finally {
    await handle.close();
  }
}

/**
 * `--status` changes no data: opening a SQLite file that does not exist would create it (and the
 * data directory), so a missing file is reported as a database with every migration pending; an
 * existing one is opened read-only (a read-write open would checkpoint its WAL at close).
 */
async function showStatus(out: Output, config: Readonly<Config>): Promise<number> {
  const missing = findMissingSqliteFile(config);
  if (missing !== undefined) {
    const pending = MIGRATIONS.map((entry) => entry.name);
    printStatus(out, missing, false, { applied: [], pending, unknown: [], current: pending.length === 0 });
    return EXIT.OK;
  }
  const handle = isPostgresUrl(config.store.url)
    ? createDatabase(config)
    : {
        ...openSqliteReadOnly(resolveSqlitePath(config), config.store.busyTimeoutMs),
        location: resolveSqlitePath(config),
      };
  try {
    printStatus(out, handle.location, true, await getMigrationStatus(handle.db));
    return EXIT.OK;
  } finally {
    await handle.close();
  }
}

/** The configured SQLite file when it does not exist yet; undefined for PostgreSQL or an existing file. */
function findMissingSqliteFile(config: Readonly<Config>): string | undefined {
  if (isPostgresUrl(config.store.url)) return undefined;
  const path = resolveSqlitePath(config);
  return existsSync(path) ? undefined : path;
}

function printStatus(out: Output, database: string, exists: boolean, status: MigrationStatus): void {
  if (out.json) {
    out.printJson({ database, exists, ...status });
    return;
  }
  out.line(`database  ${database}${exists ? '' : ' (does not exist yet)'}`);
  for (const name of status.applied) out.line(`${out.paint.green('applied')}   ${name}`);
  for (const name of status.pending) out.line(`${out.paint.yellow('pending')}   ${name}`);
  for (const name of status.unknown)
    out.line(`${out.paint.red('unknown')}   ${name} (newer than this build)`);
  if (!exists) out.line(`no database yet: ${plural(status.pending.length, 'migration')} pending`);
  else if (status.unknown.length > 0)
    // Not "0 pending": this build refuses such a database (serve and migrate exit with
    // DATABASE_NEWER_THAN_CODE), which is what the summary must say.
    out.line(
      `newer than this build: ${plural(status.unknown.length, 'unknown migration')}; this build refuses to run on it (run the newer MAOS version, or restore a backup taken before the upgrade)`,
    );
  else out.line(status.current ? 'up to date' : `${status.pending.length} pending`);
}
