// An MCP resource subscription to a session that does not change gets no notifications. On
// PostgreSQL the notifier wakes every watched session every few seconds (a sweep that covers lost
// notifications, store/pg-notifier.ts); each wake was sent to the client as
// notifications/resources/updated and written to the MCP stream log, for a session finished long
// ago too, for as long as the subscription stood. A real change (here its deletion) still notifies.
// Real server, SDK client over Streamable HTTP, SQLite and PostgreSQL (PostgreSQL needs
// --test-global-setup=test/fixtures/postgres-global-setup.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectHttpClient, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`MCP subscription to a finished session: ${store}`, { timeout: 60_000 }, () => {
    test('no update while nothing changes; one when the session is deleted', async (t) => {
      const database = store === 'postgres' ? await createTestDatabase() : undefined;
      const server = await startMcpTestServer({
        config: {
          ...(database ? { store: { url: database.url } } : {}),
          // PostgreSQL: the notifier's sweep every 250 ms (twice the poll interval, at least 250 ms).
          workers: { pollIntervalMs: 100 },
        },
      });
      t.after(async () => {
        await server.close();
        await database?.drop();
      });
      const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: {
          objective: 'finished',
          agents: [{ name: 'only', role: 'tester', task: 'work', runner: 'ok' }],
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id;
      await waitForSession(server.url, id);
      const uri = `maos://sessions/${id}`;
      const mcp = await connectHttpClient(server.url);
      t.after(() => mcp.close());
      const updates: string[] = [];
      mcp.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
        updates.push(notification.params.uri);
      });
      await mcp.client.subscribeResource({ uri });
      // A dozen sweeps and more on PostgreSQL: the session stays as it is.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      assert.deepEqual(updates, [], 'a session that did not change was notified as updated');

      const deleted = await requestJson(`${server.url}/v1/sessions/${id}`, { method: 'DELETE' });
      assert.equal(deleted.status, 204, JSON.stringify(deleted.body));
      await waitFor(() => updates.length > 0, 10_000, 'the update of the deleted session');
      // Told once: gone stays gone, whatever wakes its watch.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assert.deepEqual(updates, [uri]);
    });
  });
}
