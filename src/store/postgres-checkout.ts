// The pg Pool as Kysely's PostgreSQL driver sees it (postgres-dialect.ts). PostgreSQL can end a
// pooled connection while it sits idle (pg_terminate_backend, the end of a read-only failover
// period, a restart); the pool only notices when the server's goodbye is read, so a checkout may
// get such a connection and its first statement fails (57P01, ECONNRESET …). That statement is sent
// once more on another connection when it cannot have changed anything, the dead client is
// discarded, and the connections that sat idle beside it are replaced at their next checkout
// instead of failing a statement each. Nothing is sent again after a statement of the checkout was
// served: inside a transaction the server has discarded what ran before.
import type { PostgresCursor, PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import type pg from 'pg';
import { wasClosedAsStalled } from './postgres-query-watchdog.ts';

/**
 * SQLSTATEs of a server that has ended (or is ending) the session: administrator command or fast
 * shutdown (57P01), crash of another backend (57P02), cannot connect now (57P03), idle session
 * timeout (57P05).
 */
const SESSION_ENDED_CODES = new Set(['57P01', '57P02', '57P03', '57P05']);

/** Socket errors of a connection closed by the other end. */
const SOCKET_ENDED_CODES = new Set(['ECONNRESET', 'EPIPE']);

/** pg refused to send the statement: the client already knew its connection was gone. */
const NEVER_SENT = /is not queryable/;

/** The server's goodbye was not read before the socket ended. */
const SOCKET_ENDED_MESSAGE = /^Connection terminated/;

/**
 * Statements that change nothing if sent twice: a transaction's start (with the `set local` of
 * postgres-write-batch.ts) and plain reads.
 */
const REPEATABLE =
  /^\s*(?:(?:begin|start\s+transaction)\b[^;]*(?:;\s*set\s+local\s[^;]*)*;?\s*|select\b[\s\S]*)$/i;

/**
 * True when `error` says that the connection the statement was sent on had been ended by the
 * server (or was known dead and the statement never sent).
 */
export function isEndedConnection(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (NEVER_SENT.test(error.message)) return true;
  const code = String((error as { code?: unknown }).code ?? '');
  return (
    SESSION_ENDED_CODES.has(code) || SOCKET_ENDED_CODES.has(code) || SOCKET_ENDED_MESSAGE.test(error.message)
  );
}

/**
 * True when the statement `sql`, which failed with `error` on an ended connection, can be sent
 * again: it was never sent, or it changes nothing. A statement the server ended mid-way was rolled
 * back, but a write whose answer alone was lost (the connection dropped after its commit) would be
 * applied twice: such a write fails (STORE_UNAVAILABLE), as any write whose outcome is unknown.
 */
function canSendAgain(error: Error, sql: string): boolean {
  return NEVER_SENT.test(error.message) || REPEATABLE.test(sql);
}

/** What the operator sees of ended connections (metrics); called synchronously, must not throw. */
export interface CheckoutPoolObserver {
  /**
   * A checkout's first statement met a connection the server had ended: `resent` when it was sent
   * again on a new connection, `failed` when it could not be (a write: the caller gets its error).
   */
  endedConnection?(outcome: 'resent' | 'failed'): void;
  /** A pooled connection that sat idle while another was found ended was discarded, not handed out. */
  idleConnectionDiscarded?(): void;
  /**
   * A statement found every pooled connection in use for store.connectTimeoutMs and was refused
   * (503 STORE_UNAVAILABLE, Retry-After: 1); called by the dialect (postgres-dialect.ts).
   */
  poolBusy?(): void;
}

/**
 * Wraps `pool` for Kysely's PostgresDialect: each checkout is a client that sends its first
 * statement again, once, on another connection when the server had ended its own (above).
 */
export function createCheckoutPool(pool: pg.Pool, observer: CheckoutPoolObserver = {}): PostgresPool {
  // Incremented when a checkout finds its connection ended: the connections idle at that moment
  // were most likely ended by the same event (a failover, a restart, an operator's clean-up).
  let epoch = 0;
  /** The epoch at which each client was last given back to the pool. */
  const idleSince = new WeakMap<pg.PoolClient, number>();
  pool.on('release', (_error: unknown, client: pg.PoolClient) => {
    idleSince.set(client, epoch);
  });

  /** A client from the pool that did not sit idle across a connection found ended. */
  async function take(): Promise<pg.PoolClient> {
    for (;;) {
      const client = await pool.connect();
      if ((idleSince.get(client) ?? epoch) >= epoch) return client;
      // Discarded: the pool ends it and opens a new connection when one is needed.
      client.release(new Error('idle while another pooled connection was found ended by the server'));
      notify(() => observer.idleConnectionDiscarded?.());
    }
  }

  class Checkout implements PostgresPoolClient {
    #client: pg.PoolClient;
    #sent = false;
    /** The client was given back (a dead one discarded) and no other taken: nothing to release. */
    #released = false;
    /** Why the client is dead: it is discarded at its release, never given back to the pool. */
    #ended: Error | undefined;
    constructor(client: pg.PoolClient) {
      this.#client = client;
    }
    get processID(): number | undefined {
      return (this.#client as unknown as { processID?: number }).processID;
    }
    query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
    query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
    query<R>(
      sqlOrCursor: string | PostgresCursor<R>,
      parameters?: ReadonlyArray<unknown>,
    ): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
      if (typeof sqlOrCursor !== 'string') {
        this.#sent = true;
        // biome-ignore lint/suspicious/noExplicitAny: a cursor is a pg Submittable
        return this.#client.query(sqlOrCursor as any) as unknown as PostgresCursor<R>;
      }
      // Its connection was found ended (and not replaced): every later statement fails as it did.
      if (this.#ended) return Promise.reject(this.#ended);
      if (this.#sent) return this.#send<R>(sqlOrCursor, parameters);
      this.#sent = true;
      return this.#sendFirst<R>(sqlOrCursor, parameters);
    }
    #send<R>(sql: string, parameters: ReadonlyArray<unknown> | undefined): Promise<PostgresQueryResult<R>> {
      return this.#client.query(sql, parameters as unknown[]) as unknown as Promise<PostgresQueryResult<R>>;
    }
    async #sendFirst<R>(
      sql: string,
      parameters: ReadonlyArray<unknown> | undefined,
    ): Promise<PostgresQueryResult<R>> {
      try {
        return await this.#send<R>(sql, parameters);
      } catch (error) {
        // A connection the stalled-query check closed lost its statement on the network: that
        // statement may have been served, and the check's own error says so.
        if (!isEndedConnection(error) || wasClosedAsStalled(this.#client)) throw error;
        // The connections idle beside this one are suspect from now on (see take()).
        epoch += 1;
        this.#ended = error as Error;
        if (!canSendAgain(this.#ended, sql)) {
          notify(() => observer.endedConnection?.('failed'));
          throw error;
        }
        notify(() => observer.endedConnection?.('resent'));
        // Never back into the pool: released with an error, the pool ends it.
        this.#released = true;
        this.#client.release(this.#ended);
        this.#client = await take();
        this.#released = false;
        this.#ended = undefined;
        return await this.#send<R>(sql, parameters);
      }
    }
    release(destroy?: boolean): void {
      if (this.#released) return;
      this.#released = true;
      this.#client.release(this.#ended ?? destroy);
    }
  }

  return {
    options: pool.options,
    async connect() {
      return new Checkout(await take());
    },
    end: () => pool.end(),
  };
}

/** Calls an observer hook; what it throws never reaches the statement. */
function notify(hook: () => void): void {
  try {
    hook();
  } catch {
    // Deliberately ignored: metrics must never fail the statement they count.
  }
}
