// A second, read-only SQLite connection for the API's hot reads (GET /v1/sessions/:id). In WAL mode
// a reader sees every committed transaction and never an uncommitted one, and never waits for the
// writer: the write queue keeps its transaction open across awaits on the one write connection, so
// reads there would wait behind it (and a raw read there would see its uncommitted rows).
import SqliteDatabase from 'better-sqlite3';
import type { Compilable, Kysely } from 'kysely';
import {
  bindPlaceholders,
  compileWithPlaceholders,
  createPlaceholders,
  type PlaceholderQuery,
} from './compiled-query.ts';

/** Runs SELECTs on the read connection, with prepared statements cached by SQL text. */
export interface ReadConnection {
  /** Rows of a SELECT (its SQL as Kysely compiled it for SQLite) with these bound values, now. */
  all<Row>(sql: string, parameters: readonly unknown[]): Row[];
  /**
   * Runs `read` (synchronous reads through `all`) together with the other reads asked for in this
   * turn of the event loop, in one read transaction that begins after all of them were asked for.
   */
  batch<T>(read: () => T): Promise<T>;
  close(): void;
}

export interface ReadConnectionOptions {
  /** SQLite busy timeout: a reader waits only while a crashed writer's WAL is being recovered. */
  busyTimeoutMs: number;
}

/**
 * A read connection to the SQLite file at `path`, opened on first use (after the write connection
 * created the file, switched it to WAL and migrations ran). Every read transaction begins after
 * its reads were asked for, so a write acknowledged before a request arrived is always seen
 * (read-your-writes), whichever process or connection committed it.
 *
 * Why batches: starting and ending a read transaction (file and WAL-index locks: system calls)
 * costs several times the indexed row read itself; under load many requests arrive in one turn of
 * the event loop and share one transaction. A lone read runs on its own (implicit transaction).
 */
export function createReadConnection(path: string, options: ReadConnectionOptions): ReadConnection {
  let sqlite: SqliteDatabase.Database | null = null;
  let closed = false;
  const statements = new Map<string, SqliteDatabase.Statement>();
  const open = (): SqliteDatabase.Database => {
    if (closed) throw new Error('read connection is closed');
    if (sqlite) return sqlite;
    const opened = new SqliteDatabase(path, { readonly: true, fileMustExist: true });
    opened.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs)}`);
    sqlite = opened;
    return opened;
  };
  // Why no bound on the cache: its SQL texts are begin/commit and a fixed handful of compiled
  // queries (see precompileReadQuery).
  const prepare = (sql: string): SqliteDatabase.Statement => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = open().prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  const run = (sql: string) => {
    prepare(sql).run();
  };
  /** Ends an open read transaction; if that fails, drops the connection (it reopens on next use). */
  const endTransaction = () => {
    if (!sqlite?.inTransaction) return;
    try {
      run('commit');
    } catch {
      // Why drop it: a transaction left open would serve its old snapshot to every later read.
      statements.clear();
      sqlite.close();
      sqlite = null;
    }
  };
  let queued: Array<() => void> = [];
  const flush = () => {
    const reads = queued;
    queued = [];
    endTransaction();
    let shared = false;
    if (reads.length > 1) {
      try {
        run('begin');
        shared = true;
      } catch {
        // No shared transaction (e.g. closed): each read runs on its own and reports its own error.
      }
    }
    // Each queued read settles its own promise and never throws.
    for (const read of reads) read();
    if (shared) endTransaction();
  };
  return {
    batch<T>(read: () => T): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (queued.length === 0) setImmediate(flush);
        queued.push(() => {
          try {
            resolve(read());
          } catch (error) {
            reject(error);
          }
        });
      });
    },
    all<Row>(sql: string, parameters: readonly unknown[]): Row[] {
      return prepare(sql).all(...parameters) as Row[];
    },
    close() {
      closed = true;
      statements.clear();
      sqlite?.close();
      sqlite = null;
    },
  };
}

// The read connection that belongs to a database (set by store/db.ts for SQLite): found from the
// Kysely instance the engine already holds, so no caller has to carry a second handle.
const readConnections = new WeakMap<object, ReadConnection>();

/** Records `reader` as the read connection of `db`. */
export function attachReadConnection(db: Kysely<unknown> | object, reader: ReadConnection): void {
  readConnections.set(db, reader);
}

/** The read connection of `db`; undefined for PostgreSQL, a transaction, or SQLite with tracing on. */
export function findReadConnection(db: object): ReadConnection | undefined {
  return readConnections.get(db);
}

/** A SELECT compiled once per database and run synchronously on its read connection. */
export type ReadQuery<Row> = (
  db: Kysely<never> | object,
  reader: ReadConnection,
  ...values: unknown[]
) => Row[];

/**
 * Compiles `build` with the database's own Kysely (its SQLite SQL, nothing hand-written) on first
 * use, then runs it on the read connection with fresh values. `build` receives one placeholder per
 * value and must use each exactly as a bound value (as precompileQuery in compiled-query.ts).
 */
export function precompileReadQuery<DB, Row>(
  arity: number,
  build: (db: Kysely<DB>, placeholders: readonly string[]) => Compilable<Row>,
): ReadQuery<Row> {
  const placeholders = createPlaceholders(arity);
  const compiled = new WeakMap<object, PlaceholderQuery<Row>>();
  return (db, reader, ...values) => {
    let entry = compiled.get(reader);
    if (!entry) {
      entry = compileWithPlaceholders(db as Kysely<DB>, placeholders, build);
      compiled.set(reader, entry);
    }
    return reader.all<Row>(entry.query.sql, bindPlaceholders(entry, values));
  };
}
