// `maos store copy --to <url>`: moves an installation's data to another database, typically from the
// embedded SQLite file to PostgreSQL when one machine is no longer enough (store/store-copy.ts). The
// configured database is the source; it is only read. On SQLite the server lock is held meanwhile,
// so no server can write to the source (or the target) while the copy runs.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { sql } from 'kysely';
import { loadConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { AppError } from '../../errors/app-error.ts';
import { createAuditLog } from '../../security/audit/audit-log.ts';
import { readDatabaseEntries } from '../../security/audit/audit-source.ts';
import { verifyAuditEntries } from '../../security/audit/verify.ts';
import { loadAuditSigner } from '../../security/create-security.ts';
import { localOperatorActor } from '../../security/local-store.ts';
import type { SecurityDb } from '../../security/security-tables.ts';
import { isDatabaseFile } from '../../store/backup.ts';
import { nearestExisting } from '../../store/data-dir-owner.ts';
import {
  createDatabase,
  type DatabaseHandle,
  openSqliteReadOnly,
  refuseRootInDataDir,
  resolveSqlitePath,
} from '../../store/db.ts';
import { currentSchema, getMigrationStatus, migrateToLatest } from '../../store/migrate.ts';
import { MIGRATIONS } from '../../store/migrations/index.ts';
import {
  isPostgresUrl,
  LISTEN_APPLICATION_NAME,
  SERVER_APPLICATION_NAME,
} from '../../store/postgres-dialect.ts';
import { claimServerLock, type ServerLock } from '../../store/server-lock.ts';
import {
  COPIED_TABLES,
  copyStore,
  countCopiedRows,
  refuseTargetWithData,
  SKIPPED_TABLES,
  type StoreCopyReport,
} from '../../store/store-copy.ts';
import { type ActionFactory, addCommonOptions, type CliContext } from '../context.ts';
import { CliError, EXIT } from '../exit-codes.ts';
import { decodeUtf8File } from '../utf8-file.ts';

interface CopyOptions {
  config?: string;
  to?: string;
  toFile?: string;
  dryRun?: boolean;
}

/** Registers `maos store`. */
export function registerStoreCommand(program: Command, act: ActionFactory): void {
  const store = program
    .command('store')
    .description('move the data of this installation to another database (local)');
  addCommonOptions(store.command('copy'), false)
    .description(
      'copy every session, key, role, usage record and the audit log from the configured database into an empty one',
    )
    .option('-c, --config <path>', 'config file, YAML or JSON (env MAOS_CONFIG)')
    .option('--to <url>', 'target database: postgres://user:pass@host:5432/db or sqlite:<path>')
    .option('--to-file <file>', 'file holding the target URL (keeps its password off the command line)')
    .option('--dry-run', 'check both databases and count what would be copied; write nothing')
    .action(act(runCopy));
}

async function runCopy(ctx: CliContext, command: Command): Promise<number> {
  const options = command.opts<CopyOptions>();
  const config = loadConfig({ configPath: options.config });
  const targetUrl = readTargetUrl(options);
  const targetConfig: Config = { ...config, store: { ...config.store, url: targetUrl } };
  refuseSameDatabase(config, targetConfig);
  // The audit record of the copy is signed with the installation's key, which may be generated
  // into the data directory, as `maos keys` does: as root, refused on another user's directory.
  refuseRootInDataDir(config);
  if (options.dryRun) return planCopy(ctx, config, targetConfig);
  // Before anything is written: a key that cannot be generated into the data directory (or read)
  // failed the command only after the copy was committed, the target filled but without its record
  // of the copy, and refused by the next run as holding data.
  const signer = loadAuditSigner(config);
  const locks: ServerLock[] = [];
  let source: { db: DatabaseHandle['db']; location: string; close(): Promise<void> } | undefined;
  let target: DatabaseHandle | undefined;
  try {
    source = openSource(config, locks);
    await refuseUnmigratedSource(source);
    target = await openTarget(targetConfig, locks);
    if (isPostgresUrl(config.store.url)) await refuseRunningReplicas(source, 'source');
    if (isPostgresUrl(targetConfig.store.url)) await refuseRunningReplicas(target, 'target');
    await migrateToLatest(target.db);
    const { out } = ctx;
    if (!out.json) {
      out.line(`source  ${source.location}`);
      out.line(`target  ${target.location}`);
    }
    const sourceDatabase = source;
    const report = await copyStore(source.db, target.db, {
      // A replica that connected meanwhile may have written past the snapshot: nothing is kept.
      ...(isPostgresUrl(config.store.url)
        ? { beforeCommit: () => refuseRunningReplicas(sourceDatabase, 'source') }
        : {}),
      onTable: (name, rows) => {
        if (!out.json) out.line(`${out.paint.green('copied')}  ${name.padEnd(NAME_WIDTH)} ${rows}`);
      },
    });
    await recordCopy(config, signer, target, source.location, report);
    const audit = await verifyAuditEntries(readDatabaseEntries(target.db as unknown as SecurityDb));
    printReport(ctx, source.location, target.location, report, audit);
    return EXIT.OK;
  } finally {
    await target?.close();
    await source?.close();
    for (const lock of locks) lock.release();
  }
}

/**
 * `--dry-run`: the checks of a copy and the rows it would carry, with nothing written to either
 * database: a PostgreSQL target is only read (its schema stays as it is), a SQLite target that does
 * not exist yet is not created.
 */
async function planCopy(ctx: CliContext, config: Config, targetConfig: Config): Promise<number> {
  const locks: ServerLock[] = [];
  let source: { db: DatabaseHandle['db']; location: string; close(): Promise<void> } | undefined;
  let target: { db: DatabaseHandle['db']; location: string; close(): Promise<void> } | undefined;
  try {
    source = openSource(config, locks);
    await refuseUnmigratedSource(source);
    if (isPostgresUrl(config.store.url)) await refuseRunningReplicas(source, 'source');
    target = openTargetForReading(targetConfig, locks);
    let location = isPostgresUrl(targetConfig.store.url) ? '' : resolveSqlitePath(targetConfig);
    // A SQLite file the copy would create: its folder must take it, or the dry run passes a copy
    // that then fails to open its target.
    if (!target && location !== '') refuseUnwritableFolder(location);
    let pending = MIGRATIONS.length;
    if (target) {
      location = target.location;
      if (isPostgresUrl(targetConfig.store.url)) await refuseRunningReplicas(target, 'target');
      const status = await getMigrationStatus(target.db);
      if (status.unknown.length > 0) {
        throw new AppError(
          'DATABASE_NEWER_THAN_CODE',
          `The target database ${target.location} has migrations this build does not know (${status.unknown.join(', ')})`,
        );
      }
      pending = status.pending.length;
      // Those of MAOS's schema only: other schemas of a PostgreSQL database may hold tables of the
      // same names (see currentSchema), which are not the target's.
      const schema = await currentSchema(target.db);
      const tables = new Set(
        (await target.db.introspection.getTables())
          .filter((table) => schema === undefined || table.schema === schema)
          .map((table) => table.name),
      );
      await refuseTargetWithData(target.db, tables);
    }
    const tables = await countCopiedRows(source.db);
    const rows = tables.reduce((sum, table) => sum + table.rows, 0);
    const { out } = ctx;
    if (out.json) {
      out.printJson({
        dryRun: true,
        source: source.location,
        target: location,
        targetExists: target !== undefined,
        pendingMigrations: pending,
        tables,
        rows,
      });
      return EXIT.OK;
    }
    out.line(`source  ${source.location}`);
    out.line(`target  ${location}${target ? '' : ' (does not exist yet; the copy creates it)'}`);
    for (const table of tables) out.line(`would copy  ${table.name.padEnd(NAME_WIDTH)} ${table.rows}`);
    out.line(
      `dry run: ${rows} rows in ${tables.length} tables would be copied` +
        (pending > 0 ? ` after ${pending} migration(s) of the target` : '') +
        '; nothing was written',
    );
    return EXIT.OK;
  } finally {
    await target?.close();
    await source?.close();
    for (const lock of locks) lock.release();
  }
}

/** A PostgreSQL database the copy only reads, on connections named as the copy's. */
function openPostgresForReading(config: Config) {
  const handle = createDatabase(config, { readsDatabaseOnly: true, applicationName: COPY_APPLICATION_NAME });
  return { db: handle.db, location: handle.location, close: () => handle.close() };
}

/** STORE_UNAVAILABLE when the nearest existing folder on the way to `path` cannot be written to. */
function refuseUnwritableFolder(path: string): void {
  const folder = nearestExisting(dirname(path));
  try {
    accessSync(folder, constants.W_OK);
  } catch (error) {
    throw new AppError(
      'STORE_UNAVAILABLE',
      `The target database ${path} cannot be created: ${folder} is not writable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
}

/** The target for `--dry-run`: read only; undefined for a SQLite file that does not exist yet. */
function openTargetForReading(config: Config, locks: ServerLock[]) {
  if (isPostgresUrl(config.store.url)) return openPostgresForReading(config);
  const path = resolveSqlitePath(config);
  if (!existsSync(path)) return undefined;
  holdServerLock(path, 'target', locks);
  return { ...openSqliteReadOnly(path, config.store.busyTimeoutMs), location: path };
}

function readTargetUrl(options: CopyOptions): string {
  if (options.to !== undefined && options.toFile !== undefined) {
    throw new CliError('USAGE', 'give the target with --to or --to-file, not both', EXIT.USAGE);
  }
  let url = options.to;
  if (options.toFile !== undefined) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(resolve(options.toFile));
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new CliError('USAGE', `cannot read --to-file ${resolve(options.toFile)} (${reason})`, EXIT.USAGE);
    }
    // Not read lossily: a password byte that is not UTF-8 would become `�` and fail to sign in.
    url = decodeUtf8File(bytes, '--to-file', resolve(options.toFile)).trim();
  }
  if (url === undefined || url.trim() === '') {
    throw new CliError(
      'USAGE',
      'the target database is required: --to postgres://… or --to sqlite:<path>',
      EXIT.USAGE,
    );
  }
  if (!url.startsWith('sqlite:') && !isPostgresUrl(url)) {
    throw new CliError('USAGE', '--to must start with postgres:// (or postgresql://) or sqlite:', EXIT.USAGE);
  }
  return url;
}

/** Copying a database onto itself would find it not empty, after taking its locks: say it plainly. */
function refuseSameDatabase(source: Config, target: Config): void {
  const same = isPostgresUrl(source.store.url)
    ? source.store.url === target.store.url
    : !isPostgresUrl(target.store.url) && resolveSqlitePath(source) === resolveSqlitePath(target);
  if (same) throw new CliError('USAGE', '--to names the configured database itself', EXIT.USAGE);
  // Another spelling of it (a linked folder, a hard link), or a file SQLite keeps beside it: a copy
  // to `maos.db-journal` was taken for a hot rollback journal at the next open of the source, and deleted.
  if (
    !isPostgresUrl(source.store.url) &&
    !isPostgresUrl(target.store.url) &&
    isDatabaseFile(resolveSqlitePath(target), resolveSqlitePath(source))
  ) {
    throw new CliError(
      'USAGE',
      `--to names the configured database ${resolveSqlitePath(source)} or a file SQLite keeps beside it: name another file`,
      EXIT.USAGE,
    );
  }
}

/**
 * The configured database, read-only for SQLite (nothing written, not even a WAL checkpoint). On
 * SQLite a running server would go on writing after the snapshot: refused, and the lock kept.
 */
function openSource(config: Config, locks: ServerLock[]) {
  if (isPostgresUrl(config.store.url)) return openPostgresForReading(config);
  const path = resolveSqlitePath(config);
  holdServerLock(path, 'source', locks);
  try {
    return { ...openSqliteReadOnly(path, config.store.busyTimeoutMs), location: path };
  } catch (error) {
    if (error instanceof AppError && error.code === 'STORE_UNAVAILABLE') {
      throw new CliError('NOT_FOUND', `no database to copy at ${path} (${error.message})`, EXIT.NOT_FOUND);
    }
    throw error;
  }
}

/**
 * The target, created if needed. On SQLite its server lock is taken once the file is there (as the
 * database, the lock file is created when missing): a server started on it meanwhile is refused
 * instead of running on a half-copied database, and one that got there first refuses the copy.
 */
async function openTarget(config: Config, locks: ServerLock[]): Promise<DatabaseHandle> {
  const target = createDatabase(config, { applicationName: COPY_APPLICATION_NAME });
  if (target.dialect === 'sqlite') {
    try {
      holdServerLock(target.location, 'target', locks, { create: true });
    } catch (error) {
      await target.close();
      throw error;
    }
  }
  return target;
}

function holdServerLock(
  path: string,
  which: 'source' | 'target',
  locks: ServerLock[],
  options: { create?: boolean } = {},
): void {
  const claim = claimServerLock(path, options);
  if (claim.state === 'free') {
    if (claim.lock) locks.push(claim.lock);
    return;
  }
  if (claim.state === 'held') {
    throw new AppError(
      'CONFLICT',
      `A MAOS server runs on the ${which} database ${path}: stop it before copying (${claim.message})`,
    );
  }
  throw new AppError(
    'STORE_UNAVAILABLE',
    `Cannot check the server lock of the ${which} database: ${claim.message}`,
  );
}

/** Table names line up in the text output. */
const NAME_WIDTH = Math.max(
  ...[...COPIED_TABLES.map((table) => table.name), ...Object.keys(SKIPPED_TABLES)].map((name) => name.length),
);

/** The copy's own PostgreSQL connections, told apart from those of replicas. */
const COPY_APPLICATION_NAME = 'maos-store-copy';

/**
 * PostgreSQL has no server lock: a replica is seen by its connections, its pool's (closed when idle)
 * and its LISTEN connection (open for its whole life). One still running would write after the
 * snapshot (source) or beside the copy (target).
 */
async function refuseRunningReplicas(
  database: { db: DatabaseHandle['db']; location: string },
  which: 'source' | 'target',
): Promise<void> {
  const { rows } = await sql<{ connections: number }>`
    select count(*) as connections from pg_stat_activity
     where datname = current_database()
       and application_name in (${SERVER_APPLICATION_NAME}, ${LISTEN_APPLICATION_NAME})`.execute(database.db);
  const connections = Number(rows[0]?.connections ?? 0);
  if (connections > 0) {
    throw new AppError(
      'CONFLICT',
      `MAOS replicas are connected to the ${which} database ${database.location} (${connections} connection(s)): stop every replica before copying`,
    );
  }
}

/** Both sides must be at this build's schema: the target is migrated, the source must already be. */
async function refuseUnmigratedSource(source: { db: DatabaseHandle['db']; location: string }): Promise<void> {
  const status = await getMigrationStatus(source.db);
  if (status.unknown.length > 0) {
    throw new AppError(
      'DATABASE_NEWER_THAN_CODE',
      `The source database ${source.location} has migrations this build does not know (${status.unknown.join(', ')}): copy it with the newer MAOS version`,
    );
  }
  if (status.pending.length > 0) {
    throw new AppError(
      'MIGRATION_REQUIRED',
      `The source database ${source.location} has ${status.pending.length} pending migration(s): run \`maos migrate\` on it first`,
    );
  }
}

/**
 * The copy itself goes into the target's audit log, after the copied records, so its chain says
 * where its earlier records came from.
 */
async function recordCopy(
  config: Config,
  signer: ReturnType<typeof loadAuditSigner>,
  target: DatabaseHandle,
  sourceLocation: string,
  report: StoreCopyReport,
): Promise<void> {
  const auditLog = createAuditLog({
    db: target.db as unknown as SecurityDb,
    origin: config.audit.origin,
    signer,
    // The checkpoint goes into the target's own table only: a file in the shared checkpoint
    // directory would sign a record the source never had, and the source may be kept running (or
    // returned to) with a chain of its own.
    checkpointDir: null,
    observerNode: config.audit.observerNode,
  });
  try {
    await auditLog.append({
      action: 'store:copy',
      actor: localOperatorActor(null),
      target: { type: 'store', id: target.location, tenant: null },
      outcome: 'success',
      reason: `copied from ${sourceLocation}: ${countRows(report)} rows, audit log up to ${report.auditHead ?? 'its start'}`,
    });
  } finally {
    await auditLog.close();
  }
}

function printReport(
  ctx: CliContext,
  source: string,
  target: string,
  report: StoreCopyReport,
  audit: Awaited<ReturnType<typeof verifyAuditEntries>>,
): void {
  const { out } = ctx;
  const rows = countRows(report);
  if (out.json) {
    out.printJson({
      source,
      target,
      tables: report.tables,
      skipped: Object.keys(SKIPPED_TABLES),
      audit: {
        copiedRecords: report.auditRecords,
        head: report.auditHead,
        records: audit.size,
        intact: audit.ok,
      },
    });
    return;
  }
  for (const [name, reason] of Object.entries(SKIPPED_TABLES))
    out.line(`${out.paint.yellow('skipped')} ${name.padEnd(NAME_WIDTH)} ${reason}`);
  out.line(`copied ${rows} rows in ${COPIED_TABLES.length} tables; the source is unchanged`);
  if (audit.ok) out.line(`audit log: ${audit.size} records, chain intact (the last one records this copy)`);
  else
    out.line(
      out.paint.red(
        `audit log: the chain is broken at record ${audit.firstBrokenIndex}, as it was in the source (see \`maos audit verify\`)`,
      ),
    );
  out.line(
    'next: set store.url to the target, keep the same secrets.* and audit.signingKey settings (stored tenant secrets and audit checkpoints depend on them), and start `maos serve`',
  );
}

function countRows(report: StoreCopyReport): number {
  return report.tables.reduce((sum, table) => sum + table.rows, 0);
}
