// The LISTEN connection on a network that answers nothing (a proxy whose database is gone, bytes
// dropped without a reset): the replica's start goes on without it, and it is made once the
// database answers again, instead of waiting on the first attempt forever; one whose path is lost
// while TCP keepalive still passes (a proxy in between) is found by a periodic check and made again.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, type TestContext, test } from 'node:test';
import pg from 'pg';
import { captureLog } from '../../test/fixtures/log-capture.ts';
import { createTestDatabase, type TestDatabase } from '../../test/fixtures/postgres.ts';
import { startTcpRelay, viaRelay } from '../../test/fixtures/tcp-relay.ts';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { PG_CHANNEL } from './notify-at-commit.ts';
import { createPostgresNotifier } from './pg-notifier.ts';
import { LISTEN_APPLICATION_NAME } from './postgres-dialect.ts';

describe('PostgreSQL LISTEN connection', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase({ empty: true });
  });
  /** A role of its own for the test that needs one (roles belong to the whole server). */
  const role = `maos_listen_${process.pid}`;
  after(async () => {
    if (database) {
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      await admin.query(`drop role if exists ${role}`);
      await admin.end();
    }
    await database?.drop();
  });

  /** A logger at level warn whose lines are kept, as written. */
  function warnLog(): { logger: Logger; lines: string[] } {
    const lines: string[] = [];
    const destination = new Writable({
      write: (chunk, _e, done) => {
        lines.push(String(chunk));
        done();
      },
    });
    return { logger: createLogger({ level: 'warn', destination }), lines };
  }

  /**
   * A notifier whose LISTEN connection goes through a relay to the database (connect timeout 0.3 s,
   * no sweep within a test), a publisher beside it, and their pool, which connects directly; all
   * closed when the test ends. Both log into `lines` (level warn) unless given `logger`.
   */
  async function listenThroughRelay(
    t: TestContext,
    options: { logger?: Logger; listenCheckIntervalMs?: number } = {},
  ) {
    const direct = new URL(database.url);
    const relay = await startTcpRelay({ host: direct.hostname, port: Number(direct.port) });
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    const log = warnLog();
    const logger = options.logger ?? log.logger;
    const notifier = createPostgresNotifier({
      url: viaRelay(database.url, relay),
      pool,
      logger,
      connectTimeoutMs: 300,
      sweepIntervalMs: 60_000,
      ...(options.listenCheckIntervalMs ? { listenCheckIntervalMs: options.listenCheckIntervalMs } : {}),
    });
    const publisher = createPostgresNotifier({ url: database.url, pool, logger });
    t.after(async () => {
      await notifier.close();
      await publisher.close();
      await pool.end();
      await relay.cut();
    });
    return { relay, notifier, publisher, lines: log.lines };
  }

  test('a start on an unanswering network returns; LISTEN is made once the database answers', async (t) => {
    const { relay, notifier, publisher } = await listenThroughRelay(t);
    relay.blackhole();
    await notifier.start();
    assert.equal(notifier.isListening(), false);

    await relay.restore();
    await waitFor(() => notifier.isListening(), 30_000, 'the LISTEN connection');
    let woken = 0;
    notifier.subscribe('session:s1', () => woken++);
    publisher.publish('session:s1');
    await waitFor(() => woken > 0, 30_000, 'the notification');
  });

  test('a LISTEN connection whose path is lost behind a proxy that keeps it open is made again', async (t) => {
    // Through a proxy (the relay here) TCP keepalive reaches only the proxy, which answers it: the
    // connection stays open while nothing of the database reaches it any more.
    const { relay, notifier, publisher, lines } = await listenThroughRelay(t, { listenCheckIntervalMs: 200 });
    await notifier.start();
    // Not a swept channel: only a notification wakes it, not the sweep after a reconnect.
    let woken = 0;
    notifier.subscribe('session-stop:s2', () => woken++);
    publisher.publish('session-stop:s2');
    await waitFor(() => woken > 0, 30_000, 'the first notification');

    relay.blackhole({ newConnectionsPass: true });
    await waitFor(
      () => lines.some((line) => line.includes('LISTEN connection lost')),
      30_000,
      'the lost LISTEN connection to be noticed',
    );
    await waitFor(() => notifier.isListening(), 30_000, 'the LISTEN connection made again');
    const before = woken;
    publisher.publish('session-stop:s2');
    await waitFor(() => woken > before, 30_000, 'a notification after the loss');
  });

  test("a replica's LISTEN connection that stopped reading is ended by another, freeing the queue", async () => {
    // A frozen replica (SIGSTOP, a paused container) reads no notifications: its server session
    // blocks on sending them, and PostgreSQL keeps every notification sent since for it. Once the
    // queue is full, every NOTIFY fails, and with it every transaction that sends one (a cancel).
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    const poolErrors: string[] = [];
    pool.on('error', (error) => poolErrors.push(error.message));
    const { logger, lines } = warnLog();
    /** A client that listens on MAOS's channel and then reads nothing, with its server pid. */
    const listenAndFreeze = async (applicationName: string) => {
      const client = new pg.Client({ connectionString: database.url, application_name: applicationName });
      client.on('error', () => undefined);
      await client.connect();
      await client.query(`LISTEN ${PG_CHANNEL}`);
      const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
      client.connection.stream.pause();
      return { client, pid: rows[0]?.pid };
    };
    const { client: frozen, pid: frozenPid } = await listenAndFreeze(LISTEN_APPLICATION_NAME);
    // Another application of the same role and database, stopped the same way: not MAOS's to end.
    const { client: other, pid: otherPid } = await listenAndFreeze('another-application');
    const healthy = createPostgresNotifier({
      url: database.url,
      pool,
      logger,
      sweepIntervalMs: 60_000,
      listenCheckIntervalMs: 200,
      stalledListenerQueueUsage: 0.000_01,
    });
    try {
      const state = async () =>
        (
          await pool.query<{ wait_event: string | null; other_wait_event: string | null; usage: number }>(
            `select (select wait_event from pg_stat_activity where pid = $1) as wait_event,
                    (select wait_event from pg_stat_activity where pid = $2) as other_wait_event,
                    pg_notification_queue_usage() as usage`,
            [frozenPid, otherPid],
          )
        ).rows[0];
      // Notifications until both frozen sessions block on sending and the queue holds them.
      for (let round = 0; round < 50; round++) {
        await pool.query(`select pg_notify($1, $2 || n) from generate_series(1, 500) as n`, [
          PG_CHANNEL,
          `x${round} ${'y'.repeat(6000)}`,
        ]);
        const now = await state();
        if (
          now?.wait_event === 'ClientWrite' &&
          now.other_wait_event === 'ClientWrite' &&
          now.usage > 0.000_02
        ) {
          break;
        }
      }
      assert.equal((await state())?.wait_event, 'ClientWrite');
      assert.equal((await state())?.other_wait_event, 'ClientWrite');

      await healthy.start();
      await waitFor(
        async () => (await state())?.wait_event === null,
        30_000,
        'the frozen LISTEN session ended',
      );
      // The check that ended it saw the other application's session stopped the same way.
      assert.equal((await state())?.other_wait_event, 'ClientWrite');
      other.connection.stream.destroy();
      await pool.query(`select pg_notify($1, 'after')`, [PG_CHANNEL]);
      await waitFor(async () => (await state())?.usage === 0, 30_000, 'the notification queue emptied');
      // Only the frozen replica's session was ended: not the checking replica's own, nor other connections.
      assert.equal(healthy.isListening(), true);
      assert.deepEqual(poolErrors, []);
      assert.ok(!lines.some((line) => line.includes('LISTEN connection lost')));
      assert.ok(lines.some((line) => line.includes('reads no notifications')));
    } finally {
      await healthy.close();
      frozen.connection.stream.destroy();
      other.connection.stream.destroy();
      await pool.end();
    }
  });

  test('a role that may not end other sessions: the check keeps the connection and says so once', async () => {
    // A hardened database (EXECUTE on pg_terminate_backend revoked from PUBLIC): every check fails
    // with 42501. The server answered, so the connection works; an operator must learn that frozen
    // replicas' LISTEN sessions are not ended, from one line, not one per check.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`create role ${role} login password 'listen'`);
    await admin.query('revoke execute on function pg_terminate_backend(integer, bigint) from public');
    const url = new URL(database.url);
    url.username = role;
    url.password = 'listen';
    const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
    const { logger, lines } = warnLog();
    const notifier = createPostgresNotifier({
      url: url.toString(),
      pool,
      logger,
      sweepIntervalMs: 60_000,
      listenCheckIntervalMs: 100,
    });
    try {
      await notifier.start();
      // Each check shows as a new query_start of the LISTEN session.
      const checks = new Set<string>();
      await waitFor(
        async () => {
          const { rows } = await admin.query<{ started: string }>(
            `select query_start::text as started from pg_stat_activity
              where usename = $1 and application_name = $2 and query like '%pg_terminate_backend%'`,
            [role, LISTEN_APPLICATION_NAME],
          );
          for (const row of rows) checks.add(row.started);
          return checks.size >= 4;
        },
        30_000,
        'several checks of the LISTEN connection',
      );
      assert.equal(notifier.isListening(), true);
      assert.ok(!lines.some((line) => line.includes('LISTEN connection lost')));
      const refused = lines.filter((line) => line.includes('42501'));
      assert.equal(refused.length, 1, lines.join(''));
      assert.match(refused[0] ?? '', /not ended/);
    } finally {
      await notifier.close();
      await pool.end();
      await admin.query('grant execute on function pg_terminate_backend(integer, bigint) to public');
      await admin.end();
    }
  });

  test('a LISTEN connection that cannot be made again says why, once, and when it is back', async (t) => {
    const { destination, lines } = captureLog();
    const { relay, notifier } = await listenThroughRelay(t, {
      logger: createLogger({ level: 'info', format: 'json', destination }),
    });
    const messages = () => lines.map((line) => line.message);
    await notifier.start();
    assert.equal(notifier.isListening(), true);
    // The relay stops listening: every attempt to connect again is refused (ECONNREFUSED).
    await relay.cut();
    await waitFor(() => !notifier.isListening(), 10_000, 'the loss');
    // Several attempts (0.2 s, 0.4 s, 0.8 s apart) fail for the same reason: one line says why.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const failed = lines.filter(
      (line) => line.message === 'PostgreSQL LISTEN connection could not be made again; retrying',
    );
    assert.equal(failed.length, 1, JSON.stringify(messages()));
    assert.match(JSON.stringify(failed[0]), /ECONNREFUSED/, JSON.stringify(failed[0]));
    await relay.restore();
    await waitFor(() => notifier.isListening(), 30_000, 'the LISTEN connection');
    await waitFor(() => messages().includes('PostgreSQL LISTEN connection restored'), 5000, 'restored');
  });

  test('close returns when the path of the LISTEN connection is lost without a reset', async (t) => {
    const { relay, notifier } = await listenThroughRelay(t);
    await notifier.start();
    assert.equal(notifier.isListening(), true);
    relay.blackhole();
    await notifier.close();
    assert.equal(notifier.isListening(), false);
  });
});
