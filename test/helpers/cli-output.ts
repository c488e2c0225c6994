// Set-up shared by the tests of CLI commands that print a long stream of events (`maos logs`,
// `maos run --follow`): stdout streams that record what the command wrote, one of them a slow
// reader that shows how much the command left waiting in stdout's buffer, and a session log made
// long at once by appending output events to the store.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { NewEvent } from '../../src/domain/events.ts';
import { appendEvents } from '../../src/store/event-store.ts';
import { requestJson, startTestServer, type TestServer, waitForSession } from '../fixtures/server.ts';

/** stdout's high-water mark in these runs: far less than one page of events. */
export const SLOW_STDOUT_HIGH_WATER_MARK = 1024;

/** A stdout whose reader takes each chunk on the next turn of the event loop; records its fill. */
export function slowStdout() {
  let text = '';
  let largestChunk = 0;
  let mostBuffered = 0;
  const stream = new Writable({
    highWaterMark: SLOW_STDOUT_HIGH_WATER_MARK,
    write(chunk, _encoding, done) {
      // What the writer left waiting here, this chunk included.
      mostBuffered = Math.max(mostBuffered, this.writableLength);
      largestChunk = Math.max(largestChunk, chunk.length);
      text += String(chunk);
      setImmediate(done);
    },
  });
  return {
    stream,
    text: () => text,
    largestChunk: () => largestChunk,
    mostBuffered: () => mostBuffered,
    /**
     * The most stdout may have held unread when the command waits for it between events: its
     * high-water mark and one event's output (a few chunks of at most the largest one each).
     */
    bound: () => SLOW_STDOUT_HIGH_WATER_MARK + 4 * largestChunk,
  };
}

/** A stream that keeps what is written to it, taken at once. */
export function collect() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

/**
 * Appends `count` stdout lines of task `taskId` (agent `w`) to the log of session `session` in one
 * transaction: a reader of the log gets them all at once. Line i is `line(i)`, by default
 * `out<i> xxx…`.
 */
export async function appendOutputLines(
  server: TestServer,
  session: { id: string; tenantId: string },
  taskId: string,
  count: number,
  line: (i: number) => string = (i) => `out${i} ${'x'.repeat(40)}`,
): Promise<void> {
  const lines: NewEvent[] = Array.from({ length: count }, (_, i) => ({
    type: 'task.output',
    data: { taskId, name: 'w', stream: 'stdout', line: line(i) },
  }));
  await server.app.database.db.transaction().execute(async (trx) => {
    await appendEvents(trx, session, lines, Date.now());
  });
}

/**
 * Starts a server holding session `objective`, whose one agent `w` (runner `sleep`) runs and prints
 * nothing until the session is cancelled, and appends `count` stdout lines `out<i>` to its log once
 * the agent runs: nothing else is logged until the cancel, so they are the end of the log. The
 * server is closed again when this fails; otherwise the caller closes it.
 */
export async function startServerWithLog(
  objective: string,
  count: number,
): Promise<{ server: TestServer; id: string }> {
  const server = await startTestServer();
  try {
    const created = await requestJson<{ id: string; tenantId: string; tasks: Array<{ id: string }> }>(
      `${server.url}/v1/sessions`,
      {
        method: 'POST',
        body: { objective, agents: [{ name: 'w', role: 'qa', task: 't', runner: 'sleep' }] },
      },
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    await waitForSession<{ status: string; tasks: Array<{ status: string }> }>(server.url, id, (session) =>
      session.tasks.every((task) => task.status === 'running'),
    );
    await appendOutputLines(server, created.body, created.body.tasks[0]?.id ?? '', count, (i) => `out${i}`);
    return { server, id };
  } catch (error) {
    await server.close();
    throw error;
  }
}
