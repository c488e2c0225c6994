// An event stream whose client stopped reading: the server holds the events it could not send yet
// (a sender waits for the socket to drain), queues no keep-alive comments behind them, and drops
// the connection once the client took nothing for four keep-alive intervals, freeing its stream
// slot, also when the stream has nothing more to send or already ended.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { createLogger } from '../observability/logger.ts';
import { createFakeSessionService, type FakeSessionService } from './fake-session-service.test-support.ts';
import { buildHttpServer } from './server.ts';

interface StalledStream {
  service: FakeSessionService;
  sessionId: string;
  /** The server's side of the stream's connection. */
  streamSocket: Socket;
  /** Open streams as the server counts them (its stream slots). */
  openStreams: () => number;
  /** Streams dropped for a client that took nothing, as counted for the metrics. */
  dropped: () => number;
}

/** A server, a session and a stream of it whose client sent its request and then never reads. */
async function openStalledStream(t: TestContext): Promise<StalledStream> {
  const service = createFakeSessionService();
  let openStreams = 0;
  let dropped = 0;
  const app = await buildHttpServer({
    config: { http: { bodyLimitBytes: 65536, maxPageSize: 100, sseKeepAliveSeconds: 0.02 } },
    service,
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({}),
    listRoles: () => [],
    observer: {
      sseConnection: (delta) => {
        openStreams += delta;
      },
      sseStreamDropped: () => {
        dropped += 1;
      },
    },
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
  await waitFor(() => openStreams === 1, 10_000, 'the stream to open');
  return {
    service,
    sessionId,
    streamSocket: serverSockets[before] as Socket,
    openStreams: () => openStreams,
    dropped: () => dropped,
  };
}

test('keep-alives are not queued behind unread events, and the client is dropped', async (t) => {
  const { service, sessionId, streamSocket, openStreams, dropped } = await openStalledStream(t);

  // Events until the socket holds some the client did not take (the kernel's buffers are full).
  const big = 'x'.repeat(60_000);
  for (let i = 0; i < 2000 && streamSocket.writableLength === 0; i += 1) {
    service.appendEvent(sessionId, 'task.output', { line: big });
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const held = streamSocket.writableLength;
  assert.ok(held > 0, 'the socket holds unsent events');
  // Until the connection is dropped, no byte more is queued for the client (no keep-alive).
  await waitFor(
    () => {
      assert.ok(streamSocket.writableLength <= held, 'nothing more is queued for the client');
      return streamSocket.destroyed;
    },
    10_000,
    'the server to drop the connection of a client that does not read',
  );
  await waitFor(() => openStreams() === 0, 10_000, 'the stream slot to be freed');
  assert.equal(dropped(), 1);
});

for (const ended of [false, true]) {
  test(`a client that takes nothing is dropped when its stream has nothing more to send${ended ? ', also after the stream ended' : ''}`, async (t) => {
    const { service, sessionId, streamSocket, openStreams, dropped } = await openStalledStream(t);

    // A few small events at a time, so the sender never waits for 'drain' (only the client could
    // end that wait): what the socket holds stays below its high-water mark.
    const line = 'x'.repeat(1000);
    for (let i = 0; i < 20_000 && streamSocket.writableLength === 0; i += 1) {
      for (let j = 0; j < 12; j += 1) service.appendEvent(sessionId, 'task.output', { line });
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.ok(streamSocket.writableLength > 0, 'the socket holds unsent events');
    assert.ok(
      streamSocket.writableLength < streamSocket.writableHighWaterMark,
      `the socket holds ${streamSocket.writableLength} bytes, so the sender is not waiting for 'drain'`,
    );

    if (ended) {
      // The session ends: its last event is written, and the stream ends and frees its slot...
      service.appendEvent(sessionId, 'session.finished', { status: 'completed' });
      await waitFor(() => openStreams() === 0, 10_000, 'the stream to end');
      assert.equal(streamSocket.destroyed, false, 'the connection waits for the client to take the rest');
    }
    // ...the connection, holding bytes the client never takes, is dropped (and the slot freed).
    await waitFor(() => streamSocket.destroyed, 10_000, 'the server to drop the connection');
    await waitFor(() => openStreams() === 0, 10_000, 'the stream slot to be freed');
    assert.equal(dropped(), 1);
  });
}
