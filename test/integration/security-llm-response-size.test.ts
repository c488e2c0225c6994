// A model server decides how much it sends: one that ignores maxOutputTokens (misbehaving, or run by
// a tenant behind its own provider base URL) must not make the server read an answer without end.
// Past `providers.<name>.maxResponseBytes` the call fails as a provider error (what streamed in
// before that may remain as output lines, the answer is not the task's result); answers below it
// pass whole.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

const LIMIT = 256 * 1024;

async function runSession(url: string): Promise<{ status: string; result?: string | null; error?: unknown }> {
  const submitted = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Write', agents: [{ role: 'engineer', task: 'write it' }] },
  });
  assert.equal(submitted.status, 201);
  return waitForSession(url, submitted.body.id);
}

test('an LLM answer larger than maxResponseBytes fails the call; a smaller one passes', {
  timeout: 60_000,
}, async (t) => {
  const { llm, server } = await startLlmAppStack(t, { provider: { maxResponseBytes: LIMIT } });

  // Four times the limit, in large streamed pieces.
  const huge = 'x'.repeat(LIMIT * 4);
  llm.setHandler(() => ({ text: huge, chunkSize: 16 * 1024 }));
  const refused = await runSession(server.url);
  assert.equal(refused.status, 'failed');
  assert.match(JSON.stringify(refused.error), /response exceeded 262144 bytes/);
  assert.ok((refused.result ?? '').length < LIMIT);

  const fine = 'y'.repeat(LIMIT / 8);
  llm.setHandler(() => ({ text: fine, chunkSize: 4 * 1024 }));
  const passed = await runSession(server.url);
  assert.equal(passed.status, 'completed', JSON.stringify(passed.error));
  assert.equal(passed.result, fine);
});
