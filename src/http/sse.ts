// Server-Sent Events on a hijacked Fastify reply: frame formatting (CR/LF rejected in `id`/`event`),
// keep-alive comments on an unref'd timer, backpressure, closing on disconnect or shutdown, and
// dropping a client that stopped taking what is sent.
import { once } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { dropWhenClientStalls, STALLED_CLIENT_INTERVALS } from './stalled-client.ts';

export interface SseFrame {
  id?: string;
  event?: string;
  /** Already serialised; may span lines (each becomes a `data:` line). */
  data: string;
}

export interface SseStreamOptions {
  /** Interval of `: keep-alive` comments, so proxies keep an idle stream open. */
  keepAliveMs: number;
  /** Extra response headers (e.g. X-Request-Id). */
  headers?: Record<string, string>;
  /**
   * Called once when the stream's connection is dropped because its client took nothing of what
   * waits for it for `STALLED_CLIENT_INTERVALS` keep-alive intervals (stalled-client.ts), with the
   * bytes left unsent.
   */
  onClientStalled?: (unsentBytes: number) => void;
}

/** An open event stream. `signal` aborts when the client leaves or the server shuts down. */
export interface SseStream {
  readonly signal: AbortSignal;
  readonly closed: boolean;
  /** Writes one frame; resolves when the socket accepted it (waits on backpressure). */
  send(frame: SseFrame): Promise<void>;
  comment(text: string): void;
  /** Ends the stream; `dropConnection` also closes the socket (server shutdown must not wait for it). */
  close(options?: { dropConnection?: boolean }): void;
}

/** Tracks open streams so that server shutdown can end them instead of waiting for clients. */
export interface SseRegistry {
  /** Tracks an open stream, counted under each of `owners` (its tenant, its principal) for caps. */
  add(stream: SseStream, owners?: readonly string[]): void;
  delete(stream: SseStream): void;
  /** Open streams counted under `owner`. */
  countOf(owner: string): number;
  closeAll(): void;
  readonly size: number;
}

/** Creates the registry the server's preClose hook drains; `onChange` sees +1/-1 per stream. */
export function createSseRegistry(onChange: (delta: 1 | -1) => void = () => {}): SseRegistry {
  const streams = new Map<SseStream, readonly string[]>();
  const perOwner = new Map<string, number>();
  return {
    add: (stream, owners = []) => {
      if (streams.has(stream)) return;
      streams.set(stream, owners);
      for (const owner of owners) perOwner.set(owner, (perOwner.get(owner) ?? 0) + 1);
      onChange(1);
    },
    delete: (stream) => {
      const owners = streams.get(stream);
      if (owners === undefined) return;
      streams.delete(stream);
      for (const owner of owners) {
        const left = (perOwner.get(owner) ?? 1) - 1;
        if (left > 0) perOwner.set(owner, left);
        else perOwner.delete(owner);
      }
      onChange(-1);
    },
    countOf: (owner) => perOwner.get(owner) ?? 0,
    closeAll: () => {
      for (const stream of [...streams.keys()]) stream.close({ dropConnection: true });
    },
    get size() {
      return streams.size;
    },
  };
}

const LINE_BREAK = /[\r\n]/;

/** Formats one SSE frame. Throws on CR/LF in `id` or `event`, which would inject extra fields. */
export function formatSseFrame(frame: SseFrame): string {
  let out = '';
  if (frame.id !== undefined) {
    if (LINE_BREAK.test(frame.id)) throw new Error('SSE id must not contain CR or LF');
    out += `id: ${frame.id}\n`;
  }
  if (frame.event !== undefined) {
    if (LINE_BREAK.test(frame.event)) throw new Error('SSE event must not contain CR or LF');
    out += `event: ${frame.event}\n`;
  }
  for (const line of frame.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

// Set per request by a layer that adds its response headers in onSend (security headers, CORS,
// rate limits), a hook a hijacked reply never runs: it adds them before the stream opens.
const streamHeaderHooks = new WeakMap<FastifyRequest, () => void>();

/** How the response headers `request` would get in onSend are added to a stream opened for it. */
export function setStreamHeaderHook(request: FastifyRequest, addHeaders: () => void): void {
  streamHeaderHooks.set(request, addHeaders);
}

/** Takes over the reply and opens an SSE stream on it. */
export function openSseStream(reply: FastifyReply, options: SseStreamOptions): SseStream {
  const raw = reply.raw;
  const controller = new AbortController();
  let closed = false;
  streamHeaderHooks.get(reply.request)?.();
  // Headers set by hooks so far (request id, security, CORS, rate limits) go out with the stream.
  const hookHeaders = Object.fromEntries(
    Object.entries(reply.getHeaders()).filter(
      (entry): entry is [string, string | number | string[]] => entry[1] !== undefined,
    ),
  );
  reply.hijack();
  raw.writeHead(200, {
    ...hookHeaders,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    // The connection is not reused after a stream: ending it closes the socket, so shutdown never waits.
    connection: 'close',
    // Tells nginx-style proxies not to buffer the stream.
    'x-accel-buffering': 'no',
    ...options.headers,
  });
  raw.flushHeaders();

  const socket = raw.socket;
  let dropReason: string | undefined;
  // Each interval: a keep-alive on a stream with nothing waiting to be sent (one whose client
  // stopped reading would otherwise queue a comment per interval behind its unsent events), else a
  // look at whether the client took anything since the last one, as for MCP streams.
  dropWhenClientStalls(raw, {
    intervalMs: options.keepAliveMs,
    onIdle: () => stream.comment('keep-alive'),
    onStalled: (unsentBytes) => {
      dropReason = `the client took none of the ${unsentBytes} bytes waiting on its event stream for ${STALLED_CLIENT_INTERVALS} keep-alive intervals`;
      options.onClientStalled?.(unsentBytes);
      // 'close' follows, which closes the stream (its sender stops waiting for 'drain').
    },
  });

  const close = (closeOptions: { dropConnection?: boolean } = {}): void => {
    if (closed) return;
    closed = true;
    controller.abort();
    const drop = (): void => {
      if (closeOptions.dropConnection) socket?.destroy();
    };
    if (raw.writableEnded) drop();
    else raw.end(drop);
  };
  raw.on('close', () => {
    // The client left mid-stream, the usual end of a stream: the response never finishes, and
    // Fastify runs a response's onResponse hooks (access log, request metrics) on 'finish' or
    // 'error' only. The 'error' says what happened to the response and lets them run.
    if (!raw.writableFinished && raw.listenerCount('error') > 0) {
      raw.emit('error', new Error(dropReason ?? 'the client closed the event stream'));
    }
    close();
  });
  raw.on('error', () => close());
  // A client that left before the stream opened (while its session was looked up) emitted 'close'
  // already: nothing else would end this stream, which would hold its place under the stream caps
  // until its session ended (or for good, once a frame written to the dead socket awaits 'drain').
  if (socket === null || socket.destroyed) close();

  const stream: SseStream = {
    signal: controller.signal,
    get closed() {
      return closed;
    },
    async send(frame) {
      if (closed) return;
      if (raw.write(formatSseFrame(frame))) return;
      try {
        await once(raw, 'drain', { signal: controller.signal });
      } catch {
        // Aborted while waiting: the stream is closed, nothing more to write.
      }
    },
    comment(text) {
      if (closed) return;
      raw.write(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
    },
    close,
  };
  // Opening comment: lets clients see the stream is live before the first event.
  stream.comment('stream open');
  return stream;
}
