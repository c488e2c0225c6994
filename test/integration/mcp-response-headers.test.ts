// The headers of an MCP SSE response go out at once, also when its first message is far off: a tool
// call that waits, from a client without resumption (no priming event), got them only with its
// first keep-alive (`http.sseKeepAliveSeconds`), too late for a client with a shorter timeout.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startMcpTestServer } from '../fixtures/mcp-server.ts';
import { initializeMcp, messagesOf, postMcp, readFrames } from '../fixtures/mcp-wire.ts';

test('a waiting tool call gets its response headers at once', { timeout: 60_000 }, async (t) => {
  // No keep-alive within the test: before the fix the headers waited for one, past the timeout.
  const server = await startMcpTestServer({ config: { http: { sseKeepAliveSeconds: 3600 } } });
  t.after(() => server.close());
  for (const version of ['2025-06-18', '2025-11-25']) {
    const { sessionId, negotiated } = await initializeMcp(server.url, version);
    const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
    const call = await postMcp(
      server.url,
      {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: {
          name: 'orchestrate',
          arguments: {
            objective: `headers first (${version})`,
            agents: [{ name: 'long', role: 'tester', task: 'sleep', runner: 'sleep' }],
            wait_seconds: 600,
          },
        },
      },
      headers,
      AbortSignal.timeout(20_000),
    );
    assert.equal(call.status, 200);
    assert.match(call.headers.get('content-type') ?? '', /^text\/event-stream/);
    // Done with it: the cancelled call's stream ends without a message.
    await postMcp(
      server.url,
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2 } },
      headers,
    );
    assert.deepEqual(messagesOf(await readFrames(call, () => false)), []);
  }
});
