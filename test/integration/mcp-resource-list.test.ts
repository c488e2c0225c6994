// resources/list pages through every session of the caller, newest first, with MCP's `nextCursor`,
// over /mcp and over stdio in remote mode; a cursor that is not one is -32602 INVALID_CURSOR.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Resource } from '@modelcontextprotocol/sdk/types.js';
import {
  connectHttpClient,
  connectRemoteStdioClient,
  type McpTestServer,
  startMcpTestServer,
} from '../fixtures/mcp-server.ts';
import { requestJson } from '../fixtures/server.ts';

/** More than one page (50 sessions) of resources/list. */
const SESSIONS = 53;

/** Every page of resources/list, following nextCursor, and how many pages it took. */
async function listAll(client: Client): Promise<{ resources: Resource[]; pages: number }> {
  const resources: Resource[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await client.listResources(cursor === undefined ? {} : { cursor });
    resources.push(...page.resources);
    cursor = page.nextCursor;
    pages += 1;
  } while (cursor !== undefined && pages < 10);
  return { resources, pages };
}

describe('MCP resources/list pagination', { timeout: 90_000 }, () => {
  let server: McpTestServer;
  const sessionIds: string[] = [];

  before(async () => {
    server = await startMcpTestServer();
    for (let i = 0; i < SESSIONS; i += 1) {
      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: `session ${i}`, agents: [{ role: 'tester', task: 'x', runner: 'ok' }] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      sessionIds.push(created.body.id);
    }
  });
  after(() => server?.close());

  async function assertPaged(client: Client): Promise<void> {
    const first = await client.listResources();
    assert.equal(first.resources[0]?.uri, 'maos://roles');
    assert.equal(first.resources.length, 51, 'the roles and the 50 newest sessions');
    assert.equal(first.resources[1]?.uri, `maos://sessions/${sessionIds.at(-1)}`);
    assert.ok(first.nextCursor, 'a cursor to the older sessions');

    const { resources, pages } = await listAll(client);
    assert.equal(pages, 2);
    const sessionUris = resources.map((r) => r.uri).filter((uri) => uri.startsWith('maos://sessions/'));
    assert.deepEqual(
      sessionUris,
      [...sessionIds].reverse().map((id) => `maos://sessions/${id}`),
      'every session once, newest first',
    );
    assert.equal(resources.filter((r) => r.uri === 'maos://roles').length, 1);
    for (const resource of resources) assert.equal(resource.mimeType, 'application/json');

    await assert.rejects(
      client.listResources({ cursor: 'not-a-cursor' }),
      (error: Error & { code?: number; data?: { code?: string } }) => {
        assert.equal(error.code, -32602, error.message);
        assert.equal(error.data?.code, 'INVALID_CURSOR');
        return true;
      },
    );
  }

  test('over /mcp', async (t) => {
    const connected = await connectHttpClient(server.url);
    t.after(() => connected.close());
    await assertPaged(connected.client);
  });

  test('over stdio (maos mcp --server)', async (t) => {
    const client = await connectRemoteStdioClient(server.url, 'maos-list-test');
    t.after(() => client.close());
    await assertPaged(client);
  });
});
