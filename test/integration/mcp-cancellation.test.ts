// notifications/cancelled over Streamable HTTP: the cancelled request's SSE response ends (with a
// -32800 answer clients ignore) instead of staying open until the client goes away.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REQUEST_CANCELLED } from '../../src/mcp/cancelled-requests.ts';
import { startMcpTestServer } from '../fixtures/mcp-server.ts';
import { initializeMcp, messagesOf, postMcp, readFrames } from '../fixtures/mcp-wire.ts';

test('a cancelled tool call ends its response stream', { timeout: 60_000 }, async (t) => {
  const server = await startMcpTestServer();
  t.after(() => server.close());
  const { sessionId, negotiated } = await initializeMcp(server.url, '2025-06-18');
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
  // Waits up to 30 s on a task that runs 30 s; the stream is read for at most 20 s.
  const call = await postMcp(
    server.url,
    {
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: {
        name: 'orchestrate',
        arguments: {
          objective: 'a long wait, cancelled',
          agents: [{ name: 'long', role: 'tester', task: 'sleep', runner: 'sleep' }],
          wait_seconds: 30,
        },
      },
    },
    headers,
    AbortSignal.timeout(20_000),
  );
  assert.equal(call.status, 200);
  const cancel = await postMcp(
    server.url,
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'user' } },
    headers,
  );
  assert.equal(cancel.status, 202);
  // Before the fix nothing more came: the stream stayed open until the 20 s abort above.
  const messages = messagesOf(await readFrames(call, () => false));
  assert.deepEqual(messages, [
    { jsonrpc: '2.0', id: 7, error: { code: REQUEST_CANCELLED, message: 'Request cancelled' } },
  ]);
  // A cancel of a request that already has its answer (or of none) changes nothing.
  const again = await postMcp(
    server.url,
    { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7 } },
    headers,
  );
  assert.equal(again.status, 202);
  const status = await postMcp(
    server.url,
    { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'list_roles', arguments: {} } },
    headers,
  );
  const [answer] = messagesOf(await readFrames(status, () => false));
  assert.equal(answer?.id, 8);
  assert.ok(answer?.result, 'the MCP session still answers');
});
