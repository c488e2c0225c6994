// The stalled-client rule REST and MCP event streams share, on a plain HTTP server and a real
// connection whose client pauses: bytes waiting and none taken for four intervals drop the
// connection; what the kernel takes is not waiting, so a quiet stream only gets its idle calls.
// (Readers that take part of it: test/integration/http-sse-stalled-client.test.ts and
// test/integration/mcp-stalled-client.test.ts.)
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { dropWhenClientStalls, STALLED_CLIENT_INTERVALS } from './stalled-client.ts';

/** A server answering one request with `respond`, and a client that pauses the response at once. */
async function pausedClientOf(
  t: TestContext,
  respond: (response: ServerResponse) => void,
): Promise<IncomingMessage> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.flushHeaders();
    respond(response);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const request = get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  request.on('error', () => {});
  // A paused client never reads the end of its connection: it is closed here.
  t.after(() => request.destroy());
  const [response] = (await once(request, 'response')) as [IncomingMessage];
  response.pause();
  response.on('error', () => {});
  return response;
}

test('a client that takes none of the bytes waiting for it is dropped, with what was left unsent', async (t) => {
  let unsent: number | undefined;
  let socket: Socket | null = null;
  let closed = false;
  await pausedClientOf(t, (response) => {
    socket = response.socket;
    response.once('close', () => {
      closed = true;
    });
    dropWhenClientStalls(response, {
      intervalMs: 20,
      onStalled: (unsentBytes) => {
        unsent = unsentBytes;
      },
    });
    // More on each 'drain', until the kernel's buffers for the connection are full: then bytes
    // wait in the process and no 'drain' comes.
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const fill = (): void => {
      while (response.write(chunk));
    };
    response.on('drain', fill);
    fill();
  });
  await waitFor(() => closed, 10_000, 'the server to drop the connection');
  assert.ok(unsent !== undefined && unsent > 0, `${unsent} bytes were left unsent`);
  assert.equal((socket as Socket | null)?.destroyed, true, 'the connection is gone');
});

test('a client that stops reading a quiet stream is not dropped: what the kernel took is not waiting', async (t) => {
  let idle = 0;
  let stalled = false;
  let serverResponse: ServerResponse | undefined;
  await pausedClientOf(t, (response) => {
    serverResponse = response;
    response.write(': a little\n\n');
    dropWhenClientStalls(response, {
      intervalMs: 20,
      onIdle: () => {
        idle += 1;
      },
      onStalled: () => {
        stalled = true;
      },
    });
  });
  // Twice the intervals that drop a client with bytes waiting, all of them idle.
  await waitFor(() => idle >= 2 * STALLED_CLIENT_INTERVALS, 10_000, 'idle intervals');
  assert.equal(stalled, false);
  assert.equal(serverResponse?.destroyed, false);
});
