// Opens the database: SQLite (better-sqlite3) by default, PostgreSQL (postgres-dialect.ts) when
// store.url is a postgres:// URL; both behind Kysely so callers do not depend on the dialect.
// SQLite connection pragmas and the data file location live here.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, type LogEvent, type SqliteDatabase as SqliteDialectDatabase } from 'kysely';
import { CONFIG_DEFAULTS, type Config } from '../config/schema.ts';
import { AppError } from '../errors/app-error.ts';
import { createPostgresDatabase, isPostgresUrl } from './postgres-dialect.ts';
import { attachReadConnection, createReadConnection } from './read-connection.ts';
import type { Database } from './schema.ts';
import { createSqliteDialect } from './sqlite-dialect.ts';

export type DialectName = 'sqlite' | 'postgres';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: DialectName;
  /** Where the data lives (file path for SQLite), for logs and `maos serve`. */
  location: string;
  close(): Promise<void>;
}

type PoolKeys = 'poolSize' | 'connectTimeoutMs';

/** The config the store reads; the PostgreSQL pool settings fall back to their defaults when absent. */
export type StoreConfig = Pick<Config, 'dataDir'> & {
  store: Omit<Config['store'], PoolKeys> & Partial<Pick<Config['store'], PoolKeys>>;
};

/** Resolves the SQLite file from config: `store.url = sqlite:<path>` or `<dataDir>/maos.db`. */
export function resolveSqlitePath(config: StoreConfig): string {
  const url = config.store.url;
  if (url === undefined || url === '') return resolve(config.dataDir, 'maos.db');
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (path === '') throw new AppError('CONFIG_INVALID', 'store.url `sqlite:` needs a file path');
    return resolve(path);
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
}

/** Opens (creating if needed) the database. Migrations are NOT applied here: see store/migrate.ts. */
export function createDatabase(config: StoreConfig, options: DatabaseOptions = {}): DatabaseHandle {
  if (isPostgresUrl(config.store.url)) {
    return createPostgresDatabase({
      url: config.store.url,
      poolSize: config.store.poolSize ?? CONFIG_DEFAULTS.storePoolSize,
      connectTimeoutMs: config.store.connectTimeoutMs ?? CONFIG_DEFAULTS.storeConnectTimeoutMs,
      log: options.querySpanLogger?.('postgresql'),
    });
  }
  const path = resolveSqlitePath(config);
  mkdirSync(dirname(path), { recursive: true });
  let sqlite: SqliteDatabase.Database;
  try {
    sqlite = new SqliteDatabase(path);
  } catch (error) {
    throw new AppError('STORE_UNAVAILABLE', `Cannot open the database file ${path}`, { cause: error });
  }
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma(`busy_timeout = ${Math.trunc(config.store.busyTimeoutMs)}`);
  // FULL: every acknowledged commit survives a power cut (fsync per commit; the engine batches
  // writes to amortise it). NORMAL in WAL mode never corrupts but may lose the last commits.
  sqlite.pragma(`synchronous = ${config.store.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
  const log = options.querySpanLogger?.('sqlite');
  const db = new Kysely<Database>({
    dialect: createSqliteDialect(withStatementCache(sqlite)),
    ...(log ? { log } : {}),
  });
  // The API's hot reads run on a read-only connection (store/read-connection.ts). Not with tracing
  // on: those reads stay on Kysely so that they get their database spans.
  const reader = log ? null : createReadConnection(path, { busyTimeoutMs: config.store.busyTimeoutMs });
  if (reader) attachReadConnection(db, reader);
  let closed = false;
  return {
    db,
    dialect: 'sqlite',
    location: path,
    async close() {
      if (closed) return;
      closed = true;
      // Reader first: the last connection to close checkpoints and removes the WAL files.
      reader?.close();
      await db.destroy();
    },
  };
}

/** Prepared statements kept per connection; the engine uses a few dozen distinct statements. */
const STATEMENT_CACHE_SIZE = 512;

/**
 * Kysely prepares every query afresh; preparing costs more than running the small indexed
 * statements of the engine, so statements are cached by SQL text (bounded, oldest evicted).
 */
function withStatementCache(sqlite: SqliteDatabase.Database): SqliteDialectDatabase {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      const cached = cache.get(text);
      // A statement still iterating (streamed query) cannot be reused: prepare a private one.
      if (cached && !cached.busy) return cached;
      const statement = sqlite.prepare(text);
      if (!cached) {
        if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
        cache.set(text, statement);
      }
      return statement;
    },
  };
}

/** The default SQLite file for a data directory (for messages and tools). */
export function defaultDatabasePath(dataDir: string): string {
  return join(resolve(dataDir), 'maos.db');
}
