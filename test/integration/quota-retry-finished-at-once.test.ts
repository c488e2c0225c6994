// A retry that ends the moment it is stored (every task carried over, nothing left to run) starts
// no work and is never unfinished, so the tenant's cap on unfinished sessions does not refuse it:
// it was refused 429 QUOTA_EXCEEDED by the check before the engine and by the one in the insert's
// transaction. A retry with work to run is still refused at the cap. Real server and scripted LLM
// server, SQLite and PostgreSQL (PostgreSQL needs
// --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startLlmServer } from '../fixtures/llm-server.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

interface Session {
  id: string;
  status: string;
  code?: string;
  error?: string | null;
  tasks?: Array<{ name: string; status: string }>;
}

const HANGING = { objective: 'Hold the slot', agents: [{ role: 'qa', task: 'wait', runner: 'sleep' }] };

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`a retry at the tenant's cap of unfinished sessions: ${store}`, { timeout: 60_000 }, () => {
    test('one that finishes at once is stored; one with work to run gets 429', async (t) => {
      const llm = await startLlmServer({ apiKey: 'k' });
      const database = store === 'postgres' ? await createTestDatabase() : undefined;
      const server = await startTestServer({
        config: {
          ...(database ? { store: { url: database.url } } : {}),
          providers: {
            local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'k' },
          },
          llm: { retry: { maxAttempts: 1 }, agentMessaging: false },
          rateLimit: { enabled: true, maxConcurrentSessionsPerTenant: 1 },
        },
      });
      t.after(async () => {
        await server.close();
        await database?.drop();
        await llm.close();
      });
      // The answer is short (the budget does not stop it streaming), its reported usage over the
      // budget: the task succeeds, its session fails BUDGET_EXCEEDED at the finish.
      llm.setHandler(() => ({ text: '## Summary\nDone.', usage: { inputTokens: 5_000, outputTokens: 5 } }));
      const post = (path: string, body: unknown) =>
        requestJson<Session>(`${server.url}${path}`, { method: 'POST', body });

      const spent = await post('/v1/sessions', {
        objective: 'Write it',
        agents: [{ role: 'engineer', task: 'write' }],
        budget: { maxTokens: 1_000 },
      });
      assert.equal(spent.status, 201, JSON.stringify(spent.body));
      const failed = await waitForSession<Session>(server.url, spent.body.id);
      assert.equal(failed.status, 'failed');
      assert.match(failed.error ?? '', /^BUDGET_EXCEEDED/);
      assert.deepEqual(
        failed.tasks?.map((task) => task.status),
        ['succeeded'],
      );

      const holder = await post('/v1/sessions', HANGING);
      assert.equal(holder.status, 201, JSON.stringify(holder.body));

      const rerun = await post(`/v1/sessions/${spent.body.id}/retry`, {
        budget: { maxTokens: 100_000 },
        rerun: [failed.tasks?.[0]?.name],
      });
      assert.equal(rerun.status, 429, JSON.stringify(rerun.body));
      assert.equal(rerun.body.code, 'QUOTA_EXCEEDED');

      const retry = await post(`/v1/sessions/${spent.body.id}/retry`, { budget: { maxTokens: 100_000 } });
      assert.equal(retry.status, 201, JSON.stringify(retry.body));
      assert.equal(retry.body.status, 'completed');

      const quotas = await requestJson<{ concurrentSessions: { used: number } }>(`${server.url}/v1/quotas`);
      assert.equal(quotas.body.concurrentSessions.used, 1, 'the holder alone is unfinished');
      await requestJson(`${server.url}/v1/sessions/${holder.body.id}/cancel`, { method: 'POST' });
    });
  });
}
