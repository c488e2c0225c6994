// `maos migrate [--status]`: applies pending schema migrations to the configured database (local,
// no server needed), or shows what is applied and pending. Refuses a database newer than the code.
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.ts';
import { createDatabase } from '../../store/db.ts';
import { getMigrationStatus, migrateToLatest } from '../../store/migrate.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';

interface MigrateOptions {
  config?: string;
  status?: boolean;
}

/** Registers `maos migrate`. */
export function registerMigrateCommand(program: Command, act: ActionFactory): void {
  addCommonOptions(program.command('migrate'), false)
    .description('apply pending database migrations (the server also applies them at start)')
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .option('--status', 'only show applied and pending migrations; change nothing')
    .action(act(runMigrate));
}

async function runMigrate(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<MigrateOptions>();
  const config = loadConfig({ configPath: options.config });
  const handle = createDatabase(config);
  const { out } = ctx;
  try {
    if (options.status) {
      const status = await getMigrationStatus(handle.db);
      if (out.json) {
        out.printJson({ database: handle.location, ...status });
        return EXIT.OK;
      }
      out.line(`database  ${handle.location}`);
      for (const name of status.applied) out.line(`${out.paint.green('applied')}   ${name}`);
      for (const name of status.pending) out.line(`${out.paint.yellow('pending')}   ${name}`);
      for (const name of status.unknown)
        out.line(`${out.paint.red('unknown')}   ${name} (newer than this build)`);
      out.line(status.current ? 'up to date' : `${status.pending.length} pending`);
      return EXIT.OK;
    }
    const applied = await migrateToLatest(handle.db);
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
