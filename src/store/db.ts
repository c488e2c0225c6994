// Opens the database: SQLite (better-sqlite3) by default, PostgreSQL (postgres-dialect.ts) when
// store.url is a postgres:// URL; both behind Kysely so callers do not depend on the dialect.
// SQLite connection pragmas and the data file location live here.
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  Kysely,
  type LogEvent,
  type SqliteDatabase as SqliteDialectDatabase,
  type SqliteStatement,
} from 'kysely';
import { CONFIG_DEFAULTS, type Config } from '../config/schema.ts';
import { sqliteFileOfUrl } from '../config/store-url.ts';
import { AppError } from '../errors/app-error.ts';
import { type CommitDurability, createCommitDurability } from './commit-durability.ts';
import { refuseRootOnForeignFiles } from './data-dir-owner.ts';
import type { CheckoutPoolObserver } from './postgres-checkout.ts';
import { createPostgresDatabase, isPostgresUrl } from './postgres-dialect.ts';
import { attachReadConnection, createReadConnection } from './read-connection.ts';
import type { Database } from './schema.ts';
import { createSqliteDialect } from './sqlite-dialect.ts';
import { syncDirectorySync } from './sync-directory.ts';
import { startWalCheckpointer } from './wal-checkpointer.ts';

export type DialectName = 'sqlite' | 'postgres';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: DialectName;
  /** Where the data lives (file path for SQLite), for logs and `maos serve`. */
  location: string;
  /**
   * SQLite with `synchronous: full`: commits are flushed off the event loop and acknowledged after
   * their flush (commit-durability.ts); the write queue may defer that for the engine's progress.
   */
  durability?: CommitDurability;
  close(): Promise<void>;
}

type PoolKeys = 'poolSize' | 'connectTimeoutMs' | 'stalledQueryCheckMs' | 'startupWaitMs';

/** The config the store reads; the PostgreSQL settings fall back to their defaults when absent. */
export type StoreConfig = Pick<Config, 'dataDir'> & {
  store: Omit<Config['store'], PoolKeys> & Partial<Pick<Config['store'], PoolKeys>>;
};

/** Resolves the SQLite file from config: `store.url = sqlite:<path>` or `<dataDir>/maos.db`. */
export function resolveSqlitePath(config: StoreConfig): string {
  const url = config.store.url;
  if (url === undefined || url === '') return resolve(config.dataDir, 'maos.db');
  if (url.startsWith('sqlite:')) {
    const file = sqliteFileOfUrl(url);
    if ('problem' in file) throw new AppError('CONFIG_INVALID', `store.url ${file.problem}`);
    return resolve(file.path);
  }
  if (url.startsWith('postgres:') || url.startsWith('postgresql:')) {
    throw new AppError('CONFIG_INVALID', 'store.url selects PostgreSQL, which has no SQLite file');
  }
  throw new AppError(
    'CONFIG_INVALID',
    'store.url must start with `sqlite:` or `postgres://` (or be unset for the default SQLite file)',
  );
}

export interface DatabaseOptions {
  /**
   * Database spans (observability/db-tracing.ts): called once with the dialect's `db.system.name`,
   * the result becomes Kysely's `log`. Pass it only when tracing is on: without a `log` Kysely
   * neither times nor wraps queries, so an untraced process pays nothing per query.
   */
  querySpanLogger?: (system: 'sqlite' | 'postgresql') => (event: LogEvent) => void;
  /** SQLite: the background checkpoint worker failed and checkpoints are back inline (for a log line). */
  onCheckpointFailure?: (message: string) => void;
  /**
   * The caller only reads (`maos audit`, `maos doctor`): run as root, an existing SQLite file of
   * another user may be opened. Otherwise refused, as a new one always is (data-dir-owner.ts).
   */
  readsDatabaseOnly?: boolean;
  /** PostgreSQL: the connections' `application_name`, for a tool that must not look like a replica. */
  applicationName?: string;
  /**
   * PostgreSQL: told of each connection the server had ended that a checkout met, of each idle
   * connection discarded with it, and of each statement refused for a busy pool
   * (postgres-checkout.ts; the server's metrics).
   */
  poolObserver?: CheckoutPoolObserver;
  /**
   * The caller reads or changes existing data only (`maos keys list`, `maos audit`): a SQLite file
   * that does not exist is refused (NOT_FOUND naming it) and nothing is created, so a mistyped data
   * directory is an error, not an empty answer from a database made up on the spot.
   */
  mustExist?: boolean;
}

/**
 * The data directory and the database file hold every tenant's sessions, outputs and audit log:
 * created for the service user (and its group, for the directory) only. Existing ones keep theirs.
 */
const DATA_DIR_MODE = 0o750;
const DATABASE_FILE_MODE = 0o600;

/**
 * Creates `dir` and its missing parents, each synced into its parent directory (a power cut right
 * after the first start must not lose them). Node's recursive mkdir reports ENOENT when the parent
 * is on a read-only file system (a container's read-only root without a volume); one level at a
 * time reports the real reason (EROFS, EACCES) for the operator.
 */
function makeDirectory(dir: string): void {
  const missing: string[] = [];
  for (let at = dir; !existsSync(at) && dirname(at) !== at; at = dirname(at)) missing.unshift(at);
  try {
    mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    for (const each of missing) mkdirSync(each, { mode: DATA_DIR_MODE });
  }
  for (const each of missing) syncDirectorySync(dirname(each));
}

/**
 * Creates an empty database file readable by the service user only, if there is none: SQLite would
 * create it world-readable (0644 under the usual umask), and creates its -wal and -shm files with
 * the database file's permissions. A new file's entry is synced into its directory.
 */
function createDatabaseFile(path: string): void {
  try {
    closeSync(openSync(path, 'wx', DATABASE_FILE_MODE));
  } catch (error) {
    // Already there (the usual case, or created meanwhile): its permissions are the operator's.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return;
  }
  syncDirectorySync(dirname(path));
}

/**
 * For the commands that run the server or write its files (`serve`, `mcp`, `keys`, `secrets`), before
 * they open the database: run as root, refuses a SQLite file, data directory (run records,
 * workspaces, keys) or one of `directories` (the audit checkpoint directory) of another user.
 */
export function refuseRootInDataDir(config: StoreConfig, directories: readonly string[] = []): void {
  refuseRootOnForeignFiles({
    ...(isPostgresUrl(config.store.url) ? {} : { database: resolveSqlitePath(config) }),
    directories: [config.dataDir, ...directories],
  });
}

/** Opens (creating if needed) the database. Migrations are NOT applied here: see store/migrate.ts. */
export function createDatabase(config: StoreConfig, options: DatabaseOptions = {}): DatabaseHandle {
  if (isPostgresUrl(config.store.url)) {
    return createPostgresDatabase({
      url: config.store.url,
      poolSize: config.store.poolSize ?? CONFIG_DEFAULTS.storePoolSize,
      connectTimeoutMs: config.store.connectTimeoutMs ?? CONFIG_DEFAULTS.storeConnectTimeoutMs,
      stalledQueryCheckMs: config.store.stalledQueryCheckMs ?? CONFIG_DEFAULTS.storeStalledQueryCheckMs,
      log: options.querySpanLogger?.('postgresql'),
      ...(options.applicationName ? { applicationName: options.applicationName } : {}),
      ...(options.poolObserver ? { poolObserver: options.poolObserver } : {}),
    });
  }
  const path = resolveSqlitePath(config);
  if (options.mustExist === true && !existsSync(path)) {
    throw new AppError(
      'NOT_FOUND',
      `No database at ${path}; check dataDir (MAOS_DATA_DIR, --config) / store.url (\`maos migrate\` or \`maos serve\` creates it)`,
    );
  }
  // Run as root, a new database would belong to root (SQLite gives its -wal/-shm the database
  // file's owner), and so would what is written beside an existing one (data-dir-owner.ts).
  refuseRootOnForeignFiles({ database: path, readsDatabaseOnly: options.readsDatabaseOnly === true });
  try {
    makeDirectory(dirname(path));
  } catch (error) {
    // Not writable, or a file where a directory should be: the operator's to fix, not a defect.
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new AppError('STORE_UNAVAILABLE', `Cannot create the data directory ${dirname(path)} (${code})`, {
      cause: error,
    });
  }
  let sqlite: SqliteDatabase.Database;
  try {
    createDatabaseFile(path);
    sqlite = new SqliteDatabase(path);
  } catch (error) {
    throw new AppError('STORE_UNAVAILABLE', `Cannot open the database file ${path}`, { cause: error });
  }
  try {
    // The first statement that touches the file: in a read-only directory (or on a read-only
    // file) SQLite cannot create the -wal/-shm files beside it and fails here, not at the open.
    sqlite.pragma('journal_mode = WAL');
  } catch (error) {
    sqlite.close();
    // A file that is not a database (store.url or dataDir naming another file) is no matter of permissions.
    const hint =
      (error as { code?: string }).code === 'SQLITE_NOTADB'
        ? 'it is not a SQLite database: check store.url and dataDir'
        : 'the file and its directory must be writable';
    throw new AppError(
      'STORE_UNAVAILABLE',
      `Cannot open the database file ${path}: ${(error as Error).message} (${hint})`,
      { cause: error },
    );
  }
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma(`busy_timeout = ${Math.trunc(config.store.busyTimeoutMs)}`);
  // Temporary B-trees in memory, not in temporary files: SQLite builds one for every RETURNING
  // (the engine's claims and starts return their rows) and for sorts without an index; the
  // queries that need them are bounded (single sessions, pages of lists, retention batches).
  sqlite.pragma('temp_store = MEMORY');
  // `full`: every acknowledged commit survives a power cut. SQLite's FULL would fsync inside each
  // commit, on the event loop; instead the connection runs NORMAL and each commit's WAL is flushed
  // on a libuv thread before the write is acknowledged (commit-durability.ts). `normal` in WAL
  // mode never corrupts but may lose the last commits.
  sqlite.pragma('synchronous = NORMAL');
  const durability =
    config.store.synchronous === 'normal'
      ? undefined
      : createCommitDurability(`${path}-wal`, () => sqlite.inTransaction);
  const log = options.querySpanLogger?.('sqlite');
  const db = new Kysely<Database>({
    dialect: createSqliteDialect(withStatementCache(sqlite, durability), durability),
    ...(log ? { log } : {}),
  });
  // The API's hot reads run on a read-only connection (store/read-connection.ts). Not with tracing
  // on: those reads stay on Kysely so that they get their database spans.
  const reader = log ? null : createReadConnection(path, { busyTimeoutMs: config.store.busyTimeoutMs });
  if (reader) attachReadConnection(db, reader);
  const checkpointer =
    config.store.walCheckpoint === 'inline'
      ? undefined
      : startWalCheckpointer({
          path,
          sqlite,
          ...(options.onCheckpointFailure ? { onFailure: options.onCheckpointFailure } : {}),
        });
  let closed = false;
  return {
    db,
    dialect: 'sqlite',
    location: path,
    ...(durability ? { durability } : {}),
    async close() {
      if (closed) return;
      closed = true;
      // The checkpoint worker and the reader first: the last connection to close checkpoints and
      // removes the WAL files.
      await checkpointer?.close();
      reader?.close();
      await db.destroy();
      durability?.close();
    },
  };
}

/**
 * Opens an existing SQLite file read-only, for inspection (`maos migrate --status`): unlike
 * createDatabase it changes no data — no journal mode switch, no checkpoint of the WAL at close, no
 * background worker — so it is safe next to a running server and on a copy kept as evidence. (SQLite
 * may still create the `-wal` and `-shm` side files a WAL database is read through.)
 */
export function openSqliteReadOnly(
  path: string,
  busyTimeoutMs: number,
): { db: Kysely<Database>; close(): Promise<void> } {
  let sqlite: SqliteDatabase.Database;
  try {
    sqlite = new SqliteDatabase(path, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new AppError('STORE_UNAVAILABLE', `Cannot open the database file ${path}`, { cause: error });
  }
  sqlite.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
  try {
    // SQLite opens lazily: a file that is not a database (SQLITE_NOTADB) failed only at the caller's
    // first query, as an internal error. Reading the schema cookie reads the header now.
    sqlite.pragma('schema_version');
  } catch (error) {
    sqlite.close();
    throw new AppError(
      'STORE_UNAVAILABLE',
      `Cannot read the database file ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const db = new Kysely<Database>({ dialect: createSqliteDialect(sqlite) });
  return { db, close: () => db.destroy() };
}

/** Prepared statements kept per connection; the engine uses a few dozen distinct statements. */
const STATEMENT_CACHE_SIZE = 512;

/**
 * Kysely prepares every query afresh; preparing costs more than running the small indexed
 * statements of the engine, so statements are cached by SQL text (bounded, oldest evicted). With
 * `durability`, each statement is wrapped so that the commits it makes are noticed.
 */
function withStatementCache(
  sqlite: SqliteDatabase.Database,
  durability: CommitDurability | undefined,
): SqliteDialectDatabase {
  const cache = new Map<string, { statement: SqliteDatabase.Statement; wrapped: SqliteStatement }>();
  const wrap = (statement: SqliteDatabase.Statement, text: string): SqliteStatement =>
    durability ? durability.track(statement, text) : statement;
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      const cached = cache.get(text);
      // A statement still iterating (streamed query) cannot be reused: prepare a private one.
      if (cached && !cached.statement.busy) return cached.wrapped;
      const statement = sqlite.prepare(text);
      const wrapped = wrap(statement, text);
      if (!cached) {
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(text, { statement, wrapped });
      }
      return wrapped;
    },
  };
}

/** The default SQLite file for a data directory (for messages and tools). */
export function defaultDatabasePath(dataDir: string): string {
  return join(resolve(dataDir), 'maos.db');
}
