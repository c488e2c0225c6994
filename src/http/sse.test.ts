// SSE framing and the streaming events route over a real socket: replay, live follow, resume
// from Last-Event-ID, keep-alives, end after session.finished, disconnect and shutdown.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { waitFor } from '../../test/fixtures/wait-for.ts';
import { createSseParser } from '../cli/sse-reader.ts';
import { createLogger } from '../observability/logger.ts';
import { createFakeSessionService, type FakeSessionService } from './fake-session-service.test-support.ts';
import { buildHttpServer } from './server.ts';
import { formatSseFrame } from './sse.ts';
import type { HttpObserver } from './types.ts';

describe('formatSseFrame', () => {
  test('writes id, event and one data line per input line', () => {
    assert.equal(
      formatSseFrame({ id: '7', event: 'task.output', data: 'a\nb' }),
      'id: 7\nevent: task.output\ndata: a\ndata: b\n\n',
    );
  });
  test('rejects CR or LF in id and event', () => {
    assert.throws(() => formatSseFrame({ id: '1\nevent: x', data: '{}' }), /CR or LF/);
    assert.throws(() => formatSseFrame({ event: 'x\rdata: y', data: '{}' }), /CR or LF/);
  });
});

interface Harness {
  app: FastifyInstance;
  url: string;
  service: FakeSessionService;
  sessionId: string;
}

async function startHarness(
  keepAliveSeconds = 15,
  maxSseStreamsPerTenant = 100,
  extra: { maxSseStreamsPerPrincipal?: number; observer?: HttpObserver } = {},
): Promise<Harness> {
  const service = createFakeSessionService();
  const app = await buildHttpServer({
    config: {
      http: {
        bodyLimitBytes: 65536,
        maxPageSize: 100,
        sseKeepAliveSeconds: keepAliveSeconds,
        maxSseStreamsPerTenant,
        ...(extra.maxSseStreamsPerPrincipal === undefined
          ? {}
          : { maxSseStreamsPerPrincipal: extra.maxSseStreamsPerPrincipal }),
      },
    },
    ...(extra.observer ? { observer: extra.observer } : {}),
    service,
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({}),
    listRoles: () => [],
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const created = await fetch(`${url}/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ objective: 'x', agents: [{ role: 'qa', task: 't', runner: 'ok' }] }),
  });
  const sessionId = ((await created.json()) as { id: string }).id;
  return { app, url, service, sessionId };
}

/** Reads a stream until it ends or `stopWhen` says so; returns frames and the raw text. */
async function readStream(
  response: Response,
  stopWhen: (frames: Array<{ id?: string; event: string; data: string }>) => boolean = () => false,
): Promise<{ frames: Array<{ id?: string; event: string; data: string }>; raw: string }> {
  const parser = createSseParser();
  const frames: Array<{ id?: string; event: string; data: string }> = [];
  let raw = '';
  const decoder = new TextDecoder();
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      raw += text;
      frames.push(...parser.push(text));
      if (stopWhen(frames)) break;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return { frames, raw };
}

const streamHeaders = { accept: 'text/event-stream' };

describe('GET /v1/sessions/:id/events as SSE', () => {
  test('replays, follows live events and ends after session.finished', async (t) => {
    const h = await startHarness();
    t.after(() => h.app.close());
    h.service.appendEvent(h.sessionId, 'task.status', { status: 'running' });
    const response = await fetch(`${h.url}/v1/sessions/${h.sessionId}/events`, {
      headers: { ...streamHeaders, 'x-request-id': 'sse-1' },
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(response.status, 200);
    assert.match(String(response.headers.get('content-type')), /^text\/event-stream/);
    assert.equal(response.headers.get('x-request-id'), 'sse-1');
    setTimeout(() => {
      h.service.appendEvent(h.sessionId, 'task.output', { line: 'hello\nworld' });
      h.service.appendEvent(h.sessionId, 'session.finished', { status: 'completed' });
      h.service.appendEvent(h.sessionId, 'after.end', {});
    }, 50);
    const { frames } = await readStream(response);
    assert.deepEqual(
      frames.map((f) => [f.id, f.event]),
      [
        ['1', 'session.created'],
        ['2', 'task.status'],
        ['3', 'task.output'],
        ['4', 'session.finished'],
      ],
    );
    const output = JSON.parse(frames[2]?.data ?? '{}');
    assert.equal(output.seq, 3);
    assert.deepEqual(output.data, { line: 'hello\nworld' });
    assert.match(output.createdAt, /Z$/);
  });

  test('Last-Event-ID (and ?after=) resume exactly after the given seq', async (t) => {
    const h = await startHarness();
    t.after(() => h.app.close());
    for (let i = 0; i < 5; i++) h.service.appendEvent(h.sessionId, 'task.output', { i });
    h.service.appendEvent(h.sessionId, 'session.finished', { status: 'completed' });
    const resumed = await fetch(`${h.url}/v1/sessions/${h.sessionId}/events?after=1`, {
      headers: { ...streamHeaders, 'last-event-id': '4' },
      signal: AbortSignal.timeout(10_000),
    });
    const { frames } = await readStream(resumed);
    assert.deepEqual(
      frames.map((f) => f.id),
      ['5', '6', '7'],
    );
    const byQuery = await fetch(`${h.url}/v1/sessions/${h.sessionId}/events?after=6`, {
      headers: streamHeaders,
      signal: AbortSignal.timeout(10_000),
    });
    assert.deepEqual(
      (await readStream(byQuery)).frames.map((f) => f.id),
      ['7'],
    );
    // Resuming after the final event of an ended session ends at once, without frames.
    h.service.setStatus(h.sessionId, 'completed');
    const past = await fetch(`${h.url}/v1/sessions/${h.sessionId}/events`, {
      headers: { ...streamHeaders, 'last-event-id': '7' },
      signal: AbortSignal.timeout(10_000),
    });
    assert.deepEqual((await readStream(past)).frames, []);
  });

  test('sends keep-alive comments while idle', async (t) => {
    const h = await startHarness(0.05);
    t.after(() => h.app.close());
    const response = await fetch(`${h.url}/v1/sessions/${h.sessionId}/events`, {
      headers: streamHeaders,
      signal: AbortSignal.timeout(10_000),
    });
    let raw = '';
    const decoder = new TextDecoder();
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    while (!raw.includes(': keep-alive\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      raw += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
    assert.match(raw, /: keep-alive\n\n/);
  });

  test('HEAD with Accept: text/event-stream answers at once instead of holding a stream', async (t) => {
    const h = await startHarness();
    t.after(() => h.app.close());
    const response = await fetch(`${h.url}/v1/sessions/${h.sessionId}/events`, {
      method: 'HEAD',
      headers: streamHeaders,
      signal: AbortSignal.timeout(5_000),
    });
    assert.equal(response.status, 200);
    assert.match(String(response.headers.get('content-type')), /^application\/json/);
  });

  test('a tenant over its stream cap gets 429 until one of its streams closes', async (t) => {
    const h = await startHarness(15, 1);
    t.after(() => h.app.close());
    const url = `${h.url}/v1/sessions/${h.sessionId}/events`;
    const controller = new AbortController();
    const first = await fetch(url, { headers: streamHeaders, signal: controller.signal });
    await readStream(first, (frames) => frames.length >= 1);
    const second = await fetch(url, { headers: streamHeaders, signal: AbortSignal.timeout(5_000) });
    assert.equal(second.status, 429);
    assert.equal(((await second.json()) as { code: string }).code, 'RESOURCE_LIMIT_EXCEEDED');
    controller.abort();
    const status = await waitFor(
      async () => {
        const retry = await fetch(`${url}?after=999`, {
          headers: streamHeaders,
          signal: AbortSignal.timeout(5_000),
        });
        await retry.body?.cancel();
        return retry.status === 429 ? undefined : retry.status;
      },
      10_000,
      'the server to see the first stream closed',
    );
    assert.equal(status, 200, 'a stream can open again once the first one closed');
  });

  test('a refusal by either stream cap carries Retry-After and is reported to the observer (metrics)', async (t) => {
    let refused = 0;
    const observer: HttpObserver = { sseStreamRefused: () => (refused += 1) };
    const h = await startHarness(15, 2, { maxSseStreamsPerPrincipal: 1, observer });
    t.after(() => h.app.close());
    const url = `${h.url}/v1/sessions/${h.sessionId}/events`;
    const controller = new AbortController();
    t.after(() => controller.abort());
    const first = await fetch(url, { headers: streamHeaders, signal: controller.signal });
    // Read a frame but keep the stream open (cancelling the reader would close it).
    await first.body?.getReader().read();
    const second = await fetch(url, { headers: streamHeaders, signal: AbortSignal.timeout(5_000) });
    assert.equal(second.status, 429);
    assert.equal(second.headers.get('retry-after'), '10');
    const problem = (await second.json()) as { code: string; details: { setting: string; limit: number } };
    assert.equal(problem.code, 'RESOURCE_LIMIT_EXCEEDED');
    assert.deepEqual(problem.details, { setting: 'http.maxSseStreamsPerPrincipal', limit: 1 });
    assert.equal(refused, 1);
  });

  test('a client that leaves before its stream opens holds no stream (cap, gauge)', async (t) => {
    let open = 0;
    const observer: HttpObserver = { sseConnection: (delta) => (open += delta) };
    const h = await startHarness(15, 1, { observer });
    t.after(() => h.app.close());
    // The session lookup that precedes the stream waits until the client has gone.
    let release = () => {};
    let looking = false;
    let looked = false;
    const getSession = h.service.getSession.bind(h.service);
    h.service.getSession = async (actor, id) => {
      if (looking) return getSession(actor, id);
      looking = true;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      try {
        return await getSession(actor, id);
      } finally {
        looked = true;
      }
    };
    const { hostname, port } = new URL(h.url);
    const socket = connect(Number(port), hostname);
    socket.on('error', () => {});
    socket.write(
      `GET /v1/sessions/${h.sessionId}/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`,
    );
    await waitFor(() => looking, 10_000, 'the stream request to look the session up');
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    release();
    await waitFor(() => looked, 10_000, 'the lookup to end');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(open, 0, 'no stream is left open for the client that left');
    const next = await fetch(`${h.url}/v1/sessions/${h.sessionId}/events`, {
      headers: streamHeaders,
      signal: AbortSignal.timeout(5_000),
    });
    await next.body?.cancel();
    assert.equal(next.status, 200, 'the cap of 1 is free for the next stream');
  });

  test('a stream of an unknown session is a 404 problem, not a stream', async (t) => {
    const h = await startHarness();
    t.after(() => h.app.close());
    const response = await fetch(`${h.url}/v1/sessions/0190a0a0-0000-7000-8000-0000000000ff/events`, {
      headers: streamHeaders,
    });
    assert.equal(response.status, 404);
    assert.match(String(response.headers.get('content-type')), /problem\+json/);
    assert.equal(((await response.json()) as { code: string }).code, 'SESSION_NOT_FOUND');
  });

  test('client disconnect unsubscribes; server close ends open streams', async (t) => {
    const h = await startHarness();
    let closed = false;
    t.after(async () => {
      if (!closed) await h.app.close();
    });
    let watchers = 0;
    const watch = h.service.watchEvents.bind(h.service);
    h.service.watchEvents = (id, onWake) => {
      watchers++;
      const unsubscribe = watch(id, onWake);
      return () => {
        watchers--;
        unsubscribe();
      };
    };
    const controller = new AbortController();
    const first = await fetch(`${h.url}/v1/sessions/${h.sessionId}/events`, {
      headers: streamHeaders,
      signal: controller.signal,
    });
    await readStream(first, (frames) => frames.length >= 1);
    controller.abort();
    await waitFor(() => watchers === 0, 10_000, 'the watcher to be removed after the client left');

    const second = await fetch(`${h.url}/v1/sessions/${h.sessionId}/events`, {
      headers: streamHeaders,
      signal: AbortSignal.timeout(10_000),
    });
    const reading = readStream(second);
    await new Promise((r) => setTimeout(r, 50));
    closed = true;
    await h.app.close();
    const { frames } = await reading;
    assert.deepEqual(
      frames.map((f) => f.event),
      ['session.created'],
    );
    assert.equal(watchers, 0);
  });
});
