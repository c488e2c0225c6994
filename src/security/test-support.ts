// Test support for the security module: a real SQLite database in a temp dir with every migration
// applied (as in production). Used by tests only.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { migrateToLatest } from '../store/migrate.ts';
import type { SecurityDb } from './security-tables.ts';

export interface TestSecurityDb {
  db: SecurityDb;
  dir: string;
  file: string;
  /** Closes the database and removes the temp dir. */
  cleanup(): Promise<void>;
}

let template: Promise<string> | undefined;

/**
 * A SQLite file with every migration applied, made once per test process (migrating costs far more
 * than copying the file) and removed when the process exits.
 */
function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'maos-sec-template-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'maos.db');
    const db = openSqlite(file);
    try {
      await migrateToLatest(db);
    } finally {
      await db.destroy();
    }
    return file;
  })();
  return template;
}

/**
 * Opens a fresh migrated SQLite file in a new temp dir (a copy of a migrated template).
 * `busyTimeoutMs`: how long a statement waits for another connection's lock (better-sqlite3's
 * 5 s when absent).
 */
export async function createTestSecurityDb(
  options: { busyTimeoutMs?: number } = {},
): Promise<TestSecurityDb> {
  const migrated = await migratedTemplate();
  const dir = mkdtempSync(join(tmpdir(), 'maos-sec-'));
  const file = join(dir, 'maos.db');
  copyFileSync(migrated, file);
  const db = openSqlite(file, options.busyTimeoutMs);
  return {
    db,
    dir,
    file,
    async cleanup() {
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Opens a SQLite file as a Kysely instance with the security tables. */
export function openSqlite(file: string, busyTimeoutMs?: number): SecurityDb {
  const database = new Database(file, busyTimeoutMs === undefined ? {} : { timeout: busyTimeoutMs });
  return new Kysely({ dialect: new SqliteDialect({ database }) });
}
