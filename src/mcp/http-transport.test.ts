// The /mcp plugin in-process: concurrent initializes cannot open more MCP sessions than the caps,
// in total or per tenant. Requests are held just before the handler and released together, so
// their handlers interleave as they do under load.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { initializeRequest } from '../../test/fixtures/mcp-wire.ts';
import { loadConfig } from '../config/load.ts';
import { createFakeSessionService } from '../http/fake-session-service.test-support.ts';
import { buildHttpServer } from '../http/server.ts';
import { createLogger } from '../observability/logger.ts';
import { activityIntervalMs, createMcpHttpPlugin } from './http-transport.ts';

/** Holds every caller until `size` have arrived, then lets them all go in the same turn. */
function createGate(size: number): () => Promise<void> {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return () => {
    arrived += 1;
    if (arrived >= size) open();
    return opened;
  };
}

const INITIALIZE = initializeRequest('t');

async function startApp(
  mcp: { maxSessions: number; maxSessionsPerTenant: number },
  concurrent: number,
): Promise<FastifyInstance> {
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', mcp } });
  const arrive = createGate(concurrent);
  const service = createFakeSessionService();
  return buildHttpServer({
    config,
    service,
    logger: createLogger({ level: 'silent' }),
    readiness: async () => ({}),
    listRoles: () => [],
    authenticate: async (request) => ({
      tenantId: String(request.headers['x-tenant']),
      principalId: 'someone',
    }),
    plugins: [
      // Last hook before the handler: released together, the requests reach /mcp in one turn.
      async (instance) => {
        instance.addHook('preHandler', async () => arrive());
      },
      createMcpHttpPlugin({ service, config }),
    ],
  });
}

/** `count` initializes at once, `tenantOf(i)` naming each one's tenant; returns the statuses and bodies. */
async function initializeAll(
  app: FastifyInstance,
  count: number,
  tenantOf: (index: number) => string,
): Promise<Array<{ status: number; tenant: string; problem?: { code: string; details?: unknown } }>> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const response = await app.inject({
        method: 'POST',
        url: '/mcp',
        headers: {
          accept: 'application/json, text/event-stream',
          'content-type': 'application/json',
          'x-tenant': tenantOf(index),
        },
        payload: INITIALIZE,
        payloadAsStream: true,
      });
      const tenant = tenantOf(index);
      if (response.statusCode === 200) {
        response.stream().destroy();
        return { status: 200, tenant };
      }
      const chunks: Buffer[] = [];
      for await (const chunk of response.stream()) chunks.push(chunk as Buffer);
      return { status: response.statusCode, tenant, problem: JSON.parse(Buffer.concat(chunks).toString()) };
    }),
  );
}

describe('MCP session caps under concurrent initializes', () => {
  describe('in total', () => {
    let app: FastifyInstance;
    before(async () => {
      app = await startApp({ maxSessions: 5, maxSessionsPerTenant: 100 }, 30);
    });
    after(async () => app?.close());

    test('no more than mcp.maxSessions open; the rest get 429 naming the limit', async () => {
      const results = await initializeAll(app, 30, (index) => `tenant-${index % 10}`);
      assert.equal(results.filter((result) => result.status === 200).length, 5);
      const refused = results.filter((result) => result.status !== 200);
      assert.equal(refused.length, 25);
      for (const result of refused) {
        assert.equal(result.status, 429);
        assert.equal(result.problem?.code, 'RESOURCE_LIMIT_EXCEEDED');
        assert.deepEqual(result.problem?.details, { setting: 'mcp.maxSessions', limit: 5 });
      }
    });
  });

  describe('per tenant', () => {
    let app: FastifyInstance;
    before(async () => {
      app = await startApp({ maxSessions: 100, maxSessionsPerTenant: 3 }, 20);
    });
    after(async () => app?.close());

    test('one tenant gets at most mcp.maxSessionsPerTenant; another tenant is not locked out', async () => {
      const results = await initializeAll(app, 20, (index) => (index < 16 ? 'greedy' : 'other'));
      const opened = (tenant: string) =>
        results.filter((result) => result.tenant === tenant && result.status === 200).length;
      assert.equal(opened('greedy'), 3);
      assert.equal(opened('other'), 3);
      const refused = results.find((result) => result.status !== 200);
      assert.equal(refused?.status, 429);
      assert.deepEqual(refused?.problem?.details, { setting: 'mcp.maxSessionsPerTenant', limit: 3 });
    });
  });
});

describe('activity notes of a session followed on another replica', () => {
  test('come often enough that the holder never finds the last one as old as its idle time, also for 1 s', () => {
    // The holder closes a session idle for mcp.sessionIdleSeconds: the last note it reads is at most
    // one interval (and a write) old, so the interval must leave most of the idle time to spare.
    for (const idleSeconds of [1, 2, 3, 4, 10, 60, 1800, 86_400]) {
      const idleMs = idleSeconds * 1000;
      const interval = activityIntervalMs(idleMs);
      assert.ok(interval > 0, `${idleSeconds} s: ${interval} ms`);
      assert.ok(interval <= idleMs / 4, `${idleSeconds} s: a note every ${interval} ms`);
      assert.ok(interval <= 15_000, `${idleSeconds} s: a note every ${interval} ms`);
    }
    assert.equal(activityIntervalMs(1800_000), 15_000);
  });
});

describe('idle MCP sessions and the wall clock', () => {
  test('a step of the wall clock is no idle time: a session in use stays open', async (t) => {
    // The idle sweep's timer is mocked: it runs when the test says, not by the real time passing
    // (a session opened just before a late sweep would be idle for real by then).
    t.mock.timers.enable({ apis: ['Date', 'setInterval'], now: Date.now() });
    const config = loadConfig({
      env: {},
      overrides: { host: '127.0.0.1', mcp: { sessionIdleSeconds: 3 }, rateLimit: { enabled: false } },
    });
    const service = createFakeSessionService();
    const app = await buildHttpServer({
      config,
      service,
      logger: createLogger({ level: 'silent' }),
      readiness: async () => ({}),
      listRoles: () => [],
      authenticate: async () => ({ tenantId: 'default', principalId: 'someone' }),
      plugins: [createMcpHttpPlugin({ service, config })],
    });
    t.after(() => app.close());
    const post = (payload: unknown, headers: Record<string, string> = {}) =>
      app.inject({
        method: 'POST',
        url: '/mcp',
        headers: {
          accept: 'application/json, text/event-stream',
          'content-type': 'application/json',
          ...headers,
        },
        payload: payload as Record<string, unknown>,
      });
    const opened = await post(INITIALIZE);
    assert.equal(opened.statusCode, 200);
    const sessionId = String(opened.headers['mcp-session-id']);
    // The system clock is set an hour ahead (NTP step, a VM resumed) right after the session was used.
    t.mock.timers.setTime(Date.now() + 3_600_000);
    // The idle sweep (every mcp.sessionIdleSeconds) runs at once, the session far from idle.
    t.mock.timers.tick(3_000);
    for (let turn = 0; turn < 10; turn += 1) await new Promise((resolve) => setImmediate(resolve));
    const listed = await post(
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' },
    );
    // Before: the sweep took the jump for an hour without requests and closed the session (404).
    assert.equal(listed.statusCode, 200, listed.body);
  });
});
