// A request stream resumed (GET + Last-Event-ID) on the replica that holds the MCP session, after
// its response was stored while the client was away: the replay ends with that response, as a
// resume on another replica does, instead of staying open.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { messagesOf, postMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { openMcpSession, postAndDrop, resumeStream, untilResponseStored } from '../helpers/mcp-streams.ts';

describe('a request stream resumed on the process holding its MCP session', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  before(async () => {
    server = await startMcpTestServer();
  });
  after(() => server?.close());

  test('a stream resumed after its response was stored ends with that response', async () => {
    // 2025-11-25: every request stream starts with a priming event whose id a client resumes from.
    const { sessionId, headers } = await openMcpSession(server.url, '2025-11-25');
    const [priming] = await postAndDrop(
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
      () => true,
    );
    // The call's answer is stored once its wait ends, with nobody connected to receive it.
    await untilResponseStored(server, 2, sessionId);
    // Before the fix the stream never ended and the timeout aborted the read.
    const resumed = await resumeStream(server.url, headers, priming?.id ?? '', { timeoutMs: 15_000 });
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

  test('a stream resumed from its response ends at once', async () => {
    const { headers } = await openMcpSession(server.url, '2025-11-25');
    // The reference client resumes a stream that ended with an error response (it only counts a
    // result as the end), from that response's event id.
    const call = await postMcp(server.url, { jsonrpc: '2.0', id: 4, method: 'no/such/method' }, headers);
    const frames = await readFrames(call, () => false);
    const [answer] = messagesOf(frames);
    assert.equal((answer?.error as { code?: number } | undefined)?.code, -32601);
    // Before the fix the stream never ended and the timeout aborted the read.
    const resumed = await resumeStream(server.url, headers, frames.at(-1)?.id ?? '', { timeoutMs: 15_000 });
    assert.equal(resumed.status, 200);
    assert.deepEqual(messagesOf(await readFrames(resumed, () => false)), []);
  });
});
