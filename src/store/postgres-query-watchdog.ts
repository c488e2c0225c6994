// Silent network loss to PostgreSQL (a firewall dropping a flow, a primary failed over without a
// reset): a query whose bytes vanish would wait until the kernel gives up retransmitting (~15 min).
// A query still unanswered after a while is checked over a new connection; when its server session
// is gone, idle, or the server cannot be reached, its connection is destroyed and the query fails
// (STORE_UNAVAILABLE). Statements the server is still working on, lock waits among them, run on.
import pg from 'pg';

/**
 * TCP keepalive on every connection: an idle pooled connection or the LISTEN connection whose path
 * was lost silently is noticed (and closed) about 20 s later (first probe after 10 s of silence;
 * libuv then probes each second, 10 times) instead of when it is next used, or never.
 */
export const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

/** The `application_name` of the check connection (not `maos`: tools count those as replicas). */
const CHECK_APPLICATION_NAME = 'maos-check';

export interface QueryWatchdogOptions {
  /** The pool's connection URL: the check connects as the pool's user, who sees its own sessions. */
  url: string;
  /** How long a query waits for its answer before its server session is checked (and then between checks). */
  checkAfterMs: number;
  /** Bound on the check's connect and query: a server that cannot answer it counts as lost. */
  checkTimeoutMs: number;
}

/**
 * What the server said about the sessions asked for; null when it could not be reached (no answer
 * within the bound, a network error); `answered-error` when it answered the check with an error of
 * its own (too many connections, starting up…): it is reachable, so the query may still be served.
 */
type SessionStates = Map<number, { active: boolean; quietMs: number }> | null | 'answered-error';

/**
 * The server process of each connection, as the server itself reports it. A pooler in between
 * (PgBouncer, session pooling) hands the client a process id of its own, which pg_stat_activity
 * does not know: the check would take every long query for one whose session is gone.
 */
const backendPids = new WeakMap<pg.Client, number>();

/** Clients whose connection the check closed: their query was lost on the network, not refused. */
const abandoned = new WeakSet<object>();

/**
 * True when the stalled-query check closed `client`'s connection: its failed statement may have
 * been served (only its answer lost), and is not sent again (postgres-checkout.ts).
 */
export function wasClosedAsStalled(client: object): boolean {
  return abandoned.has(client);
}

/**
 * Asks a new connection for its server process id. Awaited by the pool before it hands the client
 * out (its `onConnect`): a query sent while this one runs would be a second query in flight on one
 * client, which pg deprecates (and pg 9 refuses). Never rejects: a failed connection is reported by
 * its user's own query.
 */
export function learnBackendPid(client: pg.ClientBase): Promise<void> {
  return client.query<{ pid: number }>('select pg_backend_pid() as pid').then(
    (result) => {
      const pid = result.rows[0]?.pid;
      if (typeof pid === 'number') backendPids.set(client as pg.Client, pid);
    },
    // The connection failed: its own query reports that.
    () => undefined,
  );
}

/** A pg Client class (for pg.Pool's `Client` option) whose queries are watched as described above. */
export function createWatchedClientClass(options: QueryWatchdogOptions): typeof pg.Client {
  /** The check being gathered: the hung queries of a lost network found in one turn share it. */
  let gathering: { pids: Set<number>; states: Promise<SessionStates> } | null = null;

  function checkSessions(pid: number): Promise<SessionStates> {
    if (!gathering) {
      const pids = new Set<number>();
      const states = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        gathering = null;
        return querySessionStates(options, [...pids]);
      });
      gathering = { pids, states };
    }
    gathering.pids.add(pid);
    return gathering.states;
  }

  function watch(client: pg.Client, settled: Promise<unknown>): void {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      timer = setTimeout(() => void check(), options.checkAfterMs);
      timer.unref();
    };
    const check = async () => {
      const pid = backendPids.get(client) ?? (client as unknown as { processID?: number }).processID;
      if (done || pid === undefined) return;
      const states = await checkSessions(pid);
      if (done) return;
      if (states === 'answered-error') {
        arm();
        return;
      }
      const state = states?.get(pid);
      // Lost: the server cannot be asked, no longer has the session, or has had it idle for a whole
      // check interval while this query waited (the query or its answer was lost on the way).
      if (!states || !state || (!state.active && state.quietMs >= options.checkAfterMs)) {
        abandoned.add(client);
        client.connection.stream.destroy();
        return;
      }
      arm();
    };
    arm();
    const stop = () => {
      done = true;
      clearTimeout(timer);
    };
    settled.then(stop, stop);
  }

  return class WatchedClient extends pg.Client {
    // biome-ignore lint/suspicious/noExplicitAny: pg's query has a dozen overloads; all pass through
    override query(...args: any[]): any {
      const last = args.at(-1);
      if (typeof last === 'function') {
        // Callback form (pg-pool's own pool.query): watched until the callback runs.
        const { promise: settled, resolve: finish } = Promise.withResolvers<void>();
        args[args.length - 1] = (...results: unknown[]) => {
          finish();
          return last(...results);
        };
        const result = runQuery(this, args);
        watch(this, settled);
        return result;
      }
      const result = runQuery(this, args);
      // Promise form (Kysely's queries). Submittables (cursors) carry no promise and are not watched.
      if (result && typeof (result as Promise<unknown>).then === 'function')
        watch(this, result as Promise<unknown>);
      return result;
    }
  };
}

const clientQuery = pg.Client.prototype.query as (...args: unknown[]) => unknown;

/** pg's own query on `client` (the overloads' arguments passed through as they came). */
function runQuery(client: pg.Client, args: unknown[]): unknown {
  return clientQuery.apply(client, args);
}

/** The state of the server sessions `pids`, asked over a connection of its own; null if that fails. */
async function querySessionStates(options: QueryWatchdogOptions, pids: number[]): Promise<SessionStates> {
  const checker = new pg.Client({
    connectionString: options.url,
    application_name: CHECK_APPLICATION_NAME,
    connectionTimeoutMillis: options.checkTimeoutMs,
    query_timeout: options.checkTimeoutMs,
  });
  checker.on('error', () => undefined);
  try {
    await checker.connect();
    const { rows } = await checker.query<{ pid: number; state: string | null; quiet_ms: number | null }>(
      `select pid, state, (extract(epoch from clock_timestamp() - state_change) * 1000)::float8 as quiet_ms
         from pg_stat_activity where pid = any($1::int4[])`,
      [pids],
    );
    return new Map(
      rows.map((row) => [row.pid, { active: row.state === 'active', quietMs: row.quiet_ms ?? 0 }]),
    );
  } catch (error) {
    // An error message from the server (a SQLSTATE) means it was reached: ask again next time.
    return error instanceof pg.DatabaseError ? 'answered-error' : null;
  } finally {
    // Not end(): on a lost path its goodbye would wait for an answer that never comes.
    checker.connection.stream.destroy();
  }
}
