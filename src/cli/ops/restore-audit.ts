// Audit-chain verification after `maos restore`: a restored database must still prove that its
// audit log was not altered (hash chain re-computed from the first record to the last).
import { mkdirSync, readdirSync, renameSync } from 'node:fs';
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

/**
 * A restore rolls the audit log back to the backup's `size` records, so the checkpoint files signed
 * after the backup (covering more records) no longer describe this log: left in place, `maos audit
 * verify` would report a truncated tail, and once new records are appended, rewritten history, for
 * good. They are moved, unchanged, to `<checkpointDir>/superseded-by-restore-<time>/` (kept as the
 * evidence of the rollback; copies shipped elsewhere still show it), so verification of the
 * restored log works again. Nothing is moved when there are none.
 */
export function setAsideLaterCheckpoints(
  checkpointDir: string,
  size: number,
  now: Date = new Date(),
): SetAsideCheckpoints | undefined {
  let names: string[];
  try {
    names = readdirSync(checkpointDir);
  } catch {
    return undefined; // no checkpoint directory (e.g. a fresh data directory)
  }
  const later = names.filter((name) => {
    const match = /^checkpoint-(\d+)\.txt$/.exec(name);
    return match !== null && Number(match[1]) > size;
  });
  if (later.length === 0) return undefined;
  const directory = join(checkpointDir, `superseded-by-restore-${now.toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  // Run as root (`sudo maos restore`): the directory goes to the checkpoint directory's owner, as the
  // restored database goes to its database's, so that nothing in the data directory is root's.
  keepOwner(directory, checkpointDir);
  for (const name of later) renameSync(join(checkpointDir, name), join(directory, name));
  return { directory, files: later };
}
