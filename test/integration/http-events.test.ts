// SSE against the real engine: a stream cut mid-session and resumed with Last-Event-ID delivers
// exactly the missed events (no gap, no duplicate) and ends after session.finished.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readAllEvents, requestJson, startTestServer } from '../fixtures/server.ts';
import { readSseFrames } from '../fixtures/sse.ts';

test('SSE resume with Last-Event-ID replays exactly the missed events', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'chatty',
      agents: [1, 2, 3].map((n) => ({ name: `t${n}`, role: 'qa', task: `count ${n}`, runner: 'count' })),
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const url = `${server.url}/v1/sessions/${created.body.id}/events`;

  const head = await readSseFrames(url, {}, 4);
  assert.equal(head.length, 4);
  const lastSeen = head.at(-1)?.id;
  assert.equal(lastSeen, '4');
  const tail = await readSseFrames(url, { 'last-event-id': String(lastSeen) });

  const stored = await readAllEvents<{ seq: number; type: string }>(server.url, created.body.id);
  const streamed = [...head, ...tail];
  assert.deepEqual(
    streamed.map((f) => Number(f.id)),
    stored.map((e) => e.seq),
    'head + resumed tail = the whole log, without gaps or duplicates',
  );
  assert.deepEqual(
    streamed.map((f) => f.event),
    stored.map((e) => e.type),
  );
  assert.equal(tail.at(-1)?.event, 'session.finished');
  assert.ok(
    stored.some((e) => e.type === 'task.output'),
    'output lines were streamed while the session ran',
  );
  for (const frame of streamed) {
    const event = JSON.parse(frame.data) as { seq: number; type: string };
    assert.equal(String(event.seq), frame.id);
    assert.equal(event.type, frame.event);
  }
});
