// The SSE follower against a scripted HTTP server on port 0 that drops streams mid-way: every
// event must arrive exactly once, in order, with Last-Event-ID sent on each reconnect.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createApiClient } from './client.ts';
import { CliError } from './exit-codes.ts';
import { followSession } from './follow.ts';

const TOTAL = 9;
const sessionId = 'sess-1';

function event(seq: number) {
  const type = seq === TOTAL ? 'session.finished' : 'task.output';
  return {
    sessionId,
    seq,
    type,
    data: { taskId: 't1', name: 'build', stream: 'stdout', line: `line ${seq}` },
    createdAt: new Date(0).toISOString(),
  };
}

function session(status: string) {
  return { id: sessionId, status, strategy: 'parallel', objective: 'x', tasks: [] };
}

describe('followSession', () => {
  let server: Server;
  let base: string;
  const lastEventIds: Array<string | undefined> = [];
  let streamsOpened = 0;

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === `/v1/sessions/${sessionId}/events` && req.headers.accept === 'text/event-stream') {
        streamsOpened += 1;
        const header = req.headers['last-event-id'];
        lastEventIds.push(typeof header === 'string' ? header : undefined);
        const from = Number(header ?? 0);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': hello\n\n');
        // Each connection sends at most 3 events, then dies without a clean end (socket destroyed).
        // The first replays one already-sent event to check de-duplication by seq.
        const start = Math.max(1, from);
        for (let seq = start; seq <= Math.min(TOTAL, start + 2); seq++) {
          res.write(`id: ${seq}\nevent: ${event(seq).type}\ndata: ${JSON.stringify(event(seq))}\n\n`);
        }
        if (start + 2 >= TOTAL) res.end();
        else setTimeout(() => res.destroy(), 20);
        return;
      }
      if (url.pathname === `/v1/sessions/${sessionId}/events`) {
        const afterSeq = Number(url.searchParams.get('after') ?? 0);
        const items = [];
        for (let seq = afterSeq + 1; seq <= TOTAL; seq++) items.push(event(seq));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ items, nextAfter: TOTAL }));
        return;
      }
      if (url.pathname === `/v1/sessions/${sessionId}`) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(session(streamsOpened >= 4 ? 'completed' : 'running')));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ code: 'SESSION_NOT_FOUND', detail: 'Session not found', status: 404 }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('delivers every event once, in order, across dropped connections', async () => {
    const client = createApiClient({ server: base });
    const seen: number[] = [];
    const reconnects: number[] = [];
    const final = await followSession(client, sessionId, {
      onEvent: (e) => seen.push(e.seq),
      onReconnect: (_attempt, lastSeq) => reconnects.push(lastSeq),
    });
    assert.deepEqual(
      seen,
      Array.from({ length: TOTAL }, (_, i) => i + 1),
    );
    assert.equal(final.status, 'completed');
    assert.ok(reconnects.length >= 2, 'the stream was resumed');
    // The first connection starts from the beginning; every later one resumes after the last seq seen.
    assert.equal(lastEventIds[0], undefined);
    // Each connection replays its resume point again (3, 5, 7): those duplicates must be dropped.
    assert.deepEqual(lastEventIds, [undefined, '3', '5', '7']);
  });

  test('a 404 is reported as NOT_FOUND with exit code 4, without retrying', async () => {
    const client = createApiClient({ server: base });
    await assert.rejects(
      followSession(client, 'missing', { onEvent: () => {} }),
      (error: unknown) =>
        error instanceof CliError && error.code === 'SESSION_NOT_FOUND' && error.exitCode === 4,
    );
  });

  test('an unreachable server fails with exit code 3 after the allowed reconnects', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const client = createApiClient({ server: `http://127.0.0.1:${port}` });
    await assert.rejects(
      followSession(client, sessionId, { onEvent: () => {}, retryForMs: 300 }),
      (error: unknown) =>
        error instanceof CliError && error.exitCode === 3 && /cannot reach MAOS/.test(error.message),
    );
  });

  test('a 503 while the server restarts is retried; a base path in the server URL is kept', async () => {
    let attempts = 0;
    const paths: string[] = [];
    const flaky = createServer((req, res) => {
      paths.push(req.url ?? '');
      if (req.headers.accept === 'text/event-stream') {
        attempts += 1;
        if (attempts === 1) {
          res.writeHead(503, { 'content-type': 'application/problem+json' });
          res.end(JSON.stringify({ code: 'SHUTTING_DOWN', detail: 'Server is shutting down', status: 503 }));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(
          `id: 1\nevent: session.finished\ndata: ${JSON.stringify({ ...event(1), type: 'session.finished' })}\n\n`,
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(req.url?.includes('/events') ? { items: [], nextAfter: 1 } : session('completed')),
      );
    });
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
    try {
      const port = (flaky.address() as AddressInfo).port;
      const client = createApiClient({ server: `http://127.0.0.1:${port}/maos` });
      const seen: number[] = [];
      const final = await followSession(client, sessionId, { onEvent: (e) => seen.push(e.seq) });
      assert.equal(final.status, 'completed');
      assert.deepEqual(seen, [1]);
      assert.equal(attempts, 2);
      assert.ok(
        paths.every((path) => path.startsWith('/maos/v1/')),
        paths.join(' '),
      );
    } finally {
      flaky.closeAllConnections();
      await new Promise((resolve) => flaky.close(resolve));
    }
  });
  test('a stream that opens and breaks at once each time is an outage: it gives up within retryForMs', async () => {
    let opened = 0;
    const broken = createServer((req, res) => {
      if (req.headers.accept === 'text/event-stream') {
        opened += 1;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': hello\n\n');
        setTimeout(() => res.destroy(), 5);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(session('running')));
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (broken.address() as AddressInfo).port;
      const client = createApiClient({ server: `http://127.0.0.1:${port}` });
      const infos: boolean[] = [];
      await assert.rejects(
        followSession(client, sessionId, {
          onEvent: () => {},
          retryForMs: 600,
          onReconnect: (_attempt, _lastSeq, info) => infos.push(info.connected),
        }),
        (error: unknown) =>
          error instanceof CliError &&
          error.code === 'STREAM_INTERRUPTED' &&
          error.exitCode === 3 &&
          /gave up after \d+ attempts/.test(error.message),
      );
      assert.ok(opened >= 2, `opened ${opened}`);
      assert.ok(infos.every(Boolean), 'each attempt had opened the stream');
    } finally {
      broken.closeAllConnections();
      await new Promise((resolve) => broken.close(resolve));
    }
  });

  test('the very first stream request refused: retried, reported as not connected yet', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const client = createApiClient({ server: `http://127.0.0.1:${port}` });
    const infos: Array<{ connected: boolean; code: string | undefined }> = [];
    await assert.rejects(
      followSession(client, sessionId, {
        onEvent: () => {},
        retryForMs: 400,
        onReconnect: (_attempt, _lastSeq, info) =>
          infos.push({ connected: info.connected, code: info.error?.code }),
      }),
      (error: unknown) => error instanceof CliError && error.exitCode === 3,
    );
    assert.ok(infos.length >= 1);
    assert.deepEqual(infos[0], { connected: false, code: 'UNREACHABLE' });
  });
  test('stopped by its caller: fails with INTERRUPTED without asking for the session', async () => {
    // Counts the requests of one follow; its stream sends two events and then stays open.
    const requests: string[] = [];
    const open = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      if (req.headers.accept === 'text/event-stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const seq of [1, 2]) {
          res.write(`id: ${seq}\nevent: ${event(seq).type}\ndata: ${JSON.stringify(event(seq))}\n\n`);
        }
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(session('running')));
    });
    await new Promise<void>((resolve) => open.listen(0, '127.0.0.1', resolve));
    try {
      const port = (open.address() as AddressInfo).port;
      const client = createApiClient({ server: `http://127.0.0.1:${port}` });
      const controller = new AbortController();
      const seen: number[] = [];
      await assert.rejects(
        followSession(client, sessionId, {
          signal: controller.signal,
          onEvent: (e) => {
            seen.push(e.seq);
            if (e.seq === 2) controller.abort();
          },
        }),
        (error: unknown) =>
          error instanceof CliError && error.code === 'INTERRUPTED' && error.exitCode === 130,
      );
      assert.deepEqual(seen, [1, 2]);
      // The stream and nothing else: no GET /v1/sessions/:id whose answer nobody reads.
      assert.deepEqual(requests, [`GET /v1/sessions/${sessionId}/events`]);
    } finally {
      open.closeAllConnections();
      await new Promise((resolve) => open.close(resolve));
    }
  });
});
