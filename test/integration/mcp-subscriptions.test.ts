// MCP resource subscriptions under load and when the client goes away: one connection holds at most
// MAX_SUBSCRIPTIONS (more is a clear RESOURCE_LIMIT_EXCEEDED error, duplicates and unsubscribe
// free no slot twice, a deleted session's watches free theirs), and in stdio remote mode the event streams a client's subscriptions opened
// on the server close when the client disconnects. Real server, SDK clients over /mcp and stdio.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { MAX_SUBSCRIPTIONS } from '../../src/mcp/resources.ts';
import {
  connectHttpClient,
  connectRemoteStdioClient,
  type McpTestServer,
  startMcpTestServer,
} from '../fixtures/mcp-server.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

/** Creates `count` sessions over REST; each runs one agent `only` on `runner`. */
async function createSessions(url: string, count: number, runner: string): Promise<string[]> {
  const ids: string[] = [];
  for (let index = 0; index < count; index++) {
    const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: `subscribed ${index}`,
        agents: [{ name: 'only', role: 'tester', task: 'work', runner }],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    ids.push(created.body.id);
  }
  return ids;
}

/** The server's `maos_sse_connections` gauge (open SSE event streams). */
async function readSseConnections(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((entry) => entry.startsWith('maos_sse_connections'));
  return Number(line?.split(' ').at(-1) ?? 0);
}

describe('MCP subscriptions', { timeout: 120_000 }, () => {
  let server: McpTestServer;
  before(async () => {
    server = await startMcpTestServer({ config: { metrics: { enabled: true, public: true } } });
  });
  after(async () => server?.close());

  test(`at most ${MAX_SUBSCRIPTIONS} per connection, then RESOURCE_LIMIT_EXCEEDED`, async (t) => {
    const ids = await createSessions(server.url, MAX_SUBSCRIPTIONS / 2 + 1, 'ok');
    const uris = ids.flatMap((id) => [`maos://sessions/${id}`, `maos://sessions/${id}/agents/only/output`]);
    const mcp = await connectHttpClient(server.url);
    t.after(() => mcp.close());
    await Promise.all(uris.slice(0, MAX_SUBSCRIPTIONS).map((uri) => mcp.client.subscribeResource({ uri })));
    // Subscribing again to a URI already watched takes no new slot.
    await mcp.client.subscribeResource({ uri: uris[0] as string });

    const over = uris[MAX_SUBSCRIPTIONS] as string;
    const refused = await mcp.client.subscribeResource({ uri: over }).then(
      () => assert.fail('the subscription over the limit was accepted'),
      (error: unknown) => error,
    );
    assert.ok(refused instanceof McpError);
    assert.equal(refused.code, -32602);
    assert.match(
      refused.message,
      new RegExp(`RESOURCE_LIMIT_EXCEEDED: At most ${MAX_SUBSCRIPTIONS} resource`),
    );
    assert.equal((refused.data as { code: string }).code, 'RESOURCE_LIMIT_EXCEEDED');

    // Unsubscribing frees a slot.
    await mcp.client.unsubscribeResource({ uri: uris[2] as string });
    await mcp.client.subscribeResource({ uri: over });

    // So does deleting a subscribed session: its watches will never fire again.
    const next = uris[MAX_SUBSCRIPTIONS + 1] as string;
    await assert.rejects(mcp.client.subscribeResource({ uri: next }), /RESOURCE_LIMIT_EXCEEDED/);
    await waitForSession(server.url, ids[0] as string);
    const deleted = await requestJson(`${server.url}/v1/sessions/${ids[0]}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204, JSON.stringify(deleted.body));
    await mcp.client.subscribeResource({ uri: next });
  });

  test('stdio remote mode: the streams of a client that disconnects are closed', async () => {
    const ids = await createSessions(server.url, 3, 'sleep');
    try {
      const before = await readSseConnections(server.url);
      const client = await connectRemoteStdioClient(server.url, 'maos-subscriptions-test');
      for (const id of ids) await client.subscribeResource({ uri: `maos://sessions/${id}` });
      await waitFor(
        async () => (await readSseConnections(server.url)) >= before + 3,
        20_000,
        'one stream per subscription',
      );
      // Gone without unsubscribing (stdin closed, as when the client quits).
      await client.close();
      await waitFor(
        async () => (await readSseConnections(server.url)) <= before,
        20_000,
        'the streams to close',
      );
    } finally {
      for (const id of ids) await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
    }
  });
});
