// The SDK's live event stream of an MCP request or notification stream, with a bound on what of it
// waits for the client. The SDK enqueues every message (notifications, progress, responses) into
// its web stream as it sends it, whoever reads: behind the read-ahead (unread-stream-limit.ts) of a
// client that reads slower than its session sends, its queue grew without bound, and a client that
// still takes a little now and then is never found stalled (src/http/stalled-client.ts). Here the
// live stream is always read at once. Once more than MAX_HELD_LIVE_BYTES of it waits, it is let go
// and the client gets the stream's messages from the durable log instead (the SDK stores each
// before it sends it), after the last one it got and at its own pace, as a REST event stream reads
// its events; caught up with the log, it is fed live again. A stream that has no log to read from
// is dropped instead (the connection ends, as for a stalled client), and so is one whose client
// lacks messages the log pruned meanwhile (it fell further behind than the log keeps): the stream
// does not go on past them.
// A resume on the process holding the MCP session starts from the log: what was stored after its
// Last-Event-ID, then live.

import { PrunedMessagesError } from './stream-follower.ts';

/**
 * Live bytes held for a client that takes no more (its read-ahead is full) before the stream reads
 * on from the log. A single message is held whole, however large.
 */
export const MAX_HELD_LIVE_BYTES = 1024 * 1024;

export interface LiveWithinLimitOptions {
  /**
   * The stream's stored messages after `afterEventId`, read from the log as the reader asks, up to
   * what is stored, and failing (not ending) when the log cannot be read or lacks messages the
   * reader has not got: `firstEventId`, when given, is the first of them (createFollowStream with
   * `untilLogEnd`, `failOnError` and `gapless`). Absent: the stream has no log.
   */
  readLog?: (afterEventId: string, firstEventId?: string) => Promise<ReadableStream<Uint8Array>>;
  /** A resume's Last-Event-ID: the messages stored after it come from the log first, then live. */
  resumeAfter?: string;
  /** @defaultValue MAX_HELD_LIVE_BYTES */
  maxHeldBytes?: number;
  /**
   * Called, with the live bytes let go, when the client fell behind on a stream that cannot be read
   * from the log (no log, or nothing with an id handed on yet): the stream then fails, which ends
   * its connection.
   */
  onDropped?: (heldBytes: number) => void;
  /**
   * Called when messages the reader lacks were pruned from the log before it read them
   * (PrunedMessagesError): the stream then fails, which ends its connection.
   */
  onPruned?: () => void;
}

const FRAME_ID = /^(?:event: [^\n]*\n)?id: ([1-9][0-9]*)\n/;

/**
 * The stored id of the message a chunk carries. Both sources write each message as one chunk (the
 * SDK's writeSSEEvent and priming event, createFollowStream) with its `id:` line first or after
 * `event:`. Undefined for comments and for messages the store could not keep (`unstored-…`).
 */
function storedIdOf(chunk: Uint8Array, decoder: TextDecoder): number | undefined {
  const match = FRAME_ID.exec(decoder.decode(chunk.subarray(0, 64)));
  return match === null ? undefined : Number(match[1]);
}

/**
 * `live` (the SDK's stream), read as it comes, within `maxHeldBytes` waiting for the reader; beyond,
 * the stream's messages come from `readLog` after the last one handed on, until it has no more
 * (then live again, skipping what the log carried: ids follow send order). Without `readLog` the
 * stream fails instead (see `onDropped`). Only the next chunk is handed on, when the reader asks.
 */
export function liveWithinLimit(
  live: ReadableStream<Uint8Array>,
  options: LiveWithinLimitOptions = {},
): ReadableStream<Uint8Array> {
  const maxHeldBytes = options.maxHeldBytes ?? MAX_HELD_LIVE_BYTES;
  const liveReader = live.getReader();
  const decoder = new TextDecoder();
  /** Live chunks not handed on yet. */
  let held: Uint8Array[] = [];
  let heldBytes = 0;
  let liveDone = false;
  let liveError: { error: unknown } | undefined;
  /** The id of the last message handed on (or the resume's): where a read of the log starts. */
  let cursor = options.resumeAfter;
  let lastId = cursor === undefined ? 0 : Number(cursor) || 0;
  /** Set while the stream is read from the log. */
  let fromLog: Promise<ReadableStreamDefaultReader<Uint8Array>> | undefined;
  /** Live chunks were let go while reading the log: it is read again before going live. */
  let letGo = false;
  /** The first stored message let go that the reader has not got yet, by id. */
  let owed: number | undefined;
  /** Set when the client fell behind with no log to read from. */
  let dropped: Error | undefined;
  /** Wakes a reader waiting for live chunks. */
  let wake: (() => void) | undefined;
  let output: ReadableStreamDefaultController<Uint8Array> | undefined;

  function letGoOfHeld(): void {
    if (owed === undefined) {
      for (const chunk of held) {
        const id = storedIdOf(chunk, decoder);
        if (id !== undefined && id > lastId) {
          owed = id;
          break;
        }
      }
    }
    held = [];
    heldBytes = 0;
  }

  function readFromLog(after: string, readLog: NonNullable<LiveWithinLimitOptions['readLog']>): void {
    // What is held now was stored before the log is read: the read carries it.
    letGoOfHeld();
    letGo = false;
    // The read must start with the first one let go (it fails if that was pruned meanwhile).
    const first = owed === undefined ? undefined : String(owed);
    owed = undefined;
    fromLog = readLog(after, first).then((stream) => stream.getReader());
    // Failures surface when the reader reads it.
    fromLog.catch(() => {});
  }

  function overflow(): void {
    if (fromLog !== undefined) {
      letGoOfHeld();
      letGo = true;
      return;
    }
    if (options.readLog !== undefined && cursor !== undefined) {
      readFromLog(cursor, options.readLog);
      return;
    }
    options.onDropped?.(heldBytes);
    dropped = new Error(
      `the client fell over ${maxHeldBytes} bytes behind on an MCP event stream that cannot be read from the log`,
    );
    letGoOfHeld();
    liveReader.cancel(dropped).catch(() => {});
    // At once, not at the reader's next read: a reader that takes no more must see it too.
    output?.error(dropped);
  }

  const pumpLive = async (): Promise<void> => {
    try {
      for (;;) {
        const { value, done } = await liveReader.read();
        if (done || dropped !== undefined) break;
        held.push(value);
        heldBytes += value.length;
        // A reader waiting takes it at once; one message alone is held whole.
        if (wake === undefined && held.length > 1 && heldBytes > maxHeldBytes) overflow();
        wake?.();
      }
    } catch (error) {
      liveError = { error };
    }
    liveDone = true;
    wake?.();
  };
  void pumpLive();

  if (options.resumeAfter !== undefined && options.readLog !== undefined) {
    readFromLog(options.resumeAfter, options.readLog);
  }

  /** Hands `chunk` on unless the log already carried it; true when handed on. */
  function handOn(controller: ReadableStreamDefaultController<Uint8Array>, chunk: Uint8Array): boolean {
    const id = storedIdOf(chunk, decoder);
    if (id !== undefined) {
      if (id <= lastId) return false;
      lastId = id;
      cursor = String(id);
      if (owed !== undefined && id >= owed) owed = undefined;
    }
    controller.enqueue(chunk);
    return true;
  }

  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        output = controller;
      },
      async pull(controller) {
        for (;;) {
          if (dropped !== undefined) throw dropped;
          if (fromLog !== undefined) {
            let read: ReadableStreamReadResult<Uint8Array>;
            try {
              read = await (await fromLog).read();
            } catch (error) {
              // The log could not be read, or lacks what the client has not got: end the connection
              // (the client resumes from what it got, refused when that was pruned), and release the
              // SDK's stream, which would otherwise stay registered for nobody.
              if (error instanceof PrunedMessagesError) options.onPruned?.();
              await liveReader.cancel(error).catch(() => {});
              throw error;
            }
            if (!read.done) {
              if (handOn(controller, read.value)) return;
              continue;
            }
            fromLog = undefined;
            // Live chunks let go meanwhile may be stored after the log's last read: read it again.
            if (letGo && options.readLog !== undefined && cursor !== undefined) {
              readFromLog(cursor, options.readLog);
            }
            continue;
          }
          const chunk = held.shift();
          if (chunk !== undefined) {
            heldBytes -= chunk.length;
            if (handOn(controller, chunk)) return;
            continue;
          }
          if (liveDone) {
            if (liveError !== undefined) throw liveError.error;
            controller.close();
            return;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      },
      async cancel(reason) {
        const logReader = fromLog?.catch(() => undefined);
        await Promise.all([
          liveReader.cancel(reason).catch(() => {}),
          logReader?.then((reader) => reader?.cancel(reason)).catch(() => {}),
        ]);
      },
    },
    { highWaterMark: 0 },
  );
}
