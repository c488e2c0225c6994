// A PostgreSQL query whose network path is lost silently (bytes dropped, no reset) fails with
// STORE_UNAVAILABLE once the check finds its server session gone, idle or unreachable, instead of
// hanging until the kernel gives up; a statement the server is still working on (a lock wait) runs on.
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../../test/fixtures/postgres.ts';
import { startTcpRelay, type TcpRelay, viaRelay } from '../../test/fixtures/tcp-relay.ts';
import { AppError } from '../errors/app-error.ts';
import { createDatabase, type DatabaseHandle } from './db.ts';

describe('PostgreSQL queries on a silently lost network', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  let relay: TcpRelay;
  let handle: DatabaseHandle;

  before(async () => {
    database = await createTestDatabase({ empty: true });
  });
  after(async () => {
    await database?.drop();
  });

  async function open(): Promise<void> {
    const direct = new URL(database.url);
    relay = await startTcpRelay({ host: direct.hostname, port: Number(direct.port) });
    handle = createDatabase({
      dataDir: tmpdir(),
      store: {
        url: viaRelay(database.url, relay),
        synchronous: 'full',
        busyTimeoutMs: 5000,
        poolSize: 2,
        connectTimeoutMs: 500,
        stalledQueryCheckMs: 100,
      },
    });
    // A connection made before the loss, as a running replica has.
    await sql`select 1`.execute(handle.db);
  }
  async function close(): Promise<void> {
    await relay.cut();
    await handle.close();
  }

  function isUnavailable(error: unknown): boolean {
    return error instanceof AppError && error.code === 'STORE_UNAVAILABLE';
  }

  test('server unreachable: the hung query fails with STORE_UNAVAILABLE', async () => {
    await open();
    try {
      const query = sql`select pg_sleep(0.3)`.execute(handle.db);
      await waitForRunning(database.url, 'pg_sleep');
      relay.blackhole();
      await assert.rejects(query, isUnavailable);
    } finally {
      await close();
    }
  });

  test('only the old connection lost (new ones pass): the query fails, the next one runs on a new connection', async () => {
    await open();
    try {
      const query = sql`select pg_sleep(0.3)`.execute(handle.db);
      await waitForRunning(database.url, 'pg_sleep');
      relay.blackhole({ newConnectionsPass: true });
      await assert.rejects(query, isUnavailable);
      const next = await sql<{ one: number }>`select 1 as one`.execute(handle.db);
      assert.equal(next.rows[0]?.one, 1);
    } finally {
      await close();
    }
  });

  test('a lock wait the server is working on outlasts many checks and then succeeds', async () => {
    await open();
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock(727001)');
      const waiting = sql`select pg_advisory_lock(727001)`.execute(handle.db);
      // Released once the waiter has been checked several times (it shows as active, waiting).
      await waitForChecks(database.url, 5);
      await holder.query('select pg_advisory_unlock(727001)');
      await waiting;
      await sql`select pg_advisory_unlock(727001)`.execute(handle.db);
    } finally {
      await holder.end();
      await close();
    }
  });
});

/** Waits until the server runs a statement containing `text` (the query reached it: the loss is mid-query). */
async function waitForRunning(url: string, text: string): Promise<void> {
  const observer = new pg.Client({ connectionString: url });
  await observer.connect();
  try {
    for (;;) {
      const { rows } = await observer.query(
        `select 1 from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() and strpos(query, $1) > 0`,
        [text],
      );
      if (rows.length > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    await observer.end();
  }
}

/** Waits until the watchdog's check connection has been seen `count` times (new backends each time). */
async function waitForChecks(url: string, count: number): Promise<void> {
  const observer = new pg.Client({ connectionString: url });
  await observer.connect();
  const seen = new Set<number>();
  try {
    while (seen.size < count) {
      const { rows } = await observer.query<{ pid: number }>(
        `select pid from pg_stat_activity where application_name = 'maos-check'`,
      );
      for (const row of rows) seen.add(row.pid);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await observer.end();
  }
}

describe('PostgreSQL queries whose check the server refuses', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  const role = `maos_watch_${process.pid}`;
  before(async () => {
    database = await createTestDatabase({ empty: true });
  });
  after(async () => {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`drop role if exists ${role}`);
    await admin.end();
    await database?.drop();
  });

  test('a long statement runs on while the server answers its checks with an error (too many connections)', async () => {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    // One connection for the role: the pool's; every check connection is refused with SQLSTATE 53300.
    await admin.query(`create role ${role} login password 'watch' connection limit 1`);
    await admin.end();
    const url = new URL(database.url);
    url.username = role;
    url.password = 'watch';
    const handle = createDatabase({
      dataDir: tmpdir(),
      store: {
        url: url.toString(),
        synchronous: 'full',
        busyTimeoutMs: 5000,
        poolSize: 2,
        connectTimeoutMs: 500,
        stalledQueryCheckMs: 100,
      },
    });
    try {
      const slept = await sql<{ done: number }>`select 1 as done from pg_sleep(1.5)`.execute(handle.db);
      assert.equal(slept.rows[0]?.done, 1);
    } finally {
      await handle.close();
    }
  });
});

describe('PostgreSQL queries through a pooler', { timeout: 60_000 }, () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase({ empty: true });
  });
  after(async () => {
    await database?.drop();
  });

  test('a long statement runs on although the process id the client was given is not the server’s', async () => {
    const direct = new URL(database.url);
    const pooler = await startPidRewritingProxy({ host: direct.hostname, port: Number(direct.port) });
    const url = new URL(database.url);
    url.hostname = '127.0.0.1';
    url.port = String(pooler.port);
    const handle = createDatabase({
      dataDir: tmpdir(),
      store: {
        url: url.toString(),
        synchronous: 'full',
        busyTimeoutMs: 5000,
        poolSize: 2,
        connectTimeoutMs: 500,
        stalledQueryCheckMs: 100,
      },
    });
    try {
      const slept = await sql<{ done: number }>`select 1 as done from pg_sleep(1)`.execute(handle.db);
      assert.equal(slept.rows[0]?.done, 1);
    } finally {
      await handle.close();
      await pooler.close();
    }
  });
});

/**
 * A relay that, as PgBouncer does, gives each client a process id of its own in BackendKeyData
 * (message `K` of the startup, rewritten here to 1) and passes everything else through.
 */
async function startPidRewritingProxy(target: {
  host: string;
  port: number;
}): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    let pending = Buffer.alloc(0);
    let started = false;
    upstream.on('data', (chunk: Buffer) => {
      if (started) return void client.write(chunk);
      pending = Buffer.concat([pending, chunk]);
      // Whole messages only: type byte, then a length that counts itself.
      while (pending.length >= 5 && pending.length >= 1 + pending.readInt32BE(1)) {
        const size = 1 + pending.readInt32BE(1);
        const message = Buffer.from(pending.subarray(0, size));
        pending = pending.subarray(size);
        if (message[0] === 0x4b) message.writeInt32BE(1, 5); // 'K': process id, secret key
        client.write(message);
        if (message[0] === 0x5a) {
          // 'Z' ReadyForQuery: the startup is over.
          started = true;
          if (pending.length > 0) client.write(pending);
          return;
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
