// PostgreSQL for cluster mode: Kysely's PostgresDialect over a `pg` Pool. BIGINT columns hold epoch
// milliseconds and counters, far below 2^53, so int8 values are parsed to JS numbers (pg's default is strings).
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  type LogEvent,
  PostgresDialect,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import pg from 'pg';
import { AppError } from '../errors/app-error.ts';
import type { DatabaseHandle } from './db.ts';
import { type CheckoutPoolObserver, createCheckoutPool } from './postgres-checkout.ts';
import {
  createWatchedClientClass,
  KEEPALIVE_INITIAL_DELAY_MS,
  learnBackendPid,
} from './postgres-query-watchdog.ts';
import type { Database } from './schema.ts';
import { withStorableParameters } from './storable-text.ts';
import { describeStoreFailure, storeFailureRetryAfter } from './store-failure.ts';

/** OIDs of the PostgreSQL types parsed to numbers: int8 (bigint) and count(*) results. */
const INT8_OID = 20;

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database?…` */
  url: string;
  /** Connections in this process's pool. */
  poolSize: number;
  /** How long a request waits for a free connection (or a new one) before failing. */
  connectTimeoutMs: number;
  /**
   * How long a query waits for its answer before the server is asked whether it still works on it
   * (postgres-query-watchdog.ts); a query lost on the network then fails instead of hanging.
   */
  stalledQueryCheckMs: number;
  /** Kysely `log` (database spans when tracing is on); absent = no per-query logging work. */
  log?: (event: LogEvent) => void;
  /** `application_name` of the connections (what pg_stat_activity shows). @defaultValue SERVER_APPLICATION_NAME */
  applicationName?: string;
  /** Counts connections found ended by the server and those discarded with them (metrics). */
  poolObserver?: CheckoutPoolObserver;
}

/** The `application_name` of MAOS's own connections: tools look for it to see whether replicas run. */
export const SERVER_APPLICATION_NAME = 'maos';

/** The `application_name` of a replica's LISTEN connection (pg-notifier.ts), open for its whole life. */
export const LISTEN_APPLICATION_NAME = 'maos-listen';

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

/** Hides the password of a connection URL (also one given as `?password=`), for logs and `location`. */
export function redactPostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    // pg reads query parameters as connection settings, the password among them.
    for (const name of [...parsed.searchParams.keys()]) {
      if (/password/i.test(name)) parsed.searchParams.set(name, '***');
    }
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
    application_name: options.applicationName ?? SERVER_APPLICATION_NAME,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
    // Before the client is handed out, so no query of its user runs beside this one.
    onConnect: learnBackendPid,
    Client: createWatchedClientClass({
      url: options.url,
      checkAfterMs: options.stalledQueryCheckMs,
      checkTimeoutMs: options.connectTimeoutMs,
    }),
  });
  // An idle client losing its connection (server restart, network) must not crash the process:
  // the pool drops it and the next query opens a new one.
  pool.on('error', () => undefined);
  // A checked-out client whose socket dies between two queries (e.g. inside a write batch) emits
  // 'error' with no listener, which would crash the process: swallow it here; its next query fails
  // (STORE_UNAVAILABLE) and the pool discards the broken client on release.
  // The pool's connections that the server accepted and that have not ended: a wait for a pooled
  // connection that times out while there is none waited only for connections being opened.
  const open = new Set<pg.Client>();
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    open.add(client);
    client.once('end', () => open.delete(client));
  });
  pool.on('remove', (client) => open.delete(client));
  const db = new Kysely<Database>({
    // A checkout's first statement meeting a connection the server ended while it sat idle is sent
    // again on another connection (postgres-checkout.ts).
    dialect: createUnavailableMappingDialect(
      new PostgresDialect({ pool: createCheckoutPool(pool, options.poolObserver) }),
      () => open.size > 0,
      // What the observer throws never reaches the statement.
      () => {
        try {
          options.poolObserver?.poolBusy?.();
        } catch {}
      },
    ),
    ...(options.log ? { log: options.log } : {}),
  });
  poolsByDb.set(db, pool);
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

const poolsByDb = new WeakMap<object, pg.Pool>();

/** The pg Pool behind a Kysely instance opened by createPostgresDatabase (undefined otherwise). */
export function getPostgresPool(db: object): pg.Pool | undefined {
  return poolsByDb.get(db);
}

/** True when a store URL selects PostgreSQL. */
export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && (url.startsWith('postgres://') || url.startsWith('postgresql://'));
}

/** Network error codes of Node's sockets that mean "the server is not reachable". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  // The resolver did not answer (DNS down or overloaded): the name may resolve on the next try.
  'EAI_AGAIN',
]);

/** pg-pool's error when every pooled connection stayed in use for connectionTimeoutMillis. */
const POOL_WAIT_TIMED_OUT = 'timeout exceeded when trying to connect';

/**
 * True for errors that mean the database cannot be reached (as opposed to a bad query): socket
 * errors, pool timeouts, SQLSTATE class 08 (connection exception) and 57P0x (server shutting down).
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = String((error as { code?: unknown }).code ?? '');
  if (NETWORK_CODES.has(code) || code.startsWith('08') || /^57P0[1-3]$/.test(code)) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended/i.test(
    error.message,
  );
}

/**
 * SQLSTATEs of a server that refuses the connection itself, in words that name no user, database or
 * host (the server's own message does; it stays on the error's cause, for the log). Class 28:
 * invalid authorization; 3D000: the database does not exist.
 */
const REFUSALS: Record<string, string> = {
  '28P01': 'password authentication failed',
  '28000': 'the role does not exist or pg_hba.conf does not let it connect',
  '3D000': 'the database does not exist',
};

/**
 * A connection the server refused (wrong password, unknown role, no pg_hba.conf entry, missing
 * database) as STORE_UNAVAILABLE with its SQLSTATE, in every command alike (`maos store copy`,
 * `maos migrate --status`, `maos tenants export` …), not an internal error; undefined for any other
 * error.
 */
export function refusalOf(error: unknown): AppError | undefined {
  if (!(error instanceof Error) || error instanceof AppError) return undefined;
  const code = String((error as { code?: unknown }).code ?? '');
  if (!/^(28[0-9A-Z]{3}|3D000)$/.test(code)) return undefined;
  const reason = REFUSALS[code] ?? 'the server refused the login';
  return new AppError('STORE_UNAVAILABLE', `The database refused the connection: ${reason} (${code})`, {
    cause: error,
  });
}

/**
 * `error` as the caller should see it: STORE_UNAVAILABLE (503) when the database cannot be reached
 * or refuses the connection, or every pooled connection is in use,
 * or when the server refused for a condition of its own (too many connections, out of disk or memory,
 * read-only) that a retry later can get past; anything else (a bad query, a constraint) unchanged.
 * `poolHasConnection` tells a wait for a pooled connection behind connections in use (a busy pool)
 * from one behind connections still being opened (a database that does not answer).
 */
function toUnavailable(
  error: unknown,
  poolHasConnection: () => boolean = () => true,
  onPoolBusy: () => void = () => {},
): unknown {
  const refusal = refusalOf(error);
  if (refusal !== undefined) return refusal;
  if (error instanceof Error && error.message === POOL_WAIT_TIMED_OUT && poolHasConnection()) {
    onPoolBusy();
    // The database answers; this replica's connections are all in use (a burst of requests,
    // statements waiting on a lock). One comes free as soon as any of them ends.
    return new AppError(
      'STORE_UNAVAILABLE',
      'No database connection of this server came free within store.connectTimeoutMs: all store.poolSize connections are in use',
      { cause: error, retryAfterSeconds: 1 },
    );
  }
  if (isConnectionError(error)) {
    // The code (ECONNREFUSED, ENOTFOUND, 57P03 …) tells an operator why; the driver's message could
    // name the database host, which a client must not see.
    const code = String((error as { code?: unknown }).code ?? '');
    const why = /^[A-Za-z0-9_]{1,40}$/.test(code) ? ` (${code})` : '';
    return new AppError('STORE_UNAVAILABLE', `The database cannot be reached${why}`, { cause: error });
  }
  const reason = describeStoreFailure(error);
  if (reason === undefined) return error;
  const retryAfterSeconds = storeFailureRetryAfter(error);
  return new AppError('STORE_UNAVAILABLE', `The database cannot serve the request: ${reason}`, {
    cause: error,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
}

/** The driver's connection, with unreachable-database errors mapped and bound text made storable. */
class UnavailableMappingConnection implements DatabaseConnection {
  /** The driver's own connection, handed back to it for transactions and release. */
  readonly inner: DatabaseConnection;
  constructor(inner: DatabaseConnection) {
    this.inner = inner;
  }
  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(withStorableParameters(query));
    } catch (error) {
      throw toUnavailable(error);
    }
  }
  streamQuery<R>(query: CompiledQuery, chunkSize: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(withStorableParameters(query), chunkSize);
  }
}

/** Kysely's PostgreSQL driver whose "cannot reach the database" errors become STORE_UNAVAILABLE (HTTP 503). */
class UnavailableMappingDriver implements Driver {
  readonly #inner: Driver;
  readonly #poolHasConnection: () => boolean;
  readonly #onPoolBusy: () => void;
  readonly #wrapped = new WeakMap<DatabaseConnection, UnavailableMappingConnection>();
  constructor(inner: Driver, poolHasConnection: () => boolean, onPoolBusy: () => void) {
    this.#inner = inner;
    this.#poolHasConnection = poolHasConnection;
    this.#onPoolBusy = onPoolBusy;
  }
  #unwrap(connection: DatabaseConnection): DatabaseConnection {
    return connection instanceof UnavailableMappingConnection ? connection.inner : connection;
  }
  init(): Promise<void> {
    return this.#inner.init();
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    let inner: DatabaseConnection;
    try {
      inner = await this.#inner.acquireConnection();
    } catch (error) {
      throw toUnavailable(error, this.#poolHasConnection, this.#onPoolBusy);
    }
    let wrapped = this.#wrapped.get(inner);
    if (!wrapped) {
      wrapped = new UnavailableMappingConnection(inner);
      this.#wrapped.set(inner, wrapped);
    }
    return wrapped;
  }
  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    try {
      await this.#inner.beginTransaction(this.#unwrap(connection), settings);
    } catch (error) {
      throw toUnavailable(error);
    }
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await this.#inner.commitTransaction(this.#unwrap(connection));
    } catch (error) {
      throw toUnavailable(error);
    }
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    try {
      await this.#inner.rollbackTransaction(this.#unwrap(connection));
    } catch (error) {
      // The connection died under the transaction (server restart, backend terminated): the server
      // has discarded the transaction with it, and the pool drops the client. Kysely would throw this
      // error in place of the one that made it roll back (a raw driver error: 500 instead of 503).
      if (isConnectionError(error)) return;
      throw toUnavailable(error);
    }
  }
  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.#inner.releaseConnection(this.#unwrap(connection));
  }
  destroy(): Promise<void> {
    return this.#inner.destroy();
  }
}

function createUnavailableMappingDialect(
  base: PostgresDialect,
  poolHasConnection: () => boolean,
  onPoolBusy: () => void,
): Dialect {
  return {
    createAdapter: () => base.createAdapter(),
    createDriver: () => new UnavailableMappingDriver(base.createDriver(), poolHasConnection, onPoolBusy),
    createQueryCompiler: () => base.createQueryCompiler(),
    // biome-ignore lint/suspicious/noExplicitAny: the introspector works on any schema
    createIntrospector: (db: Kysely<any>) => base.createIntrospector(db),
  };
}
