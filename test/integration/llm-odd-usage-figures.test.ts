// Token counts a provider reports are taken as whole, non-negative numbers: an OpenAI-compatible
// server (or a proxy in front of one) that reports a fraction of a token or a negative count must
// neither stall the task on PostgreSQL (whose token columns are bigint: the finish failed until the
// lease expired, and nothing was charged) nor make the session unreadable on SQLite (500), and must
// never lower what the tenant's daily token quota counts. Real app, scripted LLM, both stores
// (PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startDailyQuotaStack } from '../fixtures/daily-quota-stack.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
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

interface PlannedSessionView extends SessionView {
  tasks: Array<{ name: string; role: string; usage: { inputTokens: number; outputTokens: number } }>;
}

// A server that reports the tokens it generated but not the prompt's (`usage` with
// `completion_tokens` only): the AI SDK reads the missing count as 0, and every call was charged no
// input at all, so token budgets and the daily quota never saw the prompts. The input is now charged
// at the estimate a call without usage gets (4 characters per token of the prompt), the output as
// reported: for the orchestrator's planning round, the agent's streamed call and the synthesis.
for (const store of ['sqlite', 'postgres'] as const) {
  test(`a provider reporting output tokens but no input tokens is charged an estimate of the input: ${store}`, {
    timeout: 60_000,
  }, async (t) => {
    const outputs = { plan: 5, agent: 3, synthesis: 4 };
    const { server } = await startDailyQuotaStack(t, store, 1_000_000, {
      handler: (request) => {
        const kind = llmRequestKind(request);
        if (kind === 'plan') {
          return {
            object: { rationale: 'r', phases: [{ name: 'work', tasks: [plannedTask('build', 'engineer')] }] },
            usage: { inputTokens: null, outputTokens: outputs.plan },
          };
        }
        const outputTokens = kind === 'synthesis' ? outputs.synthesis : outputs.agent;
        return {
          text: kind === 'synthesis' ? 'all done' : 'built',
          usage: { inputTokens: null, outputTokens },
        };
      },
    });
    const created = await requestJson<PlannedSessionView>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Build it without input counts' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const session = await waitForSession<PlannedSessionView>(server.url, created.body.id);
    assert.equal(session.status, 'completed', session.error ?? '');
    const charged = session.tasks.map((task) => [task.name, task.usage.outputTokens]);
    assert.deepEqual(
      charged.sort(),
      [
        ['build', outputs.agent],
        ['orchestrator:plan', outputs.plan],
        ['orchestrator:synthesis', outputs.synthesis],
      ].sort(),
    );
    for (const task of session.tasks) {
      // Every prompt holds at least its system prompt: hundreds of characters, never 0 tokens.
      assert.ok(task.usage.inputTokens >= 50, `${task.name}: ${JSON.stringify(task.usage)}`);
    }
    const input = session.tasks.reduce((sum, task) => sum + task.usage.inputTokens, 0);
    assert.equal(session.usage.inputTokens, input);
    assert.equal(session.usage.outputTokens, outputs.plan + outputs.agent + outputs.synthesis);
    const quotas = await requestJson<QuotaView>(`${server.url}/v1/quotas`);
    assert.equal(quotas.body.dailyTokens.used, session.usage.inputTokens + session.usage.outputTokens);
  });
}
