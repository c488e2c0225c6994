// A resource subscription notifies only once the session's newest event differs from the one it
// read first (its baseline). That first read went on after the subscribe was answered: an event
// landing between the answer and the read became the baseline, and the client, told nothing, kept
// the status it read before. The subscribe is now answered only once the baseline is read.
// Real server and engine on SQLite; the MCP server on the engine's session service, through a
// wrapper that holds the baseline read until the test lets it go and records when it finished.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { SessionService } from '../../src/engine/session-service.ts';
import { createFixedCaller } from '../../src/mcp/caller.ts';
import { createMcpServer } from '../../src/mcp/server.ts';
import { startMcpTestServer } from '../fixtures/mcp-server.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const ACTOR = { tenantId: 'default', principalId: 'subscribe-test' };

describe('MCP resource subscribe', { timeout: 60_000 }, () => {
  test('is answered only after the baseline of its watch is read', async (t) => {
    const server = await startMcpTestServer();
    t.after(() => server.close());
    const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
      method: 'POST',
      body: {
        objective: 'watched',
        agents: [{ name: 'only', role: 'tester', task: 'work', runner: 'ok' }],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    await waitForSession(server.url, id);

    const order: string[] = [];
    let readStarted = false;
    let release = (): void => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const real = server.app.engine.service;
    // The engine's service, its first listEventsBefore (the watch's baseline) held until released.
    const service: SessionService = {
      ...real,
      listEventsBefore: async (...args) => {
        const first = !readStarted;
        readStarted = true;
        if (first) await held;
        const events = await real.listEventsBefore(...args);
        if (first) order.push('baseline read');
        return events;
      },
    };
    const { server: mcp } = createMcpServer({
      service,
      listRoles: async () => [],
      resolveCaller: () => createFixedCaller(ACTOR),
    });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await mcp.connect(serverSide);
    const client = new Client({ name: 'baseline-test', version: '1' });
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
      updates.push(notification.params.uri);
    });
    await client.connect(clientSide);
    t.after(() => client.close());

    const uri = `maos://sessions/${id}`;
    const answered = client.subscribeResource({ uri }).then(() => order.push('subscribe answered'));
    await waitFor(() => readStarted, 10_000, 'the baseline read');
    // Turns of the event loop in which an answer already sent would arrive.
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
    release();
    await answered;
    assert.deepEqual(order, ['baseline read', 'subscribe answered']);

    // The watch notifies of a change after the answer (here the session's deletion).
    const deleted = await requestJson(`${server.url}/v1/sessions/${id}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204, JSON.stringify(deleted.body));
    await waitFor(() => updates.length > 0, 10_000, 'the update of the deleted session');
    assert.deepEqual(updates, [uri]);
  });
});
