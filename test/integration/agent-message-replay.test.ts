// A task run again after a crash or a lost lease tends to send what its earlier attempt sent: the
// same message from the same agent to the same recipient, not received yet, is stored once. Sent
// again after the recipient received it, or with other words, it is a new message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createStoreMessaging } from '../../src/agents/runtimes/ai-sdk/agent-tools.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';

test('the same undelivered message from one agent to another is stored once', async (t) => {
  const h = await createHarness({ start: false, runners: { ok: { command: ['true'] } } });
  t.after(() => h.close());
  const { session } = await h.engine.service.createSession(ACTOR, {
    objective: 'x',
    agents: [{ name: 'only', role: 'engineer', task: 't', runner: 'ok' }],
  });
  // The sending run holds its task (the messages of a run that no longer does are not stored).
  const task = await h.handle.db
    .updateTable('tasks')
    .set({ status: 'running', lease_owner: 'W', attempts: 1, lease_expires_at: Date.now() + 60_000 })
    .where('session_id', '=', session.id)
    .returning('id')
    .executeTakeFirstOrThrow();
  const sender = { taskId: task.id, owner: 'W', attempt: 1 };
  const sent: string[] = [];
  const messaging = createStoreMessaging(h.handle.db, (message) => sent.push(message.body));
  const message = {
    tenantId: ACTOR.tenantId,
    sessionId: session.id,
    fromAgentId: 'agent-a',
    toAgentId: 'agent-b',
    body: 'The rate limit is 50/s',
  };
  await messaging.sendMessage(message, sender);
  await messaging.sendMessage(message, sender);
  await messaging.sendMessage({ ...message, body: 'Another fact' }, sender);
  const rows = () =>
    h.handle.db.selectFrom('messages').select(['id', 'body']).where('session_id', '=', session.id).execute();
  assert.deepEqual((await rows()).map((row) => row.body).sort(), ['Another fact', 'The rate limit is 50/s']);
  assert.deepEqual(sent, ['The rate limit is 50/s', 'Another fact']);
  const events = (await h.allEvents(session.id)).filter((event) => event.type === 'agent.message');
  assert.equal(events.length, 2);
  // Once received, the same words are a new message.
  await h.handle.db
    .updateTable('messages')
    .set({ delivered_task_id: 'some-task' })
    .where('session_id', '=', session.id)
    .execute();
  await messaging.sendMessage(message, sender);
  assert.equal((await rows()).length, 3);
});
