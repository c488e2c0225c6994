// Custom role names are chosen by tenants (`roles:manage`): one named like an Object.prototype
// member (`constructor` fits the role-name pattern) must run like any other role, with the default
// LLM route, instead of failing every task of that role on a route lookup that finds the member.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';

test('a custom role named constructor runs on the default route', { timeout: 60_000 }, async (t) => {
  const { server, llm } = await startLlmAppStack(t, { handler: () => ({ text: 'built' }) });
  const role = await fetch(`${server.url}/v1/roles`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'constructor',
      description: 'A role that builds things.',
      instructions: 'Build what the task asks and report what you built.',
    }),
  });
  assert.equal(role.status, 201);
  const submitted = await fetch(`${server.url}/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ objective: 'Build it', agents: [{ role: 'constructor', task: 'build it' }] }),
  });
  assert.equal(submitted.status, 201);
  const { id } = (await submitted.json()) as { id: string };
  let detail: { status: string; result?: string | null; error?: unknown } = { status: 'pending' };
  for (let i = 0; i < 200 && !['completed', 'failed', 'cancelled'].includes(detail.status); i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    detail = (await (await fetch(`${server.url}/v1/sessions/${id}`)).json()) as typeof detail;
  }
  assert.equal(detail.status, 'completed', JSON.stringify(detail.error));
  assert.equal(detail.result, 'built');
  assert.equal(llm.requests.length, 1);
});
