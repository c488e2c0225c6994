import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Kysely } from 'kysely';
import { configSchema } from '../config/schema.ts';
import { createDatabase, type DatabaseHandle } from '../store/db.ts';
import { migrateToLatest } from '../store/migrate.ts';
import {
  createStreamEventLog,
  createStreamEventsRetentionTarget,
  type McpStreamEventsDb,
  openStreamsNeeding,
  SESSION_ACTIVITY_STREAM_ID,
  STANDALONE_STREAM_ID,
  type StreamOwner,
} from './stream-event-log.ts';

const dir = mkdtempSync(join(tmpdir(), 'maos-mcp-log-'));
let handle: DatabaseHandle;
let db: Kysely<McpStreamEventsDb>;

const ALICE: StreamOwner = { tenantId: 'acme', principalId: 'alice', mcpSessionId: 'mcp-1' };

function note(n: number): JSONRPCMessage {
  return { jsonrpc: '2.0', method: 'notifications/message', params: { n } };
}

async function replay(
  store: ReturnType<ReturnType<typeof createStreamEventLog>['forSession']>,
  after: string,
): Promise<{ stream: string; ids: string[]; ns: unknown[] }> {
  const ids: string[] = [];
  const ns: unknown[] = [];
  const stream = await store.replayEventsAfter(after, {
    send: async (id, message) => {
      ids.push(id);
      ns.push((message as { params?: { n?: number } }).params?.n);
    },
  });
  return { stream, ids, ns };
}

before(async () => {
  handle = createDatabase(configSchema.parse({ dataDir: dir }));
  await migrateToLatest(handle.db);
  db = handle.db as unknown as Kysely<McpStreamEventsDb>;
});
after(async () => {
  await handle?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('durable MCP stream event log', () => {
  test('replays one stream after an id, skipping the priming event, from a second log instance', async () => {
    const writer = createStreamEventLog(db).forSession(ALICE);
    const priming = await writer.storeEvent('s1', {} as JSONRPCMessage);
    const first = await writer.storeEvent('s1', note(1));
    await writer.storeEvent('other', note(99));
    await Promise.all([writer.storeEvent('s1', note(2)), writer.storeEvent('s1', note(3))]);
    // No per-process state: a fresh log over the same database resolves the ids.
    const reader = createStreamEventLog(db).forSession(ALICE);
    assert.equal(await reader.getStreamIdForEventId?.(first), 's1');
    const fromPriming = await replay(reader, priming);
    assert.equal(fromPriming.stream, 's1');
    assert.deepEqual(fromPriming.ns, [1, 2, 3]);
    assert.deepEqual((await replay(reader, first)).ns, [2, 3]);
  });

  test("a resume reads its event's stream once: the SDK's lookup and replay reuse the session's answer", async () => {
    let streamLookups = 0;
    // Counts the stream lookups (the only queries that read a stream's requirement); the replay's
    // pages select other columns.
    const counted = db.withPlugin({
      transformQuery(args) {
        const node = args.node as {
          kind: string;
          selections?: Array<{ selection?: { column?: { column?: { name?: string } } } }>;
        };
        const names = node.selections?.map((selection) => selection.selection?.column?.column?.name);
        if (node.kind === 'SelectQueryNode' && names?.includes('required_permissions') === true)
          streamLookups += 1;
        return args.node;
      },
      transformResult: async (args) => args.result,
    });
    const owner = { ...ALICE, mcpSessionId: 'mcp-resume-once' };
    const store = createStreamEventLog(counted).forSession(owner);
    const first = await store.storeEvent('s3', note(1));
    await store.storeEvent('s3', note(2));
    // As the HTTP plugin, then the SDK's replayEvents, ask for it.
    assert.equal((await store.findStream(first))?.streamId, 's3');
    assert.equal(await store.getStreamIdForEventId?.(first), 's3');
    assert.deepEqual((await replay(store, first)).ns, [2]);
    assert.equal(streamLookups, 1);
    // The next resume from the same id reads it again (its row may have been pruned meanwhile).
    assert.equal(await store.getStreamIdForEventId?.(first), 's3');
    assert.equal(streamLookups, 2);
  });

  test('resumes of one session served from the log at once each get a replay that sends nothing, until released', async () => {
    const store = createStreamEventLog(db).forSession({ ...ALICE, mcpSessionId: 'mcp-served' });
    const first = await store.storeEvent('s5', note(1));
    const second = await store.storeEvent('s6', note(2));
    await store.storeEvent('s5', note(3));
    await store.storeEvent('s6', note(4));
    // Two resumes wait for their replay at once, the second from the same id as a third.
    const releaseFirst = store.replayFromLog(first);
    const releaseSecond = store.replayFromLog(second);
    const releaseThird = store.replayFromLog(second);
    assert.deepEqual(await replay(store, first), { stream: 's5', ids: [], ns: [] });
    releaseSecond();
    assert.deepEqual(await replay(store, second), { stream: 's6', ids: [], ns: [] });
    releaseFirst();
    releaseThird();
    // Released: the SDK's own replay sends what is stored again.
    assert.deepEqual((await replay(store, first)).ns, [3]);
    assert.deepEqual((await replay(store, second)).ns, [4]);
  });

  test("another tenant, principal or MCP session cannot resolve or replay a stream's events", async () => {
    const log = createStreamEventLog(db);
    const id = await log.forSession(ALICE).storeEvent('s2', note(1));
    await log.forSession(ALICE).storeEvent('s2', note(2));
    for (const stranger of [
      { ...ALICE, tenantId: 'other' },
      { ...ALICE, principalId: 'mallory' },
      { ...ALICE, mcpSessionId: 'mcp-2' },
    ]) {
      assert.equal(await log.findStream(stranger, id), undefined);
      assert.equal(await log.forSession(stranger).getStreamIdForEventId?.(id), undefined);
      assert.deepEqual(await replay(log.forSession(stranger), id), { stream: '', ids: [], ns: [] });
    }
    assert.deepEqual(await log.findStream(ALICE, id), { streamId: 's2', requires: [] });
    for (const bad of ['', 'abc', '0', '-1', '1e3', '99999999999999999999']) {
      assert.equal(await log.findStream(ALICE, bad), undefined, bad);
    }
  });

  test("every row of a stream records what the POST that opened it needs; the standalone stream's nothing", async () => {
    const owner = { ...ALICE, mcpSessionId: 'mcp-requires' };
    const store = createStreamEventLog(db).forSession(owner);
    const priming = await openStreamsNeeding(['sessions:create', 'roles:read'], () =>
      store.storeEvent('call', {} as JSONRPCMessage),
    );
    // Stored from another request's context (a cancel marker comes with its notification's POST):
    // the stream keeps what its first message fixed.
    const later = await openStreamsNeeding([], () => store.storeEvent('call', note(1)));
    const read = await openStreamsNeeding([], () => store.storeEvent('read', note(2)));
    const outside = await store.storeEvent('other', note(3));
    // A notification on the standalone stream sent while a tool call runs needs nothing more.
    const standalone = await openStreamsNeeding(['sessions:approve'], () =>
      store.storeEvent(STANDALONE_STREAM_ID, note(4)),
    );
    // Another replica reads it from the rows.
    const reader = createStreamEventLog(db);
    const call = { streamId: 'call', requires: ['roles:read', 'sessions:create'] };
    assert.deepEqual(await reader.findStream(owner, priming), call);
    assert.deepEqual(await reader.findStream(owner, later), call);
    assert.deepEqual(await reader.forSession(owner).findStream(later), call);
    assert.deepEqual(await reader.findStream(owner, read), { streamId: 'read', requires: [] });
    assert.deepEqual(await reader.findStream(owner, outside), { streamId: 'other', requires: [] });
    assert.deepEqual(await reader.findStream(owner, standalone), {
      streamId: STANDALONE_STREAM_ID,
      requires: [],
    });
  });

  test("a session's activity noted by other replicas: its latest, for its own owner only, never a stream to resume; kept for its own TTL", async (t) => {
    const owner = { ...ALICE, mcpSessionId: 'mcp-active' };
    const log = createStreamEventLog(db);
    // SQLite: the process's clock times the notes (one machine).
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() - 10_000 });
    await log.recordActivity(owner);
    t.mock.timers.reset();
    const start = Date.now();
    // Noted again: the row is updated, not added to.
    await log.recordActivity(owner);
    const rows = await db
      .selectFrom('mcp_stream_events')
      .select(['id', 'created_at'])
      .where('mcp_session_id', '=', owner.mcpSessionId)
      .execute();
    assert.equal(rows.length, 1);
    const stranger = { ...owner, principalId: 'mallory' };
    const quiet = { ...ALICE, mcpSessionId: 'mcp-quiet' };
    const ages = await log.activityAges([owner, quiet]);
    assert.deepEqual([...ages.keys()], [owner.mcpSessionId]);
    // The latest note's age (the first one is 10 s older).
    assert.ok(ages.get(owner.mcpSessionId)! < 10_000, String(ages.get(owner.mcpSessionId)));
    assert.deepEqual(await log.activityAges([stranger]), new Map());
    // Its id is no event id: nothing to resume from it.
    const activityId = String(rows[0]!.id);
    assert.equal(await log.findStream(owner, activityId), undefined);
    assert.equal(await log.readEvent(owner, activityId), undefined);
    // Kept past the replay TTL, not counted against the per-stream limit; gone after its own TTL.
    const target = createStreamEventsRetentionTarget({
      retentionMs: 1000,
      activityRetentionMs: 60_000,
      perStreamLimit: 1,
    });
    while ((await target.deleteBatch(db, start + 30_000, 10)) > 0) {}
    assert.deepEqual([...(await log.activityAges([owner])).keys()], [owner.mcpSessionId]);
    while ((await target.deleteBatch(db, start + 70_000, 10)) > 0) {}
    assert.deepEqual(await log.activityAges([owner]), new Map());
    assert.equal(
      (
        await db
          .selectFrom('mcp_stream_events')
          .select('id')
          .where('stream_id', '=', SESSION_ACTIVITY_STREAM_ID)
          .where('mcp_session_id', '=', owner.mcpSessionId)
          .execute()
      ).length,
      0,
    );
  });

  test('the retention target deletes rows past the age limit and beyond the per-stream limit, newest kept, in bounded batches', async () => {
    const owner = { ...ALICE, mcpSessionId: 'mcp-prune' };
    const log = createStreamEventLog(db);
    const target = createStreamEventsRetentionTarget({ retentionMs: 60_000, perStreamLimit: 3 });
    const store = log.forSession(owner);
    const ids: string[] = [];
    for (let n = 1; n <= 5; n++) ids.push(await store.storeEvent('long', note(n)));
    const old = await store.storeEvent('aged', note(7));
    await db
      .updateTable('mcp_stream_events')
      .set({ created_at: Date.now() - 120_000 })
      .where('id', '=', Number(old))
      .execute();
    // A batch never deletes more than its limit: the aged row first, then one overflowing row.
    assert.equal(await target.deleteBatch(db, Date.now(), 2), 2);
    assert.equal(await log.findStream(owner, old), undefined);
    let deleted = 2;
    for (
      let n = await target.deleteBatch(db, Date.now(), 2);
      n > 0;
      n = await target.deleteBatch(db, Date.now(), 2)
    ) {
      deleted += n;
    }
    assert.ok(deleted >= 3, `deleted ${deleted}`);
    assert.equal(await log.findStream(owner, ids[1]!), undefined);
    const kept = await log.readAfter(owner, 'long', '0', 10);
    assert.deepEqual(
      kept.map((event) => event.id),
      ids.slice(2),
    );
  });
});

describe('MCP stream event log on the write queue (deferred durability)', () => {
  test('inserts go through the queue in send order; an id is handed out only after the WAL flush', async () => {
    const { createWriteQueue } = await import('../store/write-queue.ts');
    const queue = createWriteQueue({
      db: handle.db,
      dialect: 'sqlite',
      durability: handle.durability,
      deferCommits: true,
    });
    let flushesAtHandOut = -1;
    const log = createStreamEventLog(db, {
      runInsert: (insert) =>
        queue.run((trx) => insert(trx as unknown as Kysely<McpStreamEventsDb>), { deferred: true }),
      whenDurable: () => queue.whenDurable(),
    });
    const owner: StreamOwner = { tenantId: 'acme', principalId: 'alice', mcpSessionId: 'mcp-queued' };
    const writer = log.forSession(owner);
    const ids = await Promise.all([1, 2, 3].map((n) => writer.storeEvent('q1', note(n))));
    flushesAtHandOut = queue.stats().walFlushes;
    assert.ok(queue.stats().deferredBatches >= 1, 'the inserts were deferred commits');
    assert.ok(flushesAtHandOut >= 1, 'the ids were handed out after a WAL flush');
    assert.equal(queue.whenDurable(), undefined);
    assert.deepEqual(
      ids.map(Number),
      [...ids.map(Number)].sort((a, b) => a - b),
      'ids follow send order',
    );
    const replayed = await replay(writer, ids[0]!);
    assert.deepEqual(replayed.ns, [2, 3]);
    await queue.close();
  });
});
