// Subscribing again to a resource restarts its watch. A watch can end for good while the
// subscription stands (in stdio remote mode, once the server stayed unavailable longer than the
// retry bound): before, a second subscribe was a no-op and the resource never notified again.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { SessionDetail } from '../domain/types.ts';
import type { SessionService } from '../engine/session-service.ts';
import { createMcpServer } from './server.ts';

/** Session ids are UUIDs: a resource URI naming anything else is SESSION_NOT_FOUND before any read. */
const SESSION_ID = '0199a0b1-0000-7000-8000-000000000001';

describe('a second subscribe to a resource', { timeout: 10_000 }, () => {
  test('starts a new watch (the old one stopped), which notifies', async (t) => {
    const wakes: Array<() => void> = [];
    let stopped = 0;
    // The session's newest event: a wake notifies once it differs from what the watch saw last.
    let newestSeq = 1;
    const service = {
      getSession: async () => ({ id: SESSION_ID, tasks: [] }) as unknown as SessionDetail,
      listEventsBefore: async () => [{ seq: newestSeq }],
      watchEvents: (_sessionId: string, onWake: () => void) => {
        wakes.push(onWake);
        return () => {
          stopped += 1;
        };
      },
    } as unknown as SessionService;
    const { server } = createMcpServer({
      service,
      listRoles: async () => [],
      resolveCaller: () => ({ actor: { tenantId: 't', principalId: 'p' }, authorize() {} }),
    });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = new Client({ name: 'test', version: '1' });
    const updated: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (note) => {
      updated.push(note.params.uri);
    });
    await client.connect(clientSide);
    t.after(() => client.close());

    const uri = `maos://sessions/${SESSION_ID}`;
    await client.subscribeResource({ uri });
    assert.equal(wakes.length, 1);
    // The first watch has ended for good (it never wakes again); the client subscribes again.
    await client.subscribeResource({ uri });
    assert.equal(wakes.length, 2, 'the second subscribe started no new watch');
    assert.equal(stopped, 1, 'the old watch was not stopped');
    // The session changes: a new event, and the wake that announces it.
    newestSeq += 1;
    wakes[1]?.();
    for (let tries = 0; tries < 50 && updated.length === 0; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.deepEqual(updated, [uri]);
  });
});
