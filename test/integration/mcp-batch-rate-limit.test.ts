// A JSON-RPC batch posted to /mcp is charged one rate-limit point per request it carries, all or
// none: a batch the caller's counters have no room for is refused whole (429, none of its calls
// run, a Retry-After that holds), and one of more requests than the whole quota gets 413. Before,
// a batch of any size cost one point (with 5 requests a minute, 4 POSTs carried 400 tool calls).
// On SQLite (memory counters) and PostgreSQL (the shared `rate_limits` table; run with
// --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { messagesOf, postMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import { openMcpSession } from '../helpers/mcp-streams.ts';

const QUOTA = 6;

const limits = {
  rateLimit: {
    enabled: true,
    principal: { points: QUOTA, windowSeconds: 60 },
    tenant: { points: 1000, windowSeconds: 60 },
  },
};

function orchestrate(id: number) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: {
      name: 'orchestrate',
      arguments: {
        objective: `batch ${id}`,
        agents: [{ name: 'only', role: 'tester', task: 'run', runner: 'ok' }],
      },
    },
  };
}

function listRoles(id: number) {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'list_roles', arguments: {} } };
}

/** The principal's `r=` in a RateLimit header field. */
function principalRemaining(response: Response): number | undefined {
  const match = /"principal";r=(\d+)/.exec(response.headers.get('ratelimit') ?? '');
  return match ? Number(match[1]) : undefined;
}

/** The ids of the responses a served POST carried (an SSE stream or a JSON array). */
async function answeredIds(response: Response, expected: number): Promise<unknown[]> {
  if (response.headers.get('content-type')?.startsWith('application/json') === true) {
    return ((await response.json()) as { id: unknown }[]).map((message) => message.id);
  }
  let answered = 0;
  const frames = await readFrames(response, (frame) => {
    if (frame.data.includes('"result"') || frame.data.includes('"error"')) answered += 1;
    return answered >= expected;
  });
  await response.body?.cancel();
  return messagesOf(frames)
    .filter((message) => message.method === undefined)
    .map((message) => message.id);
}

const backends: {
  name: string;
  store(): Promise<{ config: Record<string, unknown>; drop(): Promise<void> }>;
}[] = [
  { name: 'SQLite', store: async () => ({ config: {}, drop: async () => {} }) },
  {
    name: 'PostgreSQL',
    async store() {
      const database: TestDatabase = await createTestDatabase();
      return { config: { store: { url: database.url, poolSize: 3 } }, drop: () => database.drop() };
    },
  },
];

for (const backend of backends) {
  describe(`rate limits of JSON-RPC batches on /mcp (${backend.name})`, { timeout: 120_000 }, () => {
    let server: McpTestServer;
    let drop: () => Promise<void>;

    before(async () => {
      const store = await backend.store();
      drop = store.drop;
      server = await startMcpTestServer({ secure: true, config: { ...limits, ...store.config } });
    });
    after(async () => {
      await server?.close();
      await drop?.();
    });

    async function sessionsOf(tenant: string): Promise<number> {
      const rows = await server.app.database.db
        .selectFrom('sessions')
        .select('id')
        .where('tenant_id', '=', tenant)
        .execute();
      return rows.length;
    }

    test('each request of a batch is charged; a batch without room is refused whole', async () => {
      const key = await server.createKey('acme', ['developer']);
      // initialize and notifications/initialized: 2 of the 6 points.
      const { headers } = await openMcpSession(server.url, '2025-03-26', { authorization: `Bearer ${key}` });

      // 5 calls: its POST takes a point (3 left), the 4 others do not fit.
      const refused = await postMcp(server.url, [1, 2, 3, 4, 5].map(orchestrate), headers);
      assert.equal(refused.status, 429);
      const problem = (await refused.json()) as { code: string };
      assert.equal(problem.code, 'RATE_LIMITED');
      const retryAfter = Number(refused.headers.get('retry-after'));
      assert.ok(
        Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
        `Retry-After ${retryAfter}`,
      );
      // Nothing of it ran, and only its POST was charged.
      assert.equal(await sessionsOf('acme'), 0);
      assert.equal(principalRemaining(refused), 3);

      // 3 calls and a notification (which costs nothing): 3 points, the last ones.
      const served = await postMcp(
        server.url,
        [
          listRoles(10),
          { jsonrpc: '2.0', method: 'notifications/roots/list_changed' },
          listRoles(11),
          listRoles(12),
        ],
        headers,
      );
      assert.equal(served.status, 200);
      assert.equal(principalRemaining(served), 0);
      assert.deepEqual((await answeredIds(served, 3)).sort(), [10, 11, 12]);

      const after = await postMcp(server.url, listRoles(13), headers);
      assert.equal(after.status, 429);
      await after.body?.cancel();
    });

    test('a batch of more requests than the whole quota is refused with 413: no wait would let it through', async () => {
      const key = await server.createKey('acme', ['developer']);
      const { headers } = await openMcpSession(server.url, '2025-03-26', { authorization: `Bearer ${key}` });
      const before = await sessionsOf('acme');
      const tooMany = await postMcp(
        server.url,
        Array.from({ length: QUOTA + 1 }, (_, index) => orchestrate(20 + index)),
        headers,
      );
      assert.equal(tooMany.status, 413);
      assert.equal(tooMany.headers.get('retry-after'), null);
      const problem = (await tooMany.json()) as {
        code: string;
        details?: { requests?: number; quota?: number };
      };
      assert.equal(problem.code, 'PAYLOAD_TOO_LARGE');
      assert.deepEqual([problem.details?.requests, problem.details?.quota], [QUOTA + 1, QUOTA]);
      assert.equal(await sessionsOf('acme'), before);
      // Its POST was charged as a refused request is: 6 - 2 - 1 = 3 left, enough for a batch of 3.
      const fits = await postMcp(server.url, [listRoles(30), listRoles(31), listRoles(32)], headers);
      assert.equal(fits.status, 200);
      assert.equal(principalRemaining(fits), 0);
      assert.deepEqual((await answeredIds(fits, 3)).sort(), [30, 31, 32]);
    });
  });
}
