// One server per SQLite database: the embedded store is made for one process (its engine's wake-ups,
// leases and event streams live in that process), so a second `maos serve` on the same database is
// refused at start instead of running a second engine beside the first. The lock is an exclusive
// SQLite lock on a small file next to the database, held for the server's life: the operating system
// drops it when the process ends, however it ends, so a crash leaves nothing to clean up. CLI
// commands (migrate, backup, keys …) do not take it; `maos restore` takes it while it replaces the file.
import { existsSync } from 'node:fs';
import SqliteDatabase from 'better-sqlite3';
import { AppError } from '../errors/app-error.ts';

export interface ServerLock {
  release(): void;
}

/** What `claimServerLock` found out about the server lock of a database. */
export type ServerLockClaim =
  /** No server runs on the database; `lock` (when a lock file existed) keeps one from starting meanwhile. */
  | { state: 'free'; lock?: ServerLock }
  /** A server holds the lock: it runs on this database. */
  | { state: 'held'; message: string }
  /** The lock file exists but cannot be opened or written (permissions, not a lock file): no answer. */
  | { state: 'unknown'; message: string };

/**
 * For tools that must not run beside a server of this database (`maos restore`): takes its server
 * lock when there is a lock file. No lock file means no server has run on this database (a server
 * takes the lock at start), so none is created here: as root it would belong to root, and the
 * service user's server could then not take it. `create`: the tool writes this database itself
 * (`maos store copy`'s target, which it has already created or opened as this user), so the lock
 * file is created when missing: without it, a server started meanwhile would run on a half-written
 * database.
 */
export function claimServerLock(databasePath: string, options: { create?: boolean } = {}): ServerLockClaim {
  if (options.create !== true && !existsSync(`${databasePath}.server-lock`)) return { state: 'free' };
  try {
    return { state: 'free', lock: acquireServerLock(databasePath) };
  } catch (error) {
    const held = error instanceof AppError && error.code === 'CONFLICT';
    return { state: held ? 'held' : 'unknown', message: (error as Error).message };
  }
}

/** Takes the server lock of the SQLite database at `databasePath`; CONFLICT when a server holds it. */
export function acquireServerLock(databasePath: string): ServerLock {
  const lockPath = `${databasePath}.server-lock`;
  let sqlite: SqliteDatabase.Database | undefined;
  try {
    sqlite = new SqliteDatabase(lockPath);
    sqlite.pragma('busy_timeout = 0');
    // Exclusive locking mode keeps the lock after the write that takes it, until the file closes.
    sqlite.pragma('locking_mode = EXCLUSIVE');
    sqlite.exec('create table if not exists holder (pid integer not null)');
    sqlite.exec('begin exclusive');
    sqlite.prepare('delete from holder').run();
    sqlite.prepare('insert into holder (pid) values (?)').run(process.pid);
    sqlite.exec('commit');
  } catch (error) {
    sqlite?.close();
    // Only a lock held by another connection means another server; a lock file this user cannot
    // write (left by a server run as another user, say) is a permissions problem to fix instead.
    const code = (error as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      throw new AppError(
        'CONFLICT',
        `Another MAOS server is running on ${databasePath}: the SQLite store takes one server process (stop it first, or use PostgreSQL for several replicas)`,
        { cause: error },
      );
    }
    throw new AppError(
      'STORE_UNAVAILABLE',
      `Cannot take the server lock ${lockPath}: ${(error as Error).message} (the file and its directory must be writable by the user running MAOS)`,
      { cause: error },
    );
  }
  const held = sqlite;
  return {
    release() {
      if (held.open) held.close();
    },
  };
}
