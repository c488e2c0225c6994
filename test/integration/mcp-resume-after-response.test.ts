// A request stream resumed (GET + Last-Event-ID) on the replica that holds the MCP session, after
// its response was stored while the client was away: the replay ends with that response, as a
// resume on another replica does, instead of staying open.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startMcpTestServer } from '../fixtures/mcp-server.ts';
import { initializeMcp, messagesOf, postMcp, readFrames } from '../fixtures/mcp-wire.ts';

test('a stream resumed after its response was stored ends with that response', {
  timeout: 60_000,
}, async (t) => {
  const server = await startMcpTestServer();
  t.after(() => server.close());
  // 2025-11-25: every request stream starts with a priming event whose id a client resumes from.
  const { sessionId, negotiated } = await initializeMcp(server.url, '2025-11-25');
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
  const dropped = new AbortController();
  const call = await postMcp(
    server.url,
    {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: {
        name: 'orchestrate',
        arguments: {
          objective: 'answered while the client is away',
          agents: [{ name: 'long', role: 'tester', task: 'sleep', runner: 'sleep' }],
          wait_seconds: 1,
        },
      },
    },
    headers,
    dropped.signal,
  );
  const [priming] = await readFrames(call, () => true);
  assert.ok(priming?.id, 'a priming event id');
  dropped.abort();
  // The call's answer is stored once its wait ends, with nobody connected to receive it.
  const db = server.app.database.db as unknown as import('kysely').Kysely<{
    mcp_stream_events: { mcp_session_id: string; message: string };
  }>;
  for (;;) {
    const rows = await db
      .selectFrom('mcp_stream_events')
      .select('message')
      .where('mcp_session_id', '=', sessionId)
      .execute();
    if (rows.some((row) => row.message.includes('"result"') && row.message.includes('"id":2'))) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const resumed = await fetch(`${server.url}/mcp`, {
    headers: { ...headers, accept: 'text/event-stream', 'last-event-id': priming.id },
    // Before the fix the stream never ended and this aborted the read.
    signal: AbortSignal.timeout(15_000),
  });
  assert.equal(resumed.status, 200);
  const messages = messagesOf(await readFrames(resumed, () => false));
  assert.equal(messages.length, 1);
  assert.equal(messages[0]?.id, 2);
  assert.ok(messages[0]?.result, 'the stored answer');
  const status = (messages[0]?.result as { structuredContent?: { sessionId: string } } | undefined)
    ?.structuredContent;
  await postMcp(
    server.url,
    {
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: 'cancel_session', arguments: { session_id: status?.sessionId } },
    },
    headers,
  ).then((response) => response.body?.cancel());
});

test('a stream resumed from its response ends at once', { timeout: 60_000 }, async (t) => {
  const server = await startMcpTestServer();
  t.after(() => server.close());
  const { sessionId, negotiated } = await initializeMcp(server.url, '2025-11-25');
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
  // The reference client resumes a stream that ended with an error response (it only counts a
  // result as the end), from that response's event id.
  const call = await postMcp(server.url, { jsonrpc: '2.0', id: 4, method: 'no/such/method' }, headers);
  const frames = await readFrames(call, () => false);
  const [answer] = messagesOf(frames);
  assert.equal((answer?.error as { code?: number } | undefined)?.code, -32601);
  const resumed = await fetch(`${server.url}/mcp`, {
    headers: { ...headers, accept: 'text/event-stream', 'last-event-id': frames.at(-1)?.id ?? '' },
    // Before the fix the stream never ended and this aborted the read.
    signal: AbortSignal.timeout(15_000),
  });
  assert.equal(resumed.status, 200);
  assert.deepEqual(messagesOf(await readFrames(resumed, () => false)), []);
});
