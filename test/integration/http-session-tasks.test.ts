// GET /v1/sessions/:id/tasks on the real application (API keys, SQLite): pages in plan order that add
// up to the detail's tasks, another tenant's session 404, a bad or foreign cursor 400 INVALID_CURSOR
// (problem+json); its permission per role is held to docs by security-rbac-routes.test.ts. Then, on both stores: paging a session
// while a re-plan adds tasks lists every task once, in order; a page is a range of the index from
// the cursor on (no walk from the session's first task, no sort).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { CompiledQuery, type Kysely } from 'kysely';
import type { Database } from '../../src/store/schema.ts';
import { listSessionTaskPage, selectTaskPage } from '../../src/store/session-task-pages.ts';
import { startProbeStack } from '../fixtures/security-probe.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';
import { agentTaskRow, insertRunningSession } from '../fixtures/task-page-rows.ts';

interface TaskItem {
  id: string;
  name: string;
  dependsOn: string[];
}

describe('GET /v1/sessions/:id/tasks on the real application', { timeout: 120_000 }, () => {
  test('pages, tenants and cursors', async (t) => {
    const stack = await startProbeStack(t);
    const base = stack.server.url;
    const developer = await stack.mint('tenant-tasks-a', ['developer']);
    const viewer = await stack.mint('tenant-tasks-a', ['viewer']);
    const otherAdmin = await stack.mint('tenant-tasks-b', ['admin']);
    const get = (path: string, key: string) =>
      fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } });

    const agents = Array.from({ length: 5 }, (_, i) => ({
      name: `step${i}`,
      role: 'engineer',
      task: `Step ${i}`,
      runner: 'ok',
      ...(i > 0 ? { depends_on: i > 1 ? [`step${i - 2}`, `step${i - 1}`] : [`step${i - 1}`] } : {}),
    }));
    const created = await fetch(`${base}/v1/sessions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${developer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ objective: 'paged tasks', strategy: 'pipeline', agents }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const session = (await created.json()) as { id: string; tasks: TaskItem[] };
    const detail = (await (await get(`/v1/sessions/${session.id}`, viewer)).json()) as { tasks: TaskItem[] };
    assert.equal(detail.tasks.length, 5);

    // Pages of two: 2 + 2 + 1, the detail's tasks in the detail's order.
    const paged: TaskItem[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? '?limit=2' : `?limit=2&cursor=${cursor}`;
      const response = await get(`/v1/sessions/${session.id}/tasks${query}`, viewer);
      assert.equal(response.status, 200);
      const page = (await response.json()) as { items: TaskItem[]; nextCursor: string | null };
      assert.ok(page.items.length <= 2);
      paged.push(...page.items);
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null);
    assert.equal(pages, 3);
    const sorted = (items: TaskItem[]) =>
      items.map((item) => ({ ...item, dependsOn: [...item.dependsOn].sort() }));
    assert.deepEqual(sorted(paged), sorted(detail.tasks));
    assert.deepEqual(
      paged.find((task) => task.name === 'step3')?.dependsOn,
      ['step1', 'step2'],
      'dependsOn in plan order',
    );

    // The default page size holds all five, and the last page has no cursor.
    const all = (await (await get(`/v1/sessions/${session.id}/tasks`, viewer)).json()) as {
      items: TaskItem[];
      nextCursor: string | null;
    };
    assert.equal(all.items.length, 5);
    assert.equal(all.nextCursor, null);

    const problem = async (response: Response, status: number, code: string) => {
      assert.equal(response.status, status);
      assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(((await response.json()) as { code: string }).code, code);
    };
    // Another tenant's session is not found; so is an unknown one.
    await problem(await get(`/v1/sessions/${session.id}/tasks`, otherAdmin), 404, 'SESSION_NOT_FOUND');
    await problem(await get(`/v1/sessions/${randomUUID()}/tasks`, viewer), 404, 'SESSION_NOT_FOUND');

    // Cursors: tampered, made up, or from the session list.
    const first = (await (await get(`/v1/sessions/${session.id}/tasks?limit=1`, viewer)).json()) as {
      nextCursor: string;
    };
    const tampered = `${first.nextCursor.slice(0, -2)}AA`;
    const sessionsPage = (await (await get('/v1/sessions?limit=1', developer)).json()) as {
      nextCursor: string | null;
    };
    const listCursor = Buffer.from(JSON.stringify([Date.now(), session.id])).toString('base64url');
    for (const bad of [
      tampered,
      'bm9wZQ',
      listCursor,
      ...(sessionsPage.nextCursor ? [sessionsPage.nextCursor] : []),
    ]) {
      await problem(
        await get(`/v1/sessions/${session.id}/tasks?cursor=${bad}`, viewer),
        400,
        'INVALID_CURSOR',
      );
    }
    await problem(await get(`/v1/sessions/${session.id}/tasks?limit=0`, viewer), 400, 'VALIDATION_FAILED');
  });
});

const AT = Date.parse('2026-10-01T00:00:00Z');

/** Inserts tasks of `sessionId` at the given positions, each depending on the one before it. */
async function insertTasks(db: Kysely<Database>, sessionId: string, positions: number[]): Promise<void> {
  for (const position of positions) {
    const task = agentTaskRow(sessionId, position, { now: AT + position });
    await db.insertInto('tasks').values(task).execute();
    if (position > 0) {
      const previous = await db
        .selectFrom('tasks')
        .select('id')
        .where('session_id', '=', sessionId)
        .where('name', '=', `t${position - 1}`)
        .executeTakeFirstOrThrow();
      await db
        .insertInto('task_dependencies')
        .values({
          task_id: task.id,
          depends_on_task_id: previous.id,
          session_id: sessionId,
          tenant_id: 'acme',
        })
        .execute();
    }
  }
}

for (const backend of STORE_BACKENDS) {
  describe(`session task pages (${backend.name})`, { timeout: 60_000 }, () => {
    test('paging while a re-plan adds tasks lists each task once, in plan order', async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db;
        await db.insertInto('tenants').values({ id: 'acme', name: 'acme', created_at: 0 }).execute();
        await db.insertInto('tenants').values({ id: 'other', name: 'other', created_at: 0 }).execute();
        const sessionId = randomUUID();
        await insertRunningSession(db, sessionId, 'paging probe', AT);
        await insertTasks(db, sessionId, [0, 1, 2, 3, 4]);

        const seen: string[] = [];
        const first = await listSessionTaskPage(db, 'acme', sessionId, { limit: 3 });
        seen.push(...first.items.map((task) => task.name));
        assert.ok(first.nextCursor);
        // The orchestrator's next phase lands between two reads; a task already listed changes state.
        await insertTasks(db, sessionId, [5, 6, 7]);
        await db.updateTable('tasks').set({ status: 'succeeded' }).where('name', '=', 't0').execute();
        let cursor: string | null = first.nextCursor;
        while (cursor !== null) {
          const page = await listSessionTaskPage(db, 'acme', sessionId, { limit: 3, cursor });
          seen.push(...page.items.map((task) => task.name));
          cursor = page.nextCursor;
        }
        assert.deepEqual(seen, ['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7']);

        // One page of all: each task as stored, with its dependency, and no next page.
        const whole = await listSessionTaskPage(db, 'acme', sessionId, { limit: 100 });
        assert.equal(whole.nextCursor, null);
        assert.deepEqual(
          whole.items.map((task) => [task.name, task.status, task.dependsOn]),
          [0, 1, 2, 3, 4, 5, 6, 7].map((n) => [
            `t${n}`,
            n === 0 ? 'succeeded' : 'pending',
            n === 0 ? [] : [`t${n - 1}`],
          ]),
        );
        // A page ending on the last task has no next page either.
        const tail = await listSessionTaskPage(db, 'acme', sessionId, { limit: 4 });
        assert.ok(tail.nextCursor);
        const end = await listSessionTaskPage(db, 'acme', sessionId, { limit: 4, cursor: tail.nextCursor });
        assert.deepEqual(
          end.items.map((task) => task.name),
          ['t4', 't5', 't6', 't7'],
        );
        assert.equal(end.nextCursor, null);

        await assert.rejects(listSessionTaskPage(db, 'other', sessionId, { limit: 3 }), {
          code: 'SESSION_NOT_FOUND',
        });

        // A cursor made up with a position no task can have (positions are 0 and up, an integer
        // column): refused as any other, not sent to the store (PostgreSQL refused the comparison).
        for (const position of [2 ** 31, -1, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER]) {
          const cursor = Buffer.from(JSON.stringify(['t', position, randomUUID()])).toString('base64url');
          await assert.rejects(listSessionTaskPage(db, 'acme', sessionId, { limit: 3, cursor }), {
            code: 'INVALID_CURSOR',
          });
        }
      } finally {
        await dispose();
      }
    });

    test('a page is read from the cursor on, over the index, without sorting', async (t) => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db;
        await db.insertInto('tenants').values({ id: 'acme', name: 'acme', created_at: 0 }).execute();
        // Two sessions of 800 tasks: the session's tasks are not the whole table.
        const sessionIds = [randomUUID(), randomUUID()];
        for (const sessionId of sessionIds) {
          await insertRunningSession(db, sessionId, 'index probe', AT);
          const rows = Array.from({ length: 800 }, (_, position) =>
            agentTaskRow(sessionId, position, {
              now: AT,
              instructions: 'x'.repeat(200),
              status: 'succeeded',
            }),
          );
          for (let i = 0; i < rows.length; i += 100) {
            await db
              .insertInto('tasks')
              .values(rows.slice(i, i + 100))
              .execute();
          }
        }
        const sessionId = sessionIds[0]!;
        // PostgreSQL's statistics, as autovacuum keeps them; SQLite has none (MAOS runs no ANALYZE).
        if (backend.name !== 'sqlite') await db.executeQuery(CompiledQuery.raw('ANALYZE tasks'));
        // The first page, then pages after a task near the start and one in the middle.
        for (const position of [undefined, 10, 400]) {
          const at =
            position === undefined
              ? undefined
              : await db
                  .selectFrom('tasks')
                  .select('id')
                  .where('session_id', '=', sessionId)
                  .where('position', '=', position)
                  .executeTakeFirstOrThrow();
          const after = position === undefined || at === undefined ? undefined : { position, id: at.id };
          const compiled = selectTaskPage(db, 'acme', sessionId, after, 21).compile();
          const explained = await db.executeQuery<Record<string, string>>(
            CompiledQuery.raw(
              `${backend.name === 'sqlite' ? 'EXPLAIN QUERY PLAN' : 'EXPLAIN'} ${compiled.sql}`,
              [...compiled.parameters],
            ),
          );
          const plan = explained.rows.map((row) => row.detail ?? row['QUERY PLAN']).join('\n');
          t.diagnostic(`after position ${position ?? '(none)'}: ${plan.replaceAll('\n', ' | ')}`);
          if (backend.name === 'sqlite') {
            assert.match(
              plan,
              after
                ? /INDEX tasks_session_position \(session_id=\? AND \(position,id\)>\(\?,\?\)\)/
                : /INDEX tasks_session_position \(session_id=\?\)/,
              plan,
            );
            assert.doesNotMatch(plan, /TEMP B-TREE/, plan);
          } else {
            assert.match(plan, /Index Scan using tasks_session_position on tasks/, plan);
            if (after) assert.match(plan, /Index Cond: .*ROW\("position", id\) > ROW/, plan);
            assert.doesNotMatch(plan, /Sort|Seq Scan|Bitmap/, plan);
          }
        }
      } finally {
        await dispose();
      }
    });
  });
}
