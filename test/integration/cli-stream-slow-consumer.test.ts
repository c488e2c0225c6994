// The CLI's event stream (`maos logs -f`, `maos run --follow`) takes each event only as fast as its
// consumer does: printing waits for stdout to drain, so a reader of stdout that pauses (a pager
// showing a full screen) pauses the stream. That pause is not the server's silence: the idle
// timeout (a stream silent that long counts as dead) counts only time spent waiting for the server.
// It used to run on while the consumer held an event, so a pause longer than it dropped the stream
// (STREAM_INTERRUPTED) and `maos logs -f` reconnected with a "connection lost" note.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createApiClient } from '../../src/cli/client.ts';
import type { TestServer } from '../fixtures/server.ts';
import { startServerWithLog } from '../helpers/cli-output.ts';

/** Output events appended to the running session. */
const LINES = 5;
const IDLE_TIMEOUT_MS = 300;

let server: TestServer;
let id: string;

before(async () => {
  ({ server, id } = await startServerWithLog('paused reader', LINES));
});

after(async () => {
  await server?.close();
});

test('a consumer that holds an event longer than the idle timeout keeps its stream', async () => {
  const client = createApiClient({ server: server.url });
  const controller = new AbortController();
  const seen: number[] = [];
  try {
    for await (const event of client.streamEvents(id, {
      afterSeq: 0,
      signal: controller.signal,
      idleTimeoutMs: IDLE_TIMEOUT_MS,
    })) {
      seen.push(event.seq);
      // The first event is held three idle timeouts long, as a paused stdout holds it.
      if (seen.length === 1) await new Promise((resolve) => setTimeout(resolve, 3 * IDLE_TIMEOUT_MS));
      if (event.type === 'task.output' && event.data?.line === `out${LINES - 1}`) break;
    }
  } finally {
    controller.abort();
  }
  assert.deepEqual(
    seen,
    seen.map((_, i) => i + 1),
    'every event, in order, on one connection',
  );
  assert.ok(seen.length >= LINES, `events: ${seen.length}`);
});

test('a stream the server leaves silent while the consumer waits still counts as dead', async () => {
  // A server that opens the stream, sends one event and then nothing, not even a keep-alive.
  const silent = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/event-stream' });
    response.write(
      `id: 1\nevent: session.created\ndata: ${JSON.stringify({ sessionId: id, seq: 1, type: 'session.created', data: {}, createdAt: new Date().toISOString() })}\n\n`,
    );
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as AddressInfo;
  try {
    const client = createApiClient({ server: `http://127.0.0.1:${port}` });
    const seen: number[] = [];
    await assert.rejects(
      async () => {
        for await (const event of client.streamEvents(id, { afterSeq: 0, idleTimeoutMs: IDLE_TIMEOUT_MS })) {
          seen.push(event.seq);
        }
      },
      { code: 'STREAM_INTERRUPTED' },
    );
    assert.deepEqual(seen, [1]);
  } finally {
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('a signal aborted before the stream opens opens none', async () => {
  // Ctrl-C while `maos logs --tail n -f` printed the tail: the follow then opened a stream anyway,
  // which the abort no longer reached, and printed the session's events until it ended.
  const client = createApiClient({ server: server.url });
  const controller = new AbortController();
  controller.abort();
  const seen: number[] = [];
  for await (const event of client.streamEvents(id, {
    afterSeq: 0,
    signal: controller.signal,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
  })) {
    seen.push(event.seq);
  }
  assert.deepEqual(seen, []);
});
