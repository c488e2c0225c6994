// A client that resumes an MCP stream and then reads nothing: the server must not hold all of its
// stored messages for that client (src/mcp/resumed-stream.test.ts counts what it reads). It
// reads at most 8 MiB ahead, and closes the connection once the client took nothing for four
// keep-alive intervals; a client that reads gets every message.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { STANDALONE_STREAM_ID } from '../../src/mcp/stream-event-log.ts';
import { startMcpTestServer } from '../fixtures/mcp-server.ts';
import { initializeMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { waitFor } from '../fixtures/wait-for.ts';

interface StreamEventsDb {
  mcp_stream_events: {
    id: import('kysely').Generated<number>;
    tenant_id: string;
    principal_id: string;
    mcp_session_id: string;
    stream_id: string;
    message: string;
    created_at: number;
  };
}

/** 40 stored notifications of 1 MiB each: five times the limit, more than loopback buffers hold. */
const STORED = 40;
const TEXT = 'x'.repeat(1024 * 1024);

test('a resumed MCP stream whose client does not read is closed instead of held in memory', {
  timeout: 120_000,
}, async (t) => {
  // Keep-alives every 250 ms: a client that takes nothing for four of them (1 s) is cut off.
  const server = await startMcpTestServer({ config: { http: { sseKeepAliveSeconds: 0.25 } } });
  t.after(() => server.close());
  const { sessionId, negotiated } = await initializeMcp(server.url, '2025-11-25');
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };

  // Messages stored on the session's standalone stream while no client was connected, as its
  // notifications are; the first (empty, as the SDK's priming event) is where the client resumes.
  const db = server.app.database.db as unknown as import('kysely').Kysely<StreamEventsDb>;
  const owner = await db
    .selectFrom('mcp_stream_events')
    .select(['tenant_id', 'principal_id', 'mcp_session_id'])
    .where('mcp_session_id', '=', sessionId)
    .executeTakeFirstOrThrow();
  const store = (message: unknown) =>
    db
      .insertInto('mcp_stream_events')
      .values({
        ...owner,
        stream_id: STANDALONE_STREAM_ID,
        message: JSON.stringify(message),
        created_at: Date.now(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
  const from = String((await store({})).id);
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
  const resumed = await fetch(`${server.url}/mcp`, {
    headers: { ...headers, accept: 'text/event-stream', 'last-event-id': from },
    signal: AbortSignal.timeout(60_000),
  });
  assert.equal(resumed.status, 200);
  let received = 0;
  await readFrames(resumed, (frame) => {
    if (frame.data.includes(TEXT)) received += 1;
    return received === STORED;
  });
  assert.equal(received, STORED);
});
