// Requests in flight on /mcp are bounded: per MCP session (mcp.maxRequestsInFlightPerSession) and
// per caller over all its sessions (mcp.maxRequestsInFlightPerPrincipal). A request beyond is
// refused at once with a JSON-RPC error naming the setting; a response or a cancellation gives the
// slot back. Before, a client could start any number of `orchestrate` calls that wait (up to an
// hour each) on one session. Real server with API keys, SDK client over Streamable HTTP, SQLite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { type ConnectedClient, connectHttpClient, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { initializeMcp, messagesOf, postMcp, readFrames } from '../fixtures/mcp-wire.ts';
import { requestJson } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

interface Waiting {
  controller: AbortController;
  settled: Promise<unknown>;
}

/** Starts an `orchestrate` of a 30 s agent that waits for it; the call stays in flight until aborted. */
function startWaitingCall(mcp: ConnectedClient, objective: string): Waiting {
  const controller = new AbortController();
  const settled = mcp.client
    .callTool(
      {
        name: 'orchestrate',
        arguments: {
          objective,
          agents: [{ name: 'slow', role: 'tester', task: 'wait', runner: 'sleep' }],
          wait_seconds: 120,
        },
      },
      undefined,
      { signal: controller.signal, timeout: 180_000 },
    )
    .catch((error: unknown) => error);
  return { controller, settled };
}

/** Waits until `count` sessions exist for the key: their `orchestrate` calls are waiting by then. */
async function waitForSessions(
  url: string,
  headers: Record<string, string>,
  count: number,
): Promise<string[]> {
  return waitFor(async () => {
    const listed = await requestJson<{ items: Array<{ id: string }> }>(`${url}/v1/sessions`, { headers });
    return listed.body.items.length >= count ? listed.body.items.map((item) => item.id) : false;
  });
}

async function refusalOf(call: Promise<unknown>): Promise<McpError> {
  const error = await call.then(
    () => assert.fail('the request was not refused'),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof McpError, String(error));
  return error;
}

describe('MCP requests in flight', { timeout: 120_000 }, () => {
  test('one MCP session has at most mcp.maxRequestsInFlightPerSession; a cancelled call gives its slot back', async (t) => {
    const server = await startMcpTestServer({
      secure: true,
      config: { mcp: { maxRequestsInFlightPerSession: 2, maxRequestsInFlightPerPrincipal: 10 } },
    });
    const headers = { authorization: `Bearer ${await server.createKey('acme', ['developer'])}` };
    const mcp = await connectHttpClient(server.url, headers);
    t.after(async () => {
      await mcp.close();
      await server.close();
    });

    const calls = [startWaitingCall(mcp, 'first'), startWaitingCall(mcp, 'second')];
    const sessions = await waitForSessions(server.url, headers, 2);

    const refused = await refusalOf(mcp.client.listTools());
    assert.equal(refused.code, -32602);
    assert.deepEqual(refused.data, {
      code: 'RESOURCE_LIMIT_EXCEEDED',
      details: { setting: 'mcp.maxRequestsInFlightPerSession', limit: 2 },
    });
    assert.match(refused.message, /RESOURCE_LIMIT_EXCEEDED: .*mcp\.maxRequestsInFlightPerSession/);
    // A state-changing tool refused so is audited as its other refusals are.
    const refusedCall = await refusalOf(
      mcp.client.callTool({ name: 'cancel_session', arguments: { session_id: sessions[0] } }),
    );
    assert.equal((refusedCall.data as { code: string }).code, 'RESOURCE_LIMIT_EXCEEDED');
    const records = await server.listAudit();
    assert.deepEqual(
      records
        .filter((record) => record.reason?.endsWith('RESOURCE_LIMIT_EXCEEDED'))
        .map((record) => [record.action, record.outcome, record.reason, record.targetId]),
      [['sessions:cancel', 'failure', 'mcp tool cancel_session: RESOURCE_LIMIT_EXCEEDED', sessions[0]]],
    );
    // Refused, not queued: the waiting calls go on.
    assert.equal(await Promise.race([calls[0]!.settled, Promise.resolve('pending')]), 'pending');

    // notifications/cancelled for one: its slot is free at once, though its MAOS session goes on.
    calls[0]!.controller.abort();
    await calls[0]!.settled;
    const listed = await waitFor(() => mcp.client.listTools().catch(() => undefined));
    assert.ok(listed.tools.length > 0);
    // One slot, taken again by a waiting call: the next request is refused again.
    const third = startWaitingCall(mcp, 'third');
    await waitForSessions(server.url, headers, 3);
    await refusalOf(mcp.client.listTools());
    calls[1]!.controller.abort();
    third.controller.abort();
    await Promise.all([calls[1]!.settled, third.settled]);
  });

  test('one caller has at most mcp.maxRequestsInFlightPerPrincipal over its MCP sessions; others are not held up', async (t) => {
    const server = await startMcpTestServer({
      secure: true,
      config: { mcp: { maxRequestsInFlightPerSession: 10, maxRequestsInFlightPerPrincipal: 2 } },
    });
    const mine = { authorization: `Bearer ${await server.createKey('acme', ['developer'])}` };
    const colleague = { authorization: `Bearer ${await server.createKey('acme', ['developer'])}` };
    const first = await connectHttpClient(server.url, mine);
    const second = await connectHttpClient(server.url, mine);
    const other = await connectHttpClient(server.url, colleague);
    t.after(async () => {
      await Promise.all([first.close(), second.close(), other.close()]);
      await server.close();
    });

    const calls = [startWaitingCall(first, 'one'), startWaitingCall(second, 'two')];
    await waitForSessions(server.url, mine, 2);

    const refused = await refusalOf(first.client.listTools());
    assert.deepEqual(refused.data, {
      code: 'RESOURCE_LIMIT_EXCEEDED',
      details: { setting: 'mcp.maxRequestsInFlightPerPrincipal', limit: 2 },
    });
    assert.ok((await other.client.listTools()).tools.length > 0);

    // Ending an MCP session (DELETE /mcp) gives back the slots of its requests in flight.
    await second.transport.terminateSession();
    const listed = await waitFor(() => first.client.listTools().catch(() => undefined));
    assert.ok(listed.tools.length > 0);
    for (const call of calls) call.controller.abort();
    await Promise.all(calls.map((call) => call.settled));
  });

  test('a cancellation the SDK does not act on (request id 0, params it refuses) frees no slot: the call still runs', async (t) => {
    const server = await startMcpTestServer({ config: { mcp: { maxRequestsInFlightPerSession: 1 } } });
    t.after(() => server.close());
    const cases: Array<[number, Record<string, unknown>]> = [
      // The SDK ignores a requestId that is falsy.
      [0, { requestId: 0 }],
      // Its schema refuses a reason that is no string: the cancellation is dropped.
      [7, { requestId: 7, reason: 5 }],
    ];
    for (const [index, [id, params]] of cases.entries()) {
      const { sessionId, negotiated } = await initializeMcp(server.url, '2025-06-18');
      const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
      const reading = new AbortController();
      const waiting = await postMcp(
        server.url,
        {
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: {
            name: 'orchestrate',
            arguments: {
              objective: `held ${id}`,
              agents: [{ name: 'slow', role: 'tester', task: 'wait', runner: 'sleep' }],
              wait_seconds: 120,
            },
          },
        },
        headers,
        reading.signal,
      );
      assert.equal(waiting.status, 200);
      await waitForSessions(server.url, {}, index + 1);
      const cancelled = await postMcp(
        server.url,
        { jsonrpc: '2.0', method: 'notifications/cancelled', params },
        headers,
      );
      assert.equal(cancelled.status, 202);
      // The orchestrate goes on waiting, in its slot: the next request is refused.
      const next = await postMcp(server.url, { jsonrpc: '2.0', id: 100, method: 'tools/list' }, headers);
      const [answer] = messagesOf(await readFrames(next, (frame) => frame.data.includes('"id":100')));
      assert.deepEqual(
        (answer as { error?: { data?: unknown } }).error?.data,
        {
          code: 'RESOURCE_LIMIT_EXCEEDED',
          details: { setting: 'mcp.maxRequestsInFlightPerSession', limit: 1 },
        },
        JSON.stringify(params),
      );
      reading.abort();
      await fetch(`${server.url}/mcp`, { method: 'DELETE', headers });
    }
  });

  test('each request of a batch counts: those beyond the limit are refused, the others answered', async (t) => {
    const server = await startMcpTestServer({ config: { mcp: { maxRequestsInFlightPerSession: 2 } } });
    t.after(() => server.close());
    const { sessionId, negotiated } = await initializeMcp(server.url, '2025-03-26');
    const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': negotiated };
    const batch = [1, 2, 3].map((id) => ({ jsonrpc: '2.0', id, method: 'tools/list' }));
    const response = await postMcp(server.url, batch, headers);
    assert.equal(response.status, 200);
    const answers = messagesOf(await readFrames(response, () => false));
    assert.deepEqual(answers.map((answer) => [answer.id, 'result' in answer]).sort(), [
      [1, true],
      [2, true],
      [3, false],
    ]);
    const refused = answers.find((answer) => answer.id === 3) as { error: { code: number; data: unknown } };
    assert.equal(refused.error.code, -32602);
    assert.deepEqual(refused.error.data, {
      code: 'RESOURCE_LIMIT_EXCEEDED',
      details: { setting: 'mcp.maxRequestsInFlightPerSession', limit: 2 },
    });
    // Answered, they hold nothing: the next batch of two is served whole.
    const next = await postMcp(server.url, batch.slice(0, 2), headers);
    const served = messagesOf(await readFrames(next, () => false));
    assert.equal(served.filter((answer) => 'result' in answer).length, 2);
  });
});
