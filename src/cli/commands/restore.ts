// `maos restore <file>`: checks a backup (integrity, schema version), refuses to replace an existing
// database without --force or one a running server uses (its server lock), installs it, and verifies the result.
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { readClientEnv } from '../../config/client-env.ts';
import { loadConfig } from '../../config/load.ts';
import type { Config } from '../../config/schema.ts';
import { AppError } from '../../errors/app-error.ts';
import { resolveCheckpointDir } from '../../security/create-security.ts';
import {
  databaseFilePath,
  inspectSqliteFile,
  isDatabaseInUse,
  keepOwner,
  refuseFileAsDirectory,
  replaceDatabaseFile,
} from '../../store/backup.ts';
import { nearestExisting } from '../../store/data-dir-owner.ts';
import { claimServerLock, type ServerLockClaim } from '../../store/server-lock.ts';
import { CliError } from '../exit-codes.ts';
import { getHealthz } from '../local-healthz.mjs';
import { connectHostFor, urlHost } from '../loopback-address.mjs';
import {
  readRecordedCheckpoints,
  type SetAsideCheckpoints,
  setAsideLaterCheckpoints,
  verifyRestoredAudit,
} from '../ops/restore-audit.ts';
import { resolveBackupSource } from './backup.ts';

interface RestoreFlags {
  config?: string;
  force?: boolean;
  json?: boolean;
}

/** What `maos restore` did, printed as text or JSON. */
export interface RestoreReport {
  target: string;
  /**
   * The file the restored database was written to when `target` is a symbolic link to it (a database
   * on another volume): the link is kept, and the replaced database is kept beside that file.
   */
  linkedFile?: string;
  /** Where the replaced database was moved, when there was one. */
  previous?: string;
  /** Side files (`-wal`, `-shm`) found without their database, moved aside so none replays onto the restore. */
  strayFiles?: string[];
  integrity: 'ok';
  /** Migrations the restored database still needs (`maos migrate` or the next start applies them). */
  pendingMigrations: string[];
  audit: { status: 'verified' | 'failed' | 'skipped'; message: string };
  /** Checkpoint files the replaced database signed after the backup, moved aside so the restored log verifies. */
  supersededCheckpoints?: SetAsideCheckpoints;
  /** Checkpoint files over more records than the restored log that the replaced database did not sign: left in place. */
  unrelatedCheckpoints?: { directory: string; files: string[] };
}

/** Registers `maos restore` on the program. */
export function registerRestoreCommand(program: Command): void {
  program
    .command('restore')
    .description('replace the SQLite database with a backup made by `maos backup` (server must be stopped)')
    .argument('<file>', 'backup file')
    .option('-c, --config <file>', 'config file (default: MAOS_CONFIG)')
    .option('--force', 'replace an existing database (it is kept as <db>.pre-restore-<time>)')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, flags: RestoreFlags, command: Command) => {
      const globals = command.optsWithGlobals() as RestoreFlags;
      const config = loadConfig({ configPath: flags.config ?? globals.config ?? readClientEnv().configPath });
      const report = await restoreBackup(config, file, { force: flags.force === true });
      if (flags.json ?? globals.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
      } else {
        process.stdout.write(renderRestoreReport(report));
      }
      if (report.audit.status === 'failed') {
        throw new CliError(
          'AUDIT_CHAIN_BROKEN',
          `restored, but the audit chain does not verify: ${report.audit.message}`,
          1,
        );
      }
    });
}

/** Validates `backupPath`, installs it as the configured database and verifies it. */
export async function restoreBackup(
  config: Readonly<Config>,
  backupPath: string,
  options: { force: boolean },
): Promise<RestoreReport> {
  const target = resolveBackupSource(config, 'restore');
  // A dataDir (or sqlite: path) through a file: bad configuration, not a failure of the restore.
  refuseFileAsDirectory(target);
  // Empty (an unset variable): bad input, as for `maos backup`, not a file that went missing.
  if (backupPath.trim() === '') {
    throw new AppError(
      'VALIDATION_FAILED',
      'the backup file name is empty; name the file `maos backup` wrote',
    );
  }
  if (!existsSync(backupPath)) throw new AppError('NOT_FOUND', `Backup file ${backupPath} does not exist`);
  // SQLite cannot open a folder either: that would read as a database failure (exit 7), not a typo.
  if (!statSync(backupPath).isFile()) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${backupPath} is not a file; name the backup file \`maos backup\` wrote`,
    );
  }
  const before = await inspectSqliteFile(backupPath);
  if (before.integrity.length !== 1 || before.integrity[0] !== 'ok') {
    throw new AppError(
      'VALIDATION_FAILED',
      `${backupPath} is not a sound SQLite database: ${before.integrity.slice(0, 5).join('; ')}`,
    );
  }
  if (before.migrations.unknown.length > 0) {
    throw new AppError(
      'DATABASE_NEWER_THAN_CODE',
      `${backupPath} was written by a newer MAOS (migrations ${before.migrations.unknown.join(', ')}); restore it with that version`,
    );
  }
  if (before.migrations.applied.length === 0) {
    throw new AppError('VALIDATION_FAILED', `${backupPath} is not a MAOS database (no migrations applied)`);
  }
  // A maos.db that links to a file on another volume is restored there, the link kept; a link whose
  // folder is missing (the volume not mounted) is refused before anything is written.
  const file = databaseFilePath(target);
  const claim = await claimDatabase(config, target);
  let previous: string | undefined;
  let strayFiles: string[] | undefined;
  try {
    if (existsSync(target) && options.force && isDatabaseInUse(target)) {
      throw new AppError(
        'CONFLICT',
        `${target} is open in another process (a running server?); stop it first`,
      );
    }
    if (existsSync(target) && !options.force) {
      throw new AppError(
        'CONFLICT',
        `${target} already exists; pass --force to replace it (the current database is kept beside it)`,
      );
    }
    ({ previous, strayFiles } = await replaceDatabaseFile(backupPath, target, {
      keepPrevious: true,
    }).catch((error: unknown) => {
      throw asDataDirectoryFailure(error, dirname(file));
    }));
  } finally {
    if (claim.state === 'free') claim.lock?.release();
  }
  const after = await inspectSqliteFile(target);
  if (after.integrity.length !== 1 || after.integrity[0] !== 'ok') {
    throw new AppError('INTERNAL', `The restored database at ${target} failed its integrity check`);
  }
  const { size, ...audit } = await verifyRestoredAudit(target);
  // Only a log whose chain verifies is a plain rollback; a broken one keeps every checkpoint in
  // place for `maos audit verify` to locate what was changed.
  const checkpoints =
    size === undefined || audit.status !== 'verified'
      ? {}
      : setAsideLaterCheckpoints(resolveCheckpointDir(config), size, readRecordedCheckpoints(previous));
  return {
    target,
    ...(file !== resolve(target) ? { linkedFile: file } : {}),
    ...(previous ? { previous } : {}),
    ...(strayFiles ? { strayFiles } : {}),
    integrity: 'ok',
    pendingMigrations: after.migrations.pending,
    audit,
    ...(checkpoints.superseded ? { supersededCheckpoints: checkpoints.superseded } : {}),
    ...(checkpoints.unrelated ? { unrelatedCheckpoints: checkpoints.unrelated } : {}),
  };
}

/**
 * Refuses the restore while a server runs on `target`. Its server lock says so for certain, and is
 * held for the restore so that none starts meanwhile; the configured port is probed only when the
 * lock cannot tell (a lock file this user cannot open): anything else answering there (production,
 * during a drill into a fresh data directory) is another data directory's server.
 */
async function claimDatabase(config: Readonly<Config>, target: string): Promise<ServerLockClaim> {
  // No lock file: no server has run here yet (a new machine, a drill), but one may start while the
  // backup is copied in, and would run on a database the restore then moves aside under it. The
  // lock file is created, as `maos serve` creates it, and held; run as root, it gets the owner of
  // the data directory, so that the service user's server can take it afterwards.
  const lockFile = `${target}.server-lock`;
  const creates = !existsSync(lockFile);
  if (creates) {
    try {
      mkdirSync(dirname(target), { recursive: true, mode: 0o750 });
    } catch (error) {
      throw asDataDirectoryFailure(error, dirname(target));
    }
  }
  const claim = claimServerLock(target, { create: true });
  if (creates && claim.state === 'free') keepOwner(lockFile, dirname(target));
  if (claim.state === 'held') {
    throw new AppError(
      'CONFLICT',
      `A MAOS server is running on ${target} (it holds the server lock); stop it first`,
    );
  }
  if (claim.state === 'free') return claim;
  const live = await findLiveServer(config);
  if (live) {
    throw new AppError(
      'CONFLICT',
      `A MAOS server answers at ${live} and the server lock of ${target} cannot be checked (${claim.message}); stop every server using ${target} first`,
    );
  }
  return claim;
}

/**
 * A file-system refusal to write into the data directory (read-only, permissions) as what it is, not
 * an INTERNAL error. A recursive mkdir on a read-only file system says ENOENT: the reason given is
 * then the nearest existing folder's, found by asking whether it is writable.
 */
function asDataDirectoryFailure(error: unknown, dir: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (error instanceof AppError || typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return error;
  let reason = code;
  if (code === 'ENOENT') {
    const at = nearestExisting(dir);
    try {
      accessSync(at, constants.W_OK);
    } catch (denied) {
      reason = `${(denied as NodeJS.ErrnoException).code ?? code} at ${at}`;
    }
  }
  return new AppError(
    'STORE_UNAVAILABLE',
    `Cannot write the restored database into ${dir} (${reason}): the folder must be writable by the user running the restore`,
    { cause: error },
  );
}

/**
 * The URL of a server answering /healthz at the configured address, if any (loopback probe; over
 * HTTPS when the configuration serves TLS: a TLS listener gives a plain HTTP request no answer).
 */
async function findLiveServer(config: Readonly<Config>): Promise<string | undefined> {
  if (config.port === 0) return undefined;
  const target = { host: connectHostFor(config.host), port: config.port, tls: Boolean(config.tls.certFile) };
  const answer = await getHealthz(target, 1000);
  return typeof answer === 'number'
    ? `${target.tls ? 'https' : 'http'}://${urlHost(target.host)}:${target.port}`
    : undefined;
}

/** Human-readable summary of a restore. */
export function renderRestoreReport(report: RestoreReport): string {
  const lines = [
    report.linkedFile
      ? `Restored ${report.target} into ${report.linkedFile}, which it links to (integrity ok).`
      : `Restored ${report.target} (integrity ok).`,
  ];
  if (report.previous) lines.push(`Previous database kept as ${report.previous}`);
  if (report.strayFiles) {
    lines.push(`Files left without their database moved aside: ${report.strayFiles.join(', ')}`);
  }
  if (report.pendingMigrations.length > 0) {
    lines.push(
      `Pending migrations: ${report.pendingMigrations.join(', ')} (run \`maos migrate\` or start the server)`,
    );
  }
  lines.push(`Audit chain: ${report.audit.status} (${report.audit.message})`);
  if (report.supersededCheckpoints) {
    lines.push(
      `Audit checkpoints signed after the backup (${report.supersededCheckpoints.files.length}) moved to ${report.supersededCheckpoints.directory}`,
    );
  }
  if (report.unrelatedCheckpoints) {
    const { directory, files } = report.unrelatedCheckpoints;
    lines.push(
      `Audit checkpoints over more records than the restored log, not signed by the replaced database, left in ${directory}: ${files.join(', ')}. If they are this installation's (its database was lost), move them out of the directory before \`maos audit verify\`.`,
    );
  }
  return `${lines.join('\n')}\n`;
}
