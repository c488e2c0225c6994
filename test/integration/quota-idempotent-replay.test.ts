// A request repeated with its Idempotency-Key gets its session back although the tenant is at a
// quota now: the replay starts no session, and the quota check before the engine (POST /v1/sessions,
// POST /v1/sessions/:id/retry, MCP `orchestrate`) refused it with 429 QUOTA_EXCEEDED, although
// the docs promise the original session for the same key and body (a client repeats a submit whose
// answer it lost, and a submit of its own holds the tenant's one slot). A new key is still refused.
// Real server, SQLite and PostgreSQL (PostgreSQL needs
// --test-global-setup=test/fixtures/postgres-global-setup.ts); MCP on SQLite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { connectHttpClient, startMcpTestServer, toolErrorOf } from '../fixtures/mcp-server.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer } from '../fixtures/server.ts';

interface Session {
  id: string;
  status: string;
  code?: string;
}

const HANGING = { objective: 'Hold the slot', agents: [{ role: 'qa', task: 'wait', runner: 'sleep' }] };

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`an idempotent replay at the tenant's cap of unfinished sessions: ${store}`, {
    timeout: 60_000,
  }, () => {
    test('a submit and a retry repeated with their keys get their sessions; new keys get 429', async (t) => {
      const database = store === 'postgres' ? await createTestDatabase() : undefined;
      const server = await startTestServer({
        config: {
          ...(database ? { store: { url: database.url } } : {}),
          rateLimit: { enabled: true, maxConcurrentSessionsPerTenant: 1 },
        },
      });
      t.after(async () => {
        await server.close();
        await database?.drop();
      });
      const post = (path: string, key: string, body?: unknown) =>
        requestJson<Session>(`${server.url}${path}`, {
          method: 'POST',
          headers: { 'idempotency-key': key },
          ...(body === undefined ? {} : { body }),
        });

      const first = await post('/v1/sessions', 'submit-1', HANGING);
      assert.equal(first.status, 201, JSON.stringify(first.body));
      const replay = await post('/v1/sessions', 'submit-1', HANGING);
      assert.equal(replay.status, 200, JSON.stringify(replay.body));
      assert.equal(replay.body.id, first.body.id);
      const other = await post('/v1/sessions', 'submit-2', HANGING);
      assert.equal(other.status, 429, JSON.stringify(other.body));
      assert.equal(other.body.code, 'QUOTA_EXCEEDED');

      const cancelled = await requestJson<Session>(`${server.url}/v1/sessions/${first.body.id}/cancel`, {
        method: 'POST',
      });
      assert.equal(cancelled.body.status, 'cancelled');
      const retry = await post(`/v1/sessions/${first.body.id}/retry`, 'retry-1');
      assert.equal(retry.status, 201, JSON.stringify(retry.body));
      const retryReplay = await post(`/v1/sessions/${first.body.id}/retry`, 'retry-1');
      assert.equal(retryReplay.status, 200, JSON.stringify(retryReplay.body));
      assert.equal(retryReplay.body.id, retry.body.id);
      const otherRetry = await post(`/v1/sessions/${first.body.id}/retry`, 'retry-2');
      assert.equal(otherRetry.status, 429, JSON.stringify(otherRetry.body));
      await requestJson(`${server.url}/v1/sessions/${retry.body.id}/cancel`, { method: 'POST' });
    });
  });
}

describe('an idempotent replay at the cap through MCP', { timeout: 60_000 }, () => {
  test('orchestrate repeated with its idempotency_key gets its session; a new key is refused', async (t) => {
    const server = await startMcpTestServer({
      secure: true,
      config: { rateLimit: { enabled: false, maxConcurrentSessionsPerTenant: 1 } },
    });
    t.after(() => server.close());
    const key = await server.createKey('acme', ['developer']);
    const mcp = await connectHttpClient(server.url, { authorization: `Bearer ${key}` });
    t.after(() => mcp.close());
    const call = async (idempotencyKey: string) =>
      (await mcp.client.callTool({
        name: 'orchestrate',
        arguments: { ...HANGING, idempotency_key: idempotencyKey },
      })) as CallToolResult;
    const first = await call('mcp-1');
    assert.notEqual(first.isError, true, JSON.stringify(first.content));
    const replay = await call('mcp-1');
    assert.notEqual(replay.isError, true, JSON.stringify(replay.content));
    const session = (result: CallToolResult) =>
      result.structuredContent as { sessionId: string; created: boolean };
    assert.equal(session(first).created, true);
    assert.equal(session(replay).created, false);
    assert.equal(session(replay).sessionId, session(first).sessionId);
    const other = await call('mcp-2');
    assert.equal(other.isError, true);
    assert.equal(toolErrorOf(other)?.code, 'QUOTA_EXCEEDED');
  });
});
