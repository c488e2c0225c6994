// The wait of `orchestrate` (wait-for-session.ts) in remote mode (`maos mcp --server URL`) goes on
// with the session's last known state through a failure the CLI would retry, and ends at once on
// one it would not: it asks the REST client's verdict (CliError.retryable, kept by remote-service.ts)
// instead of a list of its own, which counted every SERVER_UNREACHABLE as passing (a TLS handshake
// with a plain HTTP server, a host name not found) and no 429 but RATE_LIMITED.
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { SessionDetail } from '../../src/domain/types.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { createRemoteSessionService } from '../../src/mcp/remote-service.ts';
import { waitForSession } from '../../src/mcp/wait-for-session.ts';

const SESSION_ID = '01935f43-0000-7000-8000-000000000002';
const ACTOR = { tenantId: 'default', principalId: 'test' };

/** The state `orchestrate` knows from creating the session: running, one task not finished. */
const KNOWN = {
  id: SESSION_ID,
  status: 'running',
  plan: null,
  agents: [],
  tasks: [{ id: 't1', name: 'w', status: 'running' }],
} as unknown as SessionDetail;

/** A node:http server answering every request with `answer`; its base URL. */
async function startServer(answer: (response: ServerResponse) => void) {
  const server = createServer((_request, response) => answer(response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function problem(response: ServerResponse, status: number, code: string): void {
  response
    .writeHead(status, { 'content-type': 'application/problem+json' })
    .end(JSON.stringify({ status, code, title: code, detail: `${code} detail` }));
}

/** Waits on `server` (a base URL) with the known state; what the wait returned or threw. */
async function waitOn(server: string, timeoutMs: number): Promise<SessionDetail | AppError> {
  const { service } = createRemoteSessionService({ server, retryForMs: 0 });
  const controller = new AbortController();
  try {
    return await waitForSession({
      service,
      actor: ACTOR,
      sessionId: SESSION_ID,
      timeoutMs,
      signal: controller.signal,
      known: KNOWN,
    });
  } catch (error) {
    assert.ok(error instanceof AppError, String(error));
    return error;
  } finally {
    controller.abort();
  }
}

test('a failure the CLI would not retry ends the wait at once, with its error', async () => {
  // https:// to a server that speaks plain HTTP: the handshake fails the same way every time.
  const plain = await startServer((response) => response.writeHead(200).end('{}'));
  try {
    const outcome = await waitOn(`https://127.0.0.1:${plain.port}`, 10_000);
    assert.ok(outcome instanceof AppError, 'the wait ended with an error');
    assert.equal(outcome.code, 'SERVER_UNREACHABLE');
    assert.match(outcome.message, /plain HTTP/);
  } finally {
    await plain.close();
  }
});

test('an answer that will not change (404) ends the wait at once', async () => {
  const server = await startServer((response) => problem(response, 404, 'SESSION_NOT_FOUND'));
  try {
    const outcome = await waitOn(`http://127.0.0.1:${server.port}`, 10_000);
    assert.ok(outcome instanceof AppError);
    assert.equal(outcome.code, 'SESSION_NOT_FOUND');
  } finally {
    await server.close();
  }
});

test('failures the CLI retries let the wait go on with the known state until its timeout', async () => {
  const answers: Array<[string, (response: ServerResponse) => void]> = [
    // A load balancer without a ready backend: a bare 503.
    ['bare 503', (response) => response.writeHead(503).end()],
    ['STORE_UNAVAILABLE', (response) => problem(response, 503, 'STORE_UNAVAILABLE')],
    ['RATE_LIMITED', (response) => problem(response, 429, 'RATE_LIMITED')],
    // Every 429 is retried by the CLI, not only RATE_LIMITED.
    ['QUOTA_EXCEEDED', (response) => problem(response, 429, 'QUOTA_EXCEEDED')],
  ];
  for (const [name, answer] of answers) {
    const server = await startServer(answer);
    try {
      assert.equal(await waitOn(`http://127.0.0.1:${server.port}`, 300), KNOWN, name);
    } finally {
      await server.close();
    }
  }
  // Nothing listening (a server restarting): refused.
  const gone = await startServer(() => {});
  await gone.close();
  assert.equal(await waitOn(`http://127.0.0.1:${gone.port}`, 300), KNOWN, 'refused');
});
