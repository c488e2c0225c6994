// PostgreSQL for cluster mode: Kysely's PostgresDialect over a `pg` Pool. BIGINT columns hold epoch
// milliseconds and counters, far below 2^53, so int8 values are parsed to JS numbers (pg's default is strings).
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { AppError } from '../errors/app-error.ts';
import type { DatabaseHandle } from './db.ts';
import type { Database } from './schema.ts';

/** OIDs of the PostgreSQL types parsed to numbers: int8 (bigint) and count(*) results. */
const INT8_OID = 20;

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database?…` */
  url: string;
  /** Connections in this process's pool. */
  poolSize: number;
  /** How long a request waits for a free connection (or a new one) before failing. */
  connectTimeoutMs: number;
}

/** Parses int8 to a number, refusing values a double cannot hold exactly instead of rounding them. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new AppError('INTERNAL', `bigint ${text} exceeds 2^53`);
  return value;
}

/** Type parsers for this pool only (pg's global `types` registry is left alone). */
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return parseInt8;
    // biome-ignore lint/suspicious/noExplicitAny: pg's overloads do not accept a union format
    return (pg.types.getTypeParser as any)(oid, format);
  },
};

/** Hides the password of a connection URL, for logs and `location`. */
export function redactPostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(unparsable url)';
  }
}

/** Opens a pooled PostgreSQL database. Connections are made lazily, so this never blocks or throws on I/O. */
export function createPostgresDatabase(options: PostgresStoreOptions): DatabaseHandle & { pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs,
    // Idle connections are closed so a scaled-down cluster gives connections back to the server.
    idleTimeoutMillis: 30_000,
    types: typeParsers,
    application_name: 'maos',
  });
  // An idle client losing its connection (server restart, network) must not crash the process:
  // the pool drops it and the next query opens a new one.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let closed = false;
  return {
    db,
    pool,
    dialect: 'postgres',
    location: redactPostgresUrl(options.url),
    async close() {
      if (closed) return;
      closed = true;
      // Kysely's destroy ends the pool.
      await db.destroy();
    },
  };
}

/** True when a store URL selects PostgreSQL. */
export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && (url.startsWith('postgres://') || url.startsWith('postgresql://'));
}
