// Tenant isolation of the session routes and MCP session tools in every state a session can be in.
// tenancy-probe.test.ts sends every route with one session of tenant A that has not started; a check
// of the session's state made before the tenant check (a 409 for a finished session, a retry refused
// while it is being deleted) would pass it and still tell B that A's session exists. Here A has a
// session in each status (and a failed one whose deletion has begun), and an admin of tenant B
// sends every route under /v1/sessions/{id} (with the id in lower and upper case, and the event
// log's query forms), every MCP tool that names a session, and its resources: each must answer
// exactly as for a session nobody has, carry nothing of A's, and leave A's sessions as they were.
// On SQLite and on PostgreSQL.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../../src/store/schema.ts';
import { type ConnectedClient, connectHttpClient } from '../fixtures/mcp-server.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { type ProbeStack, probeBodyFor, startProbeStack } from '../fixtures/security-probe.ts';
import { requestJson } from '../fixtures/server.ts';

const TENANT_A = 'tenant-alpha-states';
const TENANT_B = 'tenant-bravo-states';
const OBJECTIVE = 'objective-only-alpha-states-knows';

/** A's sessions: every status, and a failed one whose deletion has begun. */
const STATES = [
  'pending',
  'planning',
  'running',
  'paused',
  'awaiting_approval',
  'completed',
  'failed',
  'cancelled',
  'failed, being deleted',
] as const;

/** Extra requests per route: the event log's other query forms and a retry that names tasks to rerun. */
function variantsOf(
  method: string,
  url: string,
): { query: string; headers: Record<string, string>; body?: unknown }[] {
  const plain = { query: '', headers: {} };
  if (url === '/v1/sessions/:id/events' && method === 'GET') {
    return [
      plain,
      { query: '?after=0&limit=5', headers: {} },
      { query: '?order=desc', headers: {} },
      { query: '', headers: { accept: 'text/event-stream' } },
      { query: '', headers: { accept: 'text/event-stream', 'last-event-id': '1' } },
    ];
  }
  if (url === '/v1/sessions/:id/retry') {
    return [plain, { query: '', headers: { 'idempotency-key': 'states-retry-1' }, body: { rerun: ['t'] } }];
  }
  return [plain];
}

/** Status and body with the session id (in any case) and the request id blanked out. */
function comparable(status: number, text: string, id: string): string {
  // Ids are UUIDs (no characters special in a pattern); compared without case, as the API reads them.
  const blanked = text
    .replace(new RegExp(id, 'gi'), '<id>')
    .replace(/"requestId":"[^"]*"/g, '"requestId":"<request>"');
  return `${status} ${blanked}`;
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`tenant B cannot tell tenant A’s sessions in any state from none (${backend})`, {
    timeout: 180_000,
  }, () => {
    let stack: ProbeStack;
    let adminB: string;
    let adminA: string;
    let db: Kysely<Database>;
    const sessions = new Map<(typeof STATES)[number], string>();
    const clients: ConnectedClient[] = [];
    const cleanups: (() => unknown)[] = [];
    const asB = () => ({ authorization: `Bearer ${adminB}` });

    after(async () => {
      for (const client of clients) await client.close();
      for (const cleanup of cleanups.reverse()) await cleanup();
    });

    before(async () => {
      const database = backend === 'postgres' ? await createTestDatabase() : null;
      if (database) cleanups.push(() => database.drop());
      stack = await startProbeStack(
        { after: (fn: () => unknown) => cleanups.push(fn) },
        database ? { storeUrl: database.url } : {},
      );
      adminA = await stack.mint(TENANT_A, ['admin']);
      adminB = await stack.mint(TENANT_B, ['admin']);
      db = stack.server.app.database.db as unknown as Kysely<Database>;
      for (const state of STATES) {
        const created = await requestJson<{ id: string }>(`${stack.server.url}/v1/sessions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminA}` },
          body: { objective: OBJECTIVE, agents: [{ role: 'engineer', task: 't', runner: 'ok' }] },
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const id = created.body.id;
        // No worker runs (workers.concurrency 0): the status is set as the engine would have left it.
        const status = state === 'failed, being deleted' ? 'failed' : state;
        await sql`update sessions set status = ${status} where id = ${id}`.execute(db);
        if (state === 'failed, being deleted') {
          await sql`insert into deleted_sessions (id, tenant_id, deleted_at) values (${id}, ${TENANT_A}, ${Date.now()})`.execute(
            db,
          );
        }
        sessions.set(state, id);
      }
    });

    async function send(
      method: string,
      path: string,
      routeUrl: string,
      variant: { headers: Record<string, string>; body?: unknown },
    ): Promise<{ status: number; text: string }> {
      const body =
        method === 'GET' || method === 'HEAD' ? undefined : (variant.body ?? probeBodyFor(method, routeUrl));
      const response = await fetch(`${stack.server.url}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...asB(),
          ...variant.headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
      const streamed = response.headers.get('content-type')?.startsWith('text/event-stream') === true;
      if (streamed) await response.body?.cancel();
      return { status: response.status, text: streamed ? '<stream>' : await response.text() };
    }

    test('every /v1/sessions/{id} route answers as for a session nobody has', async () => {
      const routes = stack.routes.filter(
        (r) => r.url.startsWith('/v1/sessions/:id') && r.method !== 'OPTIONS',
      );
      assert.ok(routes.length >= 10, 'the session routes were found');
      const problems: string[] = [];
      // The states are probed at the same time (each its own requests in order): the answers do
      // not depend on one another, and the store waits less on one round trip after another.
      await Promise.all(
        [...sessions].map(async ([state, id]) => {
          for (const route of routes) {
            for (const variant of variantsOf(route.method, route.url)) {
              for (const named of [id, id.toUpperCase()]) {
                const nobody = randomUUID();
                const nobodyNamed = named === id ? nobody : nobody.toUpperCase();
                const label = `${state}: ${route.method} ${route.url}${variant.query} ${JSON.stringify(variant.headers)}${named === id ? '' : ' (upper case)'}`;
                const mine = await send(
                  route.method,
                  `${route.url.replace(':id', named)}${variant.query}`,
                  route.url,
                  variant,
                );
                const control = await send(
                  route.method,
                  `${route.url.replace(':id', nobodyNamed)}${variant.query}`,
                  route.url,
                  variant,
                );
                if (mine.status !== 404) problems.push(`${label}: ${mine.status} ${mine.text.slice(0, 200)}`);
                const a = comparable(mine.status, mine.text, id);
                const n = comparable(control.status, control.text, nobody);
                if (a !== n)
                  problems.push(`${label}: A's session ${a.slice(0, 300)} but nobody's ${n.slice(0, 300)}`);
                if (mine.text.includes(OBJECTIVE)) problems.push(`${label}: the answer holds A's objective`);
              }
            }
          }
        }),
      );
      assert.deepEqual(problems, []);
    });

    test('MCP: every tool and resource naming a session answers as for a session nobody has', async () => {
      const b = await connectHttpClient(stack.server.url, asB());
      clients.push(b);
      const { tools } = await b.client.listTools();
      const sessionTools = tools.filter((tool) =>
        Object.keys((tool.inputSchema.properties ?? {}) as Record<string, unknown>).includes('session_id'),
      );
      assert.ok(sessionTools.length >= 6, 'the session tools were found');
      const problems: string[] = [];
      const settle = <T>(promise: Promise<T>) =>
        promise.then(
          (value) => `ok ${JSON.stringify(value)}`,
          (error: Error) => `error ${error.message}`,
        );
      // The states are probed at the same time (each its own requests in order): the answers do
      // not depend on one another, and the store waits less on one round trip after another.
      await Promise.all(
        [...sessions].map(async ([state, id]) => {
          for (const named of [id, id.toUpperCase()]) {
            const nobody = randomUUID();
            const nobodyNamed = named === id ? nobody : nobody.toUpperCase();
            for (const tool of sessionTools) {
              const properties = Object.keys((tool.inputSchema.properties ?? {}) as Record<string, unknown>);
              const args = (sessionId: string): Record<string, unknown> => ({
                session_id: sessionId,
                ...(properties.includes('message') ? { message: 'hello' } : {}),
                ...(properties.includes('reason') ? { reason: 'probe' } : {}),
              });
              const mine = (await b.client.callTool({
                name: tool.name,
                arguments: args(named),
              })) as CallToolResult;
              const control = (await b.client.callTool({
                name: tool.name,
                arguments: args(nobodyNamed),
              })) as CallToolResult;
              const a = comparable(0, JSON.stringify(mine), id);
              const n = comparable(0, JSON.stringify(control), nobody);
              if (mine.isError !== true || a !== n)
                problems.push(
                  `${state}: tool ${tool.name}: ${a.slice(0, 300)} but nobody's ${n.slice(0, 300)}`,
                );
            }
            const uris = (sessionId: string) => [
              `maos://sessions/${sessionId}`,
              `maos://sessions/${sessionId}/agents/t/output`,
            ];
            const [mineUris, nobodyUris] = [uris(named), uris(nobodyNamed)];
            for (let i = 0; i < mineUris.length; i++) {
              const mineUri = mineUris[i] as string;
              const nobodyUri = nobodyUris[i] as string;
              for (const [what, call] of [
                ['read', (uri: string) => settle(b.client.readResource({ uri }))],
                ['subscribe', (uri: string) => settle(b.client.subscribeResource({ uri }))],
              ] as const) {
                const a = comparable(0, await call(mineUri), id);
                const n = comparable(0, await call(nobodyUri), nobody);
                if (!a.startsWith('0 error') || a !== n)
                  problems.push(
                    `${state}: ${what} ${mineUri}: ${a.slice(0, 300)} but nobody's ${n.slice(0, 300)}`,
                  );
              }
            }
          }
        }),
      );
      assert.deepEqual(problems, []);
    });

    test('A’s sessions are as they were, and B has none', async () => {
      for (const [state, id] of sessions) {
        const row = await db
          .selectFrom('sessions')
          .select(['status', 'tenant_id'])
          .where('id', '=', id)
          .executeTakeFirst();
        assert.deepEqual(row, {
          status: state === 'failed, being deleted' ? 'failed' : state,
          tenant_id: TENANT_A,
        });
      }
      const ofB = await db.selectFrom('sessions').select('id').where('tenant_id', '=', TENANT_B).execute();
      assert.deepEqual(ofB, [], 'no retry of B started a session');
      const messages = await db
        .selectFrom('messages')
        .select('id')
        .where('tenant_id', '=', TENANT_B)
        .execute();
      assert.deepEqual(messages, [], 'no steering message of B was stored');
    });
  });
}
