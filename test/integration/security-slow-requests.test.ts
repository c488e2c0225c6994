// Slow senders (slowloris): a client that trickles a request's headers or body a byte at a time
// must not hold its connection open forever, whether it is authenticated or not. The real server
// on a socket, with `http.requestTimeoutSeconds` short; answers that take long (SSE) stay open.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createApiKey } from '../../src/security/api-keys.ts';
import type { SecurityDb } from '../../src/security/security-tables.ts';
import { startTestServer, type TestServer } from '../fixtures/server.ts';

const TIMEOUT_SECONDS = 1;
/** How long a trickling connection may stay open before the test calls it held forever. */
const GIVE_UP_MS = 15_000;

/**
 * Opens a connection, sends `first`, then `drip` every 200 ms; resolves with what the server
 * answered once it closes the connection, or `null` if it is still open after GIVE_UP_MS.
 */
function trickle(url: string, first: string, drip: string): Promise<string | null> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => socket.write(first));
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk;
    });
    socket.on('error', () => {});
    const dripping = setInterval(() => {
      if (!socket.destroyed) socket.write(drip);
    }, 200);
    const giveUp = setTimeout(() => {
      clearInterval(dripping);
      socket.destroy();
      resolve(null);
    }, GIVE_UP_MS);
    socket.on('close', () => {
      clearInterval(dripping);
      clearTimeout(giveUp);
      resolve(answer);
    });
  });
}

describe('slow requests', { timeout: 60_000 }, () => {
  let server: TestServer;
  let key: string;

  before(async () => {
    server = await startTestServer({
      config: { auth: { mode: 'apikey' }, http: { requestTimeoutSeconds: TIMEOUT_SECONDS } },
    });
    const db = server.app.database.db as unknown as SecurityDb;
    key = (await createApiKey(db, { tenantId: 't1', name: 'dev', roles: ['developer'], createdBy: 'test' }))
      .key;
  });
  after(() => server.close());

  test('headers sent a line at a time: 408 problem and the connection closed', async () => {
    const answer = await trickle(server.url, 'GET /v1/sessions HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n');
    assert.notEqual(answer, null, 'the connection was still open');
    assert.match(answer ?? '', /^HTTP\/1\.1 408 /);
    assert.match(answer ?? '', /"code":"REQUEST_TIMEOUT"/);
  });

  test('a body trickled by an authenticated caller: 408 and closed', async () => {
    const answer = await trickle(
      server.url,
      'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Authorization: Bearer ${key}\r\nContent-Length: 100000\r\n\r\n{`,
      ' ',
    );
    assert.notEqual(answer, null, 'the connection was still open');
    assert.match(answer ?? '', /^HTTP\/1\.1 408 /);
  });

  test('a body trickled after the 401 of a request without credentials: closed', async () => {
    const answer = await trickle(
      server.url,
      'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{',
      ' ',
    );
    assert.notEqual(answer, null, 'the connection was still open');
    assert.match(answer ?? '', /^HTTP\/1\.1 401 /);
  });

  test('an event stream outlives the request timeout: only receiving the request is bounded', async () => {
    const created = await fetch(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ objective: 'wait', agents: [{ role: 'engineer', task: 't', runner: 'sleep' }] }),
    });
    assert.equal(created.status, 201);
    const { id } = (await created.json()) as { id: string };
    const stream = await fetch(`${server.url}/v1/sessions/${id}/events`, {
      headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' },
    });
    assert.equal(stream.status, 200);
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    // Read for four request timeouts (and two of Node's expiry checks); the stream must not end.
    const until = Date.now() + TIMEOUT_SECONDS * 4000;
    let ended = false;
    while (Date.now() < until && !ended) {
      const next = await Promise.race([
        reader.read(),
        new Promise<'tick'>((resolve) => setTimeout(() => resolve('tick'), 250)),
      ]);
      if (next !== 'tick' && next.done) ended = true;
    }
    assert.equal(ended, false, 'the event stream was cut');
    await reader.cancel();
    await fetch(`${server.url}/v1/sessions/${id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}` },
    });
  });
});
