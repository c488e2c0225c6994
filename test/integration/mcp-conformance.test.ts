// Protocol details of /mcp checked on the wire: version negotiation, resuming a dropped SSE
// response with Last-Event-ID, the open-session limit and idle expiry.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import {
  initializeMcp as initialize,
  messagesOf,
  postMcp as post,
  readFrames,
} from '../fixtures/mcp-wire.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { openMcpSession, resumeStream } from '../helpers/mcp-streams.ts';

describe('MCP wire conformance', { timeout: 120_000 }, () => {
  let server: McpTestServer;
  before(async () => {
    server = await startMcpTestServer({ config: { mcp: { maxSessions: 4, sessionIdleSeconds: 1 } } });
  });
  after(async () => server?.close());

  test('negotiates the protocol version: a supported one is kept, an unknown one gets the latest', async () => {
    assert.equal((await initialize(server.url, '2025-03-26')).negotiated, '2025-03-26');
    assert.equal((await initialize(server.url, '2099-01-01')).negotiated, LATEST_PROTOCOL_VERSION);
  });

  test('a dropped tool-call stream is resumed with Last-Event-ID, progress and result included', async () => {
    const { headers } = await openMcpSession(server.url);
    const controller = new AbortController();
    const call = await post(
      server.url,
      {
        jsonrpc: '2.0',
        id: 42,
        method: 'tools/call',
        params: {
          name: 'orchestrate',
          _meta: { progressToken: 'resume-me' },
          arguments: {
            objective: 'resumable',
            strategy: 'sequential',
            agents: [
              { name: 'a', role: 'tester', task: 'one', runner: 'slow' },
              { name: 'b', role: 'tester', task: 'two', runner: 'slow' },
            ],
            wait_seconds: 30,
          },
        },
      },
      headers,
      controller.signal,
    );
    assert.equal(call.status, 200);
    // The first frame is the priming event: an id and no data. Drop the connection right after it.
    const [priming] = await readFrames(call, () => true);
    assert.ok(priming?.id, 'priming event carries an id');
    controller.abort();

    // The server notices the disconnect asynchronously; until then the stream counts as open (409).
    const resumed = await resumeStream(server.url, headers, priming.id, {
      timeoutMs: 30_000,
      retryWhile: [409],
    });
    assert.equal(resumed.status, 200);
    const messages = messagesOf(await readFrames(resumed, (f) => f.data.includes('"id":42')));
    const progress = messages.filter((m) => m.method === 'notifications/progress');
    assert.ok(progress.length >= 1, 'progress notifications arrive on the resumed stream');
    const response = messages.find((m) => m.id === 42) as {
      result: { structuredContent: { status: string } };
    };
    assert.equal(response.result.structuredContent.status, 'completed');
  });

  test('more open MCP sessions than mcp.maxSessions get RESOURCE_LIMIT_EXCEEDED', async () => {
    // Earlier tests may have opened some; fill up to the limit, then one more must fail.
    let refused: Response | undefined;
    for (let i = 0; i < 5 && refused === undefined; i += 1) {
      const response = await post(server.url, {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: LATEST_PROTOCOL_VERSION,
          capabilities: {},
          clientInfo: { name: 'n', version: '1' },
        },
      });
      if (response.status === 429) refused = response;
      else await response.body?.cancel();
    }
    assert.ok(refused, 'the limit was reached');
    assert.equal(((await refused.json()) as { code: string }).code, 'RESOURCE_LIMIT_EXCEEDED');
  });

  test('an idle MCP session is closed and its id then answers 404', async () => {
    // The previous test filled the table; idle expiry frees it within a few seconds.
    const { sessionId } = await waitFor(
      () => initialize(server.url, LATEST_PROTOCOL_VERSION).catch(() => undefined),
      10_000,
      'a free place for a new MCP session',
    );
    // Each probe is activity; the gap between probes (3 s) exceeds idle time (1 s) plus one sweep (1 s).
    let status = 0;
    for (let attempt = 0; attempt < 5 && status !== 404; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const probe = await fetch(`${server.url}/mcp`, {
        method: 'GET',
        headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId },
        signal: AbortSignal.timeout(10_000),
      });
      status = probe.status;
      await probe.body?.cancel();
    }
    assert.equal(status, 404);
  });
});
