// notifications/cancelled over Streamable HTTP: the cancelled request gets no response (MCP:
// "SHOULD NOT"), its SSE stream ends, a resume of that stream (Last-Event-ID) ends at once instead
// of waiting for a response that never comes, and the MCP session keeps answering.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { readSseFrames } from '../../src/cli/sse-reader.ts';
import { type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { type Frame, messagesOf, postMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { openMcpSession, resumeStream, sqliteFileConfig } from '../helpers/mcp-streams.ts';

/** Arguments of an `orchestrate` that waits up to `seconds` on a task that runs 30 s. */
function longWait(objective: string, seconds = 30) {
  return {
    objective,
    agents: [{ name: 'long', role: 'tester', task: 'sleep', runner: 'sleep' }],
    wait_seconds: seconds,
  };
}

/** One HTTP exchange of the SDK client, as the server answered it. */
interface Exchange {
  method: string;
  body: string | undefined;
  lastEventId: string | null;
  status: number;
  frames: Frame[];
  /** Settles when the server ends the response body. */
  ended: Promise<void>;
}

/** A fetch for the SDK client that records every exchange and the SSE frames of its response. */
function recordingFetch(exchanges: Exchange[]): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    const [recorded, forwarded] = response.body === null ? [null, null] : response.body.tee();
    const exchange: Exchange = {
      method: init?.method ?? 'GET',
      body: typeof init?.body === 'string' ? init.body : undefined,
      lastEventId: new Headers(init?.headers).get('last-event-id'),
      status: response.status,
      frames: [],
      ended: Promise.resolve(),
    };
    if (recorded !== null) {
      exchange.ended = (async () => {
        for await (const frame of readSseFrames(recorded as unknown as AsyncIterable<Uint8Array>)) {
          exchange.frames.push({ id: frame.id, data: frame.data });
        }
      })().catch(() => {
        // The client closed the connection.
      });
    }
    exchanges.push(exchange);
    return new Response(forwarded, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** Polls `find` until it returns something; the test's timeout bounds the wait. */
async function until<T>(find: () => T | undefined): Promise<T> {
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('an SDK client cancels a long tool call: no response, its stream and the resume of it end', {
  timeout: 60_000,
}, async (t) => {
  // One resumed stream per caller at most: a resume that did not end would hold the only place.
  const server = await startMcpTestServer({ config: { mcp: { maxSessionsPerPrincipal: 1 } } });
  t.after(() => server.close());
  const exchanges: Exchange[] = [];
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', server.url), {
    fetch: recordingFetch(exchanges),
    reconnectionOptions: {
      initialReconnectionDelay: 50,
      maxReconnectionDelay: 500,
      reconnectionDelayGrowFactor: 1.5,
      maxRetries: 2,
    },
  });
  const client = new Client({ name: 'maos-test', version: '1.0.0' });
  // The client reports its own attempts to reopen a notification stream it already has (409).
  client.onerror = () => {};
  await client.connect(transport);
  t.after(() => client.close());

  const cancel = new AbortController();
  const call = client.callTool(
    { name: 'orchestrate', arguments: longWait('cancelled by the client') },
    undefined,
    {
      signal: cancel.signal,
      timeout: 60_000,
    },
  );
  const post = await until(() =>
    exchanges.find((exchange) => exchange.method === 'POST' && exchange.body?.includes('"tools/call"')),
  );
  assert.equal(post.status, 200);
  // The priming event: the stream can be resumed from its id.
  const priming = await until(() => post.frames[0]);
  assert.ok(priming.id);
  cancel.abort('the user gave up');
  await assert.rejects(call);

  // The stream ends, without a response (before: with JSON-RPC error -32800).
  await post.ended;
  assert.deepEqual(messagesOf(post.frames), []);

  // The client resumes the stream it lost before a response; the resume ends at once, empty
  // (before: it stayed open, waiting for a response that never comes).
  const resumed = await until(() =>
    exchanges.find((exchange) => exchange.method === 'GET' && exchange.lastEventId === priming.id),
  );
  assert.equal(resumed.status, 200);
  await resumed.ended;
  assert.deepEqual(messagesOf(resumed.frames), []);

  // The resumed stream's place is free again: a resume by hand gets one, and ends as well.
  const headers = {
    'mcp-session-id': transport.sessionId ?? '',
    'mcp-protocol-version': transport.protocolVersion ?? '',
  };
  const again = await resumeStream(server.url, headers, priming.id, { timeoutMs: 15_000, retryWhile: [429] });
  assert.equal(again.status, 200);
  assert.deepEqual(messagesOf(await readFrames(again, () => false)), []);

  // The MCP session still answers, and the cancelled call's MAOS session can be stopped.
  const roles = await client.callTool({ name: 'list_roles', arguments: {} });
  assert.notEqual(roles.isError, true);
});

describe('cancelled on the wire', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  before(async () => {
    server = await startMcpTestServer();
  });
  after(() => server?.close());

  test('a cancelled call of a client without resumption ends its stream without a response', async () => {
    // 2025-06-18: no priming event, so the client cannot resume; the stream must still end.
    const { headers } = await openMcpSession(server.url, '2025-06-18');
    const call = await postMcp(
      server.url,
      {
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'orchestrate', arguments: longWait('a long wait, cancelled') },
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
    // Before: a JSON-RPC error -32800 came first; without the end, this read ran into the 20 s abort.
    assert.deepEqual(messagesOf(await readFrames(call, () => false)), []);
    // A cancel of a request that is over (or unknown) changes nothing.
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

  test('a batch stream with a cancelled request ends after the answers of the others', async () => {
    // 2025-03-26 allows JSON-RPC batches: both requests are answered on one stream.
    const { headers } = await openMcpSession(server.url, '2025-03-26');
    const call = await postMcp(
      server.url,
      [
        {
          jsonrpc: '2.0',
          id: 5,
          method: 'tools/call',
          params: { name: 'orchestrate', arguments: longWait('cancelled in a batch') },
        },
        {
          jsonrpc: '2.0',
          id: 6,
          method: 'tools/call',
          params: { name: 'orchestrate', arguments: longWait('answered in a batch', 1) },
        },
      ],
      headers,
      AbortSignal.timeout(20_000),
    );
    assert.equal(call.status, 200);
    const cancel = await postMcp(
      server.url,
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 5 } },
      headers,
    );
    assert.equal(cancel.status, 202);
    // The other request's answer still arrives on the stream, which then ends.
    const messages = messagesOf(await readFrames(call, () => false));
    assert.deepEqual(
      messages.map((message) => message.id),
      [6],
    );
    assert.ok(messages[0]?.result);
  });
});

test('a cancelled stream resumed on another instance ends at once there too', {
  timeout: 60_000,
}, async (t) => {
  // The instance holding the MCP session stops; the client resumes on a new one (same database).
  const config = sqliteFileConfig('maos-mcp-cancel-restart');
  const first = await startMcpTestServer({ config });
  const { headers } = await openMcpSession(first.url, '2025-11-25');
  let primingId: string | undefined;
  try {
    const call = await postMcp(
      first.url,
      {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'orchestrate', arguments: longWait('cancelled, then resumed elsewhere') },
      },
      headers,
      AbortSignal.timeout(20_000),
    );
    const frames = await readFrames(call, () => true);
    primingId = frames[0]?.id;
    await postMcp(
      first.url,
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2 } },
      headers,
    );
    assert.deepEqual(messagesOf(await readFrames(call, () => false)), []);
  } finally {
    await first.close();
  }
  assert.ok(primingId, 'a priming event id');
  const second = await startMcpTestServer({ config });
  t.after(() => second.close());
  // Before, the stream was followed until mcp.sessionIdleSeconds without a message (30 min).
  const resumed = await resumeStream(second.url, headers, primingId, { timeoutMs: 20_000 });
  assert.equal(resumed.status, 200);
  assert.deepEqual(messagesOf(await readFrames(resumed, () => false)), []);
});
