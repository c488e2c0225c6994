// A client that resumes an MCP stream and then reads nothing: the server must not hold all of its
// stored messages for that client (src/mcp/resumed-stream.test.ts counts what it reads). It
// reads at most 8 MiB ahead, and closes the connection once the client took nothing for four
// keep-alive intervals; a client that reads gets every message.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startMcpTestServer } from '../fixtures/mcp-server.ts';
import { readFrames } from '../fixtures/mcp-wire.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { openMcpSession, resumeStream, sessionStreamWriter } from '../helpers/mcp-streams.ts';

/** 40 stored notifications of 1 MiB each: five times the limit, more than loopback buffers hold. */
const STORED = 40;
const TEXT = 'x'.repeat(1024 * 1024);

test('a resumed MCP stream whose client does not read is closed instead of held in memory', {
  timeout: 120_000,
}, async (t) => {
  // Keep-alives every 250 ms: a client that takes nothing for four of them (1 s) is cut off.
  const server = await startMcpTestServer({ config: { http: { sseKeepAliveSeconds: 0.25 } } });
  t.after(() => server.close());
  const { sessionId, negotiated, headers } = await openMcpSession(server.url, '2025-11-25');

  // Messages stored on the session's standalone stream while no client was connected, as its
  // notifications are; the first (empty, as the SDK's priming event) is where the client resumes.
  const store = await sessionStreamWriter(server, sessionId);
  const from = await store({});
  for (let i = 0; i < STORED; i += 1) {
    await store({
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { level: 'info', data: `${i} ${TEXT}` },
    });
  }

  // Resumes the stream, then never reads (a paused socket does not see the server close it either:
  // the server's side of the connection tells).
  const serverSockets: Socket[] = [];
  server.app.http.server.on('connection', (socket: Socket) => serverSockets.push(socket));
  const { hostname, port } = new URL(server.url);
  const client = connect(Number(port), hostname);
  t.after(() => client.destroy());
  client.on('error', () => {});
  client.pause();
  client.write(
    [
      'GET /mcp HTTP/1.1',
      `Host: ${hostname}:${port}`,
      'Accept: text/event-stream',
      `Mcp-Session-Id: ${sessionId}`,
      `Mcp-Protocol-Version: ${negotiated}`,
      `Last-Event-ID: ${from}`,
      '',
      '',
    ].join('\r\n'),
  );
  await waitFor(
    () => serverSockets.find((socket) => socket.remotePort === client.localPort),
    10_000,
    'the connection',
  );
  const streamSocket = serverSockets.find((socket) => socket.remotePort === client.localPort) as Socket;
  // Before the fix the server queued all 40 MiB for the client and kept the connection open.
  await waitFor(
    () => streamSocket.destroyed,
    60_000,
    'the server to close the stream of a client that does not read',
  );

  // A client that reads gets every stored message.
  const resumed = await resumeStream(server.url, headers, from);
  assert.equal(resumed.status, 200);
  let received = 0;
  await readFrames(resumed, (frame) => {
    if (frame.data.includes(TEXT)) received += 1;
    return received === STORED;
  });
  assert.equal(received, STORED);
});
