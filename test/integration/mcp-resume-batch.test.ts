// A JSON-RPC batch (protocol 2025-03-26) is answered on one SSE stream. A resume of that stream
// (GET + Last-Event-ID) must deliver every response of the batch still to come, then end: on the
// process holding the MCP session (live, or once all are stored) and on another instance that
// only reads the durable log. Before, each of them ended at the first response it met; and on
// another instance also once the replay buffer's per-stream limit had pruned the batch's marker.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ANSWERED_STREAM_END, createStreamEventsRetentionTarget } from '../../src/mcp/stream-event-log.ts';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { type Frame, messagesOf, readFrames } from '../fixtures/mcp-wire.ts';
import {
  openMcpSession,
  postAndDrop,
  resumeStream,
  sqliteFileConfig,
  streamEventsOf,
  untilResponseStored,
  useMcpReplicas,
} from '../helpers/mcp-streams.ts';

/** An `orchestrate` call that waits `seconds` on a task that runs 30 s, then answers `running`. */
function waitingCall(id: number, seconds: number, progressToken?: string) {
  return {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: {
      name: 'orchestrate',
      ...(progressToken === undefined ? {} : { _meta: { progressToken } }),
      arguments: {
        objective: `batch call ${id}`,
        agents: [{ name: 'long', role: 'tester', task: 'sleep', runner: 'sleep' }],
        wait_seconds: seconds,
      },
    },
  };
}

const LIST_ROLES = {
  jsonrpc: '2.0',
  id: 11,
  method: 'tools/call',
  params: { name: 'list_roles', arguments: {} },
};

async function openBatchSession(url: string): Promise<Record<string, string>> {
  const { negotiated, headers } = await openMcpSession(url, '2025-03-26');
  assert.equal(negotiated, '2025-03-26');
  return headers;
}

/** POSTs `batch`, reads up to its first frame with an event id, then drops the connection. */
async function startAndDrop(url: string, headers: Record<string, string>, batch: unknown[]): Promise<Frame> {
  const frames = await postAndDrop(url, batch, headers, (frame) => frame.id !== undefined);
  return frames.at(-1) as Frame;
}

/** Resumes from `lastEventId`; returns the ids of the responses the stream carried until it ended. */
async function resumedResponses(url: string, headers: Record<string, string>, lastEventId: string) {
  const resumed = await resumeStream(url, headers, lastEventId, {
    // A stream that does not end aborts the read and fails the test.
    timeoutMs: 20_000,
    // 409 while the holding process has not yet noticed the dropped connection (it does so asynchronously).
    retryWhile: [409],
  });
  assert.equal(resumed.status, 200);
  return messagesOf(await readFrames(resumed, () => false))
    .filter((message) => message.method === undefined)
    .map((message) => message.id);
}

describe('on the process holding the MCP session', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  before(async () => {
    server = await startMcpTestServer();
  });
  after(() => server?.close());

  test('a batch stream resumed once all is stored: the rest of its responses', async () => {
    const headers = await openBatchSession(server.url);
    const first = await startAndDrop(server.url, headers, [LIST_ROLES, waitingCall(12, 1)]);
    assert.equal(messagesOf([first])[0]?.id, 11);
    await untilResponseStored(server, 12, headers['mcp-session-id']);
    // Before: resumed from a response, the stream ended at once, without the second one.
    assert.deepEqual(await resumedResponses(server.url, headers, first.id ?? ''), [12]);
  });

  test('a batch stream resumed while it runs: every response, then its end', async () => {
    const headers = await openBatchSession(server.url);
    // The first message is call 21's progress notification, sent before either call answers.
    const first = await startAndDrop(server.url, headers, [waitingCall(21, 1, 'batch'), waitingCall(22, 2)]);
    assert.equal(messagesOf([first])[0]?.method, 'notifications/progress');
    // Before: the stream ended after call 21's response.
    assert.deepEqual((await resumedResponses(server.url, headers, first.id ?? '')).sort(), [21, 22]);
  });
});

test('a batch stream resumed on another instance: the rest of its responses, then its end', {
  timeout: 60_000,
}, async (t) => {
  // The instance holding the MCP session stops; the client resumes on a new one (same database).
  const config = sqliteFileConfig('maos-mcp-batch-restart');
  const first = await startMcpTestServer({ config });
  let headers: Record<string, string>;
  let resumeFrom: Frame;
  try {
    headers = await openBatchSession(first.url);
    resumeFrom = await startAndDrop(first.url, headers, [LIST_ROLES, waitingCall(12, 1)]);
    await untilResponseStored(first, 12, headers['mcp-session-id']);
  } finally {
    await first.close();
  }
  const second = await startMcpTestServer({ config });
  t.after(() => second.close());
  // Before: the follower ended at once (resumed from a response), without the second one.
  assert.deepEqual(await resumedResponses(second.url, headers, resumeFrom.id ?? ''), [12]);
});

/**
 * The per-stream limit of the replay buffer: [LIST_ROLES, waitingCall(12, 1)] stores its marker,
 * two responses and its end marker, so the limit's pass leaves response 11, the event to resume from.
 */
const SMALL_BUFFER = 3;

/**
 * Runs the batch on `holding`, waits until all of it is stored, prunes the replay buffer as the
 * retention job does, then resumes from the first response on `resuming` (which does not hold the
 * MCP session): it must still carry the batch's second response.
 */
async function resumeAfterPrune(
  holding: McpTestServer,
  resuming: () => Promise<McpTestServer>,
): Promise<unknown[]> {
  const headers = await openBatchSession(holding.url);
  const first = await startAndDrop(holding.url, headers, [LIST_ROLES, waitingCall(12, 1)]);
  const db = streamEventsOf(holding);
  const end = JSON.stringify(ANSWERED_STREAM_END);
  while (
    (await db.selectFrom('mcp_stream_events').select('id').where('message', '=', end).execute()).length === 0
  ) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const target = createStreamEventsRetentionTarget({ retentionMs: 600_000, perStreamLimit: SMALL_BUFFER });
  while ((await target.deleteBatch(db, Date.now(), 100)) > 0) {}
  const server = await resuming();
  return resumedResponses(server.url, headers, first.id ?? '');
}

test('a batch stream resumed on another instance after the replay buffer was pruned: the rest of its responses', {
  timeout: 60_000,
}, async (t) => {
  const config = sqliteFileConfig('maos-mcp-batch-pruned', { mcp: { replayBufferSize: SMALL_BUFFER } });
  const first = await startMcpTestServer({ config });
  let stopped = false;
  t.after(async () => {
    if (!stopped) await first.close();
  });
  const responses = await resumeAfterPrune(first, async () => {
    // The instance holding the MCP session stops; the client resumes on a new one.
    await first.close();
    stopped = true;
    const second = await startMcpTestServer({ config });
    t.after(() => second.close());
    return second;
  });
  // Before: the pass pruned the batch's marker (the oldest row), and the stream ended at once.
  assert.deepEqual(responses, [12]);
});

describe('two replicas on one PostgreSQL database', { timeout: 90_000 }, () => {
  const config = { mcp: { replayBufferSize: SMALL_BUFFER } };
  const replicas = useMcpReplicas({ config }, { config });

  test('a batch stream resumed on the other replica after the replay buffer was pruned: the rest of its responses', async () => {
    const [holding, other] = replicas.servers as [McpTestServer, McpTestServer];
    // Before: the pass pruned the batch's marker, and the other replica ended the stream at once.
    assert.deepEqual(await resumeAfterPrune(holding, async () => other), [12]);
  });
});
