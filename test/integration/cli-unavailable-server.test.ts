// The real `maos` binary against scripted node:http servers on 127.0.0.1: a server that answers 503
// a few times, one that starts listening only after a delay, one that is not there, and errors that
// never go away (400/401/403/404). Following retries its very first request like its reconnects;
// everything else fails at once with one `error CODE: message` line and the documented exit code.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runMaos } from '../fixtures/cli.ts';
import { freePort } from '../fixtures/free-port.ts';

const SESSION = 'sess-1';
const servers: Server[] = [];

after(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface Scripted {
  url: string;
  /** Every request seen, as `METHOD path`. */
  requests: string[];
}

/** A MAOS-like answer: session SESSION has ended, its log holds one event (session.finished). */
const answerLikeMaos: Handler = (req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const event = {
    sessionId: SESSION,
    seq: 1,
    type: 'session.finished',
    data: { status: 'completed' },
    createdAt: new Date(0).toISOString(),
  };
  const session = {
    id: SESSION,
    status: 'completed',
    strategy: 'parallel',
    objective: 'x',
    tasks: [],
    createdAt: new Date(0).toISOString(),
    updatedAt: new Date(0).toISOString(),
  };
  if (req.method === 'POST' && path === '/v1/sessions') return sendJson(res, 201, session);
  if (path === `/v1/sessions/${SESSION}/events` && req.headers.accept === 'text/event-stream') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(`id: 1\nevent: session.finished\ndata: ${JSON.stringify(event)}\n\n`);
    return;
  }
  if (path === `/v1/sessions/${SESSION}/events`) {
    const afterSeq = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('after') ?? 0);
    return sendJson(res, 200, { items: afterSeq >= 1 ? [] : [event] });
  }
  if (path === `/v1/sessions/${SESSION}`) return sendJson(res, 200, session);
  sendProblem(res, 404, 'SESSION_NOT_FOUND', 'Session not found');
};

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function sendProblem(res: ServerResponse, status: number, code: string, detail: string): void {
  res.writeHead(status, { 'content-type': 'application/problem+json' });
  res.end(JSON.stringify({ status, code, detail }));
}

/** A load balancer's answer while no replica is ready: an HTML page, no problem document. */
function sendGatewayPage(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'content-type': 'text/html' });
  res.end(`<html><body><h1>${status}</h1></body></html>`);
}

/** Starts a server on port 0 (or `port`); `handler` gets the 1-based number of each request. */
async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse, n: number) => void,
  port = 0,
): Promise<Scripted> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`);
    handler(req, res, requests.length);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** The servers started by `listenAfterRefusal`, by port. */
const lateServers = new Map<number, Promise<Scripted>>();

/**
 * An `onStderr` that starts a MAOS-like server on `port` once the CLI has reported a refused
 * connection: the refusal is certain to come first, however long the CLI takes to start (a fixed
 * delay could pass before its first request on a busy machine).
 */
function listenAfterRefusal(port: number): (chunk: string) => void {
  let stderr = '';
  return (chunk) => {
    stderr += chunk;
    if (!lateServers.has(port) && /ECONNREFUSED/.test(stderr)) {
      lateServers.set(
        port,
        startServer((req, res) => answerLikeMaos(req, res), port),
      );
    }
  };
}

/** The server `listenAfterRefusal` started on `port` (fails when none was: no refusal was reported). */
function serverStarted(port: number): Promise<Scripted> {
  const started = lateServers.get(port);
  assert.ok(started, `no refused connection was reported for port ${port}`);
  return started;
}

/** Runs `maos` against `server` with no stored credentials. */
function maos(server: string, args: string[], options: Parameters<typeof runMaos>[1] = {}) {
  return runMaos(['--server', server, ...args], {
    timeoutMs: 60_000,
    ...options,
    env: { MAOS_CREDENTIALS: join(tmpdir(), 'maos-cli-unavailable-no-credentials.json'), ...options.env },
  });
}

/** The error output is exactly one `error CODE: message` line (plus `  - ` details), no stack. */
function assertOneErrorLine(stderr: string, code: string): void {
  const errors = stderr.split('\n').filter((line) => line.startsWith('error '));
  assert.equal(errors.length, 1, stderr);
  assert.match(errors[0] as string, new RegExp(`^error ${code}: \\S`));
  assert.doesNotMatch(stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
}

describe('maos logs -f: the first request waits for an unavailable server', () => {
  test('answers 503 twice (no replica ready), then the session: it follows to the end', async () => {
    const server = await startServer((req, res, n) =>
      n <= 2 ? sendGatewayPage(res, 503) : answerLikeMaos(req, res),
    );
    const result = await maos(server.url, ['logs', SESSION, '-f', '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout.trim()).type, 'session.finished');
    assert.equal((result.stderr.match(/retrying in/g) ?? []).length, 2, result.stderr);
    assert.match(result.stderr, /HTTP 503 .*no MAOS server ready/);
    assert.deepEqual(server.requests.slice(0, 3), [
      `GET /v1/sessions/${SESSION}`,
      `GET /v1/sessions/${SESSION}`,
      `GET /v1/sessions/${SESSION}`,
    ]);
  });

  test('refused connections until the server starts listening: it follows to the end', async () => {
    const port = await freePort();
    const result = await maos(`http://127.0.0.1:${port}`, ['logs', SESSION, '-f', '--tail', '5'], {
      onStderr: listenAfterRefusal(port),
    });
    await serverStarted(port);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /#1 .*session finished/);
    assert.match(result.stderr, /UNREACHABLE: cannot reach MAOS .*ECONNREFUSED.* retrying in/);
  });

  test('no server at all: gives up after --retry-for with exit 3 and a final error', async () => {
    const port = await freePort();
    const result = await maos(`http://127.0.0.1:${port}`, ['logs', SESSION, '-f', '--retry-for', '1']);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /retrying in/);
    assertOneErrorLine(result.stderr, 'UNREACHABLE');
    assert.match(result.stderr, /^error UNREACHABLE: .*gave up after \d+ attempts over \d+ s$/m);
  });

  test('--retry-for 0 fails at the first refusal; a bad value is a usage error', async () => {
    const port = await freePort();
    const once = await maos(`http://127.0.0.1:${port}`, ['logs', SESSION, '-f', '--retry-for', '0']);
    assert.equal(once.code, 3, once.stderr);
    assert.doesNotMatch(once.stderr, /retrying/);
    assertOneErrorLine(once.stderr, 'UNREACHABLE');
    const bad = await maos(`http://127.0.0.1:${port}`, ['logs', SESSION, '-f', '--retry-for', 'soon']);
    assert.equal(bad.code, 2, bad.stderr);
    assertOneErrorLine(bad.stderr, 'USAGE');
  });

  for (const [status, code, exit] of [
    [404, 'SESSION_NOT_FOUND', 4],
    [401, 'UNAUTHENTICATED', 5],
    [403, 'FORBIDDEN', 5],
    [400, 'VALIDATION_FAILED', 2],
  ] as const) {
    test(`a ${status} fails at once with exit ${exit}, never retried`, async () => {
      const server = await startServer((_req, res) =>
        sendProblem(res, status, code, `refused with ${status}`),
      );
      const result = await maos(server.url, ['logs', SESSION, '-f']);
      assert.equal(result.code, exit, result.stderr);
      assertOneErrorLine(result.stderr, code);
      assert.match(result.stderr, new RegExp(`refused with ${status}`));
      assert.doesNotMatch(result.stderr, /retrying/);
      assert.equal(server.requests.length, 1, server.requests.join(', '));
    });
  }

  test('a 429 is waited out as its Retry-After asks; one past --retry-for fails at once', async () => {
    const limited = await startServer((req, res, n) => {
      if (n > 1) return answerLikeMaos(req, res);
      res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '1' });
      res.end(JSON.stringify({ status: 429, code: 'RATE_LIMITED', detail: 'Too many requests' }));
    });
    const waited = await maos(limited.url, ['logs', SESSION, '-f']);
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stderr, /RATE_LIMITED: Too many requests — retrying in 1 s/);

    const quota = await startServer((_req, res) => {
      res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '3600' });
      res.end(JSON.stringify({ status: 429, code: 'QUOTA_EXCEEDED', detail: 'Daily quota used up' }));
    });
    const refused = await maos(quota.url, ['logs', SESSION, '-f']);
    assert.equal(refused.code, 7, refused.stderr);
    assertOneErrorLine(refused.stderr, 'QUOTA_EXCEEDED');
    assert.doesNotMatch(refused.stderr, /retrying/);
    assert.equal(quota.requests.length, 1);
  });

  test('Ctrl-C while waiting for the server ends with 130 and no error line', async () => {
    const port = await freePort();
    const result = await maos(`http://127.0.0.1:${port}`, ['logs', SESSION, '-f'], {
      onStderr: (chunk, child) => {
        if (chunk.includes('retrying in')) child.kill('SIGINT');
      },
    });
    assert.equal(result.code, 130, result.stderr);
    assert.doesNotMatch(result.stderr, /^error /m);
  });
});

describe('maos run --follow against an unavailable server', () => {
  test('refused until the server listens: the submit is retried (nothing was sent), then followed', async () => {
    const port = await freePort();
    const result = await maos(`http://127.0.0.1:${port}`, ['run', 'x', '--follow', '--json'], {
      onStderr: listenAfterRefusal(port),
    });
    const server = await serverStarted(port);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(JSON.parse(result.stdout).status, 'completed');
    assert.match(result.stderr, /ECONNREFUSED.* retrying in/);
    assert.equal(server.requests.filter((r) => r.startsWith('POST')).length, 1);
  });

  test('a 503 on the submit is not repeated without an idempotency key (no second session)', async () => {
    const server = await startServer((req, res, n) =>
      n <= 1 ? sendGatewayPage(res, 503) : answerLikeMaos(req, res),
    );
    const result = await maos(server.url, ['run', 'x', '--follow']);
    assert.equal(result.code, 7, result.stderr);
    assertOneErrorLine(result.stderr, 'HTTP_503');
    assert.match(result.stderr, /--idempotency-key makes the submit safe to retry/);
    assert.equal(server.requests.length, 1);
  });

  test('a 429 on the submit is retried without a key (the server did not process it)', async () => {
    const server = await startServer((req, res, n) => {
      if (n > 1) return answerLikeMaos(req, res);
      res.writeHead(429, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ status: 429, code: 'RATE_LIMITED', detail: 'Too many requests' }));
    });
    const result = await maos(server.url, ['run', 'x', '--follow']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(server.requests.slice(0, 2), ['POST /v1/sessions', 'POST /v1/sessions']);
  });

  test('a 503 on the submit is retried with an idempotency key, then the stream is followed', async () => {
    const server = await startServer((req, res, n) =>
      n === 1 || n === 3 ? sendGatewayPage(res, 503) : answerLikeMaos(req, res),
    );
    const result = await maos(server.url, ['run', 'x', '--follow', '--idempotency-key', 'k-1']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /completed/);
    // The submit once, the first stream request once: both waited for.
    assert.match(result.stderr, /HTTP_503: .*retrying in/);
    assert.match(result.stderr, /event stream not open yet \(HTTP_503/);
    assert.deepEqual(server.requests.slice(0, 4), [
      'POST /v1/sessions',
      'POST /v1/sessions',
      `GET /v1/sessions/${SESSION}/events`,
      `GET /v1/sessions/${SESSION}/events`,
    ]);
  });
});

describe('one-shot commands fail at once with one line and the documented exit code', () => {
  const commands: string[][] = [
    ['sessions', 'list'],
    ['sessions', 'show', SESSION],
    ['sessions', 'cancel', SESSION],
    ['approve', SESSION],
    ['reject', SESSION, '--reason', 'no'],
    ['logs', SESSION],
    ['logs', SESSION, '--tail', '3'],
    ['roles'],
    ['run', 'x'],
  ];

  test('server not running: exit 3 with UNREACHABLE, no retries', async () => {
    const port = await freePort();
    for (const args of commands) {
      const result = await maos(`http://127.0.0.1:${port}`, args);
      assert.equal(result.code, 3, `${args.join(' ')}: ${result.stderr}`);
      assertOneErrorLine(result.stderr, 'UNREACHABLE');
      assert.doesNotMatch(result.stderr, /retrying/);
    }
  });

  test('server answering 503: exit 7, saying which server answered and what it means', async () => {
    const server = await startServer((_req, res) => sendGatewayPage(res, 503));
    for (const args of commands) {
      const result = await maos(server.url, [...args, '--json']);
      assert.equal(result.code, 7, `${args.join(' ')}: ${result.stderr}`);
      assertOneErrorLine(result.stderr, 'HTTP_503');
      assert.match(result.stderr, new RegExp(`HTTP 503 Service Unavailable from ${server.url}`));
      assert.equal(result.stdout, '');
    }
    assert.equal(server.requests.length, commands.length);
  });

  test('an empty session id is a usage error, not a request for the session list', async () => {
    const server = await startServer((req, res) => answerLikeMaos(req, res));
    for (const args of [
      ['sessions', 'show', ''],
      ['sessions', 'cancel', ' '],
      ['approve', ''],
      ['reject', '', '--reason', 'no'],
      ['logs', ''],
      ['logs', '', '-f'],
    ]) {
      const result = await maos(server.url, args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assertOneErrorLine(result.stderr, 'USAGE');
      assert.match(result.stderr, /session id must not be empty/);
    }
    assert.deepEqual(server.requests, []);
  });

  test('a token with a line break is a usage error, not an unreachable server (and never retried)', async () => {
    const server = await startServer((req, res) => answerLikeMaos(req, res));
    for (const args of [
      ['--token', 'maos_abc\nmaos_def', 'sessions', 'list'],
      ['--token', 'maos_abc\nmaos_def', 'logs', SESSION, '-f'],
    ]) {
      const result = await maos(server.url, args);
      assert.equal(result.code, 2, result.stderr);
      assertOneErrorLine(result.stderr, 'INVALID_TOKEN');
      assert.match(result.stderr, /line break/);
      assert.doesNotMatch(result.stderr, /retrying|cannot reach/);
    }
    assert.deepEqual(server.requests, []);
  });

  test('a server URL on a port HTTP clients refuse to use is a usage error (exit 2), not a server that is down', async () => {
    const credentials = join(tmpdir(), 'maos-cli-unavailable-no-credentials.json');
    for (const [args, env, port] of [
      [['--server', 'http://127.0.0.1:6000', 'logs', SESSION, '-f'], {}, 6000],
      [['sessions', 'list'], { MAOS_SERVER: 'https://maos.example.com:10080' }, 10080],
      [['login', '--server', 'http://127.0.0.1:6665', '--token', 't'], {}, 6665],
      [['mcp', '--server', 'http://127.0.0.1:6000'], {}, 6000],
      [['mcp'], { MAOS_SERVER: 'http://127.0.0.1:6667/maos' }, 6667],
      [['doctor', '--server', 'http://127.0.0.1:6000'], {}, 6000],
    ] as const) {
      const result = await runMaos([...args], { env: { MAOS_CREDENTIALS: credentials, ...env } });
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assertOneErrorLine(result.stderr, 'INVALID_SERVER_URL');
      assert.match(result.stderr, new RegExp(`port ${port} is one the HTTP client .* refuses`));
      assert.doesNotMatch(result.stderr, /retrying|maos serve` running/, 'never retried');
      assert.equal(result.stdout, '');
    }
  });
});

describe('maos login checks the credential like every other request', () => {
  const credentials = join(tmpdir(), `maos-cli-login-${process.pid}.json`);
  after(() => rmSync(credentials, { force: true }));

  test('a server without the MAOS API (404): exit 4, nothing stored', async () => {
    const server = await startServer((_req, res) => sendGatewayPage(res, 404));
    const result = await maos(server.url, ['login', '--token', 't'], {
      env: { MAOS_CREDENTIALS: credentials },
    });
    assert.equal(result.code, 4, result.stderr);
    assertOneErrorLine(result.stderr, 'NOT_FOUND');
    assert.match(result.stderr, /has no MAOS API/);
    assert.equal(existsSync(credentials), false);
  });

  test('a 503: exit 7 with the answer, not an INTERNAL error', async () => {
    const server = await startServer((_req, res) => sendGatewayPage(res, 503));
    const result = await maos(server.url, ['login', '--token', 't'], {
      env: { MAOS_CREDENTIALS: credentials },
    });
    assert.equal(result.code, 7, result.stderr);
    assertOneErrorLine(result.stderr, 'HTTP_503');
    assert.equal(existsSync(credentials), false);
  });

  test('a base path in --server is kept for the check', async () => {
    const server = await startServer((req, res) =>
      req.url === '/maos/v1/roles' ? sendJson(res, 200, { items: [] }) : sendGatewayPage(res, 404),
    );
    const result = await maos(`${server.url}/maos`, ['login', '--token', 't'], {
      env: { MAOS_CREDENTIALS: credentials },
    });
    assert.equal(result.code, 0, result.stderr);
    // The check with the token, then one without (does the server ask for credentials at all?).
    assert.deepEqual(server.requests, ['GET /maos/v1/roles', 'GET /maos/v1/roles']);
    assert.equal(existsSync(credentials), true);
  });
});
