// A retry whose task to run again has a custom role deleted since the original ran: refused with
// 400 INVALID_ROLE naming the role and the task, nothing stored; with the role back it runs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { createPoetRole, POET_ROLE } from '../fixtures/poet-role.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

test('a retry needs the roles of the tasks it runs again', async (t) => {
  let failing = true;
  const { server } = await startLlmAppStack(t, {
    handler: () => (failing ? { error: 400, message: 'bad request' } : { text: 'A verse.' }),
  });
  await createPoetRole(server.url);
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'A poem', agents: [{ name: 'verse', role: 'poet', task: 'Write a verse' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  assert.equal((await waitForSession(server.url, id)).status, 'failed');
  const removed = await requestJson(`${server.url}/v1/roles/poet`, { method: 'DELETE' });
  assert.equal(removed.status, 204);

  failing = false;
  const refused = await requestJson<{ code: string; detail: string; details: unknown }>(
    `${server.url}/v1/sessions/${id}/retry`,
    { method: 'POST' },
  );
  assert.equal(refused.status, 400);
  assert.equal(refused.body.code, 'INVALID_ROLE');
  assert.match(
    refused.body.detail,
    /^Unknown role 'poet' \(task verse\): it was deleted since the session ran/,
  );
  assert.deepEqual(refused.body.details, { roles: ['poet'], tasks: ['verse'] });
  const retries = await requestJson<{ items: unknown[] }>(`${server.url}/v1/sessions?retryOf=${id}`);
  assert.deepEqual(retries.body.items, [], 'nothing stored');

  await requestJson(`${server.url}/v1/roles`, { method: 'POST', body: POET_ROLE });
  const retried = await requestJson<{ id: string }>(`${server.url}/v1/sessions/${id}/retry`, {
    method: 'POST',
  });
  assert.equal(retried.status, 201, JSON.stringify(retried.body));
  assert.equal((await waitForSession(server.url, retried.body.id)).status, 'completed');
});
