// Copies every durable row of one MAOS database into another, empty one: SQLite to PostgreSQL when
// an installation outgrows one machine, PostgreSQL to SQLite to come back. Both must be at the same
// schema version (the target is migrated here; the source must be current). The source is read in
// one snapshot (a read transaction), the target is written in one transaction that is committed only
// after its row counts match the source's, so an interrupted or failed copy leaves the target
// without data (its schema only) and the source untouched. Rows are copied as stored: timestamps
// are integers and JSON is text in both dialects, so no value is converted and the audit log's
// hash chain stays valid. `maos store copy` (cli/commands/store.ts) drives it.
import { type Kysely, sql, type Transaction } from 'kysely';
import { AppError } from '../errors/app-error.ts';
import { isPostgres } from './advisory-lock.ts';
import { DEFAULT_TENANT_ID } from './migrations/0001-foundation.ts';

// biome-ignore lint/suspicious/noExplicitAny: copies any table by name; rows pass through unchanged
type AnyDb = Kysely<any>;
type Row = Record<string, unknown>;

/** A table the copy carries over, with the columns of its primary key (for paging in key order). */
export interface CopiedTable {
  name: string;
  key: readonly string[];
}

/**
 * Every table with data worth keeping, parents before children (foreign keys hold at each insert).
 * A new migration that adds a table must add it here or to SKIPPED_TABLES: store-copy.test.ts
 * fails on a table that is in neither.
 */
export const COPIED_TABLES: readonly CopiedTable[] = [
  { name: 'tenants', key: ['id'] },
  { name: 'sessions', key: ['id'] },
  { name: 'session_settings', key: ['session_id'] },
  { name: 'plans', key: ['session_id', 'version'] },
  { name: 'agents', key: ['id'] },
  { name: 'tasks', key: ['id'] },
  { name: 'task_dependencies', key: ['task_id', 'depends_on_task_id'] },
  { name: 'messages', key: ['id'] },
  { name: 'artifacts', key: ['id'] },
  { name: 'events', key: ['session_id', 'seq'] },
  { name: 'idempotency_keys', key: ['tenant_id', 'key'] },
  { name: 'tenant_usage_days', key: ['tenant_id', 'day'] },
  { name: 'custom_roles', key: ['tenant_id', 'name'] },
  { name: 'llm_response_cache', key: ['tenant_id', 'key'] },
  { name: 'api_keys', key: ['id'] },
  { name: 'role_bindings', key: ['tenant_id', 'principal_id', 'role'] },
  { name: 'tenant_secrets', key: ['tenant_id', 'name'] },
  // Subscriptions (their secrets are in tenant_secrets) and their deliveries: pending ones are still
  // sent from the new store, the others are the history a tenant admin reads.
  { name: 'webhooks', key: ['id'] },
  { name: 'webhook_deliveries', key: ['id'] },
  { name: 'audit_log', key: ['seq'] },
  { name: 'audit_checkpoints', key: ['size'] },
  { name: 'deleted_sessions', key: ['id'] },
];

/** Tables left behind on purpose, and why (shown by `maos store copy`). */
export const SKIPPED_TABLES: Readonly<Record<string, string>> = {
  kysely_migration: 'schema version: the target is migrated by this build',
  kysely_migration_lock: 'schema version: the target is migrated by this build',
  mcp_stream_events:
    'replay buffers of open MCP streams, which end with the server that served them; clients reconnect',
  rate_limits: 'rate-limit counters of the current window (PostgreSQL only)',
  audit_subtrees:
    'stored hashes of blocks of audit records, for proofs: computed again from the records when a proof needs them',
};

/** What was copied: rows per table (in copy order) and the audit log's last record. */
export interface StoreCopyReport {
  tables: { name: string; rows: number }[];
  auditRecords: number;
  /** Hash of the last audit record, the same in source and target (null: empty audit log). */
  auditHead: string | null;
}

export interface StoreCopyOptions {
  /** Called after each table is written (for progress output). */
  onTable?: (name: string, rows: number) => void;
  /** Rows read per statement; inserts are split further to stay under both dialects' parameter limits. */
  batchSize?: number;
  /**
   * Runs last inside the target's transaction: throwing rolls the whole copy back (the CLI checks
   * there, once more, that no replica connected to a PostgreSQL source during the copy).
   */
  beforeCommit?: () => Promise<void>;
}

/** SQLite allows 32,766 bound parameters per statement, PostgreSQL 65,535: stay below both. */
const MAX_PARAMETERS = 30_000;
const DEFAULT_BATCH = 1000;

/**
 * Copies `source` into `target`. Both must be migrated to the same (latest) version; the target must
 * hold no row in any copied table (CONFLICT otherwise, before anything is written).
 */
export async function copyStore(
  source: AnyDb,
  target: AnyDb,
  options: StoreCopyOptions = {},
): Promise<StoreCopyReport> {
  return readSnapshot(source).execute((snapshot) =>
    target.transaction().execute(async (writer) => {
      // A migrated target is not quite empty: migration 0001 seeds the default tenant, which
      // nothing refers to yet; the source's own row overwrites it (see insertRows).
      await refuseTargetWithData(writer as unknown as AnyDb);
      const tables: StoreCopyReport['tables'] = [];
      for (const table of COPIED_TABLES) {
        const rows = await copyTable(snapshot, writer, table, options.batchSize ?? DEFAULT_BATCH);
        await checkCounts(snapshot, writer, table.name, rows);
        tables.push({ name: table.name, rows });
        options.onTable?.(table.name, rows);
      }
      const sourceHead = await readAuditHead(snapshot);
      const targetHead = await readAuditHead(writer);
      if (sourceHead.hash !== targetHead.hash || sourceHead.records !== targetHead.records) {
        throw new AppError(
          'INTERNAL',
          'The copied audit log does not end where the source does; nothing was copied',
        );
      }
      await options.beforeCommit?.();
      return { tables, auditRecords: sourceHead.records, auditHead: sourceHead.hash };
    }),
  );
}

/** A transaction reading one snapshot: PostgreSQL's default isolation gives each statement its own. */
function readSnapshot(source: AnyDb) {
  return isPostgres(source)
    ? source.transaction().setIsolationLevel('repeatable read')
    : source.transaction();
}

/**
 * CONFLICT when `target` holds rows in a copied table (the default tenant its migration seeded
 * aside). Reads only. `existing`: the tables the target has (a target not migrated yet has some or
 * none; those it lacks are empty); all of them when absent.
 */
export async function refuseTargetWithData(target: AnyDb, existing?: ReadonlySet<string>): Promise<void> {
  const filled: string[] = [];
  for (const table of COPIED_TABLES) {
    if (existing && !existing.has(table.name)) continue;
    let query = target.selectFrom(table.name).select(sql.lit(1).as('one'));
    if (table.name === 'tenants') query = query.where('id', '!=', DEFAULT_TENANT_ID);
    if ((await query.limit(1).execute()).length > 0) filled.push(table.name);
  }
  if (filled.length > 0) {
    throw new AppError(
      'CONFLICT',
      `The target database already holds data (in ${filled.join(', ')}): copy into an empty database`,
    );
  }
}

/** What a copy would carry (`maos store copy --dry-run`): the rows of each copied table, one snapshot. */
export async function countCopiedRows(source: AnyDb): Promise<{ name: string; rows: number }[]> {
  return readSnapshot(source).execute(async (snapshot) => {
    const tables: { name: string; rows: number }[] = [];
    for (const table of COPIED_TABLES)
      tables.push({ name: table.name, rows: await countRows(snapshot, table.name) });
    return tables;
  });
}

/** Copies one table in key order, a batch at a time; returns the rows copied. */
async function copyTable(
  source: Transaction<Row>,
  target: Transaction<Row>,
  table: CopiedTable,
  batchSize: number,
): Promise<number> {
  const reader = source as unknown as AnyDb;
  const writer = target as unknown as AnyDb;
  let copied = 0;
  let last: Row | undefined;
  for (;;) {
    let query = reader.selectFrom(table.name).selectAll();
    if (last) {
      const after = last;
      // Row-value comparison (both dialects): the next rows after the last one's key.
      query = query.where(
        sql<boolean>`(${sql.join(table.key.map((column) => sql.ref(column)))}) > (${sql.join(table.key.map((column) => after[column]))})`,
      );
    }
    for (const column of table.key) query = query.orderBy(sql.ref(column));
    const rows = (await query.limit(batchSize).execute()) as Row[];
    if (rows.length === 0) return copied;
    await insertRows(writer, table.name, rows);
    copied += rows.length;
    last = rows.at(-1);
    if (rows.length < batchSize) return copied;
  }
}

/** Inserts `rows` in statements small enough for either dialect's parameter limit. */
async function insertRows(writer: AnyDb, table: string, rows: Row[]): Promise<void> {
  // The store writes U+0000 as U+FFFD (storable-text.ts), on either target: a copy that did so would
  // no longer be one. Such a row, written before that rule, is refused by name instead.
  const offending = rows.find((row) =>
    Object.values(row).some((value) => typeof value === 'string' && value.includes('\u0000')),
  );
  if (offending) {
    throw new AppError(
      'VALIDATION_FAILED',
      `A row of ${table} (${describeKey(table, offending)}) holds a NUL character, which the target database cannot store; nothing was copied`,
    );
  }
  const columns = Object.keys(rows[0] ?? {}).length || 1;
  const perStatement = Math.max(1, Math.floor(MAX_PARAMETERS / columns));
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    try {
      const insert = writer.insertInto(table).values(chunk);
      // Tenants: the row the target's migration seeded takes the source's values.
      await (table === 'tenants'
        ? insert.onConflict((conflict) =>
            conflict.column('id').doUpdateSet((eb) =>
              Object.fromEntries(
                Object.keys(chunk[0] ?? {})
                  .filter((column) => column !== 'id')
                  .map((column) => [column, eb.ref(`excluded.${column}`)]),
              ),
            ),
          )
        : insert
      ).execute();
    } catch (error) {
      throw describeInsertFailure(error, table);
    }
  }
}

/** A write the target failed: say which table and why, and that nothing was copied (the transaction rolls back). */
function describeInsertFailure(error: unknown, table: string): AppError {
  const message = (error as Error).message;
  return new AppError(
    'STORE_UNAVAILABLE',
    `Writing ${table} into the target database failed: ${message}; nothing was copied`,
    {
      cause: error,
    },
  );
}

function describeKey(table: string, row: Row): string {
  const key = COPIED_TABLES.find((each) => each.name === table)?.key ?? [];
  return key.map((column) => `${column} ${String(row[column])}`).join(', ');
}

/** The target must now hold exactly the source's rows of `table` (both read in their transaction). */
async function checkCounts(
  source: Transaction<Row>,
  target: Transaction<Row>,
  table: string,
  copied: number,
): Promise<void> {
  const [inSource, inTarget] = await Promise.all([countRows(source, table), countRows(target, table)]);
  if (inSource !== copied || inTarget !== copied) {
    throw new AppError(
      'INTERNAL',
      `Copying ${table} read ${copied} rows, the source holds ${inSource} and the target ${inTarget}; nothing was copied`,
    );
  }
}

async function countRows(db: Transaction<Row>, table: string): Promise<number> {
  const row = await (db as unknown as AnyDb)
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

async function readAuditHead(db: Transaction<Row>): Promise<{ records: number; hash: string | null }> {
  const last = await (db as unknown as AnyDb)
    .selectFrom('audit_log')
    .select('hash')
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return { records: await countRows(db, 'audit_log'), hash: (last?.hash as string | undefined) ?? null };
}
