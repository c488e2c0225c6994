// The event watch of `maos mcp --server URL` (remote-service.ts) follows the CLI's one retry
// policy: an unavailable server (503) is retried with backoff for a bounded time, an answer that
// will not change (404, 401) ends the watch at once with one last wake, after which the reader's
// query reports the server's code. Against node:http servers and the real server.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { AppError } from '../../src/errors/app-error.ts';
import { createRemoteSessionService } from '../../src/mcp/remote-service.ts';
import { startMcpTestServer } from '../fixtures/mcp-server.ts';

const SESSION_ID = '01935f43-0000-7000-8000-000000000001';
const ACTOR = { tenantId: 'default', principalId: 'test' };

/** A node:http server answering every event stream request with `answer(n)` (n = 1 for the first); counts them. */
async function startFakeServer(
  answer: (n: number, request: IncomingMessage, response: ServerResponse) => void,
): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  let count = 0;
  const server = createServer((request, response) => {
    // Only the event stream requests count (the watch first reads the newest event as JSON).
    if (request.headers.accept !== 'text/event-stream') return problem(response, 404, 'SESSION_NOT_FOUND');
    count += 1;
    answer(count, request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => count,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function problem(response: ServerResponse, status: number, code: string): void {
  response.writeHead(status, { 'content-type': 'application/problem+json' });
  response.end(JSON.stringify({ type: 'about:blank', title: code, status, code, detail: `${code} here` }));
}

/** Watches the session; resolves the wakes counter and a promise of the first wake. */
function watch(service: ReturnType<typeof createRemoteSessionService>['service'], sessionId: string) {
  let wakes = 0;
  let first: () => void = () => {};
  const woken = new Promise<void>((resolve) => {
    first = resolve;
  });
  const stop = service.watchEvents(sessionId, () => {
    wakes += 1;
    first();
  });
  return { wakes: () => wakes, woken, stop };
}

/** Fails the test instead of hanging when `promise` does not settle in time. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const timeout = delay(ms).then(() => assert.fail(`${what}: nothing after ${ms} ms`));
  return Promise.race([promise, timeout]);
}

// The cases are independent (each its own fake or real server) and mostly wait out quiet periods,
// so they run at the same time.
test('remote event watch and the retry policy', { timeout: 60_000, concurrency: true }, async (t) => {
  const cases: Array<Promise<void>> = [];
  cases.push(
    t.test('404: the watch ends at once with one wake; the reader gets SESSION_NOT_FOUND', async () => {
      const fake = await startFakeServer((_n, _request, response) =>
        problem(response, 404, 'SESSION_NOT_FOUND'),
      );
      t.after(() => fake.close());
      const { service } = createRemoteSessionService({ server: fake.url });
      const watched = watch(service, SESSION_ID);
      t.after(watched.stop);
      await within(watched.woken, 10_000, 'wake after 404');
      // Longer than any retry delay the old loop used: a retry would show as a second request.
      await delay(1_500);
      assert.equal(fake.requests(), 1);
      assert.equal(watched.wakes(), 1);
      await assert.rejects(service.getSession(ACTOR, SESSION_ID), (error: unknown) => {
        assert.ok(error instanceof AppError);
        assert.equal(error.code, 'SESSION_NOT_FOUND');
        return true;
      });
    }),
  );

  cases.push(
    t.test('503 is retried with backoff; the 404 after it ends the watch', async () => {
      const fake = await startFakeServer((n, _request, response) =>
        n <= 2 ? problem(response, 503, 'SERVICE_UNAVAILABLE') : problem(response, 404, 'SESSION_NOT_FOUND'),
      );
      t.after(() => fake.close());
      const { service } = createRemoteSessionService({ server: fake.url });
      const watched = watch(service, SESSION_ID);
      t.after(watched.stop);
      await within(watched.woken, 10_000, 'wake after 503, 503, 404');
      await delay(1_500);
      assert.equal(fake.requests(), 3);
      // Transient failures are retried quietly; only the end of the watch wakes the reader.
      assert.equal(watched.wakes(), 1);
    }),
  );

  cases.push(
    t.test('a server unavailable for longer than retryForMs ends the watch', async () => {
      const fake = await startFakeServer((_n, _request, response) =>
        problem(response, 503, 'SERVICE_UNAVAILABLE'),
      );
      t.after(() => fake.close());
      const { service } = createRemoteSessionService({ server: fake.url, retryForMs: 500 });
      const watched = watch(service, SESSION_ID);
      t.after(watched.stop);
      await within(watched.woken, 10_000, 'wake after giving up');
      const after = fake.requests();
      assert.ok(after >= 2, `retried before giving up (${after} requests)`);
      await delay(1_500);
      assert.equal(fake.requests(), after, 'no request after giving up');
    }),
  );

  cases.push(
    t.test('stopping the watch stops the retries', async () => {
      const fake = await startFakeServer((_n, _request, response) =>
        problem(response, 503, 'SERVICE_UNAVAILABLE'),
      );
      t.after(() => fake.close());
      const { service } = createRemoteSessionService({ server: fake.url });
      const watched = watch(service, SESSION_ID);
      while (fake.requests() < 2) await delay(20);
      watched.stop();
      const after = fake.requests();
      await delay(1_500);
      assert.ok(fake.requests() <= after + 1, 'at most the request in flight');
      assert.equal(watched.wakes(), 0);
    }),
  );

  cases.push(
    t.test('real server: the watch starts after the newest event, then wakes on new ones', async () => {
      const server = await startMcpTestServer();
      t.after(() => server.close());
      const { service } = createRemoteSessionService({ server: server.url });
      const { session: ended } = await service.createSession(ACTOR, {
        objective: 'talks',
        agents: [{ name: 'only', role: 'tester', task: 'count', runner: 'count' }],
      });
      for (;;) {
        if ((await service.getSession(ACTOR, ended.id)).status === 'completed') break;
        await delay(50);
      }
      // An ended session's past events wake nobody (the old watch replayed the log: a wake each).
      const quiet = watch(service, ended.id);
      t.after(quiet.stop);
      await delay(1_500);
      assert.equal(quiet.wakes(), 0);

      const { session: running } = await service.createSession(ACTOR, {
        objective: 'sleeps',
        agents: [{ name: 'only', role: 'tester', task: 'wait', runner: 'sleep' }],
      });
      const live = watch(service, running.id);
      t.after(live.stop);
      await delay(500);
      await service.cancelSession(ACTOR, running.id);
      await within(live.woken, 10_000, 'wake on the cancel');
    }),
  );

  cases.push(
    t.test("real server: another tenant's session (404) and a bad key (401) end the watch", async () => {
      const server = await startMcpTestServer({ secure: true });
      t.after(() => server.close());
      const ownerKey = await server.createKey('tenant-a', ['operator']);
      const otherKey = await server.createKey('tenant-b', ['operator']);
      const owner = createRemoteSessionService({ server: server.url, token: ownerKey }).service;
      const { session } = await owner.createSession(ACTOR, {
        objective: 'sleeps',
        agents: [{ name: 'only', role: 'tester', task: 'wait', runner: 'sleep' }],
      });
      try {
        for (const [token, code] of [
          [otherKey, 'SESSION_NOT_FOUND'],
          ['maos_not_a_real_key', 'INVALID_TOKEN'],
        ] as const) {
          const { service } = createRemoteSessionService({ server: server.url, token });
          const watched = watch(service, session.id);
          t.after(watched.stop);
          await within(watched.woken, 10_000, `wake for ${code}`);
          await delay(1_500);
          assert.equal(watched.wakes(), 1, code);
          await assert.rejects(service.getSession(ACTOR, session.id), (error: unknown) => {
            assert.ok(error instanceof AppError);
            assert.equal(error.code, code);
            return true;
          });
        }
      } finally {
        await owner.cancelSession(ACTOR, session.id);
      }
    }),
  );
  await Promise.all(cases);
});
