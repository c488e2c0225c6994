// Reading a whole tenant for `maos tenants export` (offboarding, GDPR art. 20): every row of it in
// every table the purge erases or keeps (tenant-purge.ts: one list), without the secrets stored with
// them, in bounded reads. Each read is its own statement: rows written while an export runs may be
// in it or not, as for any read beside a live server; nothing is locked or written.
import { type Kysely, sql } from 'kysely';
import { AppError } from '../errors/app-error.ts';
import { formatExportLine, formatUnreadableExportLine, readStoredRecord } from '../security/audit/verify.ts';
import { TENANT_TABLES, TENANT_TABLES_KEPT } from './tenant-purge.ts';

// biome-ignore lint/suspicious/noExplicitAny: reads tables of several areas' schemas
type AnyDb = Kysely<any>;
type Row = Record<string, unknown>;

/** Version of the archive's layout (manifest.json `formatVersion`); raised when it changes. */
export const TENANT_EXPORT_FORMAT_VERSION = 1;

/** Rows per read: a page of artifacts or events may hold large texts. */
export const EXPORT_ROWS_PER_READ = 500;

/**
 * Columns never exported: the one place that says which stored values are secrets. The rows are
 * exported without them (their names, ids, key ids and times stay).
 */
export const SECRET_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  // Provider credentials (`provider:<name>`) and webhook signing secrets, encrypted at rest.
  tenant_secrets: ['ciphertext'],
  // The hash an API key is checked against (its prefix, shown in listings, stays).
  api_keys: ['hash'],
};

/**
 * A column name that may hold a secret. An exported table's column with such a name must be in
 * SECRET_COLUMNS or NOT_SECRET_COLUMNS: the export refuses a table that has an undecided one
 * (tenant-export.test.ts fails first), so a new secret column is never exported by default.
 */
export const SECRET_LOOKING_COLUMN =
  /hash|secret|cipher|passw|private|credential|signature|token|key|salt|nonce|sha/i;

/** Columns whose names look secret but that are not, and why (`*`: in every table). */
export const NOT_SECRET_COLUMNS: Readonly<Record<string, string>> = {
  '*.input_tokens': 'a count of model tokens',
  '*.output_tokens': 'a count of model tokens',
  '*.cache_read_tokens': 'a count of model tokens',
  'artifacts.sha256': 'the hash of the artifact content, which is exported too',
  'idempotency_keys.key': 'the Idempotency-Key the client sent',
  'idempotency_keys.request_hash': 'a hash of the request, to refuse a key reused for another one',
  'llm_response_cache.key': 'a hash of the cached model request',
  'webhooks.previous_secret_expires_at': 'when the previous signing secret stops being used (a time)',
  'audit_log.hash': 'the audit chain hash of the record',
  'audit_log.prev_hash': 'the audit chain hash of the record before',
};

/** Whether `column` of `table` is exported: not a secret, and not a secret-looking one left undecided. */
export function columnDecision(table: string, column: string): 'export' | 'secret' | 'undecided' {
  if (SECRET_COLUMNS[table]?.includes(column)) return 'secret';
  if (!SECRET_LOOKING_COLUMN.test(column)) return 'export';
  return Object.hasOwn(NOT_SECRET_COLUMNS, `${table}.${column}`) ||
    Object.hasOwn(NOT_SECRET_COLUMNS, `*.${column}`)
    ? 'export'
    : 'undecided';
}

/**
 * A table of the export: its tenant column and the order its rows are read in, a page at a time,
 * each page starting after the last row of the one before (`tenant = ? and (order) > (last row)`).
 * The order's columns are unique together and never null.
 */
export interface ExportTable {
  name: string;
  tenantColumn: string;
  order: readonly string[];
  /**
   * Whether an index leads with the tenant column, then the order's columns: a page is then one
   * range of it, the page's rows and no others, already in order. Else the order is the primary key,
   * and the pages walk it across every tenant: the table is read once in all, never per page, and
   * never sorted. These are the tables of sessions' output (events above all), which have no index
   * by tenant: one would cost every write of theirs for the sake of a rare export. An index that
   * leads with the tenant but gives no unique order is the one case to avoid: the planner reads a
   * page through it and sorts all of the tenant's rows for every page (tenant-export.test.ts fails).
   */
  byTenant: boolean;
}

/** Primary keys of the tables whose rows the purge keeps (TENANT_TABLES_KEPT). */
const KEPT_TABLE_KEYS: Readonly<Record<string, readonly string[]>> = {
  tenants: ['id'],
  audit_log: ['seq'],
  deleted_sessions: ['id'],
};

/**
 * Tables with an index by tenant that gives a unique order, other than a primary key led by the
 * tenant: the index's columns after the tenant.
 */
const TENANT_INDEX_ORDERS: Readonly<Record<string, readonly string[]>> = {
  // sessions_tenant_created
  sessions: ['created_at', 'id'],
  // session_settings_tenant (migration 0026)
  session_settings: ['session_id'],
  // webhooks_tenant
  webhooks: ['created_at', 'id'],
  // api_keys_tenant_idx
  api_keys: ['id'],
  // audit_log_tenant_idx
  audit_log: ['seq'],
};

/** The table's export: by a tenant index if it has one (see ExportTable), else by its primary key. */
function exportTable(name: string, tenantColumn: string, key: readonly string[]): ExportTable {
  const order = TENANT_INDEX_ORDERS[name];
  if (order) return { name, tenantColumn, order, byTenant: true };
  // A primary key led by the tenant (or the tenant row's own): its other columns.
  if (key[0] === tenantColumn) {
    return { name, tenantColumn, order: key.length > 1 ? key.slice(1) : key, byTenant: true };
  }
  return { name, tenantColumn, order: key, byTenant: false };
}

/**
 * Every table of the export, one file each: the tenant row, the tables the purge erases (in its
 * order), then what it keeps (the tenant's audit records: the actor's tenant, else the target's, as
 * `tenant_id` stores it, auditRecordTenant).
 */
export const EXPORT_TABLES: readonly ExportTable[] = [
  exportTable('tenants', 'id', ['id']),
  ...TENANT_TABLES.map((table) => exportTable(table.name, 'tenant_id', table.key)),
  ...Object.keys(TENANT_TABLES_KEPT)
    .filter((name) => name !== 'tenants')
    .map((name) => {
      const key = KEPT_TABLE_KEYS[name];
      if (!key) throw new Error(`tenant-export.ts: no primary key given for the kept table ${name}`);
      return exportTable(name, 'tenant_id', key);
    }),
];

/**
 * Told of each audit record whose stored text is no JSON object (an edited database): it is
 * exported as `maos audit export` writes such a record, marked (`unreadable_event`: that text).
 */
export type UnreadableAuditRecord = (seq: number) => void;

/** One exported row: an audit record as `maos audit export` writes it, else the row without secrets. */
function exportedRow(table: string, row: Row, onUnreadable?: UnreadableAuditRecord): Row {
  if (table === 'audit_log') {
    const entry = {
      seq: Number(row.seq),
      event: String(row.event),
      prev_hash: String(row.prev_hash),
      hash: String(row.hash),
    };
    if (readStoredRecord(entry) === null) {
      onUnreadable?.(entry.seq);
      return JSON.parse(formatUnreadableExportLine(entry)) as Row;
    }
    return JSON.parse(formatExportLine(entry)) as Row;
  }
  const out: Row = {};
  for (const [column, value] of Object.entries(row)) {
    const decision = columnDecision(table, column);
    if (decision === 'secret') continue;
    if (decision === 'undecided') {
      throw new AppError(
        'INTERNAL',
        `${table}.${column} may hold a secret and is neither in SECRET_COLUMNS nor in NOT_SECRET_COLUMNS (store/tenant-export.ts): refusing to export it`,
      );
    }
    out[column] = typeof value === 'bigint' ? Number(value) : value;
  }
  return out;
}

/**
 * The tenant's rows of `table`, page by page (at most `limit` rows each) in its order (ExportTable),
 * each page starting after the last row read: every row once, none read again, never under a write
 * lock. Holds one page at a time. An audit record that cannot be read is exported marked and
 * passed to `onUnreadable` (UnreadableAuditRecord), not an error: the rows after it are exported.
 */
export async function* readTenantRows(
  db: AnyDb,
  table: ExportTable,
  tenantId: string,
  limit: number = EXPORT_ROWS_PER_READ,
  onUnreadable?: UnreadableAuditRecord,
): AsyncGenerator<Row[]> {
  const columns = sql.join(table.order.map((column) => sql.ref(column)));
  let after: Row | undefined;
  for (;;) {
    let query = db.selectFrom(table.name).selectAll().where(table.tenantColumn, '=', tenantId);
    if (after) {
      const last = after;
      query = query.where(
        sql<boolean>`(${columns}) > (${sql.join(table.order.map((column) => last[column]))})`,
      );
    }
    for (const column of table.order) query = query.orderBy(column);
    const rows = (await query.limit(limit).execute()) as Row[];
    if (rows.length > 0) yield rows.map((row) => exportedRow(table.name, row, onUnreadable));
    if (rows.length < limit) return;
    after = rows[rows.length - 1];
  }
}

/** Whether the store knows the tenant: its tenant row, or any row of it the export would hold. */
export async function tenantIsKnown(db: AnyDb, tenantId: string): Promise<boolean> {
  for (const table of EXPORT_TABLES) {
    const row = await db
      .selectFrom(table.name)
      .select(sql.lit(1).as('one'))
      .where(table.tenantColumn, '=', tenantId)
      .limit(1)
      .executeTakeFirst();
    if (row) return true;
  }
  return false;
}
