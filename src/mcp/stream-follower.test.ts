import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Kysely } from 'kysely';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { createSseParser, readSseFrames } from '../cli/sse-reader.ts';
import { configSchema } from '../config/schema.ts';
import { createDatabase, type DatabaseHandle } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import {
  ANSWERED_STREAM_END,
  BATCH_STREAM_START,
  CANCELLED_STREAM_END,
  CLOSED_STREAM_END,
  createStreamEventLog,
  type McpStreamEventsDb,
  STANDALONE_STREAM_ID,
  type StreamEventLog,
} from './stream-event-log.ts';
import {
  createFollowStream,
  FOLLOW_PAGE_BYTES,
  type FollowStreamOptions,
  PrunedMessagesError,
} from './stream-follower.ts';
import { readWithinUnreadLimit } from './unread-stream-limit.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-mcp-follow-'));
let handle: DatabaseHandle;
let log: StreamEventLog;
const OWNER = { tenantId: 't', principalId: 'p', mcpSessionId: 'm' };

function note(n: number): JSONRPCMessage {
  return { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: n } };
}

function follow(overrides: Partial<FollowStreamOptions>): ReadableStream<Uint8Array> {
  return createFollowStream({
    log,
    owner: OWNER,
    streamId: 's',
    afterEventId: '0',
    pollMs: 10,
    idleMs: 60_000,
    keepAliveMs: 0,
    signal: new AbortController().signal,
    ...overrides,
  });
}

/** Reads data frames until the stream ends. */
async function readAll(body: ReadableStream<Uint8Array>): Promise<Array<{ id?: string; data: string }>> {
  const frames: Array<{ id?: string; data: string }> = [];
  for await (const frame of readSseFrames(body as unknown as AsyncIterable<Uint8Array>)) {
    if (frame.data !== '')
      frames.push({ ...(frame.id === undefined ? {} : { id: frame.id }), data: frame.data });
  }
  return frames;
}

before(async () => {
  handle = createDatabase(configSchema.parse({ dataDir: dir }));
  await migrateToLatest(handle.db);
  log = createStreamEventLog(handle.db as unknown as Kysely<McpStreamEventsDb>);
});
after(async () => {
  await handle?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('following a stored MCP stream', () => {
  test('replays what is stored, follows what is written later, and ends at the response', async () => {
    const store = log.forSession(OWNER);
    const priming = await store.storeEvent('s', {} as JSONRPCMessage);
    const first = await store.storeEvent('s', note(1));
    const reading = readAll(follow({ afterEventId: priming }));
    // Written while the follower polls: another stream's message must not show up.
    await new Promise((resolve) => setTimeout(resolve, 30));
    await log.forSession(OWNER).storeEvent('other', note(99));
    const second = await store.storeEvent('s', note(2));
    const response = await store.storeEvent('s', { jsonrpc: '2.0', id: 7, result: { ok: true } });
    await store.storeEvent('s', note(3));
    const frames = await reading;
    assert.deepEqual(
      frames.map((frame) => frame.id),
      [first, second, response],
    );
    assert.deepEqual(JSON.parse(frames[2]!.data), { jsonrpc: '2.0', id: 7, result: { ok: true } });
  });

  test('ends after idleMs without a message, and at shutdown', async () => {
    const owner = { ...OWNER, mcpSessionId: 'quiet' };
    const id = await log.forSession(owner).storeEvent('s', note(1));
    assert.deepEqual(await readAll(follow({ owner, afterEventId: id, idleMs: 50 })), []);
    const shutdown = new AbortController();
    const reading = readAll(follow({ owner, afterEventId: id, signal: shutdown.signal }));
    shutdown.abort();
    assert.deepEqual(await reading, []);
  });

  test('a jump of the wall clock is no idle time: the follower goes on', async (t) => {
    const owner = { ...OWNER, mcpSessionId: 'clock-jump' };
    const store = log.forSession(owner);
    const id = await store.storeEvent('s', note(1));
    let reads = 0;
    const counting: StreamEventLog = {
      ...log,
      readAfter: (...args) => {
        reads += 1;
        return log.readAfter(...args);
      },
    };
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    const body = follow({ log: counting, owner, afterEventId: id, idleMs: 60_000 });
    // The system clock is set two hours ahead (NTP step, a VM resumed): no time passed for the follower.
    t.mock.timers.setTime(Date.now() + 2 * 3_600_000);
    let ended = false;
    const reading = readAll(body).finally(() => {
      ended = true;
    });
    await waitFor(() => reads >= 3 || ended);
    const later = await store.storeEvent('s', note(2));
    const response = await store.storeEvent('s', { jsonrpc: '2.0', id: 1, result: {} } as JSONRPCMessage);
    // Before: the first empty read took the jump for two hours without a message and ended the stream.
    assert.deepEqual(
      (await reading).map((frame) => frame.id),
      [later, response],
    );
  });

  // Without the fix these waited for idleMs (60 s) and ran into the timeout.
  test('a cancelled stream ends at its end marker, which is never sent', { timeout: 30_000 }, async () => {
    const owner = { ...OWNER, mcpSessionId: 'cancelled' };
    const store = log.forSession(owner);
    const priming = await store.storeEvent('s', {} as JSONRPCMessage);
    const progress = await store.storeEvent('s', note(1));
    const reading = readAll(follow({ owner, afterEventId: priming }));
    await new Promise((resolve) => setTimeout(resolve, 30));
    // Before: the follower waited for a response (idleMs) that a cancelled request never gets.
    await store.storeEvent('s', CANCELLED_STREAM_END);
    assert.deepEqual(
      (await reading).map((frame) => frame.id),
      [progress],
    );
    // The SDK's replay on the process holding the session leaves it out as well.
    const replayed: string[] = [];
    await store.replayEventsAfter(priming, { send: async (id) => void replayed.push(id) });
    assert.deepEqual(replayed, [progress]);
  });

  test('a request stream and the standalone stream end where their session was closed', {
    timeout: 30_000,
  }, async () => {
    const owner = { ...OWNER, mcpSessionId: 'closed' };
    const store = log.forSession(owner);
    for (const streamId of ['s', STANDALONE_STREAM_ID]) {
      const first = await store.storeEvent(streamId, note(1));
      const second = await store.storeEvent(streamId, note(2));
      const reading = readAll(follow({ owner, streamId, afterEventId: first }));
      await new Promise((resolve) => setTimeout(resolve, 30));
      // Before: both waited for idleMs (60 s) for what the closed session would never send.
      await store.storeEvent(streamId, CLOSED_STREAM_END);
      assert.deepEqual(
        (await reading).map((frame) => frame.id),
        [second],
        streamId,
      );
    }
  });

  test('a stream that is over ends after what is stored, also resumed from its last message', {
    timeout: 30_000,
  }, async () => {
    const owner = { ...OWNER, mcpSessionId: 'over' };
    const store = log.forSession(owner);
    const priming = await store.storeEvent('s', {} as JSONRPCMessage);
    const answer = await store.storeEvent('s', {
      jsonrpc: '2.0',
      id: 3,
      error: { code: -32601, message: 'no' },
    });
    // Resumed from the response itself (a client that got an error response resumes after it):
    // before, the follower waited idleMs for a message after the last one.
    assert.deepEqual(await readAll(follow({ owner, afterEventId: answer })), []);
    assert.deepEqual(
      (await readAll(follow({ owner, afterEventId: priming, untilLogEnd: true }))).map((frame) => frame.id),
      [answer],
    );
    const progress = await log.forSession(owner).storeEvent('t', note(1));
    assert.deepEqual(
      await readAll(follow({ owner, streamId: 't', afterEventId: progress, untilLogEnd: true })),
      [],
    );
  });

  test("a batch's stream ends at its end marker, after every response, also resumed from one", {
    timeout: 30_000,
  }, async () => {
    const owner = { ...OWNER, mcpSessionId: 'batch' };
    const store = log.forSession(owner);
    await store.storeEvent('s', BATCH_STREAM_START);
    const first = await store.storeEvent('s', { jsonrpc: '2.0', id: 1, result: {} });
    const reading = readAll(follow({ owner, afterEventId: '0' }));
    const fromFirst = readAll(follow({ owner, afterEventId: first }));
    await new Promise((resolve) => setTimeout(resolve, 30));
    const second = await store.storeEvent('s', { jsonrpc: '2.0', id: 2, result: {} });
    await store.storeEvent('s', ANSWERED_STREAM_END);
    // Before: ended at the first response (resumed from it: at once).
    assert.deepEqual(
      (await reading).map((frame) => frame.id),
      [first, second],
    );
    assert.deepEqual(
      (await fromFirst).map((frame) => frame.id),
      [second],
    );
    const replayed: string[] = [];
    await store.replayEventsAfter(first, { send: async (id) => void replayed.push(id) });
    assert.deepEqual(replayed, [second]);
  });

  test('a paused client holds the read-ahead and about a page, not the whole stored stream; it then gets it all in order', {
    timeout: 60_000,
  }, async () => {
    const owner = { ...OWNER, mcpSessionId: 'large' };
    const store = log.forSession(owner);
    const big = (n: number): JSONRPCMessage => ({
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { level: 'info', data: `${n}:${'x'.repeat(256 * 1024)}` },
    });
    const stored: string[] = [];
    for (let n = 0; n < 40; n += 1) stored.push(await store.storeEvent('s', big(n)));
    stored.push(await store.storeEvent('s', { jsonrpc: '2.0', id: 1, result: {} }));
    // Bytes of stored messages the follower read from the log (the real log, counted).
    let readBytes = 0;
    const counted: StreamEventLog = {
      ...log,
      async readAfter(...args) {
        const page = await log.readAfter(...args);
        for (const event of page) readBytes += JSON.stringify(event.message).length;
        return page;
      },
    };
    const readAhead = 2 * 1024 * 1024;
    const body = readWithinUnreadLimit(follow({ log: counted, owner, afterEventId: '0' }), {
      maxUnreadBytes: readAhead,
    });
    // A client that takes nothing until released.
    let release: (() => void) | undefined;
    const paused = new Promise<void>((resolve) => {
      release = resolve;
    });
    const parser = createSseParser();
    const decoder = new TextDecoder();
    const received: Array<string | undefined> = [];
    const client = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, done) {
        for (const frame of parser.push(decoder.decode(chunk, { stream: true }))) {
          if (frame.data !== '') received.push(frame.id);
        }
        void paused.then(() => setImmediate(done));
      },
    });
    body.pipe(client);
    await waitFor(() => readBytes >= readAhead, 10_000, 'the read-ahead to fill');
    // The log is read on only as the client takes some: give it every chance to.
    for (let i = 0; i < 50; i += 1) await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Before: all 40 messages (over 10 MiB) were read at once.
    assert.ok(readBytes <= readAhead + 2 * FOLLOW_PAGE_BYTES, `${readBytes} bytes were read from the log`);
    release?.();
    await once(client, 'finish');
    assert.deepEqual(received, stored);
  });

  test('a message that cannot be stored still gets an id, which resolves to nothing', async () => {
    const dead = createDatabase(configSchema.parse({ dataDir: join(dir, 'closed') }));
    await migrateToLatest(dead.db);
    await dead.close();
    const errors: unknown[] = [];
    const broken = createStreamEventLog(dead.db as unknown as Kysely<McpStreamEventsDb>, {
      onStoreError: (error) => errors.push(error),
    });
    const store = broken.forSession(OWNER);
    const id = await store.storeEvent('s', note(1));
    assert.match(id, /^unstored-/);
    assert.equal(errors.length, 1);
    assert.equal(await store.getStreamIdForEventId?.(id), undefined);
    // Later writes are not blocked by the failed one.
    assert.match(await store.storeEvent('s', note(2)), /^unstored-/);
  });
  test('gapless, a read of the log fails rather than go on past messages pruned before it read them', async () => {
    const owner = { ...OWNER, mcpSessionId: 'gapless' };
    const store = log.forSession(owner);
    const ids: string[] = [];
    for (let n = 0; n < 150; n += 1) ids.push(await store.storeEvent('s', note(n)));
    const db = handle.db as unknown as Kysely<McpStreamEventsDb>;
    /** Deletes the stream's messages up to `id`, as the retention job deletes the oldest. */
    const pruneTo = (id: string | undefined) =>
      db
        .deleteFrom('mcp_stream_events')
        .where('mcp_session_id', '=', 'gapless')
        .where('id', '<=', Number(id))
        .execute();
    const read = (overrides: Partial<FollowStreamOptions>) =>
      follow({ owner, untilLogEnd: true, failOnError: true, ...overrides }).getReader();
    /** Reads `reader` to its end: the progress numbers read, and the error it failed with. */
    async function drain(reader: ReadableStreamDefaultReader<Uint8Array>) {
      const parser = createSseParser();
      const decoder = new TextDecoder();
      const got: number[] = [];
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return { got };
          for (const frame of parser.push(decoder.decode(value))) {
            got.push((JSON.parse(frame.data) as { params: { progress: number } }).params.progress);
          }
          // The first page (100 messages) was read: the next ones are pruned up to the 120th.
          if (got.at(-1) === 100) await pruneTo(ids[119]);
        }
      } catch (error) {
        return { got, error };
      }
    }
    // Its first message is there, and its first page is whole; the next one would lack 101 to 119.
    const pages = await drain(read({ afterEventId: ids[0], gapless: { firstEventId: ids[1] } }));
    assert.deepEqual(
      pages.got,
      Array.from({ length: 100 }, (_, i) => i + 1),
    );
    assert.ok(pages.error instanceof PrunedMessagesError, String(pages.error));
    // Without gapless it goes on past them.
    const skipping = await readAll(follow({ owner, afterEventId: ids[0] ?? '', untilLogEnd: true }));
    assert.equal(skipping.length, 30);
    // The first message the reader lacks is gone: nothing is handed on.
    const first = await drain(read({ afterEventId: ids[0], gapless: { firstEventId: ids[1] } }));
    assert.deepEqual(first.got, []);
    assert.ok(first.error instanceof PrunedMessagesError);
    // The message it reads after is gone (no first one named): the same.
    const after = await drain(read({ afterEventId: ids[100], gapless: {} }));
    assert.deepEqual(after.got, []);
    assert.ok(after.error instanceof PrunedMessagesError);
    // Still stored: all that follows it.
    const rest = await drain(read({ afterEventId: ids[120], gapless: { firstEventId: ids[121] } }));
    assert.deepEqual(
      rest.got,
      Array.from({ length: 29 }, (_, i) => i + 121),
    );
    assert.equal(rest.error, undefined);
  });
  test('gapless, a message missing between two stored ones fails the read, whatever the reader started from', async () => {
    const owner = { ...OWNER, mcpSessionId: 'gapless-hole' };
    const store = log.forSession(owner);
    const ids: string[] = [];
    for (let n = 1; n <= 6; n += 1) ids.push(await store.storeEvent('s', note(n)));
    // A retention batch deletes overflowing rows in no particular order: one in the middle went.
    await (handle.db as unknown as Kysely<McpStreamEventsDb>)
      .deleteFrom('mcp_stream_events')
      .where('id', '=', Number(ids[3]))
      .execute();
    // Before: from the stream's start (no message to anchor on) it went on past the hole.
    const reader = follow({ owner, afterEventId: '0', untilLogEnd: true, gapless: {}, failOnError: true });
    const frames: string[] = [];
    const parser = createSseParser();
    const decoder = new TextDecoder();
    let failure: unknown;
    try {
      for await (const chunk of reader as unknown as AsyncIterable<Uint8Array>) {
        for (const frame of parser.push(decoder.decode(chunk)))
          if (frame.id !== undefined) frames.push(frame.id);
      }
    } catch (error) {
      failure = error;
    }
    assert.ok(failure instanceof PrunedMessagesError, String(failure));
    // Read in one page: none of it is handed on (the client resumes from the last one it got).
    assert.deepEqual(frames, []);
  });

  test('gapless, numbering that starts again (a stream its writer forgot) is no gap', async () => {
    const owner = { ...OWNER, mcpSessionId: 'gapless-renumbered' };
    const first = await log.forSession(owner).storeEvent('s', note(1));
    await log.forSession(owner).storeEvent('s', note(2));
    // A second writer (as one that forgot the stream) numbers from 1 again.
    const again = await log.forSession(owner).storeEvent('s', note(3));
    const frames = await readAll(
      follow({ owner, afterEventId: first, untilLogEnd: true, gapless: {}, failOnError: true }),
    );
    assert.equal(frames.at(-1)?.id, again);
    assert.equal(frames.length, 2);
  });

  test('gapless, a quiet stream whose last message read was pruned by age goes on with the next one', async () => {
    const owner = { ...OWNER, mcpSessionId: 'gapless-quiet' };
    const store = log.forSession(owner);
    const first = await store.storeEvent('s', note(1));
    let reads = 0;
    const counting: StreamEventLog = {
      ...log,
      async readAfter(...args) {
        reads += 1;
        return log.readAfter(...args);
      },
    };
    // Followed as a resume on a replica that does not hold the session: until the stream's end.
    const reader = follow({
      log: counting,
      owner,
      afterEventId: '0',
      gapless: {},
      failOnError: true,
    }).getReader();
    const decoder = new TextDecoder();
    const parser = createSseParser();
    /** The progress numbers of the next data frames read. */
    async function next(): Promise<number[]> {
      for (;;) {
        const { value, done } = await reader.read();
        assert.equal(done, false);
        const frames = parser.push(decoder.decode(value)).filter((frame) => frame.data !== '');
        if (frames.length > 0) {
          return frames.map(
            (frame) => (JSON.parse(frame.data) as { params: { progress: number } }).params.progress,
          );
        }
      }
    }
    assert.deepEqual(await next(), [1]);
    const reading = next();
    // At the log's end, polling (it found its last message stored there).
    const readsThen = reads;
    await waitFor(() => reads >= readsThen + 3, 10_000, 'the follower to poll the log');
    // The retention job deletes it by age, nothing after it being stored yet. Before, the next
    // read found it gone and failed the stream, though nothing was missed.
    await (handle.db as unknown as Kysely<McpStreamEventsDb>)
      .deleteFrom('mcp_stream_events')
      .where('id', '=', Number(first))
      .execute();
    await store.storeEvent('s', note(2));
    assert.deepEqual(await reading, [2]);
    await reader.cancel();
  });
});
