// SessionService.listEventsBefore on SQLite and PostgreSQL: the newest events (or those before a
// seq) newest first, paged back to the start, read through the primary key backwards (no sort, no
// scan of the session), and refused for another tenant exactly like listEvents.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CompiledQuery } from 'kysely';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import type { NewEvent } from '../../src/domain/events.ts';
import type { SessionEvent } from '../../src/domain/types.ts';
import { appendEvents, selectEventsBefore } from '../../src/store/event-store.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';
import { createTestDatabase } from '../fixtures/postgres.ts';

/** More than one page of the service (1000), so paging and the cap are exercised. */
const LINES = 1_200;

const idle: AgentRuntime = { kind: 'fake', run: async () => ({ output: 'done' }) };

interface Backend {
  name: string;
  open(): Promise<{ storeUrl?: string; dispose(): Promise<void> }>;
  /** The plan of `compiled` as text, one line per plan node. */
  explain(h: Harness, compiled: CompiledQuery): Promise<string>;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    open: async () => ({ dispose: async () => undefined }),
    async explain(h, compiled) {
      const plan = await h.handle.db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`EXPLAIN QUERY PLAN ${compiled.sql}`, [...compiled.parameters]),
      );
      return plan.rows.map((row) => row.detail).join('\n');
    },
  },
  {
    name: 'postgres',
    async open() {
      const database = await createTestDatabase();
      return { storeUrl: database.url, dispose: () => database.drop() };
    },
    async explain(h, compiled) {
      await h.handle.db.executeQuery(CompiledQuery.raw('ANALYZE events'));
      const plan = await h.handle.db.executeQuery<{ 'QUERY PLAN': string }>(
        CompiledQuery.raw(`EXPLAIN ${compiled.sql}`, [...compiled.parameters]),
      );
      return plan.rows.map((row) => row['QUERY PLAN']).join('\n');
    },
  },
];

function seqs(events: readonly SessionEvent[]): number[] {
  return events.map((event) => event.seq);
}

for (const backend of backends) {
  describe(`listEventsBefore: ${backend.name}`, { timeout: 120_000 }, () => {
    let h: Harness;
    let dispose: () => Promise<void>;
    let sessionId: string;
    let lastSeq: number;

    before(async () => {
      const store = await backend.open();
      dispose = store.dispose;
      h = await createHarness({
        llm: idle,
        start: false,
        ...(store.storeUrl ? { storeUrl: store.storeUrl } : {}),
      });
      const create = async (objective: string) =>
        (await h.engine.service.createSession(ACTOR, { objective, agents: [{ role: 'tester', task: 't' }] }))
          .session;
      const session = await create('long log');
      // A second session as long, so that the session's rows are not the whole table.
      const neighbour = await create('neighbour');
      sessionId = session.id;
      const lines: NewEvent[] = Array.from({ length: LINES }, (_, i) => ({
        type: 'task.output',
        data: { taskId: 'x', name: 'x', stream: 'stdout', line: `line ${i}` },
      }));
      await h.handle.db.transaction().execute(async (trx) => {
        await appendEvents(trx, { id: session.id, tenantId: session.tenantId }, lines, Date.now());
        await appendEvents(trx, { id: neighbour.id, tenantId: neighbour.tenantId }, lines, Date.now());
      });
      lastSeq = (await h.allEvents(sessionId)).at(-1)?.seq ?? 0;
    });

    after(async () => {
      await h?.close();
      await dispose?.();
    });

    test('the newest events come first, in one read', async () => {
      const newest = await h.engine.service.listEventsBefore(ACTOR, sessionId, null, 5);
      assert.deepEqual(seqs(newest), [lastSeq, lastSeq - 1, lastSeq - 2, lastSeq - 3, lastSeq - 4]);
      assert.equal(newest[0]?.data.line, `line ${LINES - 1}`);
      assert.ok(
        newest.every((event) => event.sessionId === sessionId && typeof event.createdAt === 'number'),
      );
    });

    test('before=<seq> gives the events just below it; paging back ends at seq 1', async () => {
      assert.deepEqual(seqs(await h.engine.service.listEventsBefore(ACTOR, sessionId, 100, 3)), [99, 98, 97]);
      assert.deepEqual(seqs(await h.engine.service.listEventsBefore(ACTOR, sessionId, 3, 10)), [2, 1]);
      assert.deepEqual(await h.engine.service.listEventsBefore(ACTOR, sessionId, 1, 10), []);
      assert.deepEqual(await h.engine.service.listEventsBefore(ACTOR, sessionId, 0, 10), []);

      const backwards: SessionEvent[] = [];
      for (let cursor: number | null = null; ; ) {
        const page = await h.engine.service.listEventsBefore(ACTOR, sessionId, cursor, 1_000_000);
        assert.ok(page.length <= 1000, `a page is capped (${page.length})`);
        if (page.length === 0) break;
        backwards.push(...page);
        cursor = page.at(-1)?.seq ?? 0;
      }
      const forwards = await h.allEvents(sessionId);
      assert.deepEqual(seqs(backwards), seqs(forwards).reverse());
    });

    test('another tenant gets the same NOT_FOUND as for listEvents', async () => {
      const other = { tenantId: 'other', principalId: 'x' };
      const forward = await h.engine.service.listEvents(other, sessionId, 0, 10).catch((error) => error);
      const backward = await h.engine.service.listEventsBefore(other, sessionId, null, 10).catch((e) => e);
      assert.equal(forward.code, 'SESSION_NOT_FOUND');
      assert.equal(backward.code, forward.code);
      assert.equal(backward.message, forward.message);
      const unknown = '0190a0a0-0000-7000-8000-000000000001';
      await assert.rejects(h.engine.service.listEventsBefore(ACTOR, unknown, null, 10), {
        code: 'SESSION_NOT_FOUND',
      });
    });

    test('the read walks the primary key backwards: no sort, no scan of the session', async (t) => {
      for (const cursor of [null, 600]) {
        const plan = await backend.explain(
          h,
          selectEventsBefore(h.handle.db, sessionId, cursor, 50).compile(),
        );
        t.diagnostic(`before=${cursor}: ${plan.replaceAll('\n', ' | ')}`);
        if (backend.name === 'sqlite') {
          assert.match(plan, /SEARCH events USING (INDEX|PRIMARY KEY)[^\n]*\(session_id=\?/, plan);
          if (cursor !== null) assert.match(plan, /seq<\?/, plan);
          assert.doesNotMatch(plan, /TEMP B-TREE|SCAN events/, plan);
        } else {
          assert.match(plan, /Index Scan Backward using events_pk on events/, plan);
          assert.doesNotMatch(plan, /Sort|Seq Scan/, plan);
        }
      }
    });
  });
}
