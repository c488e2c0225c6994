// SQLite backup, restore and inspection for `maos backup`, `maos restore`, `maos doctor` and the
// support bundle. Backups use SQLite's online backup API, so they are consistent while a server writes.
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { AppError } from '../errors/app-error.ts';
import { getMigrationStatus, type MigrationStatus } from './migrate.ts';
import { ownedTempPath, removeStaleOwnedTemps } from './owned-temp-files.ts';

/** Files SQLite keeps beside a database in WAL mode; they belong to that database. */
const SIDE_FILE_SUFFIXES = ['-wal', '-shm', '-journal'] as const;

export interface BackupResult {
  /** Where the backup was written. */
  path: string;
  bytes: number;
  pages: number;
}

export interface SqliteInspection {
  /** `['ok']` when `PRAGMA integrity_check` found nothing; otherwise its messages. */
  integrity: string[];
  migrations: MigrationStatus;
}

export interface TableStat {
  name: string;
  rows: number;
}

export interface DatabaseStats {
  path: string;
  /** Sizes in bytes of the database file and its side files (missing ones are absent). */
  files: Record<string, number>;
  pageSize: number;
  pageCount: number;
  freelistCount: number;
  tables: TableStat[];
}

/**
 * Copies a live SQLite database to `targetPath` with the online backup API. The copy is taken in
 * one step, i.e. from one read snapshot: in WAL mode that never blocks writers, and it cannot be
 * restarted by their commits. Writes to a copy of its own beside the target
 * (`<target>.partial-<pid>-<random>-<host>`), fsyncs, then moves it into place.
 */
export async function backupSqliteDatabase(sourcePath: string, targetPath: string): Promise<BackupResult> {
  if (!existsSync(sourcePath)) {
    throw new AppError('NOT_FOUND', `No database at ${sourcePath}; check dataDir / store.url`);
  }
  if (targetPath === '') {
    throw new AppError('VALIDATION_FAILED', 'the backup file name is empty; name a file to create');
  }
  // A folder's name (`backups/`): `<name>.partial` would be a file inside it, and the failure an
  // ENOENT / ENOTDIR from the file system (exit 7) instead of a name to correct.
  if (targetPath.endsWith('/') || targetPath.endsWith(sep)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${targetPath} ends in a slash, which names a folder; name the backup file to create`,
    );
  }
  // Such a copy could be written, but `maos restore` could not open it by its name (openSqlite).
  refuseTrailingWhitespace(targetPath);
  if (existsSync(targetPath)) {
    throw new AppError('CONFLICT', `${targetPath} already exists; choose a new file name`);
  }
  // `maos.db-journal` (or `-wal`, `-shm` while no server runs): SQLite takes the copy for its own
  // side file at the next open of the database, and deletes it.
  if (isDatabaseFile(targetPath, sourcePath)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${targetPath} is a name SQLite uses for a file of the database ${sourcePath}, which would delete the backup; choose another name`,
    );
  }
  refuseFileAsDirectory(targetPath);
  if (!existsSync(dirname(targetPath))) {
    throw new AppError('NOT_FOUND', `Directory ${dirname(targetPath)} does not exist`);
  }
  // This run's own copy: two backups to one file at once each removed the other's `<file>.partial`
  // as they started, and both failed (or one moved the other's unfinished copy into place). Copies
  // left by backups of this file that were killed (their process gone) are removed first.
  removeStaleOwnedTemps(targetPath, PARTIAL_NAMING);
  const partial = ownedTempPath(targetPath, PARTIAL_NAMING);
  const source = openSqlite(sourcePath, { readonly: true });
  try {
    // The whole database (API key hashes, sealed tenant secrets, every session's output) in one
    // file, often kept on shared backup volumes: owner-only, like the support bundle.
    const pages = await copyDatabase(source, sourcePath, partial);
    useRollbackJournal(partial);
    syncFile(partial);
    placeNewFile(partial, targetPath);
    syncDirectory(dirname(targetPath));
    return { path: targetPath, bytes: statSync(targetPath).size, pages };
  } catch (error) {
    rmSync(partial, { force: true });
    if (error instanceof AppError) throw error;
    throw new AppError('STORE_UNAVAILABLE', `Backup of ${sourcePath} failed: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    source.close();
  }
}

/**
 * The copy a backup writes before it is complete: `<file>.partial-<pid>-<random>-<host>`, and the
 * rollback journal SQLite keeps beside it while it writes (left too when the backup is killed).
 */
const PARTIAL_NAMING = { tag: 'partial', sideSuffixes: SIDE_FILE_SUFFIXES } as const;

/**
 * Moves the finished copy `partial` to `targetPath`, never over a file that appeared there meanwhile
 * (another backup to the same name that finished first): CONFLICT then, as at the start. A hard link
 * fails when the name exists; where the file system has none, a rename after a check.
 */
function placeNewFile(partial: string, targetPath: string): void {
  try {
    linkSync(partial, targetPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' || existsSync(targetPath)) {
      throw new AppError('CONFLICT', `${targetPath} already exists; choose a new file name`);
    }
    renameSync(partial, targetPath);
    return;
  }
  rmSync(partial, { force: true });
}

/** Runs `PRAGMA integrity_check` and reads the migration status of a database file, read-only. */
export async function inspectSqliteFile(path: string): Promise<SqliteInspection> {
  const sqlite = openSqlite(path, { readonly: true });
  try {
    let integrity: string[];
    try {
      integrity = (sqlite.pragma('integrity_check') as { integrity_check: string }[]).map(
        (row) => row.integrity_check,
      );
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CANTOPEN') {
        // A sound file SQLite cannot read in place: in WAL mode (backups before rollback-journal
        // copies, a copied live database) it needs to create `-shm`/`-wal` beside the file.
        throw new AppError(
          'STORE_UNAVAILABLE',
          `Cannot read ${path}: ${(error as Error).message}. A database in WAL mode needs a writable directory (SQLite creates ${basename(path)}-shm beside it): copy the file to a writable directory and use the copy`,
          { cause: error },
        );
      }
      // Not a database at all (or encrypted / truncated header): SQLite refuses to read it.
      integrity = [(error as Error).message];
      return { integrity, migrations: { applied: [], pending: [], unknown: [], current: false } };
    }
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: sqlite }) });
    const migrations = await getMigrationStatus(db);
    return { integrity, migrations };
  } finally {
    if (sqlite.open) sqlite.close();
  }
}

/**
 * True when another connection (a server, another CLI) has the database open. Switching a WAL
 * database to rollback-journal mode needs exclusive access: SQLite keeps `wal` while others are
 * connected. When nobody is, the switch checkpoints the WAL into the file, so it is self-contained.
 */
export function isDatabaseInUse(path: string): boolean {
  if (!existsSync(path)) return false;
  const sqlite = openSqlite(path, { readonly: false });
  try {
    sqlite.pragma('busy_timeout = 0');
    const mode = sqlite.pragma('journal_mode = DELETE', { simple: true });
    return String(mode).toLowerCase() !== 'delete';
  } catch (error) {
    // SQLITE_BUSY / locked: another process holds it. A damaged file (SQLITE_NOTADB, SQLITE_CORRUPT)
    // tells nothing of the kind, and replacing it is what `maos restore --force` is for.
    const code = (error as { code?: string }).code ?? '';
    return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
  } finally {
    sqlite.close();
  }
}

/** Row counts of every table and file sizes, for `maos support-bundle`. Read-only. */
export function collectDatabaseStats(path: string): DatabaseStats {
  const sqlite = openSqlite(path, { readonly: true });
  try {
    const names = sqlite
      .prepare(
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name",
      )
      .all() as { name: string }[];
    const tables = names.map(({ name }) => {
      const row = sqlite.prepare(`select count(*) as n from "${name.replaceAll('"', '""')}"`).get() as {
        n: number;
      };
      return { name, rows: row.n };
    });
    return {
      path,
      files: readFileSizes(path),
      pageSize: sqlite.pragma('page_size', { simple: true }) as number,
      pageCount: sqlite.pragma('page_count', { simple: true }) as number,
      freelistCount: sqlite.pragma('freelist_count', { simple: true }) as number,
      tables,
    };
  } finally {
    sqlite.close();
  }
}

/** Sizes of the database file and its -wal/-shm side files, keyed by file name. */
export function readFileSizes(path: string): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const file of [path, ...SIDE_FILE_SUFFIXES.map((suffix) => path + suffix)]) {
    if (existsSync(file)) sizes[basename(file)] = statSync(file).size;
  }
  return sizes;
}

/** Files of a SQLite database besides itself: SQLite's side files and MAOS's server lock. */
const DATABASE_FILE_SUFFIXES = ['', ...SIDE_FILE_SUFFIXES, '.server-lock', '.server-lock-journal'] as const;

/**
 * Whether `path` names the SQLite database at `database` or a file kept beside it (`-wal`, `-shm`,
 * `-journal`, its server lock), however it is spelled: another path to its folder (`..`, a symbolic
 * link), or a link to the file itself. A file written there replaces the database, or is taken by
 * SQLite for its own (a rollback journal, a write-ahead log) and deleted at the next open. A
 * database that is a symbolic link (kept on another volume) has its side files beside the file the
 * link leads to: those count too.
 */
export function isDatabaseFile(path: string, database: string): boolean {
  const written = canonicalPath(path);
  const existing = existsSync(path) ? statSync(path) : undefined;
  const bases = new Set([database]);
  try {
    bases.add(databaseFilePath(database));
  } catch {
    // A link whose folder is missing or that loops: no file there to keep.
  }
  return [...bases].some((base) =>
    DATABASE_FILE_SUFFIXES.some((suffix) => {
      const file = base + suffix;
      if (canonicalPath(file) === written) return true;
      if (existing === undefined || !existsSync(file)) return false;
      const stat = statSync(file);
      return stat.dev === existing.dev && stat.ino === existing.ino;
    }),
  );
}

/** `path` absolute, its folder with symbolic links resolved when the folder exists. */
function canonicalPath(path: string): string {
  const absolute = resolve(path);
  try {
    return join(realpathSync(dirname(absolute)), basename(absolute));
  } catch {
    return absolute;
  }
}

/**
 * VALIDATION_FAILED when the nearest existing folder on the way to `path` is a file: a path typed
 * wrong (or a `dataDir` that names a file), which would otherwise fail deep inside (ENOTDIR, EEXIST)
 * as an internal error. A folder still missing is the caller's to create or report.
 */
export function refuseFileAsDirectory(path: string): void {
  for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
    if (existsSync(dir)) {
      if (!statSync(dir).isDirectory()) {
        throw new AppError('VALIDATION_FAILED', `${dir} is not a directory; ${path} cannot be written there`);
      }
      return;
    }
    if (dirname(dir) === dir) return;
  }
}

/** Links followed before a chain of symbolic links is taken for a loop (Linux's own limit). */
const MAX_LINKS = 40;

/**
 * Where the database named `path` is stored: `path` itself, or, when `path` is a symbolic link (a
 * database kept on another volume, linked into the data directory), the file the link leads to,
 * through every link of a chain, whether that file exists or not (SQLite follows the link too: its
 * `-wal` and `-shm` files are beside that file). A restore writes there, keeping the link.
 * STORE_UNAVAILABLE when the folder the link leads to does not exist (the volume is not mounted): a
 * restore must not write the database where the link is instead, nor create that folder on whatever
 * file system is there; VALIDATION_FAILED for a chain of links that loops.
 */
export function databaseFilePath(path: string): string {
  let current = resolve(path);
  for (let followed = 0; followed <= MAX_LINKS; followed += 1) {
    let link: string;
    try {
      if (!lstatSync(current).isSymbolicLink()) return current;
      link = readlinkSync(current);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      // The name the last link leads to does not exist (the database file is missing there).
      if (current !== resolve(path) && !isDirectory(dirname(current))) {
        throw new AppError(
          'STORE_UNAVAILABLE',
          `${path} is a symbolic link to ${current}, whose folder ${dirname(current)} does not exist (is its volume mounted?); the database is not written beside the link instead`,
        );
      }
      return current;
    }
    current = resolve(dirname(current), link);
  }
  throw new AppError(
    'VALIDATION_FAILED',
    `${path} is a symbolic link that does not lead to a file (more than ${MAX_LINKS} links, a loop?)`,
  );
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export interface ReplaceOptions {
  /** Keep the replaced database as `<target>.pre-restore-<stamp>` instead of deleting it. */
  keepPrevious: boolean;
  /** Used in the name of the kept copy. @defaultValue now */
  now?: Date;
}

/** What `replaceDatabaseFile` moved out of the way. */
export interface ReplaceResult {
  /** Where the replaced database was moved, when there was one (and `keepPrevious`). */
  previous?: string;
  /**
   * `-wal`/`-shm`/`-journal` files found beside the target while no database file was there (a
   * deleted `maos.db`, say): moved to these paths (`keepPrevious`) or deleted, never left in place.
   */
  strayFiles?: string[];
}

/**
 * Installs `backupPath` as the database at `targetPath`: copies it beside the target, fsyncs, moves
 * the old database and its -wal/-shm aside (a stale WAL replayed onto the new file would corrupt it;
 * so are side files left without their database), then renames the copy into place. A target that
 * is a symbolic link stays one: all of that happens beside the file it leads to (databaseFilePath),
 * which the link then names again.
 */
export async function replaceDatabaseFile(
  backupPath: string,
  configuredPath: string,
  options: ReplaceOptions,
): Promise<ReplaceResult> {
  const targetPath = databaseFilePath(configuredPath);
  const linked = targetPath !== resolve(configuredPath);
  // A link's folder exists (databaseFilePath checked it): never created on another file system.
  if (!linked) mkdirSync(dirname(targetPath), { recursive: true, mode: 0o750 });
  const staging = join(dirname(targetPath), `.${basename(targetPath)}.restoring`);
  rmSync(staging, { force: true });
  // Copy through the backup API too: it writes a clean, self-contained file without a WAL.
  const source = openSqlite(backupPath, { readonly: true });
  try {
    await copyDatabase(source, backupPath, staging);
  } catch (error) {
    rmSync(staging, { force: true });
    throw error;
  } finally {
    source.close();
  }
  // A new database stays 0600, as `maos serve` creates one; a replaced one's mode is the operator's.
  if (existsSync(targetPath)) chmodSync(staging, statSync(targetPath).mode & 0o777);
  keepOwner(staging, existsSync(targetPath) ? targetPath : dirname(targetPath));
  syncFile(staging);
  const stamp = (options.now ?? new Date()).toISOString().replace(/[:.]/g, '-');
  const kept = `${targetPath}.pre-restore-${stamp}`;
  const result: ReplaceResult = {};
  const hadDatabase = existsSync(targetPath);
  if (hadDatabase) {
    if (options.keepPrevious) {
      renameSync(targetPath, kept);
      result.previous = kept;
    } else rmSync(targetPath, { force: true });
  }
  for (const suffix of SIDE_FILE_SUFFIXES) {
    const side = targetPath + suffix;
    if (!existsSync(side)) continue;
    // SQLite pairs a WAL with a database by name only: left here, the next open would replay it
    // onto the restored file.
    if (options.keepPrevious) renameSync(side, kept + suffix);
    else rmSync(side, { force: true });
    if (!hadDatabase)
      result.strayFiles = [...(result.strayFiles ?? []), options.keepPrevious ? kept + suffix : side];
  }
  renameSync(staging, targetPath);
  syncDirectory(dirname(targetPath));
  return result;
}

/**
 * The backup API copies the source's header, so a copy of a WAL database says WAL: reading it, even
 * read-only, then needs a `-shm` file beside it, which fails on read-only backup media and leaves
 * `-wal`/`-shm` files next to every backup a restore or a check opened. A backup nobody writes to
 * needs no WAL: switch the copy to a rollback journal, a single self-contained file.
 */
function useRollbackJournal(path: string): void {
  const copy = openSqlite(path, { readonly: false });
  try {
    copy.pragma('journal_mode = DELETE');
  } finally {
    copy.close();
  }
}

/**
 * `sudo maos restore` for a server that runs as another user: what it creates would belong to root
 * and the server could not open it. Run as root, `path` gets the owner of `ownerOf` (the database
 * it replaces, or its directory); any other user can only create files it owns, which is then right.
 */
export function keepOwner(path: string, ownerOf: string): void {
  if (process.getuid?.() !== 0) return;
  const owner = statSync(ownerOf);
  chownSync(path, owner.uid, owner.gid);
}

/**
 * The SQLite driver trims the names it opens: no path makes it open a file whose name ends in
 * whitespace, and it would open the file without it instead (another backup, say).
 */
function refuseTrailingWhitespace(path: string): void {
  if (/\s$/.test(path)) {
    throw new AppError(
      'VALIDATION_FAILED',
      `${path} ends in whitespace, which SQLite cannot open by name; use a name without it (rename the file)`,
    );
  }
}

function openSqlite(path: string, options: { readonly: boolean }): SqliteDatabase.Database {
  refuseTrailingWhitespace(path);
  try {
    // Absolute: the driver trims the name, so ` backup.db` would open `backup.db` (see copyDatabase).
    return new SqliteDatabase(resolve(path), { readonly: options.readonly, fileMustExist: true });
  } catch (error) {
    throw new AppError('STORE_UNAVAILABLE', `Cannot open ${path} as a SQLite database`, { cause: error });
  }
}

/**
 * Copies the database `source` is open on (`sourcePath`) to the new file `path` with the online
 * backup API, in one step, i.e. from one read snapshot; returns its page count. `path` is created
 * owner-only before the copy: SQLite would create it under the umask (0644), readable by anyone
 * while the copy is written. better-sqlite3 takes a first step that found the source locked
 * (SQLITE_BUSY after the busy timeout) for a finished copy of no page: refused, never an empty copy.
 */
async function copyDatabase(
  source: SqliteDatabase.Database,
  sourcePath: string,
  path: string,
): Promise<number> {
  closeSync(openSync(path, 'wx', 0o600));
  // The driver trims the name it copies to: ` maos.db.partial-…` (a relative name that begins with a
  // space) would be copied to another file, and the one created here stay empty. An absolute path
  // begins with `/` and ends with the `.partial-…` host name or `.restoring`: nothing to trim.
  const { totalPages } = await source.backup(resolve(path), { progress: () => 2_147_483_647 });
  if (totalPages === 0) {
    throw new AppError(
      'STORE_UNAVAILABLE',
      `No page of ${sourcePath} could be copied: another connection kept it locked, or it is empty; try again`,
    );
  }
  return totalPages;
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes a rename durable; some platforms cannot fsync a directory, which is then skipped. */
function syncDirectory(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    fsyncSync(fd);
  } catch {
    // Best effort (e.g. not permitted on this file system).
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
