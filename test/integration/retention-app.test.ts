// The server runs the retention job on its own: with a short interval, the events of a session that
// finished long ago disappear without any call, the rows deleted are counted in /metrics, and the
// events of a running session stay.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Kysely } from 'kysely';
import { startTestServer } from '../fixtures/server.ts';

const DAY = 86_400_000;

test('maos serve deletes old finished sessions’ events periodically and counts them', {
  timeout: 60_000,
}, async (t) => {
  // The shortest interval the schema allows: the first pass runs 10 s after start.
  const server = await startTestServer({
    config: { retention: { intervalSeconds: 10 }, workers: { concurrency: 0 } },
  });
  t.after(() => server.close());
  // biome-ignore lint/suspicious/noExplicitAny: raw fixture rows
  const db = server.app.database.db as unknown as Kysely<any>;
  const old = Date.now() - 365 * DAY;
  for (const [id, status, finishedAt] of [
    ['finished-old', 'completed', old],
    ['still-running', 'running', null],
  ] as const) {
    await db
      .insertInto('sessions')
      .values({
        id,
        tenant_id: 'default',
        objective: 'o',
        strategy: 'parallel',
        status,
        last_seq: 2,
        created_at: old,
        updated_at: old,
        finished_at: finishedAt,
      })
      .execute();
    await db
      .insertInto('events')
      .values(
        [1, 2].map((seq) => ({
          session_id: id,
          seq,
          tenant_id: 'default',
          type: 'task.status',
          data: '{}',
          created_at: old,
        })),
      )
      .execute();
  }
  const countEvents = async (id: string) =>
    (await db.selectFrom('events').select('seq').where('session_id', '=', id).execute()).length;
  const deadline = Date.now() + 40_000;
  while ((await countEvents('finished-old')) > 0) {
    assert.ok(Date.now() < deadline, 'the retention job did not run');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.equal(await countEvents('still-running'), 2);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /maos_retention_deleted_rows_total\{table="events"\} 2\b/);
});

test('maos serve prunes the MCP replay rows on their own short cadence (not hourly) and counts them', {
  timeout: 60_000,
}, async (t) => {
  // The main pass stays hourly; a 10 s replay TTL gives the shortest replay-row cadence (10 s).
  const server = await startTestServer({
    config: {
      retention: { intervalSeconds: 3600 },
      mcp: { replayRetentionSeconds: 10 },
      workers: { concurrency: 0 },
    },
  });
  t.after(() => server.close());
  // biome-ignore lint/suspicious/noExplicitAny: raw fixture rows
  const db = server.app.database.db as unknown as Kysely<any>;
  const row = (stream: string, createdAt: number) => ({
    tenant_id: 'default',
    principal_id: 'p',
    mcp_session_id: 'm',
    stream_id: stream,
    message: '{}',
    created_at: createdAt,
  });
  await db
    .insertInto('mcp_stream_events')
    .values([row('aged', Date.now() - 3_600_000), row('aged', Date.now() - 3_600_000)])
    .execute();
  const countStream = async (stream: string) =>
    (await db.selectFrom('mcp_stream_events').select('id').where('stream_id', '=', stream).execute()).length;
  const deadline = Date.now() + 40_000;
  while ((await countStream('aged')) > 0) {
    assert.ok(Date.now() < deadline, 'the replay rows were not pruned');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /maos_retention_deleted_rows_total\{table="mcp_stream_events"\} 2\b/);
});
