// An MCP event stream whose client does not read: the bytes held for it stay bounded, and the SDK's
// stream is cancelled, instead of queueing every message for as long as the session lives.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { readWithinUnreadLimit } from './unread-stream-limit.ts';

/** A web stream the test writes to as the SDK does: enqueue without waiting for the reader. */
function pushedStream(): {
  stream: ReadableStream<Uint8Array>;
  push: (chunk: Uint8Array) => boolean;
  end: () => void;
  cancelled: () => boolean;
} {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      cancelled = true;
    },
  });
  return {
    stream,
    push: (chunk) => {
      if (cancelled) return false;
      controller.enqueue(chunk);
      return true;
    },
    end: () => controller.close(),
    cancelled: () => cancelled,
  };
}

const MIB = 1024 * 1024;
const LIMIT = 4 * MIB;
const CHUNK = 64 * 1024;

describe('MCP event stream with a client that does not read', () => {
  test('is dropped once more than the limit waits; the source is cancelled and stops taking messages', async () => {
    const source = pushedStream();
    const body = readWithinUnreadLimit(source.stream, LIMIT);
    // A client that never reads: the first write is never acknowledged.
    const client = new Writable({ highWaterMark: 16 * 1024, write() {} });
    body.pipe(client);
    const failed = once(body, 'error');
    // 16 MiB of messages, four times the limit, as keep-alives and notifications would pile up.
    let pushed = 0;
    for (let i = 0; i < 256 && source.push(new Uint8Array(CHUNK)); i += 1) {
      pushed += CHUNK;
      await nextTurn();
    }
    assert.equal(source.cancelled(), true, `${pushed} bytes were taken and the stream is still open`);
    const [error] = (await failed) as [Error];
    assert.match(error.message, /has not read \d+ bytes of its MCP event stream/);
    // Taken before the drop: the limit, the message that found it exceeded, the one the client holds.
    assert.ok(pushed <= LIMIT + 3 * CHUNK, `${pushed} bytes were taken`);
    assert.equal(source.push(new Uint8Array(1)), false);
  });

  test('a client that reads gets every byte, also of a message larger than the limit', async () => {
    const source = pushedStream();
    const body = readWithinUnreadLimit(source.stream, LIMIT);
    let received = 0;
    const client = new Writable({
      write(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        setImmediate(done);
      },
    });
    body.pipe(client);
    source.push(new Uint8Array(2 * LIMIT));
    let sent = 2 * LIMIT;
    for (let i = 0; i < 200; i += 1) {
      source.push(new Uint8Array(32 * 1024));
      sent += 32 * 1024;
      await nextTurn();
    }
    source.end();
    await once(client, 'finish');
    assert.equal(received, sent);
    assert.equal(source.cancelled(), false);
  });
});
