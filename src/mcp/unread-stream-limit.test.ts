// An MCP event stream whose client does not read: what is read ahead for it stays bounded, instead
// of the server queueing every message for as long as the session lives (the connection of such a
// client is dropped by dropWhenClientStalls: test/integration/mcp-stalled-client.test.ts). A client
// that reads gets everything, also a burst far larger than the limit, in pieces of at most 64 KiB.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { readWithinUnreadLimit, STREAM_WRITE_BYTES } from './unread-stream-limit.ts';

const MIB = 1024 * 1024;
const LIMIT = 4 * MIB;
const CHUNK = 64 * 1024;

describe('MCP event stream and the bytes its client has not read', () => {
  test('no more than the limit is read for a client that reads nothing; closing it cancels the source', async () => {
    // A source that always has more (keep-alives and notifications for as long as it is open).
    let pulled = 0;
    let cancelled = false;
    const source = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          controller.enqueue(new Uint8Array(CHUNK));
          pulled += CHUNK;
        },
        cancel() {
          cancelled = true;
        },
      },
      { highWaterMark: 0 },
    );
    const body = readWithinUnreadLimit(source, { maxUnreadBytes: LIMIT });
    // A client that never reads: its first write is never acknowledged.
    body.pipe(new Writable({ highWaterMark: 16 * 1024, write() {} }));
    await waitFor(() => pulled > LIMIT, 10_000, 'the read-ahead to fill');
    // The source is asked for more only as the client takes some: give it every chance to.
    for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve));
    // Read for it: the limit, the chunk that went past it, the one the client holds.
    assert.ok(pulled <= LIMIT + 2 * CHUNK, `${pulled} bytes were read`);
    assert.equal(cancelled, false);
    // The connection closed (the client left, or was dropped): the source is cancelled.
    body.destroy();
    await waitFor(() => cancelled, 10_000, 'the source to be cancelled');
  });

  test('a client that reads gets every byte of a burst four times the limit, and a message larger than it, in pieces', async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let cancelled = false;
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
      },
      cancel() {
        cancelled = true;
      },
    });
    const body = readWithinUnreadLimit(source, { maxUnreadBytes: LIMIT });
    let received = 0;
    let largest = 0;
    const client = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        largest = Math.max(largest, chunk.length);
        setImmediate(done);
      },
    });
    body.pipe(client);
    // Enqueued at once, as the SDK replays a stream's stored messages.
    controller.enqueue(new Uint8Array(2 * LIMIT));
    let sent = 2 * LIMIT;
    for (let i = 0; i < (4 * LIMIT) / CHUNK; i += 1) {
      controller.enqueue(new Uint8Array(CHUNK));
      sent += CHUNK;
    }
    controller.close();
    await once(client, 'finish');
    assert.equal(received, sent);
    assert.equal(cancelled, false);
    // The 8 MiB message too was handed on in pieces, each of which a slow reader can take in time.
    assert.equal(largest, STREAM_WRITE_BYTES);
  });
});
