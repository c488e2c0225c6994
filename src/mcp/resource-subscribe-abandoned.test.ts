// A resources/subscribe still checking its session when its connection closes (DELETE /mcp, idle
// expiry, a stdio client gone) or when it is cancelled starts no watch. Before, the check went on and
// the watch started after the connection's watches were all stopped: nothing ever stopped it (a
// listener on the session's events for as long as the process ran; in stdio remote mode an event
// stream to the server kept open, counted against the caller's stream caps).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { SessionDetail } from '../domain/types.ts';
import type { SessionService } from '../engine/session-service.ts';
import { createMcpServer } from './server.ts';

const SESSION_ID = '0199a0b1-0000-7000-8000-000000000002';

/** A service whose session reads wait until the test lets them go; counts the watches running. */
function createHeldService() {
  let watching = 0;
  let reads = 0;
  const releases: Array<() => void> = [];
  const service = {
    getSession: async () => {
      reads += 1;
      await new Promise<void>((resolve) => releases.push(resolve));
      return { id: SESSION_ID, tasks: [] } as unknown as SessionDetail;
    },
    listEventsBefore: async () => [{ seq: 1 }],
    watchEvents: () => {
      watching += 1;
      return () => {
        watching -= 1;
      };
    },
  } as unknown as SessionService;
  return {
    service,
    reads: () => reads,
    watching: () => watching,
    releaseAll: () => {
      for (const release of releases.splice(0)) release();
    },
  };
}

async function connect(service: SessionService): Promise<Client> {
  const { server } = createMcpServer({
    service,
    listRoles: async () => [],
    resolveCaller: () => ({ actor: { tenantId: 't', principalId: 'p' }, authorize() {} }),
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(clientSide);
  return client;
}

async function settle(): Promise<void> {
  for (let turn = 0; turn < 5; turn += 1) await new Promise((resolve) => setImmediate(resolve));
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}

describe('a subscribe abandoned while its session is read', { timeout: 10_000 }, () => {
  test('by the connection closing starts no watch', async () => {
    const held = createHeldService();
    const client = await connect(held.service);
    const subscribing = client.subscribeResource({ uri: `maos://sessions/${SESSION_ID}` }).catch(() => {});
    await until(() => held.reads() === 1);
    await client.close();
    held.releaseAll();
    await subscribing;
    await settle();
    assert.equal(held.watching(), 0, 'a watch outlived its connection');
  });

  test('by a cancellation starts no watch', async () => {
    const held = createHeldService();
    const client = await connect(held.service);
    const cancel = new AbortController();
    const subscribing = client
      .subscribeResource({ uri: `maos://sessions/${SESSION_ID}` }, { signal: cancel.signal })
      .catch(() => {});
    await until(() => held.reads() === 1);
    cancel.abort();
    await subscribing;
    await settle();
    held.releaseAll();
    await settle();
    assert.equal(held.watching(), 0, 'a cancelled subscribe started a watch');
    // The connection still subscribes as before.
    const again = client.subscribeResource({ uri: `maos://sessions/${SESSION_ID}` });
    await until(() => held.reads() === 2);
    held.releaseAll();
    await again;
    assert.equal(held.watching(), 1);
    await client.close();
    assert.equal(held.watching(), 0);
  });

  test('a subscribe again cancelled while its watch starts leaves the subscription standing', async () => {
    let watching = 0;
    let marks = 0;
    const held: Array<() => void> = [];
    const service = {
      getSession: async () => ({ id: SESSION_ID, tasks: [] }) as unknown as SessionDetail,
      // Each watch's first reading of the session waits until the test lets it go.
      listEventsBefore: async () => {
        marks += 1;
        await new Promise<void>((resolve) => held.push(resolve));
        return [{ seq: 1 }];
      },
      watchEvents: () => {
        watching += 1;
        return () => {
          watching -= 1;
        };
      },
    } as unknown as SessionService;
    const client = await connect(service);
    const uri = `maos://sessions/${SESSION_ID}`;
    const first = client.subscribeResource({ uri });
    await until(() => marks === 1);
    for (const release of held.splice(0)) release();
    await first;
    assert.equal(watching, 1);
    const cancel = new AbortController();
    const again = client.subscribeResource({ uri }, { signal: cancel.signal }).catch(() => {});
    await until(() => marks === 2);
    cancel.abort();
    await again;
    await settle();
    for (const release of held.splice(0)) release();
    await settle();
    // Before: the standing watch was stopped for the new one, and the new one for the cancel.
    assert.equal(watching, 1, 'the subscription that stood was dropped');
    await client.close();
    assert.equal(watching, 0);
  });
});
