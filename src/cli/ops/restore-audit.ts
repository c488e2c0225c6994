// Audit-chain verification after `maos restore`: a restored database must still prove that its
// audit log was not altered (hash chain re-computed from the first record to the last).
import SqliteDatabase from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { readDatabaseEntries } from '../../security/audit/audit-source.ts';
import { verifyAuditEntries } from '../../security/audit/verify.ts';
import type { SecurityDb } from '../../security/security-tables.ts';

export interface RestoredAuditResult {
  status: 'verified' | 'failed' | 'skipped';
  message: string;
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
    if (report.ok) return { status: 'verified', message: `hash chain intact over ${report.size} records` };
    return {
      status: 'failed',
      message: `audit chain broken at record ${report.firstBrokenIndex}: ${report.problems.slice(0, 3).join('; ')}`,
    };
  } finally {
    await db.destroy();
  }
}
