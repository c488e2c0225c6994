// The append-only audit log: appends records to the hash chain (one writer at a time), lists them
// with a cursor, and writes signed checkpoints periodically, on demand and on shutdown.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { uuidv7 } from 'uuidv7';
import { AppError } from '../../errors/app-error.ts';
import type { Logger } from '../../observability/logger.ts';
import type { SecurityDb } from '../security-tables.ts';
import {
  type AuditEventInput,
  type AuditRecord,
  buildAuditRecord,
  computeChainHash,
  GENESIS_HASH,
  serializeAuditRecord,
} from './audit-record.ts';
import { type CheckpointSigner, signCheckpoint } from './checkpoint.ts';
import { hashLeaf, MerkleFrontier } from './merkle.ts';

// Another process (e.g. the CLI) may append at the same moment; the loser of the race on the
// seq primary key re-reads the chain head and retries this many times.
const APPEND_ATTEMPTS = 8;
const CHECKPOINT_BATCH = 1000;

export interface AuditLogOptions {
  db: SecurityDb;
  /** Checkpoint origin line, e.g. `maos.example.com/audit`. */
  origin: string;
  /** Without a signer no checkpoints are written (verification then cannot detect a cut tail). */
  signer?: CheckpointSigner | null;
  /** Directory that receives a copy of each checkpoint, outside the database. */
  checkpointDir?: string | null;
  logger?: Logger;
  now?: () => Date;
}

export interface AuditListQuery {
  tenantId?: string;
  action?: string;
  outcome?: string;
  /** Only records with seq greater than this (the cursor). */
  afterSeq?: number;
  limit: number;
}

export interface AuditPage {
  items: AuditRecord[];
  nextCursor: string | null;
}

export interface WrittenCheckpoint {
  size: number;
  note: string;
}

export interface AuditLog {
  /** Appends one record to the chain and returns it as stored. */
  append(input: AuditEventInput): Promise<AuditRecord>;
  list(query: AuditListQuery): Promise<AuditPage>;
  /** Signs and stores a checkpoint over the whole log; null when no signer or nothing new. */
  writeCheckpoint(): Promise<WrittenCheckpoint | null>;
  /** Latest stored checkpoint note, if any. */
  latestCheckpoint(): Promise<WrittenCheckpoint | null>;
  /** Writes a checkpoint every `intervalMs` (timer does not keep the process alive). */
  startCheckpointTimer(intervalMs: number): void;
  /** Stops the timer, waits for pending appends and writes a final checkpoint. */
  close(): Promise<void>;
}

/** Creates the audit log over the `audit_log` and `audit_checkpoints` tables. */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const { db } = options;
  const now = options.now ?? (() => new Date());
  let queue: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;

  function serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run;
  }

  async function appendOnce(input: AuditEventInput): Promise<AuditRecord> {
    const head = await db
      .selectFrom('audit_log')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    const seq = head ? Number(head.seq) + 1 : 0;
    const prevHash = head?.hash ?? GENESIS_HASH;
    const record = buildAuditRecord(input, { seq, id: uuidv7(), time: now().toISOString() });
    const event = serializeAuditRecord(record);
    await db
      .insertInto('audit_log')
      .values({
        seq,
        id: record.id,
        time: record.time,
        tenant_id: record.actor.tenant ?? record.target?.tenant ?? null,
        action: record.action,
        outcome: record.outcome,
        event,
        prev_hash: prevHash,
        hash: computeChainHash(prevHash, event),
      })
      .execute();
    return record;
  }

  async function append(input: AuditEventInput): Promise<AuditRecord> {
    return serialize(async () => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await appendOnce(input);
        } catch (error) {
          if (attempt >= APPEND_ATTEMPTS || !isUniqueViolation(error)) throw error;
        }
      }
    });
  }

  async function list(query: AuditListQuery): Promise<AuditPage> {
    let q = db.selectFrom('audit_log').select(['seq', 'event']).orderBy('seq', 'asc');
    if (query.tenantId !== undefined) q = q.where('tenant_id', '=', query.tenantId);
    if (query.action !== undefined) q = q.where('action', '=', query.action);
    if (query.outcome !== undefined) q = q.where('outcome', '=', query.outcome);
    if (query.afterSeq !== undefined) q = q.where('seq', '>', query.afterSeq);
    const rows = await q.limit(query.limit + 1).execute();
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((row) => JSON.parse(row.event) as AuditRecord),
      nextCursor: rows.length > query.limit && last ? String(last.seq) : null,
    };
  }

  async function latestCheckpoint(): Promise<WrittenCheckpoint | null> {
    const row = await db
      .selectFrom('audit_checkpoints')
      .select(['size', 'note'])
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? { size: Number(row.size), note: row.note } : null;
  }

  // The tree head is kept in memory and extended with new records only, so a checkpoint costs
  // O(new records), and rows altered after they were folded in are never re-signed.
  const frontier = new MerkleFrontier();
  let frontierAfter = -1;

  async function computeTreeHead(): Promise<{ size: number; root: Buffer }> {
    for (;;) {
      const rows = await db
        .selectFrom('audit_log')
        .select(['seq', 'event'])
        .where('seq', '>', frontierAfter)
        .orderBy('seq', 'asc')
        .limit(CHECKPOINT_BATCH)
        .execute();
      for (const row of rows) {
        frontier.append(hashLeaf(Buffer.from(row.event, 'utf8')));
        frontierAfter = Number(row.seq);
      }
      if (rows.length < CHECKPOINT_BATCH) break;
    }
    return { size: frontier.size, root: frontier.root() };
  }

  async function writeCheckpoint(): Promise<WrittenCheckpoint | null> {
    const signer = options.signer;
    if (!signer) return null;
    return serialize(async () => {
      const previous = await latestCheckpoint();
      const head = await computeTreeHead();
      if (head.size === 0 || (previous && previous.size >= head.size)) return null;
      const note = signCheckpoint({ origin: options.origin, ...head }, signer);
      try {
        await db
          .insertInto('audit_checkpoints')
          .values({
            size: head.size,
            root: head.root.toString('base64'),
            note,
            created_at: now().toISOString(),
          })
          .execute();
      } catch (error) {
        // Another process (server and CLI share the file) checkpointed this size first: fine.
        if (isUniqueViolation(error)) return null;
        throw error;
      }
      if (options.checkpointDir) exportCheckpointFile(options.checkpointDir, head.size, note);
      return { size: head.size, note };
    });
  }

  return {
    append,
    list,
    writeCheckpoint,
    latestCheckpoint,
    startCheckpointTimer(intervalMs) {
      if (timer || !options.signer) return;
      timer = setInterval(() => {
        writeCheckpoint().catch((error: unknown) => {
          options.logger?.error({ err: error }, 'audit checkpoint failed');
        });
      }, intervalMs);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
      timer = null;
      await queue;
      await writeCheckpoint();
    },
  };
}

/** Checkpoint file name in the export directory; zero-padded so names sort by size. */
export function checkpointFileName(size: number): string {
  return `checkpoint-${String(size).padStart(12, '0')}.txt`;
}

function exportCheckpointFile(dir: string, size: number, note: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, checkpointFileName(size)), note, { mode: 0o600 });
  } catch (error) {
    throw new AppError('INTERNAL', 'Cannot write the audit checkpoint file', { cause: error });
  }
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return (
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505' // PostgreSQL unique_violation
  );
}
