// Streamed agent text reaches the session's events while the model still writes, even when it writes
// one long paragraph without a line break, and the events rebuild the model's text exactly.
// Scripted LLM server streaming slowly, real app over HTTP on SQLite.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { readAllEvents, requestJson } from '../fixtures/server.ts';

interface EventView {
  seq: number;
  type: string;
  data: { taskId?: string; stream?: string; line?: string; partial?: boolean };
}

// Over 2,000 characters, no line break: the output buffer's old rule held it all until the end.
const PARAGRAPH = Array.from(
  { length: 40 },
  (_, i) => `Sentence ${i + 1} of a long answer keeps going without a break;`,
).join(' ');

test('a long paragraph streamed slowly appears in output events while the task runs', async (t) => {
  assert.ok(!PARAGRAPH.includes('\n') && PARAGRAPH.length > 2000);
  // 40 characters every 8 ms: the answer takes about half a second to stream.
  const { server } = await startLlmAppStack(t, {
    handler: () => ({ text: PARAGRAPH, chunkSize: 40, chunkDelayMs: 15 }),
  });
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: {
      objective: 'Explain',
      agents: [{ name: 'writer', role: 'documenter', task: 'Explain at length' }],
    },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;

  // Reads the log until the session ends. Output read while the task is still running proves it was
  // written before the finish (which commits the last buffered output together with the result).
  let outputsWhileRunning = 0;
  let after = 0;
  const deadline = Date.now() + 20_000;
  for (let finished = false; !finished; ) {
    assert.ok(Date.now() < deadline, 'the session did not finish');
    const page = await requestJson<{ items: EventView[]; nextAfter: number }>(
      `${server.url}/v1/sessions/${id}/events?after=${after}`,
    );
    assert.equal(page.status, 200);
    const items = page.body.items;
    finished = items.some((event) => event.type === 'task.result' || event.type === 'session.finished');
    const outputs = items.filter((event) => event.type === 'task.output').length;
    if (outputs > 0 && !finished) {
      const session = await requestJson<{ tasks: Array<{ status: string }> }>(
        `${server.url}/v1/sessions/${id}`,
      );
      if (session.body.tasks[0]?.status === 'running') outputsWhileRunning += outputs;
    }
    if (items.length > 0) after = page.body.nextAfter;
    else await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(outputsWhileRunning > 0, 'no output event was read while the task was running');

  const events = await readAllEvents<EventView>(server.url, id);
  const outputs = events.filter((event) => event.type === 'task.output');
  assert.ok(outputs.length >= 2, `${outputs.length} output events`);
  assert.ok(outputs.every((event) => event.data.stream === 'text'));
  // Every piece continues the same line (no line break follows any): rebuilt, they are the model's
  // text, character for character.
  assert.ok(outputs.every((event) => event.data.partial === true));
  assert.equal(
    outputs.map((event) => event.data.line + (event.data.partial ? '' : '\n')).join(''),
    PARAGRAPH,
  );
  const resultAt = events.findIndex((event) => event.type === 'task.result');
  assert.ok(
    events.findIndex((event) => event.type === 'task.output') < resultAt,
    'output precedes the result',
  );

  const session = await requestJson<{ status: string; result: string | null }>(
    `${server.url}/v1/sessions/${id}`,
  );
  assert.equal(session.body.status, 'completed');
  assert.equal(session.body.result, PARAGRAPH);
});
