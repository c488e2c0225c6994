// PostgreSQL connection loss and recovery, through a TCP relay between the app and the database:
// while the relay is down requests get 503 STORE_UNAVAILABLE problem+json and /readyz fails; once
// it is back the same process serves and executes sessions again without a restart.
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../fixtures/engine-harness.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

/** A TCP relay that can be cut (all connections dropped, new ones refused) and restored on the same port. */
async function startRelay(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((client) => {
        const upstream = connect(target.port, target.host);
        sockets.add(client);
        sockets.add(upstream);
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const address = server!.address();
        if (typeof address === 'object' && address) port = address.port;
        resolve();
      });
    });
  await listen();
  return {
    get port() {
      return port;
    },
    async cut() {
      const closing = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await closing;
      server = null;
    },
    restore: listen,
  };
}

describe('PostgreSQL outage and recovery', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let server: TestServer;
  before(async () => {
    database = await createTestDatabase();
    const direct = new URL(database.url);
    relay = await startRelay({ host: direct.hostname, port: Number(direct.port) });
    const viaRelay = new URL(database.url);
    viaRelay.port = String(relay.port);
    server = await startTestServer({
      config: {
        store: { url: viaRelay.toString(), synchronous: 'normal', poolSize: 4, connectTimeoutMs: 1000 },
        workers: { concurrency: 2, pollIntervalMs: 200 },
      },
    });
  });
  after(async () => {
    await server?.close();
    await relay?.cut();
    await database?.drop();
  });

  const submit = () =>
    requestJson<{ id: string; code?: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'outage', agents: [{ name: 'a', role: 'engineer', task: 't', runner: 'echo' }] },
    });

  test('503 STORE_UNAVAILABLE and failing /readyz while down; everything resumes after recovery', async () => {
    const before = await submit();
    assert.equal(before.status, 201, JSON.stringify(before.body));
    assert.equal((await waitForSession<{ status: string }>(server.url, before.body.id)).status, 'completed');

    await relay.cut();
    const list = await requestJson<{ code: string }>(`${server.url}/v1/sessions`);
    assert.equal(list.status, 503, JSON.stringify(list.body));
    assert.equal(list.body.code, 'STORE_UNAVAILABLE');
    assert.match(String(list.headers.get('content-type')), /application\/problem\+json/);
    const rejected = await submit();
    assert.equal(rejected.status, 503, JSON.stringify(rejected.body));
    const ready = await requestJson(`${server.url}/readyz`);
    assert.equal(ready.status, 503);

    await relay.restore();
    const after = await waitFor(async () => {
      const attempt = await submit();
      return attempt.status === 201 ? attempt : undefined;
    }, 30_000);
    assert.equal((await waitForSession<{ status: string }>(server.url, after.body.id)).status, 'completed');
    await waitFor(
      async () => ((await requestJson(`${server.url}/readyz`)).status === 200 ? true : undefined),
      30_000,
    );
  });
});
