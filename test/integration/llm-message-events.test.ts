// Messages in the session event log, over the real app and REST events API: an agent's send_message
// is an `agent.message` event, a person's steering message a `user.message` event, and an open SSE
// stream receives the steering message as it is posted. Scripted LLM server, SQLite.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { answerScoutWriter, SCOUT_MESSAGE } from '../fixtures/scout-writer.ts';
import { readAllEvents, requestJson, waitForSession } from '../fixtures/server.ts';
import { readSseFrames } from '../fixtures/sse.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface EventView {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

test('message events', { timeout: 60_000 }, async (t) => {
  const { server } = await startLlmAppStack(t, { handler: answerScoutWriter, llm: { agentMessaging: true } });

  await t.test("an agent's send_message is an agent.message event (JSON pages and SSE replay)", async () => {
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Research and write' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const done = await waitForSession<{
      status: string;
      error: string | null;
      tasks: Array<{ name: string; agentId: string | null }>;
      agents: Array<{ id: string; name: string; role: string; usage: { inputTokens: number } }>;
    }>(server.url, id);
    assert.equal(done.status, 'completed', done.error ?? '');
    // The session document lists its agents with their usage.
    assert.deepEqual(
      done.agents.map((agent) => [agent.name, agent.role]),
      [
        ['scout', 'researcher'],
        ['writer', 'documenter'],
      ],
    );
    assert.equal(done.agents[0]?.id, done.tasks.find((task) => task.name === 'scout')?.agentId);
    const agentOf = (name: string) => done.tasks.find((t) => t.name === name)?.agentId;

    const events = await readAllEvents<EventView>(server.url, id);
    const messages = events.filter((event) => event.type === 'agent.message');
    assert.equal(messages.length, 1, JSON.stringify(events.map((e) => e.type)));
    const message = messages[0]!;
    assert.equal(typeof message.data.messageId, 'string');
    assert.deepEqual(
      { ...message.data, messageId: undefined },
      {
        messageId: undefined,
        from: 'scout',
        fromAgentId: agentOf('scout'),
        to: 'writer',
        toAgentId: agentOf('writer'),
        text: SCOUT_MESSAGE,
      },
    );
    // Stored with the message: the event comes before the recipient starts its task.
    const writerRunning = events.find(
      (event) => event.type === 'task.status' && event.data.name === 'writer' && event.data.to === 'running',
    );
    assert.ok(writerRunning && writerRunning.seq > message.seq);

    const frames = await readSseFrames(`${server.url}/v1/sessions/${id}/events`, {});
    const sseMessage = frames.find((frame) => frame.event === 'agent.message');
    assert.ok(sseMessage, frames.map((frame) => frame.event).join(','));
    assert.equal(sseMessage.id, String(message.seq));
    assert.equal((JSON.parse(sseMessage.data) as EventView).data.text, SCOUT_MESSAGE);
  });

  await t.test('a steering message is a user.message event, pushed to an open SSE stream', async () => {
    const created = await requestJson<{ id: string; status: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: { objective: 'Wait for me', approval: 'required' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const planned = await waitForSession(server.url, id, (s) => s.status !== 'planning');
    assert.equal(planned.status, 'awaiting_approval');
    const before = await readAllEvents<EventView>(server.url, id);
    // Nothing else happens to a session waiting for approval: the stream only gets the new event
    // if posting the message wakes it.
    const streamed = readSseFrames(`${server.url}/v1/sessions/${id}/events`, {}, before.length + 1, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const posted = await requestJson<{ id: string }>(`${server.url}/v1/sessions/${id}/messages`, {
      method: 'POST',
      body: { message: 'Focus on cost' },
    });
    assert.equal(posted.status, 202, JSON.stringify(posted.body));
    const frames = await streamed;
    assert.equal(frames.length, before.length + 1);
    const last = frames.at(-1)!;
    assert.equal(last.event, 'user.message');
    assert.deepEqual((JSON.parse(last.data) as EventView).data, {
      messageId: posted.body.id,
      from: 'user',
      fromAgentId: null,
      to: 'orchestrator',
      toAgentId: null,
      text: 'Focus on cost',
    });
    const page = await requestJson<{ items: EventView[] }>(`${server.url}/v1/sessions/${id}/events`);
    assert.equal(page.body.items.at(-1)?.type, 'user.message');

    const rejected = await requestJson(`${server.url}/v1/sessions/${id}/reject`, {
      method: 'POST',
      body: { reason: 'done testing' },
    });
    assert.equal(rejected.status, 204);
  });
});
