// Cross-replica wake-ups over PostgreSQL LISTEN/NOTIFY behind the engine's Notifier seam. A publish
// wakes local listeners at once and, batched per tick, every other replica. A periodic sweep and a
// sweep after every reconnect re-wake all subscribers, so a lost notification only delays work.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { CONFIG_DEFAULTS, type Config } from '../config/schema.ts';
import { createLocalNotifier, isSweptChannel, type Notifier } from '../engine/notifier.ts';
import type { Logger } from '../observability/logger.ts';
import type { DatabaseHandle } from './db.ts';
import { NOTIFY_QUEUE_USAGE_LIMIT, PG_CHANNEL } from './notify-at-commit.ts';
import { getPostgresPool, LISTEN_APPLICATION_NAME } from './postgres-dialect.ts';
import { KEEPALIVE_INITIAL_DELAY_MS } from './postgres-query-watchdog.ts';

/** NOTIFY payloads must stay below 8000 bytes. */
const MAX_PAYLOAD = 7000;
const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 5000;

export interface PostgresNotifierOptions {
  url: string;
  logger: Logger;
  /** Pool used to send NOTIFY (shares the store's pool). */
  pool: pg.Pool;
  /** Every subscriber is woken this often even without a notification. @defaultValue 5000 */
  sweepIntervalMs?: number;
  /**
   * Bound on connecting and on the LISTEN: a server that does not answer (a network lost without a
   * reset, a proxy whose database is gone) fails the attempt, which is retried, instead of holding
   * the replica's start or the reconnection forever. @defaultValue CONFIG_DEFAULTS.storeConnectTimeoutMs
   */
  connectTimeoutMs?: number;
  /**
   * The LISTEN connection is sent a query this often (STALLED_LISTENERS_SQL); one the server does
   * not answer within `connectTimeoutMs` is closed and made again. TCP keepalive alone misses a path lost behind a
   * proxy (PgBouncer, HAProxy, a cloud SQL proxy), which answers the probes itself: notifications
   * would stop for good while the connection looked up. @defaultValue sweepIntervalMs
   */
  listenCheckIntervalMs?: number;
  /**
   * Share of PostgreSQL's notification queue (pg_notification_queue_usage) past which the check
   * also ends the LISTEN sessions of other replicas of this database that block on sending to a
   * client that reads nothing (a frozen replica): the queue keeps every notification for them, and
   * once it is full every NOTIFY fails (MAOS's transactions then commit without theirs,
   * notify-at-commit.ts). @defaultValue 0.01
   */
  stalledListenerQueueUsage?: number;
}

export interface PostgresNotifier extends Notifier {
  /** Connects the listening connection; resolves once LISTEN is active (or rejects on failure). */
  start(): Promise<void>;
  /** True while the LISTEN connection is up. */
  isListening(): boolean;
  close(): Promise<void>;
}

/**
 * The LISTEN connection's periodic check: it answers (or not) and, while the notification queue is
 * filled past $2, ends the other LISTEN sessions of this database and role that block on sending
 * notifications (wait event ClientWrite: their client reads nothing), returning their pids, and how
 * full the queue is. A healthy listener reads at once, so the queue stays near empty; a stopped one
 * holds its tail. Materialized: in one WHERE, the server may run pg_terminate_backend before the
 * other conditions. One row, also when nothing was ended.
 */
const STALLED_LISTENERS_SQL = `
  with stalled as materialized (
    select pid from pg_stat_activity
    where datname = current_database() and usename = current_user and application_name = $1
      and pid <> pg_backend_pid() and wait_event = 'ClientWrite'
      and pg_notification_queue_usage() > $2::float8
  ), ended as materialized (
    select pid from stalled where pg_terminate_backend(pid)
  )
  select coalesce((select array_agg(pid) from ended), '{}') as pids,
         pg_notification_queue_usage() as usage`;

/**
 * An error the server sent (an ErrorResponse whose SQLSTATE is no connection failure or shutdown),
 * not a lost connection: a socket's EPIPE has a code of five capitals too.
 */
function isServerError(error: unknown): error is pg.DatabaseError & { code: string } {
  if (!(error instanceof pg.DatabaseError)) return false;
  const code = error.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !/^(08|57P0)/.test(code);
}

/** What tells one failure to connect from another: its code (ECONNREFUSED, 53300), else its message. */
function failureReasonOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code !== '') return code;
  return error instanceof Error ? error.message : String(error);
}

/** Creates the notifier. Nothing connects before `start()`. */
export function createPostgresNotifier(options: PostgresNotifierOptions): PostgresNotifier {
  const local = createLocalNotifier();
  const subscribed = new Map<string, number>();
  const origin = randomUUID().slice(0, 8);
  const connectTimeoutMs = options.connectTimeoutMs ?? CONFIG_DEFAULTS.storeConnectTimeoutMs;
  const stalledUsage = options.stalledListenerQueueUsage ?? 0.01;
  const outgoing = new Set<string>();
  let flushScheduled = false;
  /** The LISTEN connection while it is up. */
  let client: pg.Client | null = null;
  let closed = false;
  let reconnectDelay = RECONNECT_MIN_MS;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;
  let checkTimer: NodeJS.Timeout | null = null;
  /** The LISTEN connection being checked now, if any. */
  let checking: pg.Client | null = null;
  /** Why the last attempt to make the connection again failed (logged once per reason). */
  let reconnectFailure: string | undefined;
  /** The SQLSTATE the check last failed with, told once until the check works again. */
  let checkRefusedWith: string | undefined;
  /** Whether the queue was told nearly full (noteQueueUsage), until it has room again. */
  let queueFullTold = false;

  /** Wakes every local subscriber: covers notifications lost while disconnected. */
  function sweep(): void {
    for (const channel of [...subscribed.keys()]) if (isSweptChannel(channel)) local.publish(channel);
  }

  function onNotification(message: pg.Notification): void {
    if (message.channel !== PG_CHANNEL || !message.payload) return;
    for (const line of message.payload.split('\n')) {
      const space = line.indexOf(' ');
      if (space <= 0 || line.slice(0, space) === origin) continue;
      local.publish(line.slice(space + 1));
    }
  }

  /**
   * Asks the LISTEN connection for an answer; one that gives none within connectTimeoutMs (the
   * client's query_timeout) or fails is closed: its 'end' makes it again and sweeps.
   */
  function checkListener(): void {
    const current = client;
    if (!current || checking === current || closed) return;
    checking = current;
    current
      .query<{ pids: number[]; usage: number }>(STALLED_LISTENERS_SQL, [
        LISTEN_APPLICATION_NAME,
        stalledUsage,
      ])
      .then(({ rows }) => {
        checkRefusedWith = undefined;
        const usage = Number(rows[0]?.usage ?? 0);
        noteQueueUsage(usage);
        const pids = rows[0]?.pids ?? [];
        if (pids.length === 0) return;
        options.logger.warn(
          { pids, queueUsage: usage },
          'ended the LISTEN connection of a replica that reads no notifications (frozen?), which held back PostgreSQL’s notification queue; it reconnects once it runs again',
        );
      })
      .catch((error: unknown) => {
        // An error the server answered with (say, a permission it lacks) shows the connection works,
        // but frozen replicas' sessions are not ended while it lasts: told once, not at every check.
        if (isServerError(error)) {
          const code = error.code;
          if (checkRefusedWith !== code) {
            checkRefusedWith = code;
            options.logger.warn(
              { err: error },
              `the LISTEN connection's periodic query fails (${code}): LISTEN sessions of frozen replicas are not ended while it does; the connection itself answers`,
            );
          }
          return;
        }
        // Not end(): its goodbye would wait for an answer that does not come.
        if (client === current && !closed) current.connection.stream.destroy();
      })
      .finally(() => {
        if (checking === current) checking = null;
      });
  }

  /**
   * Tells once when the server's notification queue is filled past NOTIFY_QUEUE_USAGE_LIMIT (and
   * once when it has room again): transactions leave their notifications out meanwhile
   * (notify-at-commit.ts), and this replica's own NOTIFYs fail.
   */
  function noteQueueUsage(usage: number): void {
    if (usage >= NOTIFY_QUEUE_USAGE_LIMIT && !queueFullTold) {
      queueFullTold = true;
      options.logger.warn(
        { queueUsage: usage },
        "PostgreSQL's notification queue is nearly full: a session that LISTENs and reads nothing holds it (another application's LISTEN session idle in a transaction, a frozen client; see pg_stat_activity). Cancels, finishes and other writes go on without their notifications: runs on other replicas stop at their next lease renewal, work and events are picked up by the poll",
      );
    } else if (usage < NOTIFY_QUEUE_USAGE_LIMIT && queueFullTold) {
      queueFullTold = false;
      options.logger.info({ queueUsage: usage }, "PostgreSQL's notification queue has room again");
    }
  }

  async function connect(): Promise<void> {
    const next = new pg.Client({
      connectionString: options.url,
      application_name: LISTEN_APPLICATION_NAME,
      // An idle LISTEN connection whose path was lost silently would otherwise wait forever,
      // missing every notification: keepalive closes it and the reconnect below takes over.
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
      connectionTimeoutMillis: connectTimeoutMs,
      query_timeout: connectTimeoutMs,
    });
    next.on('notification', onNotification);
    next.on('error', () => undefined);
    next.on('end', () => {
      if (client !== next) return;
      client = null;
      if (!closed) {
        options.logger.warn('PostgreSQL LISTEN connection lost; reconnecting');
        scheduleReconnect();
      }
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${PG_CHANNEL}`);
    } catch (error) {
      // Not end(): on a lost path its goodbye would wait for an answer that never comes.
      next.connection.stream.destroy();
      throw error;
    }
    if (closed) {
      await next.end().catch(() => undefined);
      return;
    }
    client = next;
    reconnectDelay = RECONNECT_MIN_MS;
  }

  function scheduleReconnect(): void {
    if (closed || reconnectTimer) return;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      connect()
        .then(() => {
          reconnectFailure = undefined;
          options.logger.info('PostgreSQL LISTEN connection restored');
          sweep();
        })
        .catch((error: unknown) => {
          // Why it cannot be made again, once per reason (not at every attempt): an operator
          // otherwise sees the loss and nothing after it (maos_store_listen_connected stays 0).
          const reason = failureReasonOf(error);
          if (reason !== reconnectFailure && !closed) {
            reconnectFailure = reason;
            options.logger.warn(
              { err: error },
              'PostgreSQL LISTEN connection could not be made again; retrying',
            );
          }
          reconnectDelay = Math.min(RECONNECT_MAX_MS, reconnectDelay * 2);
          scheduleReconnect();
        });
    }, reconnectDelay);
    reconnectTimer.unref();
  }

  /** Sends what was published since the last flush; resolves once the NOTIFYs were answered. */
  function flush(): Promise<void> {
    flushScheduled = false;
    if (outgoing.size === 0 || closed) return Promise.resolve();
    const lines = [...outgoing].map((channel) => `${origin} ${channel}`);
    outgoing.clear();
    const payloads: string[] = [];
    let current = '';
    for (const line of lines) {
      if (current && current.length + line.length + 1 > MAX_PAYLOAD) {
        payloads.push(current);
        current = '';
      }
      current = current ? `${current}\n${line}` : line;
    }
    if (current) payloads.push(current);
    // A failed NOTIFY (database down) is covered by the sweep on the receiving side.
    const sent = payloads.map((payload) =>
      options.pool.query('select pg_notify($1, $2)', [PG_CHANNEL, payload]).catch(() => undefined),
    );
    return Promise.all(sent).then(() => undefined);
  }

  return {
    subscribe(channel, listener) {
      subscribed.set(channel, (subscribed.get(channel) ?? 0) + 1);
      const off = local.subscribe(channel, listener);
      let active = true;
      return () => {
        if (!active) return;
        active = false;
        off();
        const left = (subscribed.get(channel) ?? 1) - 1;
        if (left <= 0) subscribed.delete(channel);
        else subscribed.set(channel, left);
      };
    },
    publish(channel) {
      local.publish(channel);
      outgoing.add(channel);
      if (!flushScheduled) {
        flushScheduled = true;
        // One NOTIFY per tick carries every channel published in it.
        setImmediate(() => void flush());
      }
    },
    async start() {
      const interval = options.sweepIntervalMs ?? 5000;
      sweepTimer = setInterval(sweep, interval);
      sweepTimer.unref();
      checkTimer = setInterval(checkListener, options.listenCheckIntervalMs ?? interval);
      checkTimer.unref();
      try {
        await connect();
      } catch (error) {
        // Start anyway: the sweep keeps things moving and the connection is retried.
        options.logger.warn({ err: error }, 'PostgreSQL LISTEN connection failed; retrying');
        scheduleReconnect();
      }
    },
    isListening: () => client !== null,
    async close() {
      // What was published last (e.g. the tasks a stopping replica gave back) still goes out.
      await flush();
      closed = true;
      if (sweepTimer) clearInterval(sweepTimer);
      if (checkTimer) clearInterval(checkTimer);
      if (reconnectTimer) clearTimeout(reconnectTimer);
      const current = client;
      client = null;
      if (current) await endWithin(current, connectTimeoutMs);
    },
  };
}

/**
 * Ends `client`, destroying its socket if the goodbye is not answered within `ms`: on a path lost
 * without a reset, end() would wait for the server's close, and the replica's shutdown with it.
 */
async function endWithin(client: pg.Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([client.end().catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
    client.connection.stream.destroy();
  }
}

/**
 * The notifier for the composition root: LISTEN/NOTIFY when the store is PostgreSQL, undefined
 * (the engine's in-process notifier) for SQLite. Subscribers are swept every 2 × workers.pollIntervalMs.
 */
export function createClusterNotifier(
  config: {
    store: Pick<Config['store'], 'url'> & Partial<Pick<Config['store'], 'connectTimeoutMs'>>;
    workers: Pick<Config['workers'], 'pollIntervalMs'>;
  },
  database: DatabaseHandle,
  logger: Logger,
): PostgresNotifier | undefined {
  const pool = getPostgresPool(database.db);
  if (database.dialect !== 'postgres' || !pool || !config.store.url) return undefined;
  return createPostgresNotifier({
    url: config.store.url,
    pool,
    logger: logger.child({ component: 'pg-notifier' }),
    sweepIntervalMs: Math.max(250, config.workers.pollIntervalMs * 2),
    ...(config.store.connectTimeoutMs === undefined
      ? {}
      : { connectTimeoutMs: config.store.connectTimeoutMs }),
  });
}
