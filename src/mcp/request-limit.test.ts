// The slots of requests in flight on one MCP connection (request-limit.ts), on a bare SDK server: a
// request whose id is already in flight is refused, and no refusal frees the slot of the request
// in flight under its id; the SDK's handler controllers, which tell when it stops a handler, are
// where the limit reads them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { createRequestSlots, limitRequestsInFlight } from './request-limit.ts';

interface Answer {
  id: string | number;
  result?: unknown;
  error?: { code: number; data?: { code?: string } };
}

/** A server with one tool, `hold`, that answers only once released; at most `max` requests in flight. */
async function connect(max: number) {
  const server = new McpServer({ name: 'test', version: '1' });
  const releases: Array<() => void> = [];
  server.registerTool('hold', {}, async () => {
    await new Promise<void>((resolve) => releases.push(resolve));
    return { content: [] };
  });
  limitRequestsInFlight(server, () =>
    createRequestSlots({ max, setting: 'mcp.maxRequestsInFlightPerSession' }),
  );
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const answers: Answer[] = [];
  clientSide.onmessage = (message) => {
    answers.push(message as Answer);
  };
  await clientSide.start();
  await server.connect(serverSide);
  const answerTo = async (id: string | number): Promise<Answer> => {
    for (;;) {
      const answer = answers.find((candidate) => candidate.id === id);
      if (answer !== undefined) {
        answers.splice(answers.indexOf(answer), 1);
        return answer;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return {
    server,
    send: (message: Record<string, unknown>) =>
      clientSide.send({ jsonrpc: '2.0', ...message } as JSONRPCMessage),
    hold: (id: string | number) =>
      clientSide.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'hold', arguments: {} } }),
    answerTo,
    /** Waits until `count` holds run. */
    running: async (count: number) => {
      while (releases.length < count) await new Promise((resolve) => setImmediate(resolve));
    },
    runningNow: () => releases.length,
    releaseAll: () => {
      for (const release of releases.splice(0)) release();
    },
    close: () => server.close(),
  };
}

describe('MCP requests in flight on one connection', () => {
  test('a request whose id is in flight is refused, and its refusal frees no slot', async () => {
    const mcp = await connect(2);
    await mcp.hold(1);
    await mcp.hold(2);
    await mcp.running(2);
    await mcp.hold(1);
    const duplicate = await mcp.answerTo(1);
    assert.equal(duplicate.error?.code, -32602);
    assert.equal(duplicate.error?.data?.code, 'VALIDATION_FAILED');
    // Still two in flight (ids 1 and 2): the next is refused for the limit. Before, the refusal of
    // the second id 1 gave back the first one's slot, and a third call ran.
    await mcp.hold(3);
    const refused = await mcp.answerTo(3);
    assert.equal(refused.error?.data?.code, 'RESOURCE_LIMIT_EXCEEDED');
    mcp.releaseAll();
    assert.ok((await mcp.answerTo(1)).result);
    assert.ok((await mcp.answerTo(2)).result);
    // Answered, the id may come again.
    await mcp.hold(1);
    await mcp.running(1);
    mcp.releaseAll();
    assert.ok((await mcp.answerTo(1)).result);
    await mcp.close();
  });

  test('a ping under the id of a call in flight frees no slot: at most the limit of calls run', async () => {
    const mcp = await connect(1);
    // After the call, and in the same turn as it (as in one batch): its answer named the call's id.
    await mcp.hold(9);
    await mcp.running(1);
    await mcp.send({ id: 9, method: 'ping' });
    void mcp.send({ id: 11, method: 'ping' });
    void mcp.hold(11);
    for (let turn = 0; turn < 10; turn += 1) await new Promise((resolve) => setImmediate(resolve));
    await mcp.hold(12);
    for (let turn = 0; turn < 10; turn += 1) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(mcp.runningNow(), 1);
    mcp.releaseAll();
    await mcp.close();
  });

  test('a cancellation the SDK acts on frees the slot at once', async () => {
    const mcp = await connect(1);
    await mcp.hold(5);
    await mcp.running(1);
    await mcp.send({ method: 'notifications/cancelled', params: { requestId: 5 } });
    await mcp.hold(6);
    await mcp.running(2);
    mcp.releaseAll();
    assert.ok((await mcp.answerTo(6)).result);
    await mcp.close();
  });

  test("the SDK keeps its handlers' abort controllers where the limit reads them", async () => {
    const mcp = await connect(1);
    assert.ok(Reflect.get(mcp.server.server, '_requestHandlerAbortControllers') instanceof Map);
    await mcp.close();
  });
});
