// `maos mcp --server URL` (stdio, remote mode) answers like /mcp: an orchestrate replayed with its
// idempotency key reports `created: false` however soon it comes, and tool errors keep the
// server's `details` as sent.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import {
  type ConnectedClient,
  connectHttpClient,
  connectRemoteStdioClient,
  type McpTestServer,
  startMcpTestServer,
  type ToolErrorView,
  toolErrorOf,
} from '../fixtures/mcp-server.ts';

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function errorOf(result: CallToolResult): ToolErrorView {
  const error = toolErrorOf(result);
  assert.ok(error, `a MAOS tool error: ${JSON.stringify(result)}`);
  return error;
}

describe('maos mcp in remote mode', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  let remote: Client;
  let http: ConnectedClient;

  before(async () => {
    server = await startMcpTestServer();
    remote = await connectRemoteStdioClient(server.url, 'maos-remote-test');
    http = await connectHttpClient(server.url);
  });
  after(async () => {
    await remote?.close();
    await http?.close();
    await server?.close();
  });

  test('an orchestrate replayed at once with its idempotency key is created: false', async () => {
    const args = {
      objective: 'once only',
      agents: [{ name: 'a', role: 'tester', task: 'x', runner: 'ok' }],
      idempotency_key: randomUUID(),
    };
    const first = (await call(remote, 'orchestrate', args)).structuredContent as {
      created: boolean;
      sessionId: string;
    };
    const replay = (await call(remote, 'orchestrate', args)).structuredContent as {
      created: boolean;
      sessionId: string;
    };
    assert.equal(first.created, true);
    assert.equal(replay.sessionId, first.sessionId);
    assert.equal(replay.created, false);
  });

  for (const [problem, args] of [
    [
      'a plan naming an unknown dependency',
      {
        objective: 'bad plan',
        agents: [{ name: 'a', role: 'tester', task: 'x', runner: 'ok', depends_on: ['ghost'] }],
      },
    ],
    [
      'an unknown role',
      { objective: 'bad role', agents: [{ role: 'astronaut', task: 'fly', runner: 'ok' }] },
    ],
  ] as const) {
    test(`the error for ${problem} has the same details as over /mcp`, async () => {
      const overHttp = errorOf(await call(http.client, 'orchestrate', args));
      const overRemote = errorOf(await call(remote, 'orchestrate', args));
      assert.notEqual(overHttp.details, undefined, 'the server sends details');
      assert.deepEqual(overRemote, overHttp);
    });
  }
  test('a session URI whose id is no session id is -32002 SESSION_NOT_FOUND, as over /mcp', async () => {
    /** What a failed resource request answers: the JSON-RPC code and the MAOS code. */
    const failure = async (request: Promise<unknown>) => {
      const error = (await request.then(
        () => assert.fail('the request succeeded'),
        (thrown: unknown) => thrown,
      )) as { code?: number; data?: { code?: string } };
      return [error.code, error.data?.code];
    };
    for (const uri of ['maos://sessions/not-a-session', 'maos://sessions/not-a-session/agents/a/output']) {
      const expected = [-32002, 'SESSION_NOT_FOUND'];
      assert.deepEqual(await failure(http.client.readResource({ uri })), expected, `${uri} over /mcp`);
      assert.deepEqual(await failure(remote.readResource({ uri })), expected, `${uri} read in remote mode`);
      assert.deepEqual(await failure(remote.subscribeResource({ uri })), expected, `${uri} subscribed`);
    }
  });
});
