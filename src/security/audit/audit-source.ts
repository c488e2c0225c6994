// Reading the audit log back for verification and export: entries from the database in seq order
// (batched, so large logs stream), entries from a JSONL export, and stored checkpoint notes.
import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { SecurityDb } from '../security-tables.ts';
import { type AuditEntry, parseExportLine } from './verify.ts';

const BATCH = 1000;

/** Entries from the database, oldest first. */
export async function* readDatabaseEntries(db: SecurityDb): AsyncGenerator<AuditEntry> {
  // Each page starts after the last seq read (through the primary key), not at an offset, which
  // re-read every row before the page: quadratic, hours for a log of millions. Every stored row is
  // still read, in seq order, so the verifier sees a gap in seq (the first page has no lower bound:
  // a row inserted with a negative seq is read too).
  let after: unknown;
  for (;;) {
    let query = db
      .selectFrom('audit_log')
      .select(['seq', 'event', 'prev_hash', 'hash', 'tenant_id', 'action', 'outcome'])
      .orderBy('seq', 'asc')
      .limit(BATCH);
    if (after !== undefined) query = query.where('seq', '>', after as number);
    const rows = await query.execute();
    for (const { tenant_id, action, outcome, ...row } of rows) {
      yield { ...row, seq: Number(row.seq), columns: { tenant_id, action, outcome } };
    }
    if (rows.length < BATCH) return;
    after = rows[rows.length - 1]?.seq;
  }
}

/** Entries from a JSONL export file; blank lines are ignored. */
export async function* readExportEntries(file: string): AsyncGenerator<AuditEntry> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim().length === 0) continue;
    yield parseExportLine(line);
  }
}

/** All checkpoint notes stored in the database. */
export async function readDatabaseCheckpoints(db: SecurityDb): Promise<string[]> {
  const rows = await db.selectFrom('audit_checkpoints').select('note').orderBy('size').execute();
  return rows.map((row) => row.note);
}

/** All checkpoint notes in an export directory (missing directory = none). */
export function readCheckpointDir(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => /^checkpoint-\d+\.txt$/.test(name));
  } catch {
    return [];
  }
  return names.sort().map((name) => readFileSync(join(dir, name), 'utf8'));
}
