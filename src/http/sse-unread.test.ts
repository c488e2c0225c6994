// An event stream whose client stopped reading: the server holds the events it could not send yet
// (a sender waits for the socket to drain), but keep-alive comments must not pile up behind them
// for as long as the client keeps the connection open.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { createLogger } from '../observability/logger.ts';
import { createFakeSessionService } from './fake-session-service.test-support.ts';
import { buildHttpServer } from './server.ts';

test('keep-alives are not queued behind events a client has not read', async (t) => {
  const service = createFakeSessionService();
  const app = await buildHttpServer({
    config: { http: { bodyLimitBytes: 65536, maxPageSize: 100, sseKeepAliveSeconds: 0.02 } },
    service,
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({}),
    listRoles: () => [],
  });
  t.after(() => app.close());
  const serverSockets: Socket[] = [];
  app.server.on('connection', (socket: Socket) => serverSockets.push(socket));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const created = await fetch(`${url}/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ objective: 'x', agents: [{ role: 'qa', task: 't', runner: 'ok' }] }),
  });
  const sessionId = ((await created.json()) as { id: string }).id;

  // A client that sends its request and then never reads.
  const { hostname, port } = new URL(url);
  const before = serverSockets.length;
  const client = connect(Number(port), hostname);
  client.on('error', () => {});
  t.after(() => client.destroy());
  client.pause();
  client.write(
    `GET /v1/sessions/${sessionId}/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`,
  );
  await waitFor(() => serverSockets.length > before, 10_000, 'the stream connection');
  const streamSocket = serverSockets[before] as Socket;

  // Events until the socket holds some the client did not take (the kernel's buffers are full).
  const big = 'x'.repeat(60_000);
  for (let i = 0; i < 2000 && streamSocket.writableLength === 0; i += 1) {
    service.appendEvent(sessionId, 'task.output', { line: big });
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.ok(streamSocket.writableLength > 0, 'the socket holds unsent events');
  await new Promise((resolve) => setTimeout(resolve, 50));
  const held = streamSocket.writableLength;
  // Many keep-alive intervals later: no byte more is held for the client.
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal(streamSocket.writableLength, held);
});
