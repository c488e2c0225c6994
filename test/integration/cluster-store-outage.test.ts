// PostgreSQL connection loss and recovery, through a TCP relay between the app and the database:
// while the relay is down requests get 503 STORE_UNAVAILABLE problem+json and /readyz fails; once
// it is back the same process serves and executes sessions again without a restart.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';
import { startTcpRelay, type TcpRelay, viaRelay } from '../fixtures/tcp-relay.ts';
import { waitFor } from '../fixtures/wait-for.ts';

describe('PostgreSQL outage and recovery', { timeout: 120_000 }, () => {
  let database: TestDatabase;
  let relay: TcpRelay;
  let server: TestServer;
  before(async () => {
    database = await createTestDatabase();
    const direct = new URL(database.url);
    relay = await startTcpRelay({ host: direct.hostname, port: Number(direct.port) });
    server = await startTestServer({
      config: {
        store: {
          url: viaRelay(database.url, relay),
          synchronous: 'normal',
          poolSize: 4,
          connectTimeoutMs: 1000,
        },
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
