// A session the retention job deletes (`retention.sessionsDays`) wakes its readers, as one deleted
// through DELETE /v1/sessions/:id does: an MCP client subscribed to its resource is told once
// (`notifications/resources/updated`) and then reads SESSION_NOT_FOUND, and an event stream still
// open on it ends (without session.finished; reconnecting gets 404). The job published no wake-up:
// on SQLite the subscriber was never told and the stream stayed open until its client left; on
// PostgreSQL only the notifier's sweep (every 2 × workers.pollIntervalMs) reached them, made long
// here so that only the retention job's wake-up can. On PostgreSQL the pass runs on one replica and
// the readers are on the other: the wake-up crosses replicas (LISTEN/NOTIFY).
// The real application (engine, store, /mcp and the SDK's client); passes are run through the
// application's own retention job (App.runRetentionOnce) instead of waiting for its timer.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Kysely } from 'kysely';
import { connectHttpClient, type McpTestServer, startMcpTestServer } from '../fixtures/mcp-server.ts';
import { TABLE_TTLS_OFF } from '../fixtures/retention-config.ts';
import { requestJson } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';
import { sqliteFileConfig, useMcpReplicas } from '../helpers/mcp-streams.ts';

const DAY_MS = 86_400_000;
/** The MCP server coalesces wakes over 200 ms (mcp/resources.ts): a second update would come by then. */
const AFTER_COALESCING_MS = 1000;

const CONFIG = {
  // No task is run: the sessions stay as the test puts them.
  workers: { concurrency: 0, pollIntervalMs: 600_000 },
  retention: { ...TABLE_TTLS_OFF, sessionsDays: 1 },
};

// biome-ignore lint/suspicious/noExplicitAny: raw rows of the test's sessions
type AnyDb = Kysely<any>;

/** Submits a session (explicit agent, nothing runs it); returns its id. */
async function submit(url: string, objective: string): Promise<string> {
  const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
    method: 'POST',
    body: { objective, agents: [{ name: 'only', role: 'tester', task: 'work', runner: 'ok' }] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id;
}

/** Makes the session one that finished two days ago (past `sessionsDays`), writing no event. */
async function age(db: AnyDb, sessionId: string, status?: string): Promise<void> {
  await db
    .updateTable('sessions')
    .set({ ...(status ? { status } : {}), finished_at: Date.now() - 2 * DAY_MS })
    .where('id', '=', sessionId)
    .execute();
}

interface OpenStream {
  text(): string;
  ended: Promise<void>;
  close(): void;
}

/** `GET /v1/sessions/:id/events` as an SSE stream. */
function openStream(url: string, sessionId: string): OpenStream {
  let received = '';
  let close: () => void = () => {};
  const ended = new Promise<void>((resolve, reject) => {
    const request = http.get(
      `${url}/v1/sessions/${sessionId}/events`,
      { headers: { accept: 'text/event-stream' } },
      (response) => {
        assert.equal(response.statusCode, 200);
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          received += chunk;
        });
        response.on('end', () => resolve());
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    close = () => request.destroy();
  });
  return { text: () => received, ended, close };
}

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`sessions deleted by retention wake their readers: ${backend}`, { timeout: 120_000 }, () => {
    /** `deleter` runs the retention passes; `reader` serves the MCP client and the event streams. */
    let deleter: McpTestServer;
    let reader: McpTestServer;
    if (backend === 'postgres') {
      const replicas = useMcpReplicas({ config: CONFIG }, { config: CONFIG });
      before(() => {
        [deleter, reader] = replicas.servers as [McpTestServer, McpTestServer];
      });
    } else {
      const config = sqliteFileConfig('maos-retention-wakeups', CONFIG);
      before(async () => {
        deleter = reader = await startMcpTestServer({ config });
      });
      after(() => deleter?.close());
    }
    const db = (): AnyDb => deleter.app.database.db as unknown as AnyDb;

    test('an MCP subscriber is told once, then reads SESSION_NOT_FOUND', async (t) => {
      const id = await submit(reader.url, 'subscribed');
      const cancelled = await requestJson(`${reader.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      const mcp = await connectHttpClient(reader.url);
      t.after(() => mcp.close());
      const uri = `maos://sessions/${id}`;
      const updates: string[] = [];
      mcp.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
        updates.push(notification.params.uri);
      });
      await mcp.client.subscribeResource({ uri });
      const resource = await mcp.client.readResource({ uri });
      const first = resource.contents[0];
      assert.match(first && 'text' in first ? first.text : '', /"status":\s*"cancelled"/);

      await age(db(), id);
      const pass = await deleter.app.runRetentionOnce();
      assert.equal(pass?.deleted.sessions, 1);
      await waitFor(() => updates.length > 0, 20_000, 'the update of the session retention deleted');
      await assert.rejects(mcp.client.readResource({ uri }), (error: Error & { data?: unknown }) => {
        assert.deepEqual(error.data, { code: 'SESSION_NOT_FOUND' });
        return true;
      });
      // Told once: later wakes (another pass, PostgreSQL's sweep) find it as gone as before.
      assert.deepEqual((await deleter.app.runRetentionOnce())?.deleted, {});
      await new Promise((resolve) => setTimeout(resolve, AFTER_COALESCING_MS));
      assert.deepEqual(updates, [uri]);
    });

    test('an open event stream of the session ends, and a reconnect gets 404', async (t) => {
      // A stream open on a session ends at its session.finished, before any deletion can come; so
      // the session is marked failed directly (no event, as if its end had not been streamed yet)
      // once the stream waits, as in http-events-quiet-rewake.test.ts.
      const id = await submit(reader.url, 'streamed');
      const stream = openStream(reader.url, id);
      t.after(() => stream.close());
      await waitFor(() => stream.text().includes('event: session.created'), 20_000, 'the first event');
      // Time for its one status lookup after the replay: one after the change below would end it
      // by itself (the test would then pass without the wake-up, never fail for it).
      await new Promise((resolve) => setTimeout(resolve, 500));
      await age(db(), id, 'failed');
      const pass = await deleter.app.runRetentionOnce();
      assert.equal(pass?.deleted.sessions, 1);
      let ended = false;
      void stream.ended.then(() => {
        ended = true;
      });
      await waitFor(() => ended, 20_000, 'the stream of the session retention deleted to end');
      assert.doesNotMatch(stream.text(), /event: session\.finished/);
      const again = await fetch(`${reader.url}/v1/sessions/${id}/events`, {
        headers: { accept: 'text/event-stream' },
      });
      assert.equal(again.status, 404);
      assert.equal(((await again.json()) as { code?: string }).code, 'SESSION_NOT_FOUND');
    });
  });
}
