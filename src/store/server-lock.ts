// One server per SQLite database: the embedded store is made for one process (its engine's wake-ups,
// leases and event streams live in that process), so a second `maos serve` on the same database is
// refused at start instead of running a second engine beside the first. The lock is an exclusive
// SQLite lock on a small file next to the database, held for the server's life: the operating system
// drops it when the process ends, however it ends, so a crash leaves nothing to clean up. CLI
// commands (migrate, backup, keys …) do not take it.
import SqliteDatabase from 'better-sqlite3';
import { AppError } from '../errors/app-error.ts';

export interface ServerLock {
  release(): void;
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
