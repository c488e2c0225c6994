// `maos mcp --server URL` (stdio, remote mode) answers like /mcp: an orchestrate replayed with its
// idempotency key reports `created: false` however soon it comes, and tool errors keep the
// server's `details` as sent.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Kysely } from 'kysely';
import {
  type ConnectedClient,
  connectHttpClient,
  connectRemoteStdioClient,
  type McpTestServer,
  startMcpTestServer,
  type ToolErrorView,
  toolErrorOf,
} from '../fixtures/mcp-server.ts';
import { TEST_RUNNERS } from '../fixtures/server.ts';
import { startTcpRelay, type TcpRelay } from '../fixtures/tcp-relay.ts';

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

describe('maos mcp in remote mode, the server unreachable during a wait', { timeout: 60_000 }, () => {
  let server: McpTestServer;
  let relay: TcpRelay;
  let remote: Client;

  before(async () => {
    server = await startMcpTestServer({
      config: { runners: { ...TEST_RUNNERS, pause: { command: ['sleep', '2'] } } },
    });
    relay = await startTcpRelay({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
    remote = await connectRemoteStdioClient(`http://127.0.0.1:${relay.port}`, 'maos-remote-outage');
  });
  after(async () => {
    await remote?.close();
    // Cut stops the relay listening (the test restored it).
    await relay?.cut();
    await server?.close();
  });

  test('an orchestrate that waits goes on through the outage and returns the session', async () => {
    const db = server.app.database.db as unknown as Kysely<{
      sessions: { id: string; status: string; created_at: number };
    }>;
    let cut: Promise<void> | undefined;
    const waited = remote.callTool(
      {
        name: 'orchestrate',
        arguments: {
          objective: 'outlast an outage',
          agents: [{ name: 'p', role: 'tester', task: 'wait', runner: 'pause' }],
          wait_seconds: 50,
        },
      },
      undefined,
      {
        // The first progress comes once the wait has read the session: the server goes away then.
        onprogress: () => {
          cut ??= relay.cut();
        },
      },
    );
    // Unreachable until the session has ended on the server: every read of the wait meanwhile fails.
    for (;;) {
      const row = await db
        .selectFrom('sessions')
        .select('status')
        .orderBy('created_at', 'desc')
        .executeTakeFirst();
      if (cut !== undefined && row?.status === 'completed') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await cut;
    await relay.restore();
    const result = (await waited) as CallToolResult;
    assert.equal(toolErrorOf(result), undefined, JSON.stringify(result.content));
    const status = result.structuredContent as { created: boolean; status: string; done: boolean };
    assert.equal(status.created, true);
    assert.equal(status.status, 'completed');
    assert.equal(status.done, true);
  });
});
