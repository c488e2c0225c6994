// Audit-chain verification after `maos restore`: a restored database must still prove that its
// audit log was not altered (hash chain re-computed from the first record to the last).
import { mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { readDatabaseEntries } from '../../security/audit/audit-source.ts';
import { verifyAuditEntries } from '../../security/audit/verify.ts';
import type { SecurityDb } from '../../security/security-tables.ts';
import { keepOwner } from '../../store/backup.ts';

export interface RestoredAuditResult {
  status: 'verified' | 'failed' | 'skipped';
  message: string;
  /** Records in the restored audit log (absent when it has no audit table). */
  size?: number;
}

/**
 * Re-computes the audit hash chain of a SQLite database file, read-only. Signed checkpoints need
 * the operator's verification key and are checked by `maos audit verify`, not here.
 */
export async function verifyRestoredAudit(databasePath: string): Promise<RestoredAuditResult> {
  const sqlite = new SqliteDatabase(databasePath, { readonly: true, fileMustExist: true });
  const db: SecurityDb = new Kysely({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    const table = sqlite
      .prepare("select name from sqlite_master where type = 'table' and name = 'audit_log'")
      .get();
    if (!table) return { status: 'skipped', message: 'the database has no audit log table' };
    const report = await verifyAuditEntries(readDatabaseEntries(db), { verifier: null });
    if (report.ok) {
      return {
        status: 'verified',
        message: `hash chain intact over ${report.size} records`,
        size: report.size,
      };
    }
    return {
      status: 'failed',
      message: `audit chain broken at record ${report.firstBrokenIndex}: ${report.problems.slice(0, 3).join('; ')}`,
      size: report.size,
    };
  } finally {
    await db.destroy();
  }
}

/** Checkpoint files a restore moved out of the checkpoint directory, and where to. */
export interface SetAsideCheckpoints {
  directory: string;
  files: string[];
}

/** What a restore did with the checkpoint files over more records than the restored log holds. */
export interface LaterCheckpoints {
  /** Those the replaced database signed, moved aside. */
  superseded?: SetAsideCheckpoints;
  /**
   * Those the replaced database did not sign (there was none, or a damaged one, or the directory is
   * shared with another installation's database, as in a restore drill with `audit.checkpointDir`
   * set): left in place, named for the operator.
   */
  unrelated?: { directory: string; files: string[] };
}

/**
 * The checkpoint notes the database at `databasePath` recorded (`audit_checkpoints`), by log size;
 * empty when it has none or cannot be read (a damaged file). Read-only.
 */
export function readRecordedCheckpoints(databasePath: string | undefined): Map<number, string> {
  const notes = new Map<number, string>();
  if (databasePath === undefined) return notes;
  try {
    const sqlite = new SqliteDatabase(databasePath, { readonly: true, fileMustExist: true });
    try {
      const rows = sqlite.prepare('select size, note from audit_checkpoints').all() as {
        size: number;
        note: string;
      }[];
      for (const row of rows) notes.set(Number(row.size), row.note);
    } finally {
      sqlite.close();
    }
  } catch {
    // No such table, or not a database any more: it signed nothing this restore can tell.
  }
  return notes;
}

/**
 * A restore rolls the audit log back to the backup's `size` records, so the checkpoint files signed
 * after the backup (covering more records) no longer describe this log: left in place, `maos audit
 * verify` would report a truncated tail, and once new records are appended, rewritten history, for
 * good. Those the replaced database signed (`signed`: its recorded notes by size, which the files
 * hold verbatim) are moved, unchanged, to `<checkpointDir>/superseded-by-restore-<time>/` (kept as
 * the evidence of the rollback; copies shipped elsewhere still show it), so verification of the
 * restored log works again. Any other file is not this restore's to move: the directory may be
 * another installation's (a drill into a fresh data directory with the production configuration).
 */
export function setAsideLaterCheckpoints(
  checkpointDir: string,
  size: number,
  signed: ReadonlyMap<number, string>,
  now: Date = new Date(),
): LaterCheckpoints {
  let names: string[];
  try {
    names = readdirSync(checkpointDir);
  } catch {
    return {}; // no checkpoint directory (e.g. a fresh data directory)
  }
  const later: string[] = [];
  const unrelated: string[] = [];
  for (const name of names) {
    const match = /^checkpoint-(\d+)\.txt$/.exec(name);
    if (match === null || Number(match[1]) <= size) continue;
    const note = signed.get(Number(match[1]));
    if (note !== undefined && readNote(join(checkpointDir, name)) === note) later.push(name);
    else unrelated.push(name);
  }
  const result: LaterCheckpoints =
    unrelated.length > 0 ? { unrelated: { directory: checkpointDir, files: unrelated.sort() } } : {};
  if (later.length === 0) return result;
  const directory = join(checkpointDir, `superseded-by-restore-${now.toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  // Run as root (`sudo maos restore`): the directory goes to the checkpoint directory's owner, as the
  // restored database goes to its database's, so that nothing in the data directory is root's.
  keepOwner(directory, checkpointDir);
  for (const name of later) renameSync(join(checkpointDir, name), join(directory, name));
  return { ...result, superseded: { directory, files: later.sort() } };
}

function readNote(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
