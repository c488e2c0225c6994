// Answers from the LLM response cache say nothing about the provider's health: they neither reset
// the circuit breaker's count of consecutive failures nor close a half-open circuit. Otherwise a
// provider that fails every call it gets would never trip its breaker (and MaosLlmCircuitOpen)
// while some of the requests are repeats. Real app, scripted LLM, real metrics registry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

test('a cache hit between two provider failures does not keep the circuit closed', {
  timeout: 60_000,
}, async (t) => {
  let failing = false;
  const { llm, server } = await startLlmAppStack(t, {
    handler: () => (failing ? { error: 503, message: 'overloaded' } : { text: 'answer' }),
    provider: { cache: true },
    llm: {
      circuitBreaker: { failureThreshold: 2, openSeconds: 60 },
      roles: { qa: { provider: 'local', temperature: 0 } },
    },
  });
  const run = async (task: string, expected: string) => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'o', agents: [{ name: 'a', role: 'qa', task }] },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const done = await waitForSession<{ status: string; error: string | null }>(server.url, created.body.id);
    assert.equal(done.status, expected, done.error ?? '');
  };
  const circuit = async (state: string) => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const line = text
      .split('\n')
      .find((row) => row.startsWith(`maos_llm_circuit_state{provider="local",state="${state}"} `));
    return line === undefined ? undefined : Number(line.split(' ').at(-1));
  };

  await run('repeat me', 'completed');
  failing = true;
  await run('first new question', 'failed');
  const calls = llm.requests.length;
  await run('repeat me', 'completed');
  assert.equal(llm.requests.length, calls, 'the repeat was answered from the cache');
  await run('second new question', 'failed');
  assert.equal(await circuit('open'), 1, 'two provider failures in a row open the circuit');
});
