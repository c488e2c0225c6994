// GET /v1/sessions/:id/events read newest first (?order=desc&before=): page order, the cursors a
// client pages back (and then forward) with, the combinations refused with 400, and the OpenAPI.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createLogger } from '../../observability/logger.ts';
import { createFakeSessionService, type FakeSessionService } from '../fake-session-service.test-support.ts';
import { buildHttpServer } from '../server.ts';

interface Page {
  items: Array<{ seq: number; type: string }>;
  nextAfter: number;
  nextBefore?: number | null;
}

describe('events newest first', () => {
  let service: FakeSessionService;
  let app: FastifyInstance;
  let id: string;
  const url = (query: string) => `/v1/sessions/${id}/events?${query}`;
  const get = async (query: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url: url(query), headers });

  before(async () => {
    service = createFakeSessionService();
    app = await buildHttpServer({
      config: { http: { bodyLimitBytes: 4096, maxPageSize: 5, sseKeepAliveSeconds: 15 } },
      service,
      logger: createLogger({ level: 'silent' }),
      readiness: async () => ({ database: { ok: true, detail: 'ok' } }),
      listRoles: () => [],
    });
    const created = await service.createSession({ tenantId: 'default', principalId: 'p' }, {
      objective: 'log',
    } as never);
    id = created.session.id;
    // seq 1 is session.created; 2..12 are output lines.
    for (let i = 0; i < 11; i += 1) service.appendEvent(id, 'task.output', { line: `l${i}` });
  });
  after(async () => app.close());

  test('order=desc gives the newest events first, with cursors back and forward', async () => {
    const response = await get('order=desc&limit=3');
    assert.equal(response.statusCode, 200, response.body);
    const page = response.json() as Page;
    assert.deepEqual(
      page.items.map((event) => event.seq),
      [12, 11, 10],
    );
    assert.equal(page.nextBefore, 10);
    assert.equal(page.nextAfter, 12, 'following forward continues after the newest event shown');
  });

  test('paging back with before=nextBefore reaches the start, then nextBefore is null', async () => {
    const seen: number[] = [];
    let query = 'order=desc&limit=4';
    for (let pages = 0; pages < 10; pages += 1) {
      const page = (await get(query)).json() as Page;
      seen.push(...page.items.map((event) => event.seq));
      if (page.nextBefore === null) break;
      query = `order=desc&limit=4&before=${page.nextBefore}`;
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 12 }, (_, i) => 12 - i),
    );
    // Exactly the start of the log on a page boundary: no extra empty page is needed.
    const last = (await get('order=desc&limit=4&before=5')).json() as Page;
    assert.deepEqual(
      last.items.map((event) => event.seq),
      [4, 3, 2, 1],
    );
    assert.equal(last.nextBefore, null);
    assert.deepEqual((await get('order=desc&before=1')).json(), {
      items: [],
      nextAfter: 0,
      nextBefore: null,
    });
  });

  test('the default order and explicit order=asc still read forward without nextBefore', async () => {
    const forward = (await get('order=asc&after=10')).json() as Page;
    assert.deepEqual(
      forward.items.map((event) => event.seq),
      [11, 12],
    );
    assert.equal(forward.nextAfter, 12);
    assert.equal('nextBefore' in forward, false);
  });

  test('combinations a newest-first read cannot honour are 400 VALIDATION_FAILED', async () => {
    const cases: Array<{ query: string; headers?: Record<string, string>; path: string }> = [
      { query: 'before=5', path: '/before' },
      { query: 'order=asc&before=5', path: '/before' },
      { query: 'order=desc&after=3', path: '/after' },
      { query: 'order=desc', headers: { 'last-event-id': '3' }, path: '/last-event-id' },
      { query: 'order=desc', headers: { accept: 'text/event-stream' }, path: '/order' },
      { query: 'order=newest', path: '/order' },
      { query: 'order=desc&before=-1', path: '/before' },
      { query: 'order=desc&before=x', path: '/before' },
    ];
    for (const { query, headers, path } of cases) {
      const response = await get(query, headers);
      assert.equal(response.statusCode, 400, `${query}: ${response.body}`);
      assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
      const problem = response.json() as { code: string; details?: Array<{ path: string }> };
      assert.equal(problem.code, 'VALIDATION_FAILED', query);
      assert.ok(
        problem.details?.some((issue) => issue.path === path),
        `${query}: ${JSON.stringify(problem.details)}`,
      );
    }
  });

  test('an unknown session is 404 when read newest first too', async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/v1/sessions/0190a0a0-0000-7000-8000-000000000001/events?order=desc',
    });
    assert.equal(response.statusCode, 404);
    assert.equal(response.json().code, 'SESSION_NOT_FOUND');
  });

  test('the OpenAPI document describes order, before and nextBefore', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, { get: { parameters: Array<{ name: string; in: string; schema: unknown }> } }>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    const parameters = doc.paths['/v1/sessions/{id}/events']?.get.parameters ?? [];
    const order = parameters.find((parameter) => parameter.name === 'order' && parameter.in === 'query');
    assert.deepEqual((order?.schema as { enum?: string[] } | undefined)?.enum, ['asc', 'desc']);
    assert.ok(parameters.some((parameter) => parameter.name === 'before' && parameter.in === 'query'));
    assert.ok(doc.components.schemas.SessionEventPage?.properties?.nextBefore);
  });
});
