// Kysely's SQLite dialect with a FIFO connection lock. Kysely's own single-connection mutex wakes
// every waiter on each release (O(n²) under load: 1,000 concurrent requests spent most CPU there);
// this hands the one connection to the next waiter in order, O(1) per hand-off. With commit
// durability (commit-durability.ts), a use of the connection that committed is answered only once
// its commits are on disk, while the connection already serves the next caller.
import {
  type AbortableOperationOptions,
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  SqliteQueryCompiler,
  type TransactionSettings,
} from 'kysely';
import type { CommitDurability } from './commit-durability.ts';
import { withStorableParameters } from './storable-text.ts';

/** A FIFO lock: `acquire` resolves when the caller holds it; `release` passes it to the next in line. */
function createFifoLock(): { acquire(): Promise<void>; release(): void } {
  const waiters: Array<() => void> = [];
  let held = false;
  return {
    acquire() {
      if (!held) {
        held = true;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    release() {
      const next = waiters.shift();
      if (next) next();
      else held = false;
    },
  };
}

class FifoAdapter extends SqliteAdapter {
  // Tells Kysely not to add its own mutex: the driver below serialises access itself.
  override get supportsMultipleConnections(): boolean {
    return true;
  }
}

/** The driver's one connection, each statement's bound text made storable as on PostgreSQL (storable-text.ts). */
class StorableTextConnection implements DatabaseConnection {
  readonly #inner: DatabaseConnection;
  constructor(inner: DatabaseConnection) {
    this.#inner = inner;
  }
  executeQuery<R>(query: CompiledQuery, options?: AbortableOperationOptions): Promise<QueryResult<R>> {
    return this.#inner.executeQuery<R>(withStorableParameters(query), options);
  }
  streamQuery<R>(
    query: CompiledQuery,
    chunkSize: number,
    options?: AbortableOperationOptions,
  ): AsyncIterableIterator<QueryResult<R>> {
    return this.#inner.streamQuery<R>(withStorableParameters(query), chunkSize, options);
  }
}

class FifoDriver implements Driver {
  readonly #inner: Driver;
  readonly #lock = createFifoLock();
  readonly #durability: CommitDurability | undefined;
  #connection: StorableTextConnection | undefined;

  constructor(inner: Driver, durability: CommitDurability | undefined) {
    this.#inner = inner;
    this.#durability = durability;
  }
  init(): Promise<void> {
    return this.#inner.init();
  }
  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#lock.acquire();
    // Kysely's SQLite driver has one connection: wrapped once.
    this.#connection ??= new StorableTextConnection(await this.#inner.acquireConnection());
    return this.#connection;
  }
  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.#inner.beginTransaction(connection, settings);
  }
  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#inner.commitTransaction(connection);
  }
  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.#inner.rollbackTransaction(connection);
  }
  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const flushed = this.#durability?.endOfUse();
    await this.#inner.releaseConnection(connection);
    this.#lock.release();
    // Acknowledged once on disk; the connection already serves the next caller meanwhile.
    if (flushed) await flushed;
  }
  destroy(): Promise<void> {
    return this.#inner.destroy();
  }
}

/**
 * Kysely's SQLite compiler, with each bound value written `+?` instead of `?`.
 *
 * Why: where a parameter's value could change a statement's plan (an `= ?` the planner reads as a
 * possible 0 or 1, a `LIMIT ?`, a `LIKE ?` pattern, a match against a partial index), SQLite marks
 * the statement to be compiled again once that parameter is rebound, and better-sqlite3 clears the
 * bindings after every run. Such a statement was compiled anew at every execution: on the engine's
 * hot path, the task-graph read of every step (`where session_id = ? order by position`).
 * A unary plus returns its operand unchanged (value, type, no affinity), so results are the same;
 * the planner just no longer looks through it to a parameter. Consequence for schema work: a partial
 * index is used only by queries that name its condition with literals (`sql.lit`), as the
 * ready-queue and lease queries do.
 */
class StablePlanSqliteCompiler extends SqliteQueryCompiler {
  protected override getCurrentParameterPlaceholder(): string {
    return '+?';
  }
}

/**
 * The SQLite dialect MAOS uses: Kysely's compiler (parameters written so that plans stay put, see
 * StablePlanSqliteCompiler) and introspector, FIFO access to the connection, and (with
 * `durability`) each use of the connection answered once its commits are on disk.
 */
export function createSqliteDialect(database: SqliteDatabase, durability?: CommitDurability): Dialect {
  const base = new SqliteDialect({ database });
  return {
    createAdapter: () => new FifoAdapter(),
    createDriver: () => new FifoDriver(base.createDriver(), durability),
    createQueryCompiler: () => new StablePlanSqliteCompiler(),
    // biome-ignore lint/suspicious/noExplicitAny: the introspector works on any schema
    createIntrospector: (db: Kysely<any>) => base.createIntrospector(db),
  };
}
