// Malformed and hostile requests against the real server: every one gets a 4xx
// application/problem+json with a stable code, never a 500 or a stack trace.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { PLAIN_HTTP_SECURITY_HEADERS } from '../../src/security/security-headers.ts';
import { captureLog } from '../fixtures/log-capture.ts';
import { sampleOf } from '../fixtures/metrics-scrape.ts';
import { requestJson, startTestServer, type TestServer } from '../fixtures/server.ts';

interface Case {
  name: string;
  method?: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  code: string;
}

const agent = { role: 'qa', task: 'do it', runner: 'ok' };
const missingId = '0190a0a0-0000-7000-8000-000000000abc';

const CASES: Case[] = [
  {
    name: 'a query parameter a route does not take',
    path: `/v1/sessions/${missingId}?limit=5`,
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'a query parameter on the role catalogue',
    path: '/v1/roles?x=1',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'a body on cancel, which takes none',
    method: 'POST',
    path: `/v1/sessions/${missingId}/cancel`,
    body: { force: true },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    // Like POST and DELETE, a PUT that declares no body takes none (the binding is in the path).
    name: 'a body on a role binding, which takes none',
    method: 'PUT',
    path: '/v1/admin/role-bindings/alice/viewer',
    body: { force: true },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'unknown field',
    method: 'POST',
    path: '/v1/sessions',
    body: { objective: 'x', agents: [agent], evil: 1 },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'unknown agent field',
    method: 'POST',
    path: '/v1/sessions',
    body: { objective: 'x', agents: [{ ...agent, command: ['rm'] }] },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'wrong types',
    method: 'POST',
    path: '/v1/sessions',
    body: { objective: 1, agents: 'many' },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'null body',
    method: 'POST',
    path: '/v1/sessions',
    body: 'null',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'array body',
    method: 'POST',
    path: '/v1/sessions',
    body: '[]',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'bad JSON',
    method: 'POST',
    path: '/v1/sessions',
    body: '{"objective": "x",',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'proto pollution',
    method: 'POST',
    path: '/v1/sessions',
    body: '{"objective":"x","__proto__":{"admin":true}}',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'objective too long',
    method: 'POST',
    path: '/v1/sessions',
    body: { objective: 'x'.repeat(20_001), agents: [agent] },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'body over the limit',
    method: 'POST',
    path: '/v1/sessions',
    body: { objective: 'x'.repeat(2_000_000) },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  {
    name: 'form body',
    method: 'POST',
    path: '/v1/sessions',
    body: 'objective=x',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'text body',
    method: 'POST',
    path: '/v1/sessions',
    body: 'objective',
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE',
  },
  {
    name: 'unknown role',
    method: 'POST',
    path: '/v1/sessions',
    body: { objective: 'x', agents: [{ ...agent, role: 'wizard' }] },
    status: 400,
    code: 'INVALID_ROLE',
  },
  {
    name: 'unknown runner',
    method: 'POST',
    path: '/v1/sessions',
    body: { objective: 'x', agents: [{ ...agent, runner: 'rm-rf' }] },
    status: 400,
    code: 'UNKNOWN_RUNNER',
  },
  {
    name: 'dependency cycle',
    method: 'POST',
    path: '/v1/sessions',
    body: {
      objective: 'x',
      strategy: 'pipeline',
      agents: [
        { ...agent, name: 'a', depends_on: ['b'] },
        { ...agent, name: 'b', depends_on: ['a'] },
      ],
    },
    status: 400,
    code: 'INVALID_PLAN',
  },
  {
    name: 'unknown dependency',
    method: 'POST',
    path: '/v1/sessions',
    body: { objective: 'x', strategy: 'pipeline', agents: [{ ...agent, name: 'a', depends_on: ['ghost'] }] },
    status: 400,
    code: 'INVALID_PLAN',
  },
  {
    name: 'bad idempotency key',
    method: 'POST',
    path: '/v1/sessions',
    body: { objective: 'x', agents: [agent] },
    headers: { 'idempotency-key': 'x'.repeat(300) },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  { name: 'invalid id', path: '/v1/sessions/not-a-uuid', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'injection in id', path: "/v1/sessions/1'%20OR%20'1'='1", status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unknown session', path: `/v1/sessions/${missingId}`, status: 404, code: 'SESSION_NOT_FOUND' },
  {
    name: 'cancel unknown session',
    method: 'POST',
    path: `/v1/sessions/${missingId}/cancel`,
    status: 404,
    code: 'SESSION_NOT_FOUND',
  },
  {
    name: 'events of unknown session',
    path: `/v1/sessions/${missingId}/events`,
    status: 404,
    code: 'SESSION_NOT_FOUND',
  },
  {
    name: 'stream of unknown session',
    path: `/v1/sessions/${missingId}/events`,
    headers: { accept: 'text/event-stream' },
    status: 404,
    code: 'SESSION_NOT_FOUND',
  },
  { name: 'negative limit', path: '/v1/sessions?limit=-1', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'zero limit', path: '/v1/sessions?limit=0', status: 400, code: 'VALIDATION_FAILED' },
  { name: 'fractional limit', path: '/v1/sessions?limit=1.5', status: 400, code: 'VALIDATION_FAILED' },
  {
    // All digits, however many, is lowered to the maximum page size (http-sessions.test.ts).
    name: 'huge limit string that is not a number',
    path: `/v1/sessions?limit=${'9'.repeat(400)}x`,
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  { name: 'unknown status', path: '/v1/sessions?status=exploded', status: 400, code: 'VALIDATION_FAILED' },
  {
    name: 'unknown query parameter',
    path: '/v1/sessions?admin=true',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'cursor with bad characters',
    path: '/v1/sessions?cursor=%27%3B--',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'cursor not issued by the server',
    path: '/v1/sessions?cursor=bm90LWEtY3Vyc29y',
    status: 400,
    code: 'INVALID_CURSOR',
  },
  {
    name: 'cursor of plausible shape',
    path: '/v1/sessions?cursor=AAAAAAAAAAAAAAAAAAAA',
    status: 400,
    code: 'INVALID_CURSOR',
  },
  {
    name: 'huge cursor',
    path: `/v1/sessions?cursor=${'a'.repeat(5000)}`,
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'negative after',
    path: `/v1/sessions/${missingId}/events?after=-1`,
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'text after',
    path: `/v1/sessions/${missingId}/events?after=abc`,
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'bad Last-Event-ID',
    path: `/v1/sessions/${missingId}/events`,
    headers: { accept: 'text/event-stream', 'last-event-id': '12abc' },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'huge Last-Event-ID',
    path: `/v1/sessions/${missingId}/events`,
    headers: { accept: 'text/event-stream', 'last-event-id': '9'.repeat(40) },
    status: 400,
    code: 'VALIDATION_FAILED',
  },
  { name: 'unknown route', path: '/v1/nothing', status: 404, code: 'NOT_FOUND' },
  {
    name: 'wrong method',
    method: 'PUT',
    path: '/v1/sessions',
    body: {},
    status: 405,
    code: 'METHOD_NOT_ALLOWED',
  },
  {
    name: 'malformed percent-encoding',
    path: '/v1/sessions/%E0%A4%A',
    status: 400,
    code: 'VALIDATION_FAILED',
  },
];

describe('malformed requests against the real server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ config: { workers: { concurrency: 0 } } });
  });
  after(async () => server?.close());

  for (const c of CASES) {
    test(`${c.name} → ${c.status} ${c.code}`, async () => {
      const response = await requestJson<Record<string, unknown>>(`${server.url}${c.path}`, {
        method: c.method ?? 'GET',
        body: c.body,
        headers: c.headers,
      });
      assert.equal(response.status, c.status, JSON.stringify(response.body));
      assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/);
      assert.equal(response.body.code, c.code);
      assert.equal(response.body.status, c.status);
      assert.equal(typeof response.body.detail, 'string');
      assert.doesNotMatch(JSON.stringify(response.body), /node_modules|\.ts:\d+|at [A-Za-z]+ \(/);
    });
  }

  test('a blank text the server trims is one problem, "must not be blank"', async () => {
    const session = '0190a0a0-0000-7000-8000-000000000001';
    for (const [path, body] of [
      ['/v1/sessions', { objective: '  \n ' }],
      [`/v1/sessions/${session}/messages`, { message: ' ' }],
      [`/v1/sessions/${session}/reject`, { reason: '\t' }],
    ] as const) {
      const response = await requestJson<{ details: Array<{ path: string; message: string }> }>(
        `${server.url}${path}`,
        { method: 'POST', body },
      );
      assert.equal(response.status, 400, JSON.stringify(response.body));
      const field = Object.keys(body)[0];
      assert.deepEqual(
        response.body.details.map((issue) => [issue.path, issue.message]),
        [[`/${field}`, 'must not be blank']],
        path,
      );
    }
  });

  /** Sends `raw` over a fresh connection and returns everything the server answers. */
  function sendRaw(raw: string): Promise<string> {
    const { hostname, port } = new URL(server.url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => socket.write(raw));
      let answer = '';
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString('utf8');
      });
      socket.on('end', () => resolve(answer));
      socket.on('error', reject);
    });
  }

  for (const [name, raw, status, code] of [
    [
      'headers over the size limit',
      `GET /v1/roles HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      431,
      'HEADERS_TOO_LARGE',
    ],
    [
      'a control character in a header',
      'GET /v1/roles HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\x01b\r\n\r\n',
      400,
      'VALIDATION_FAILED',
    ],
    ['a request line that is not HTTP', 'HELLO THERE\r\n\r\n', 400, 'VALIDATION_FAILED'],
  ] as const) {
    test(`${name}, refused by the HTTP parser → ${status} ${code} as a problem`, async () => {
      const answer = await sendRaw(raw);
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      assert.match(head, new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.match(head, /content-type: application\/problem\+json/i);
      const problem = JSON.parse(body) as { code: string; status: number; requestId: string };
      assert.equal(problem.code, code);
      assert.equal(problem.status, status);
      assert.match(problem.requestId, /^[0-9a-f-]{36}$/);
      assert.match(head, new RegExp(`^x-request-id: ${problem.requestId}$`, 'im'));
      // The security headers of every other answer over plain http: a CSP without
      // upgrade-insecure-requests, which would send a browser to https on a server that has none.
      for (const [header, value] of Object.entries(PLAIN_HTTP_SECURITY_HEADERS)) {
        const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${header}:`));
        assert.equal(line?.slice(header.length + 1).trim(), value, header);
      }
      assert.doesNotMatch(head, /upgrade-insecure-requests/i);
      const normal = await fetch(`${server.url}/v1/roles`);
      assert.equal(
        /^content-security-policy: (.*)$/im.exec(head)?.[1],
        normal.headers.get('content-security-policy'),
        'the CSP of an answer through the normal path',
      );
    });
  }

  test('a request the HTTP parser refuses is counted in maos_errors_total and logged with its request id', async () => {
    const { destination, lines } = captureLog();
    const local = await startTestServer({
      config: { logLevel: 'info', workers: { concurrency: 0 } },
      logDestination: destination,
    });
    try {
      const { hostname, port } = new URL(local.url);
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), hostname, () =>
          socket.write(`GET /v1/roles HTTP/1.1\r\nHost: x\r\nCookie: ${'a'.repeat(20_000)}\r\n\r\n`),
        );
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
        });
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      assert.match(answer, /^HTTP\/1\.1 431 /);
      const requestId = /^x-request-id: (\S+)$/im.exec(answer)?.[1];
      assert.ok(requestId, answer);
      const scrape = await fetch(`${local.url}/metrics`).then((response) => response.text());
      assert.equal(sampleOf(scrape, 'maos_errors_total{code="HEADERS_TOO_LARGE"}'), 1);
      const line = lines.find((candidate) => candidate.requestId === requestId);
      assert.equal(line?.message, 'request refused by the HTTP parser');
      assert.equal(line?.code, 'HEADERS_TOO_LARGE');
      assert.equal(line?.['http.response.status_code'], 431);
      assert.doesNotMatch(JSON.stringify(line), /aaaa/, 'nothing of the refused request is logged');
    } finally {
      await local.close();
    }
  });

  test('a body that is not UTF-8 is a 400, not stored with U+FFFD in place of its bytes', async () => {
    const post = (bytes: Buffer) =>
      fetch(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=iso-8859-1' },
        body: new Uint8Array(bytes),
      }).then(async (response) => ({
        status: response.status,
        body: (await response.json()) as { code?: string; detail?: string; objective?: string },
      }));
    const json = (objective: Buffer) =>
      Buffer.concat([
        Buffer.from('{"objective":"'),
        objective,
        Buffer.from(`","agents":${JSON.stringify([agent])}}`),
      ]);
    // "café" in Latin-1: é is the single byte 0xE9, not a UTF-8 sequence.
    const latin1 = await post(json(Buffer.from('café', 'latin1')));
    assert.equal(latin1.status, 400, JSON.stringify(latin1.body));
    assert.equal(latin1.body.code, 'VALIDATION_FAILED');
    assert.equal(latin1.body.detail, 'The body is not valid UTF-8.');
    const utf8 = await post(json(Buffer.from('café', 'utf8')));
    assert.equal(utf8.status, 201, JSON.stringify(utf8.body));
    assert.equal(utf8.body.objective, 'café');
    const withBom = await post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json(Buffer.from('x'))]));
    assert.equal(withBom.status, 201, JSON.stringify(withBom.body));
  });

  test('a route that needs a body and gets none says so, with or without a JSON content type', async () => {
    const session = '0190a0a0-0000-7000-8000-000000000001';
    for (const [path, headers] of [
      ['/v1/sessions', { 'content-type': 'application/json' }],
      ['/v1/sessions', {}],
      [`/v1/sessions/${session}/reject`, { 'content-type': 'application/json' }],
    ] as const) {
      const response = await fetch(`${server.url}${path}`, { method: 'POST', headers });
      const body = (await response.json()) as { code?: string; detail?: string; details?: unknown };
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal(body.code, 'VALIDATION_FAILED');
      assert.equal(
        body.detail,
        'Invalid body. body: a JSON body is required, and the request has none',
        path,
      );
      assert.deepEqual(body.details, [
        { location: 'body', path: '/', message: 'a JSON body is required, and the request has none' },
      ]);
    }
  });

  test('a compressed body (Content-Encoding) is 415, whether or not it really is compressed', async () => {
    const body = JSON.stringify({ objective: 'x', agents: [agent] });
    for (const [name, bytes] of [
      ['gzip', new Uint8Array(gzipSync(body))],
      ['labelled gzip', new Uint8Array(Buffer.from(body))],
    ] as const) {
      const response = await fetch(`${server.url}/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: bytes,
      });
      const problem = (await response.json()) as { code: string };
      assert.equal(response.status, 415, name);
      assert.equal(problem.code, 'UNSUPPORTED_MEDIA_TYPE', name);
    }
    const identity = await fetch(`${server.url}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'identity' },
      body,
    });
    await identity.body?.cancel();
    assert.equal(identity.status, 201);
  });

  test('a path that does not percent-decode is answered through the hooks: request id, metrics, access log', async () => {
    const { destination, lines } = captureLog();
    const local = await startTestServer({
      config: { logLevel: 'info', workers: { concurrency: 0 } },
      logDestination: destination,
    });
    try {
      const path = '/v1/sessions/%E0%A4%A';
      const response = await requestJson<{ code: string; instance: string; requestId: string }>(
        `${local.url}${path}`,
        { headers: { 'x-request-id': 'bad-url-1' } },
      );
      assert.equal(response.status, 400);
      assert.equal(response.body.code, 'VALIDATION_FAILED');
      assert.equal(response.body.instance, path);
      assert.equal(response.headers.get('x-request-id'), 'bad-url-1');
      const scrape = await fetch(`${local.url}/metrics`).then((answer) => answer.text());
      assert.equal(
        sampleOf(
          scrape,
          'http_request_duration_seconds_count{method="GET",route="__unknown__",status_code="400"}',
        ),
        1,
      );
      assert.equal(sampleOf(scrape, 'maos_errors_total{code="VALIDATION_FAILED"}'), 1);
      const access = lines.find(
        (line) => line.requestId === 'bad-url-1' && line.message === 'request completed',
      );
      assert.equal(access?.['url.path'], path);
      assert.equal(access?.['http.response.status_code'], 400);
    } finally {
      await local.close();
    }
  });

  test('without an LLM provider, approve, reject and steering say why they cannot apply', async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'x', agents: [agent] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    for (const [path, body] of [
      ['approve', {}],
      ['reject', { reason: 'no' }],
      ['messages', { message: 'faster' }],
    ] as const) {
      const refused = await requestJson<{ code: string; detail: string }>(
        `${server.url}/v1/sessions/${created.body.id}/${path}`,
        { method: 'POST', body },
      );
      assert.equal(refused.status, 409, `${path}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.code, 'INVALID_STATE');
      assert.match(refused.body.detail, /no LLM provider configured/);
      const unknown = await requestJson<{ code: string }>(`${server.url}/v1/sessions/${missingId}/${path}`, {
        method: 'POST',
        body,
      });
      assert.equal(unknown.status, 404, path);
      assert.equal(unknown.body.code, 'SESSION_NOT_FOUND');
    }
  });

  test('a cancel of a completed session is 409 INVALID_STATE', async () => {
    const local = await startTestServer();
    try {
      const created = await requestJson<{ id: string }>(`${local.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: 'x', agents: [agent] },
      });
      const id = created.body.id;
      const deadline = Date.now() + 20_000;
      let status = '';
      while (status !== 'completed' && Date.now() < deadline) {
        status = (await requestJson<{ status: string }>(`${local.url}/v1/sessions/${id}`)).body.status;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const response = await requestJson<{ code: string }>(`${local.url}/v1/sessions/${id}/cancel`, {
        method: 'POST',
      });
      assert.equal(response.status, 409);
      assert.equal(response.body.code, 'INVALID_STATE');
    } finally {
      await local.close();
    }
  });
});
