// The append-only audit log: appends records to the hash chain (one writer at a time), lists them
// with a cursor, and writes signed checkpoints periodically, on demand and on shutdown.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { AppError } from '../../errors/app-error.ts';
import type { Logger } from '../../observability/logger.ts';
import { isPostgres, LOCK_KEYS } from '../../store/advisory-lock.ts';
import { writeFileDurablySync } from '../../store/durable-file.ts';
import { newId } from '../../store/ids.ts';
import { auditTargetTypeExpression } from '../../store/migrations/0030-audit-target-type-index.ts';
import { IDLE_IN_OPERATION_TIMEOUT_MS } from '../../store/postgres-write-batch.ts';
import type { SecurityDb } from '../security-tables.ts';
import {
  type AuditConsistencyProof,
  type AuditInclusionProof,
  createProofQueue,
  type ProofRequester,
  readAuditLogSize,
  readConsistencyProof,
  readInclusionProof,
} from './audit-proof.ts';
import {
  type AuditEventInput,
  type AuditRecord,
  buildAuditRecord,
  completeActor,
  computeChainHash,
  GENESIS_HASH,
  indexedColumnsOf,
  serializeAuditRecord,
  targetTypeNames,
} from './audit-record.ts';
import { type Checkpoint, type CheckpointSigner, openCheckpoint, signCheckpoint } from './checkpoint.ts';
import { hashLeaf, MerkleFrontier } from './merkle.ts';
import { DEFAULT_OBSERVER_NODE_MODE, localAuditObserver, type ObserverNodeMode } from './observer-node.ts';

// Another process (e.g. the CLI) may append at the same moment; the loser of the race on the
// seq primary key re-reads the chain head and retries this many times.
const APPEND_ATTEMPTS = 8;
const CHECKPOINT_BATCH = 1000;
/** Checkpoint notes read at a time when looking for the newest one this key signed. */
const CHECKPOINT_SCAN_BATCH = 100;
// Largest number of records written in one transaction (keeps statements well under SQLite's
// bound-parameter limit: 9 columns × 500 rows).
const MAX_BATCH = 500;
// Records waiting behind the batch being written. Answers wait for their record only so long
// (security/audit-wait.ts); past this bound a stalled store (a lock held elsewhere, a database that
// does not answer) would grow the queue without end, so further records are refused (and counted
// as lost by the caller) instead: about 10,000 × 1–2 KiB at most.
const DEFAULT_MAX_PENDING = 10_000;
// PostgreSQL: how long an append waits for another replica's append lock before it fails (and is
// counted as lost) instead of queueing behind a replica that froze inside its transaction.
const APPEND_LOCK_TIMEOUT = '30s';
// PostgreSQL: how long the server waits for this replica inside an append's transaction before it
// ends the connection, as for the engine's write operations (store/postgres-write-batch.ts). An
// append sends its statements back to back; a replica frozen mid-append (SIGSTOP, a paused VM)
// would otherwise hold the append lock until it resumes or TCP keepalive gives up (2 h by default),
// and every other replica's appends would fail after APPEND_LOCK_TIMEOUT and be counted as lost.
const APPEND_IDLE_TIMEOUT = String(IDLE_IN_OPERATION_TIMEOUT_MS);

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
  /** Records that may wait to be written before further ones are refused (default 10,000). */
  maxPending?: number;
  /**
   * What the records' `observer.node` says (`audit.observerNode`); a pseudonym is keyed with
   * `signer`, and without one the node is null. @defaultValue pseudonym
   */
  observerNode?: ObserverNodeMode;
}

export interface AuditListQuery {
  tenantId?: string;
  /** Only the record with this id (the unique index on `id` finds it). */
  id?: string;
  action?: string;
  outcome?: string;
  /** Only records whose target has this type, under its current or an earlier name (targetTypeNames). */
  targetType?: string;
  /** Only records with seq greater than this (the ascending cursor). */
  afterSeq?: number;
  /** Only records with seq less than this (the descending cursor). */
  beforeSeq?: number;
  /** `asc` (default): oldest first; `desc`: newest first. */
  order?: 'asc' | 'desc';
  limit: number;
}

export interface AuditPage {
  items: AuditRecord[];
  /** The seq of the page's last record (as text) when more follow in the same order, else null. */
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
  /**
   * The newest stored checkpoint this log's signer signed (the one its verifier key verifies), if
   * any; without a signer, the newest stored one.
   */
  latestCheckpoint(): Promise<WrittenCheckpoint | null>;
  /** Records in the log now: the largest tree size a proof can be asked for. */
  size(): Promise<number>;
  /**
   * RFC 6962 inclusion proof of the record at `index` in the tree of the first `size` records.
   * Proofs are computed one at a time (createProofQueue: RESOURCE_LIMIT_EXCEEDED when too many
   * wait, or one of `requester`'s, the tenant asking, does; callers that name none share one place).
   */
  inclusionProof(index: number, size: number, requester?: ProofRequester): Promise<AuditInclusionProof>;
  /** RFC 6962 consistency proof between the first `from` and the first `to` records (in turn, as above). */
  consistencyProof(from: number, to: number, requester?: ProofRequester): Promise<AuditConsistencyProof>;
  /** Writes a checkpoint every `intervalMs` (timer does not keep the process alive). */
  startCheckpointTimer(intervalMs: number): void;
  /** Stops the timer, waits for pending appends and writes a final checkpoint. */
  close(): Promise<void>;
}

/** Creates the audit log over the `audit_log` and `audit_checkpoints` tables. */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const { db } = options;
  const now = options.now ?? (() => new Date());
  const observer = localAuditObserver(
    options.observerNode ?? DEFAULT_OBSERVER_NODE_MODE,
    options.signer?.privateKey ?? null,
  );
  const proofInTurn = createProofQueue();
  let queue: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;

  function serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run;
  }

  // Checkpoints go one at a time (they extend one in-memory tree head) but apart from the appends:
  // the first one after a start reads every record since the newest stored tree state (the whole
  // log when there is none: seconds for a million records), during which the requests waiting for
  // their records would otherwise wait too. It reads committed records only, so it needs nothing
  // from the append queue.
  let checkpointQueue: Promise<unknown> = Promise.resolve();
  function serializeCheckpoint<T>(work: () => Promise<T>): Promise<T> {
    const run = checkpointQueue.then(work, work);
    checkpointQueue = run.catch(() => undefined);
    return run;
  }

  /**
   * Appends a batch with ONE multi-row INSERT: atomic and one commit (one fsync) for every record
   * waiting. SQLite: no explicit transaction (a read-then-write transaction deadlocks against a
   * second writer); a writer that lost the race hits the seq primary key and retries. PostgreSQL:
   * the head is read and the batch inserted under a transaction-level advisory lock, so the
   * replicas append one at a time; with retries alone, replicas racing for the head kept losing and
   * gave appends up after APPEND_ATTEMPTS. The transaction is bounded (APPEND_IDLE_TIMEOUT), so a
   * replica frozen inside it holds the lock for seconds, not hours.
   */
  async function appendBatch(inputs: readonly AuditEventInput[]): Promise<AuditRecord[]> {
    if (!isPostgres(db)) return appendAfterHead(db, inputs);
    return db.transaction().execute(async (trx) => {
      await sql`select set_config('lock_timeout', ${APPEND_LOCK_TIMEOUT}, true), set_config('idle_in_transaction_session_timeout', ${APPEND_IDLE_TIMEOUT}, true)`.execute(
        trx,
      );
      await sql`select pg_advisory_xact_lock(${LOCK_KEYS.auditAppend})`.execute(trx);
      return appendAfterHead(trx, inputs);
    });
  }

  async function appendAfterHead(db: SecurityDb, inputs: readonly AuditEventInput[]): Promise<AuditRecord[]> {
    const head = await db
      .selectFrom('audit_log')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    let seq = head ? Number(head.seq) + 1 : 0;
    let prevHash = head?.hash ?? GENESIS_HASH;
    const records: AuditRecord[] = [];
    const rows = inputs.map((input) => {
      const record = buildAuditRecord(input, { seq, id: newId(), time: now().toISOString(), observer });
      const event = serializeAuditRecord(record);
      const hash = computeChainHash(prevHash, event);
      const row = {
        seq,
        id: record.id,
        time: record.time,
        ...indexedColumnsOf(record),
        event,
        prev_hash: prevHash,
        hash,
      };
      records.push(record);
      prevHash = hash;
      seq += 1;
      return row;
    });
    await db.insertInto('audit_log').values(rows).execute();
    return records;
  }

  interface PendingAppend {
    input: AuditEventInput;
    resolve(record: AuditRecord): void;
    reject(error: unknown): void;
  }
  let pending: PendingAppend[] = [];
  let flushing = false;

  // Appends that arrive while a batch is being written wait and go together in the next one, so
  // a burst costs a few commits instead of one fsync per record.
  async function flush(): Promise<void> {
    if (flushing) return;
    flushing = true;
    try {
      while (pending.length > 0) {
        const batch = pending.slice(0, MAX_BATCH);
        pending = pending.slice(batch.length);
        try {
          const records = await serialize(async () => {
            for (let attempt = 1; ; attempt += 1) {
              try {
                return await appendBatch(batch.map((item) => item.input));
              } catch (error) {
                if (attempt >= APPEND_ATTEMPTS || !isRetryableWriteError(error)) throw error;
              }
            }
          });
          for (const [i, item] of batch.entries()) item.resolve(records[i] as AuditRecord);
        } catch (error) {
          for (const item of batch) item.reject(error);
        }
      }
    } finally {
      flushing = false;
    }
  }

  const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;

  function append(input: AuditEventInput): Promise<AuditRecord> {
    if (pending.length >= maxPending) {
      return Promise.reject(
        new AppError(
          'STORE_UNAVAILABLE',
          `The audit log is not keeping up: ${pending.length} records wait to be written, so this one is not kept`,
        ),
      );
    }
    return new Promise<AuditRecord>((resolve, reject) => {
      pending.push({ input, resolve, reject });
      void flush();
    });
  }

  async function list(query: AuditListQuery): Promise<AuditPage> {
    // Both orders walk the (tenant_id, seq) index, forwards or backwards.
    let q = db
      .selectFrom('audit_log')
      .select(['seq', 'event'])
      .orderBy('seq', query.order === 'desc' ? 'desc' : 'asc');
    if (query.tenantId !== undefined) q = q.where('tenant_id', '=', query.tenantId);
    if (query.id !== undefined) q = q.where('id', '=', query.id);
    if (query.action !== undefined) q = q.where('action', '=', query.action);
    if (query.outcome !== undefined) q = q.where('outcome', '=', query.outcome);
    if (query.targetType !== undefined) {
      // The expression of the (tenant_id, target type, seq) index, so that it serves the page.
      // PostgreSQL's holds the type as JSON writes it: the same for the names MAOS gives.
      q = q.where(auditTargetTypeExpression(isPostgres(db)), 'in', targetTypeNames(query.targetType));
    }
    if (query.afterSeq !== undefined) q = q.where('seq', '>', query.afterSeq);
    if (query.beforeSeq !== undefined) q = q.where('seq', '<', query.beforeSeq);
    const rows = await q.limit(query.limit + 1).execute();
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      // Records stored before every actor field (or the observer) was written out read back
      // complete, the missing fields null.
      items: page.map((row) => {
        const record = readListedRecord(row.event, Number(row.seq));
        return { ...record, actor: completeActor(record.actor), observer: record.observer ?? null };
      }),
      nextCursor: rows.length > query.limit && last ? String(last.seq) : null,
    };
  }

  /** The newest stored checkpoint, whichever key signed it: a new one must be larger. */
  async function newestStoredCheckpoint(): Promise<WrittenCheckpoint | null> {
    const row = await db
      .selectFrom('audit_checkpoints')
      .select(['size', 'note'])
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? { size: Number(row.size), note: row.note } : null;
  }

  // The newest checkpoint this process's key signed. After a key rotation the newest stored ones are
  // the old key's until the log grows, and the verifier key shown beside the checkpoint would not
  // verify them. Checkpoints are append-only with growing sizes, so each row is looked at once.
  let ownLatest: WrittenCheckpoint | null = null;
  let ownScannedUpTo = -1;

  async function latestCheckpoint(): Promise<WrittenCheckpoint | null> {
    const signer = options.signer;
    if (!signer) return newestStoredCheckpoint();
    const verifier = { name: signer.name, publicKey: signer.publicKey };
    let below: number | undefined;
    let newestSeen: number | undefined;
    for (;;) {
      let q = db
        .selectFrom('audit_checkpoints')
        .select(['size', 'note'])
        .where('size', '>', ownScannedUpTo)
        .orderBy('size', 'desc')
        .limit(CHECKPOINT_SCAN_BATCH);
      if (below !== undefined) q = q.where('size', '<', below);
      const rows = await q.execute();
      newestSeen ??= rows[0] === undefined ? undefined : Number(rows[0].size);
      const own = rows.find((row) => {
        try {
          return openCheckpoint(row.note, verifier).size === Number(row.size);
        } catch {
          return false;
        }
      });
      if (own && (ownLatest === null || Number(own.size) > ownLatest.size))
        ownLatest = { size: Number(own.size), note: own.note };
      const last = rows[rows.length - 1];
      if (own || last === undefined || rows.length < CHECKPOINT_SCAN_BATCH) break;
      below = Number(last.size);
    }
    if (newestSeen !== undefined && newestSeen > ownScannedUpTo) ownScannedUpTo = newestSeen;
    return ownLatest;
  }

  // The tree head is kept in memory and extended with new records only, so a checkpoint costs
  // O(new records), and rows altered after they were folded in are never re-signed. Each checkpoint
  // stores the tree state with it; a new process starts from the newest one its key signed.
  let frontier = new MerkleFrontier();
  let frontierAfter = -1;
  let resumed = false;

  /**
   * Continues the tree head from the newest checkpoint's stored state, when that checkpoint is one
   * this signer signed and the state matches it: the signed size and root, and as many records up
   * to the state's last seq. Anything else (no state yet, another key after a rotation, an edited
   * row) leaves the head empty, and the whole log is read as before.
   */
  async function resumeTreeHead(signer: CheckpointSigner): Promise<void> {
    resumed = true;
    const row = await db
      .selectFrom('audit_checkpoints')
      .select(['size', 'note', 'tree'])
      .where('tree', 'is not', null)
      .orderBy('size', 'desc')
      .limit(1)
      .executeTakeFirst();
    const state = row?.tree ? parseTreeState(row.tree) : null;
    if (!row || !state) return;
    let signed: Checkpoint;
    try {
      signed = openCheckpoint(row.note, { name: signer.name, publicKey: signer.publicKey });
    } catch {
      return;
    }
    const matches =
      signed.origin === options.origin &&
      signed.size === state.frontier.size &&
      signed.root.equals(state.frontier.root());
    const counted = matches
      ? await db
          .selectFrom('audit_log')
          .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
          .where('seq', '<=', state.after)
          .executeTakeFirstOrThrow()
      : null;
    if (counted === null || Number(counted.count) !== signed.size) {
      options.logger?.warn(
        { size: Number(row.size) },
        'the newest audit checkpoint does not match its stored tree state or the log; the whole log is read again',
      );
      return;
    }
    frontier = state.frontier;
    frontierAfter = state.after;
  }

  async function computeTreeHead(signer: CheckpointSigner): Promise<{ size: number; root: Buffer }> {
    if (!resumed) await resumeTreeHead(signer);
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
    return serializeCheckpoint(async () => {
      const previous = await newestStoredCheckpoint();
      const head = await computeTreeHead(signer);
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
            tree: formatTreeState(frontier, frontierAfter),
          })
          .execute();
      } catch (error) {
        // Another process (server and CLI share the file) checkpointed this size first: fine.
        if (isUniqueViolation(error)) return null;
        throw error;
      }
      if (options.checkpointDir && !exportCheckpointFile(options.checkpointDir, head.size, note)) {
        options.logger?.error(
          { size: head.size },
          'audit checkpoint directory already holds another checkpoint of this size: the log no longer matches what was signed before (restored from a backup or rewritten); that file is kept, run maos audit verify',
        );
      }
      return { size: head.size, note };
    });
  }

  return {
    append,
    list,
    writeCheckpoint,
    latestCheckpoint,
    size: () => readAuditLogSize(db),
    inclusionProof: (index, size, requester = null) =>
      proofInTurn(requester, () => readInclusionProof(db, index, size)),
    consistencyProof: (from, to, requester = null) =>
      proofInTurn(requester, () => readConsistencyProof(db, from, to)),
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
      // Let every queued append reach the database before the final checkpoint.
      while (flushing || pending.length > 0) {
        await queue;
        await new Promise((resolve) => setImmediate(resolve));
      }
      // A pooled connection the server ended while idle (failover, pg_terminate_backend) is
      // replaced by the pool itself (store/postgres-checkout.ts): one try.
      await writeCheckpoint();
    },
  };
}

/**
 * A stored record as listed; CONFLICT naming it when its text is no record (the database was edited:
 * not JSON, or JSON without an actor), instead of a TypeError or SyntaxError answered as a 500.
 */
function readListedRecord(event: string, seq: number): AuditRecord {
  let record: unknown;
  try {
    record = JSON.parse(event);
  } catch {
    record = null;
  }
  const actor = (record as { actor?: unknown } | null)?.actor;
  if (
    record === null ||
    typeof record !== 'object' ||
    Array.isArray(record) ||
    typeof actor !== 'object' ||
    actor === null
  ) {
    throw new AppError(
      'CONFLICT',
      `The audit record ${seq} cannot be read: its stored text is not a record (the database was edited; maos audit verify names what is wrong). The records after it are listed from cursor=${seq} (order=desc: cursor=d${seq}).`,
      { details: { seq } },
    );
  }
  return record as AuditRecord;
}

/** The tree state stored with a checkpoint: `{"after": <last seq>, "subtrees": [[size, base64], …]}`. */
function formatTreeState(frontier: MerkleFrontier, after: number): string {
  const subtrees = frontier.subtrees().map(({ size, hash }) => [size, hash.toString('base64')]);
  return JSON.stringify({ after, subtrees });
}

function parseTreeState(text: string): { frontier: MerkleFrontier; after: number } | null {
  try {
    const parsed = JSON.parse(text) as { after?: unknown; subtrees?: unknown };
    if (!Number.isSafeInteger(parsed.after) || !Array.isArray(parsed.subtrees)) return null;
    const subtrees = parsed.subtrees.map((entry: unknown) => {
      const [size, hash] = Array.isArray(entry) ? entry : [];
      return { size: Number(size), hash: Buffer.from(typeof hash === 'string' ? hash : '', 'base64') };
    });
    const frontier = MerkleFrontier.fromSubtrees(subtrees);
    return frontier ? { frontier, after: parsed.after as number } : null;
  } catch {
    return null;
  }
}

/** Checkpoint file name in the export directory; zero-padded so names sort by size. */
export function checkpointFileName(size: number): string {
  return `checkpoint-${String(size).padStart(12, '0')}.txt`;
}

/**
 * Writes the checkpoint file; false when a file of that size with another note is there already.
 * That file is never replaced: it is the evidence of what the log held when it was signed (a log
 * restored from an older backup, or rewritten, grows through the same sizes again).
 */
function exportCheckpointFile(dir: string, size: number, note: string): boolean {
  const file = join(dir, checkpointFileName(size));
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Whole or absent after a crash: a cut file would later read as a note that does not match.
    writeFileDurablySync(file, note, { exclusive: true });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new AppError('INTERNAL', 'Cannot write the audit checkpoint file', { cause: error });
    }
  }
  // Ed25519 signatures are deterministic: the same tree head signed again is the same note.
  try {
    return readFileSync(file, 'utf8') === note;
  } catch (error) {
    throw new AppError('INTERNAL', 'Cannot read the audit checkpoint file', { cause: error });
  }
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return (
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505' // PostgreSQL unique_violation
  );
}

/** Lost a race with another process: the chain head moved under us; re-read it and retry. */
function isRetryableWriteError(error: unknown): boolean {
  const code = String((error as { code?: unknown }).code ?? '');
  return isUniqueViolation(error) || code.startsWith('SQLITE_BUSY') || code === '40001';
}
