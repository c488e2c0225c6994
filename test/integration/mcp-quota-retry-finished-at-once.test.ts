// MCP `retry_session` at the tenant's cap of unfinished sessions, as POST /v1/sessions/:id/retry
// (quota-retry-finished-at-once.test.ts): a retry that is complete the moment it is stored (every
// task carried over) starts no work, so the early quota check of the MCP tools lets it through (it
// is told which session is retried); one with work to run is refused QUOTA_EXCEEDED. Real server,
// SDK client over Streamable HTTP and scripted LLM server, SQLite and PostgreSQL (PostgreSQL needs
// --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startLlmServer } from '../fixtures/llm-server.ts';
import { connectHttpClient, startMcpTestServer, toolErrorOf } from '../fixtures/mcp-server.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  sessionId: string;
  status: string;
  error: string | null;
  retryOf: string | null;
  tasks: Array<{ name: string; status: string }>;
}

const HANGING = { objective: 'Hold the slot', agents: [{ role: 'qa', task: 'wait', runner: 'sleep' }] };

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`MCP retry_session at the tenant's cap of unfinished sessions: ${store}`, {
    timeout: 60_000,
  }, () => {
    test('one that finishes at once is stored; one with work to run is a QUOTA_EXCEEDED tool error', async (t) => {
      const llm = await startLlmServer({ apiKey: 'k' });
      const database = store === 'postgres' ? await createTestDatabase() : undefined;
      const server = await startMcpTestServer({
        secure: true,
        config: {
          ...(database ? { store: { url: database.url } } : {}),
          providers: {
            local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'k' },
          },
          llm: { retry: { maxAttempts: 1 }, agentMessaging: false },
          rateLimit: { enabled: false, maxConcurrentSessionsPerTenant: 1 },
        },
      });
      t.after(async () => {
        await server.close();
        await database?.drop();
        await llm.close();
      });
      const key = await server.createKey('acme', ['developer']);
      const headers = { authorization: `Bearer ${key}` };
      const mcp = await connectHttpClient(server.url, headers);
      const call = async (name: string, args: Record<string, unknown>) =>
        (await mcp.client.callTool({ name, arguments: args })) as CallToolResult;
      const sessionOf = (result: CallToolResult) => {
        assert.notEqual(result.isError, true, JSON.stringify(result.content));
        return result.structuredContent as unknown as SessionView;
      };

      // The answer is short (the budget does not stop it streaming), its reported usage over the
      // budget: the task succeeds, its session fails BUDGET_EXCEEDED at the finish.
      llm.setHandler(() => ({ text: '## Summary\nDone.', usage: { inputTokens: 5_000, outputTokens: 5 } }));
      const spent = sessionOf(
        await call('orchestrate', {
          objective: 'Write it',
          agents: [{ role: 'engineer', task: 'write' }],
          budget: { maxTokens: 1_000 },
        }),
      );
      const failed = await waitForSession<{ status: string; error: string | null }>(
        server.url,
        spent.sessionId,
        undefined,
        undefined,
        headers,
      );
      assert.equal(failed.status, 'failed');
      assert.match(failed.error ?? '', /^BUDGET_EXCEEDED/);

      const holder = sessionOf(await call('orchestrate', HANGING));

      // Work to run (a task named to run again): refused at the cap, as before.
      const rerun = await call('retry_session', {
        session_id: spent.sessionId,
        budget: { maxTokens: 100_000 },
        rerun: [spent.tasks[0]?.name],
      });
      assert.equal(rerun.isError, true, JSON.stringify(rerun.content));
      assert.equal(toolErrorOf(rerun)?.code, 'QUOTA_EXCEEDED');

      // Every task carried over: complete at once, so not refused.
      const retry = sessionOf(
        await call('retry_session', { session_id: spent.sessionId, budget: { maxTokens: 100_000 } }),
      );
      assert.equal(retry.status, 'completed');
      assert.equal(retry.retryOf, spent.sessionId);

      const quotas = await requestJson<{ concurrentSessions: { used: number } }>(`${server.url}/v1/quotas`, {
        headers,
      });
      assert.equal(quotas.body.concurrentSessions.used, 1, 'the holder alone is unfinished');
      await call('cancel_session', { session_id: holder.sessionId });
      await mcp.close();
    });
  });
}
