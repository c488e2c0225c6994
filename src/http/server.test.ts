// Route-level tests of the HTTP server against an in-memory SessionService: status codes,
// problem+json errors, idempotency, pagination, OpenAPI and request ids.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { z } from 'zod';
import { captureLog } from '../../test/fixtures/log-capture.ts';
import { sendDuringShutdown } from '../../test/fixtures/request-during-shutdown.ts';
import type { RoleDefinition } from '../agents/roles/role.ts';
import { createLogger } from '../observability/logger.ts';
import { createFakeSessionService, type FakeSessionService } from './fake-session-service.test-support.ts';
import { buildHttpServer } from './server.ts';

const ROLES: RoleDefinition[] = [
  {
    name: 'qa',
    description: 'Tests things.',
    capabilities: ['testing'],
    instructions: 'secret',
    builtIn: true,
  },
];

const validBody = { objective: 'Ship it', agents: [{ role: 'qa', task: 'test it', runner: 'ok' }] };

async function build(
  service: FakeSessionService,
  checks = { database: { ok: true, detail: 'ok' } },
): Promise<FastifyInstance> {
  return buildHttpServer({
    config: { http: { bodyLimitBytes: 4096, maxPageSize: 5, sseKeepAliveSeconds: 15 } },
    service,
    logger: createLogger({ level: 'silent' }),
    readiness: async () => checks,
    listRoles: () => ROLES,
  });
}

function assertProblem(
  response: { statusCode: number; headers: Record<string, unknown>; json: () => unknown },
  status: number,
  code: string,
): Record<string, unknown> {
  assert.equal(response.statusCode, status, JSON.stringify(response.json()));
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
  const body = response.json() as Record<string, unknown>;
  assert.equal(body.code, code);
  assert.equal(body.status, status);
  assert.equal(body.type, `urn:maos:error:${code}`);
  assert.equal(typeof body.title, 'string');
  assert.equal(typeof body.detail, 'string');
  return body;
}

describe('http server', () => {
  let service: FakeSessionService;
  let app: FastifyInstance;
  before(async () => {
    service = createFakeSessionService();
    app = await build(service);
  });
  after(async () => app.close());

  test('POST /v1/sessions creates a session (201) with ISO timestamps and a Location', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/sessions', payload: validBody });
    assert.equal(response.statusCode, 201);
    const body = response.json();
    assert.equal(body.objective, 'Ship it');
    assert.match(body.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(body.finishedAt, null);
    assert.equal(response.headers.location, `/v1/sessions/${body.id}`);
  });

  test('Idempotency-Key: same body replays (200, same id), different body is 409', async () => {
    const headers = { 'idempotency-key': 'key-1' };
    const first = await app.inject({ method: 'POST', url: '/v1/sessions', payload: validBody, headers });
    const second = await app.inject({ method: 'POST', url: '/v1/sessions', payload: validBody, headers });
    assert.equal(first.statusCode, 201);
    assert.equal(second.statusCode, 200);
    assert.equal(second.json().id, first.json().id);
    const other = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { ...validBody, objective: 'Other' },
      headers,
    });
    assertProblem(other, 409, 'IDEMPOTENCY_KEY_REUSED');
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: validBody,
      headers: { 'idempotency-key': 'has space' },
    });
    assertProblem(bad, 400, 'VALIDATION_FAILED');
  });

  test('a body refused for a __proto__ or constructor.prototype key says so, not that its JSON is malformed', async () => {
    const post = (payload: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/sessions',
        payload,
        headers: { 'content-type': 'application/json' },
      });
    const agents = JSON.stringify(validBody.agents);
    for (const metadata of ['{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}']) {
      const body = assertProblem(
        await post(`{"objective":"x","agents":${agents},"metadata":${metadata}}`),
        400,
        'VALIDATION_FAILED',
      );
      assert.match(String(body.detail), /^The body holds a key "__proto__", or a key "constructor"/);
    }
    const malformed = assertProblem(await post('{"objective":'), 400, 'VALIDATION_FAILED');
    assert.equal(malformed.detail, 'The body is not valid JSON.');
    // A key merely named constructor is data like any other.
    const created = await post(`{"objective":"x","agents":${agents},"metadata":{"constructor":"mine"}}`);
    assert.equal(created.statusCode, 201, created.body);
  });

  test('malformed requests get 4xx problem+json, never 500', async () => {
    const cases: Array<{ status: number; code: string; request: InjectOptions }> = [
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: { method: 'POST', url: '/v1/sessions', payload: { ...validBody, extra: 1 } },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: { method: 'POST', url: '/v1/sessions', payload: { objective: 42 } },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: {
          method: 'POST',
          url: '/v1/sessions',
          payload: { objective: 'x', agents: [{ role: 'QA!', task: 't' }] },
        },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: { method: 'POST', url: '/v1/sessions', payload: [] },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: {
          method: 'POST',
          url: '/v1/sessions',
          payload: '{"objective":',
          headers: { 'content-type': 'application/json' },
        },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: {
          method: 'POST',
          url: '/v1/sessions',
          payload: '',
          headers: { 'content-type': 'application/json' },
        },
      },
      {
        status: 413,
        code: 'PAYLOAD_TOO_LARGE',
        request: { method: 'POST', url: '/v1/sessions', payload: { objective: 'x'.repeat(10_000) } },
      },
      {
        status: 415,
        code: 'UNSUPPORTED_MEDIA_TYPE',
        request: {
          method: 'POST',
          url: '/v1/sessions',
          payload: 'objective=x',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: { method: 'GET', url: '/v1/sessions/not%20an%20id' },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: { method: 'GET', url: `/v1/sessions/${'a'.repeat(65)}` },
      },
      { status: 400, code: 'VALIDATION_FAILED', request: { method: 'GET', url: '/v1/sessions?limit=-1' } },
      { status: 400, code: 'VALIDATION_FAILED', request: { method: 'GET', url: '/v1/sessions?limit=abc' } },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: { method: 'GET', url: '/v1/sessions?status=bogus' },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: { method: 'GET', url: '/v1/sessions?cursor=%00%01' },
      },
      {
        status: 400,
        code: 'INVALID_CURSOR',
        request: { method: 'GET', url: '/v1/sessions?cursor=bm9wZQ' },
      },
      { status: 400, code: 'VALIDATION_FAILED', request: { method: 'GET', url: '/v1/sessions?unknown=1' } },
      {
        status: 404,
        code: 'SESSION_NOT_FOUND',
        request: { method: 'GET', url: '/v1/sessions/0190a0a0-0000-7000-8000-000000000000' },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: { method: 'POST', url: '/v1/sessions/missing/cancel' },
      },
      {
        status: 404,
        code: 'SESSION_NOT_FOUND',
        request: { method: 'POST', url: '/v1/sessions/0190a0a0-0000-7000-8000-000000000001/cancel' },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: { method: 'GET', url: "/v1/sessions/0190a0a0-0000-7000-8000-000000000001'%20OR%201=1" },
      },
      { status: 404, code: 'NOT_FOUND', request: { method: 'GET', url: '/v2/nothing' } },
      { status: 405, code: 'METHOD_NOT_ALLOWED', request: { method: 'DELETE', url: '/v1/sessions' } },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: { method: 'GET', url: '/v1/sessions/0190a0a0-0000-7000-8000-000000000001/events?after=-5' },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: {
          method: 'GET',
          url: '/v1/sessions/0190a0a0-0000-7000-8000-000000000001/events',
          headers: { 'last-event-id': 'abc' },
        },
      },
      {
        status: 400,
        code: 'VALIDATION_FAILED',
        request: {
          method: 'GET',
          url: '/v1/sessions/x/events',
          headers: { accept: 'text/event-stream', 'last-event-id': '-1' },
        },
      },
    ];
    for (const { status, code, request } of cases) {
      const response = await app.inject(request);
      assertProblem(response, status, code);
    }
  });

  test('a method a path has no route for is 405 with the methods it has in Allow; an unknown path 404', async () => {
    const id = '0190a0a0-0000-7000-8000-000000000001';
    const cases: Array<[method: 'DELETE' | 'GET' | 'PUT' | 'PATCH', url: string, allow: string]> = [
      ['DELETE', '/v1/sessions', 'GET, HEAD, POST'],
      ['PATCH', `/v1/sessions/${id}?x=1`, 'DELETE, GET, HEAD'],
      ['GET', `/v1/sessions/${id}/cancel`, 'POST'],
      ['PUT', '/healthz', 'GET, HEAD'],
    ];
    for (const [method, url, allow] of cases) {
      const response = await app.inject({ method, url });
      assertProblem(response, 405, 'METHOD_NOT_ALLOWED');
      assert.equal(response.headers.allow, allow, `${method} ${url}`);
      assert.match(response.json().detail, new RegExp(`^${method} is not allowed on /`));
    }
    const unknown = await app.inject({ method: 'PATCH', url: '/v1/nothing-here' });
    assertProblem(unknown, 404, 'NOT_FOUND');
    assert.equal(unknown.headers.allow, undefined);
  });

  test('validation problems list every issue with its location and path', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { objective: '', agents: [{ role: 'qa' }], extra: true },
    });
    const body = assertProblem(response, 400, 'VALIDATION_FAILED');
    const details = body.details as Array<{ location: string; path: string; message: string }>;
    assert.ok(details.length >= 2);
    assert.ok(details.every((issue) => issue.location === 'body'));
    assert.ok(details.some((issue) => issue.path === '/agents/0/task'));
  });

  test('unexpected errors become 500 INTERNAL without leaking the message', async () => {
    service.failNextCallWith(new Error('database password is hunter2'));
    const response = await app.inject({ method: 'GET', url: '/v1/sessions' });
    const body = assertProblem(response, 500, 'INTERNAL');
    assert.doesNotMatch(response.body, /hunter2|at .*\.ts/);
    assert.equal(body.details, undefined);
  });

  test('GET /v1/sessions paginates with a cursor, caps limit and filters by status', async () => {
    const local = createFakeSessionService();
    const server = await build(local);
    try {
      for (let i = 0; i < 7; i++) {
        await server.inject({
          method: 'POST',
          url: '/v1/sessions',
          payload: { ...validBody, objective: `s${i}` },
        });
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: string = cursor ? `&cursor=${cursor}` : '';
        const response = await server.inject({ method: 'GET', url: `/v1/sessions?limit=1000${query}` });
        assert.equal(response.statusCode, 200);
        const page = response.json() as { items: Array<{ objective: string }>; nextCursor: string | null };
        assert.ok(page.items.length <= 5, 'limit is capped by maxPageSize');
        seen.push(...page.items.map((item) => item.objective));
        cursor = page.nextCursor;
        pages++;
      } while (cursor);
      assert.equal(pages, 2);
      assert.deepEqual(seen, ['s6', 's5', 's4', 's3', 's2', 's1', 's0']);
      const filtered = await server.inject({ method: 'GET', url: '/v1/sessions?status=cancelled' });
      assert.deepEqual(filtered.json().items, []);
    } finally {
      await server.close();
    }
  });

  test('cancel returns the cancelled session; cancelling a finished one is 409', async () => {
    const created = await app.inject({ method: 'POST', url: '/v1/sessions', payload: validBody });
    const id = created.json().id;
    const cancelled = await app.inject({ method: 'POST', url: `/v1/sessions/${id}/cancel` });
    assert.equal(cancelled.statusCode, 200);
    assert.equal(cancelled.json().status, 'cancelled');
    const again = await app.inject({
      method: 'POST',
      url: `/v1/sessions/${id}/cancel`,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(again.statusCode, 200);
    service.setStatus(id, 'completed');
    assertProblem(
      await app.inject({ method: 'POST', url: `/v1/sessions/${id}/cancel` }),
      409,
      'INVALID_STATE',
    );
  });

  test('events as JSON pages with after and limit', async () => {
    const created = await app.inject({ method: 'POST', url: '/v1/sessions', payload: validBody });
    const id = created.json().id;
    for (let i = 0; i < 4; i++) service.appendEvent(id, 'task.output', { line: `l${i}` });
    const first = await app.inject({ method: 'GET', url: `/v1/sessions/${id}/events?limit=2` });
    assert.equal(first.statusCode, 200);
    assert.deepEqual(
      first.json().items.map((e: { seq: number }) => e.seq),
      [1, 2],
    );
    assert.equal(first.json().nextAfter, 2);
    const rest = await app.inject({ method: 'GET', url: `/v1/sessions/${id}/events?after=2` });
    assert.deepEqual(
      rest.json().items.map((e: { seq: number }) => e.seq),
      [3, 4, 5],
    );
    const end = await app.inject({ method: 'GET', url: `/v1/sessions/${id}/events?after=99` });
    assert.deepEqual(end.json(), { items: [], nextAfter: 99 });
  });

  test('GET /v1/roles lists the catalogue without prompt templates', async () => {
    const response = await app.inject({ method: 'GET', url: '/v1/roles' });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json(), {
      items: [{ name: 'qa', description: 'Tests things.', capabilities: ['testing'], builtIn: true }],
    });
  });

  test('healthz is 200; readyz is 503 with per-check detail when a check fails', async () => {
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200);
    assert.equal(ready.json().status, 'ready');
    const failing = await build(service, { database: { ok: false, detail: 'unreachable' } });
    try {
      const response = await failing.inject({ method: 'GET', url: '/readyz' });
      assert.equal(response.statusCode, 503);
      assert.deepEqual(response.json(), {
        status: 'not_ready',
        checks: { database: { ok: false, detail: 'unreachable' } },
      });
    } finally {
      await failing.close();
    }
  });

  test('X-Request-Id: a valid one is echoed, an invalid one is replaced', async () => {
    const kept = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'abc-123' } });
    assert.equal(kept.headers['x-request-id'], 'abc-123');
    const replaced = await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'bad id\twith junk' },
    });
    assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    const problem = await app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'r-1' } });
    assert.equal(problem.json().requestId, 'r-1');
  });

  test('log lines of a request carry its request id (the per-request logger is built on first use)', async () => {
    const { destination, lines } = captureLog();
    const logged = await buildHttpServer({
      config: { http: { bodyLimitBytes: 4096, maxPageSize: 5, sseKeepAliveSeconds: 15 } },
      service,
      logger: createLogger({ level: 'debug', format: 'json', destination }),
      readiness: async () => ({}),
      listRoles: () => ROLES,
    });
    try {
      const quiet = await logged.inject({ method: 'GET', url: '/healthz' });
      assert.equal(quiet.statusCode, 200);
      const rejected = await logged.inject({
        method: 'GET',
        url: '/v1/sessions/not-a-uuid',
        headers: { 'x-request-id': 'r-log-1' },
      });
      assert.equal(rejected.statusCode, 400);
      await new Promise((resolve) => setImmediate(resolve));
      const line = lines.find(
        (entry) => entry.message === 'request rejected' || entry.msg === 'request rejected',
      );
      assert.ok(line, JSON.stringify(lines));
      assert.equal(line.requestId, 'r-log-1');
    } finally {
      await logged.close();
    }
  });

  test('a validator that throws (a server bug, not bad input) is 500 INTERNAL, logged as an error', async () => {
    const { destination, lines } = captureLog();
    // A schema whose check itself fails: the request is not at fault, the server is.
    const brokenBody = z.object({ name: z.string() }).refine(() => {
      throw new Error('validator bug');
    });
    const broken = await buildHttpServer({
      config: { http: { bodyLimitBytes: 4096, maxPageSize: 5, sseKeepAliveSeconds: 15 } },
      service: createFakeSessionService(),
      logger: createLogger({ level: 'debug', format: 'json', destination }),
      readiness: async () => ({}),
      listRoles: () => ROLES,
      plugins: [
        async (instance) => {
          instance.post('/test/broken-validator', { schema: { body: brokenBody } }, async () => ({}));
        },
      ],
    });
    try {
      const response = await broken.inject({
        method: 'POST',
        url: '/test/broken-validator',
        payload: { name: 'x' },
      });
      const body = assertProblem(response, 500, 'INTERNAL');
      assert.doesNotMatch(JSON.stringify(body), /validator bug/);
      // Bad input on the same route is still the client's 400.
      const bad = await broken.inject({ method: 'POST', url: '/test/broken-validator', payload: {} });
      assertProblem(bad, 400, 'VALIDATION_FAILED');
      await new Promise((resolve) => setImmediate(resolve));
      const failed = lines.filter((entry) => entry.message === 'request failed');
      assert.equal(failed.length, 1, JSON.stringify(lines));
      assert.equal(failed[0]?.code, 'INTERNAL');
      assert.equal(failed[0]?.['log.level'], 'error');
      assert.match(JSON.stringify(failed[0]?.error), /validator bug/);
    } finally {
      await broken.close();
    }
  });

  test('OpenAPI 3.1 lists every route with summary, tags and problem responses', async () => {
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(response.statusCode, 200);
    const doc = response.json();
    assert.equal(doc.openapi, '3.1.0');
    const expected: Array<[string, string]> = [
      ['/v1/sessions', 'post'],
      ['/v1/sessions', 'get'],
      ['/v1/sessions/{id}', 'get'],
      ['/v1/sessions/{id}/cancel', 'post'],
      ['/v1/sessions/{id}/events', 'get'],
      ['/v1/roles', 'get'],
      ['/healthz', 'get'],
      ['/readyz', 'get'],
    ];
    for (const [path, method] of expected) {
      const operation = doc.paths[path]?.[method];
      assert.ok(operation, `${method} ${path} is documented`);
      assert.ok(operation.summary, `${method} ${path} has a summary`);
      assert.ok(operation.tags?.length, `${method} ${path} has tags`);
    }
    assert.ok(doc.paths['/v1/sessions'].post.responses['409'], 'problem responses are documented');
    assert.ok(doc.components.schemas.Problem, 'the problem schema is a component');
    const docs = await app.inject({ method: 'GET', url: '/docs' });
    assert.ok(docs.statusCode < 400, `/docs answers (${docs.statusCode})`);
  });

  test('requests still arriving during shutdown get 503 SHUTTING_DOWN as problem+json', async () => {
    const local = createFakeSessionService();
    // A blocks in its handler; B arrives on the same connection after close() has begun.
    const received = await sendDuringShutdown(
      await build(local),
      local,
      'GET /v1/roles HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    const responses = received.split(/(?=HTTP\/1\.1 )/);
    assert.equal(responses.length, 2, received);
    assert.match(responses[0] ?? '', /^HTTP\/1\.1 200/);
    assert.match(responses[1] ?? '', /^HTTP\/1\.1 503/);
    assert.match(responses[1] ?? '', /content-type: application\/problem\+json/i);
    assert.match(responses[1] ?? '', /"code":"SHUTTING_DOWN"/);
  });

  test('the observer hears about each problem sent; one that throws changes no response', async () => {
    const problems: [string, number][] = [];
    const observed = await buildHttpServer({
      config: { http: { bodyLimitBytes: 4096, maxPageSize: 5, sseKeepAliveSeconds: 15 } },
      service: createFakeSessionService(),
      logger: createLogger({ level: 'silent' }),
      readiness: async () => ({}),
      listRoles: () => ROLES,
      observer: {
        problemSent: (code, status) => {
          problems.push([code, status]);
          throw new Error('broken metrics');
        },
      },
    });
    try {
      assertProblem(await observed.inject({ method: 'GET', url: '/nowhere' }), 404, 'NOT_FOUND');
      assertProblem(
        await observed.inject({ method: 'GET', url: '/v1/sessions/not-a-uuid' }),
        400,
        'VALIDATION_FAILED',
      );
      assert.deepEqual(problems, [
        ['NOT_FOUND', 404],
        ['VALIDATION_FAILED', 400],
      ]);
    } finally {
      await observed.close();
    }
  });
});

test('a server from a serverFactory (HTTPS) keeps idle connections as long as Fastify’s own do', async () => {
  const own = await build(createFakeSessionService());
  const factored = await buildHttpServer({
    config: { http: { bodyLimitBytes: 4096, maxPageSize: 5, sseKeepAliveSeconds: 15 } },
    service: createFakeSessionService(),
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({ database: { ok: true, detail: 'ok' } }),
    listRoles: () => ROLES,
    // Node's servers close an idle keep-alive connection after 5 s unless told otherwise.
    serverFactory: (handler) => createServer(handler),
  });
  try {
    assert.equal(own.server.keepAliveTimeout, 72_000);
    assert.equal(factored.server.keepAliveTimeout, 72_000);
  } finally {
    await own.close();
    await factored.close();
  }
});
