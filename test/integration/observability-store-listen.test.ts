// maos_store_listen_connected: a replica on PostgreSQL reports its LISTEN connection (wake-ups and
// cancels from other replicas) as up once started; on SQLite, which has none, there is no sample
// (a 0 would read as a connection down and fire MaosStoreListenDisconnected).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sampleOf } from '../fixtures/metrics-scrape.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';
import { startTestServer } from '../fixtures/server.ts';

const scrape = (url: string) => fetch(`${url}/metrics`).then((response) => response.text());

test('a PostgreSQL replica exports its LISTEN connection as up', async (t) => {
  const database = await createTestDatabase();
  const server = await startTestServer({
    config: { store: { url: database.url }, workers: { concurrency: 0 } },
  }).catch(async (error: unknown) => {
    await database.drop();
    throw error;
  });
  t.after(async () => {
    await server.close();
    await database.drop();
  });
  assert.equal(sampleOf(await scrape(server.url), 'maos_store_listen_connected'), 1);
});

test('a SQLite server exports no LISTEN connection sample', async (t) => {
  const server = await startTestServer({ config: { workers: { concurrency: 0 } } });
  t.after(() => server.close());
  const text = await scrape(server.url);
  assert.match(text, /^# TYPE maos_store_listen_connected gauge$/m);
  assert.equal(sampleOf(text, 'maos_store_listen_connected'), undefined);
});
