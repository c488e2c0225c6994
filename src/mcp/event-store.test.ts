import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { BoundedEventStore } from './event-store.ts';

function note(n: number): JSONRPCMessage {
  return { jsonrpc: '2.0', method: 'notifications/message', params: { n } };
}

async function replay(store: BoundedEventStore, after: string): Promise<{ stream: string; ns: unknown[] }> {
  const ns: unknown[] = [];
  const stream = await store.replayEventsAfter(after, {
    send: async (_id, message) => {
      ns.push((message as unknown as { params: { n: number } }).params.n);
    },
  });
  return { stream, ns };
}

test('replays only later messages of the same stream', async () => {
  const store = new BoundedEventStore(10);
  const a1 = await store.storeEvent('a', note(1));
  await store.storeEvent('b', note(2));
  await store.storeEvent('a', note(3));
  await store.storeEvent('a', note(4));
  assert.equal(await store.getStreamIdForEventId(a1), 'a');
  assert.deepEqual(await replay(store, a1), { stream: 'a', ns: [3, 4] });
});

test('keeps only the newest messages', async () => {
  const store = new BoundedEventStore(2);
  const first = await store.storeEvent('a', note(1));
  const second = await store.storeEvent('a', note(2));
  await store.storeEvent('a', note(3));
  assert.equal(store.size, 2);
  assert.equal(await store.getStreamIdForEventId(first), undefined);
  assert.deepEqual(await replay(store, second), { stream: 'a', ns: [3] });
});
