// A model call the engine stops (the session is cancelled while the provider is still answering)
// is `cancelled` in telemetry, not a provider `timeout`: it must not count towards the provider
// error ratio of MaosLlmProviderErrorRate. A call the provider is too slow for (the per-call
// timeout) stays a `timeout`. Real app, scripted LLM that never answers, real metrics registry.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { startLlmServer } from '../fixtures/llm-server.ts';
import { requestJson, startTestServer, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

/** The error types of the model's duration samples and of the provider error counter. */
function errorTypes(scrape: string): { samples: string[]; errors: string[] } {
  const types = (pattern: RegExp) =>
    [...scrape.matchAll(pattern)].flatMap((match) => Array(Number(match[2])).fill(match[1]));
  return {
    samples: types(/^gen_ai_client_operation_duration_seconds_count\{[^}]*error_type="([^"]+)"\} (\d+)$/gm),
    errors: types(/^maos_llm_provider_errors_total\{provider="local",error_type="([^"]+)"\} (\d+)$/gm),
  };
}

async function submit(url: string): Promise<string> {
  const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'stop me', agents: [{ name: 'a', role: 'qa', task: 'wait' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id;
}

describe('model calls stopped before the provider answered', () => {
  test('a cancelled session stops its model call as cancelled, not as a provider timeout', async (t) => {
    const { llm, server } = await startLlmAppStack(t, { handler: () => ({ hang: true }) });
    const id = await submit(server.url);
    const deadline = Date.now() + 15_000;
    while (llm.openResponses() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(llm.openResponses(), 1, 'the model call is in flight');
    const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    assert.equal(cancelled.status, 200);
    assert.equal((await waitForSession(server.url, id)).status, 'cancelled');
    let scrape = '';
    for (let waited = 0; waited < 5000 && !scrape.includes('error_type='); waited += 50) {
      scrape = await (await fetch(`${server.url}/metrics`)).text();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(errorTypes(scrape), { samples: ['cancelled'], errors: ['cancelled'] });
  });

  test('a call past the per-call timeout is a provider timeout', async (t) => {
    const llm = await startLlmServer({ apiKey: 'k', handler: () => ({ hang: true }) });
    t.after(() => llm.close());
    const server = await startTestServer({
      config: {
        providers: {
          local: {
            type: 'openai-compatible',
            baseURL: llm.openaiBaseURL,
            model: 'm',
            apiKey: 'k',
            timeoutSeconds: 0.5,
          },
        },
        llm: { retry: { maxAttempts: 1 }, agentMessaging: false },
      },
    });
    t.after(() => server.close());
    const id = await submit(server.url);
    assert.equal((await waitForSession(server.url, id)).status, 'failed');
    const scrape = await (await fetch(`${server.url}/metrics`)).text();
    assert.deepEqual(errorTypes(scrape), { samples: ['timeout'], errors: ['timeout'] });
  });
});
