// Token counts a provider reports are taken as whole, non-negative numbers: an OpenAI-compatible
// server (or a proxy in front of one) that reports a fraction of a token or a negative count must
// neither stall the task on PostgreSQL (whose token columns are bigint: the finish failed until the
// lease expired, and nothing was charged) nor make the session unreadable on SQLite (500), and must
// never lower what the tenant's daily token quota counts. Real app, scripted LLM, both stores
// (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startDailyQuotaStack } from '../fixtures/daily-quota-stack.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  id: string;
  status: string;
  error: string | null;
  usage: { inputTokens: number; outputTokens: number };
}
interface QuotaView {
  dailyTokens: { used: number };
}

const CASES = [
  { reported: { inputTokens: 10.5, outputTokens: 3 }, charged: { inputTokens: 11, outputTokens: 3 } },
  { reported: { inputTokens: -5000, outputTokens: 3 }, charged: { inputTokens: 0, outputTokens: 3 } },
];

for (const store of ['sqlite', 'postgres'] as const) {
  for (const { reported, charged } of CASES) {
    test(`a provider reporting ${JSON.stringify(reported)} is charged ${JSON.stringify(charged)}: ${store}`, {
      timeout: 60_000,
    }, async (t) => {
      const { server } = await startDailyQuotaStack(t, store, 100_000, {
        handler: () => ({ text: 'ran', usage: reported }),
      });
      const created = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: 'Odd usage figures', agents: [{ role: 'engineer', task: 'Do it' }] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const session = await waitForSession<SessionView>(server.url, created.body.id);
      assert.equal(session.status, 'completed', session.error ?? '');
      assert.equal(session.usage.inputTokens, charged.inputTokens);
      assert.equal(session.usage.outputTokens, charged.outputTokens);
      const quotas = await requestJson<QuotaView>(`${server.url}/v1/quotas`);
      assert.equal(quotas.body.dailyTokens.used, charged.inputTokens + charged.outputTokens);
    });
  }
}
