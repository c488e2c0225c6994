import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { createDatabase, type DatabaseHandle } from './db.ts';
import { migrateToLatest } from './migrate.ts';
import { newSessionRow, newTaskRow } from './rows.ts';
import type { Database, SessionsTable, TasksTable } from './schema.ts';
import { insertSession } from './session-store.ts';
import { loadSessionGraphs } from './task-graph.ts';
import { insertTaskDependencies } from './task-store.ts';

const TENANT = 'graph-tenant';

function sessionRow(id: string): SessionsTable {
  const fields = { objective: 'task graph', strategy: 'sequential', status: 'running', metadata: '{}' };
  return newSessionRow({ id, tenant_id: TENANT, started_at: null, ...fields }, 1);
}

function taskRow(sessionId: string, name: string, position: number, status: string): TasksTable {
  const owner = { tenantId: TENANT, sessionId, maxAttempts: 3, now: 1 };
  const id = `${sessionId}-${name}`;
  const fields = {
    kind: 'agent',
    role: 'worker',
    agent_id: null,
    instructions: name,
    runner: null,
    phase: 0,
  };
  return { ...newTaskRow(owner, { id, name, position, status, ...fields }), result: `${name} output` };
}

/** A session `a → b`, `a → c`, `b, c → d` (d depends on b and c). */
async function addDiamond(db: Kysely<Database>, sessionId: string): Promise<void> {
  const edges: Array<[string, string]> = [
    ['b', 'a'],
    ['c', 'a'],
    ['d', 'b'],
    ['d', 'c'],
  ];
  await insertSession(db, {
    session: sessionRow(sessionId),
    plan: { tasks: [] } as never,
    agents: [],
    tasks: [
      taskRow(sessionId, 'a', 0, 'succeeded'),
      taskRow(sessionId, 'b', 1, 'running'),
      taskRow(sessionId, 'c', 2, 'ready'),
      taskRow(sessionId, 'd', 3, 'pending'),
    ],
    dependencies: edges.map(([task, dependsOn]) => ({
      task_id: `${sessionId}-${task}`,
      depends_on_task_id: `${sessionId}-${dependsOn}`,
      session_id: sessionId,
      tenant_id: TENANT,
    })),
  });
}

describe('loadSessionGraphs', () => {
  let dir: string;
  let handle: DatabaseHandle;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maos-task-graph-'));
    handle = createDatabase({ dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'normal' } });
    await migrateToLatest(handle.db);
    await (handle.db as unknown as Kysely<{ tenants: { id: string; name: string; created_at: number } }>)
      .insertInto('tenants')
      .values({ id: TENANT, name: TENANT, created_at: 1 })
      .execute();
    await addDiamond(handle.db, 's1');
    await addDiamond(handle.db, 's2');
  });
  after(async () => {
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const summary = (graph: Awaited<ReturnType<typeof loadSessionGraphs>>, sessionId: string) =>
    graph
      .get(sessionId)
      ?.map((task) => `${task.name}:${task.status}:${[...task.dependsOn].sort().join('+')}`);

  test('one session and several sessions give the same states and dependency names', async () => {
    const expected = ['a:succeeded:', 'b:running:a', 'c:ready:a', 'd:pending:b+c'];
    const one = await loadSessionGraphs(handle.db, ['s1']);
    assert.deepEqual([...one.keys()], ['s1']);
    assert.deepEqual(summary(one, 's1'), expected);
    const both = await loadSessionGraphs(handle.db, ['s1', 's2']);
    assert.deepEqual([...both.keys()].sort(), ['s1', 's2']);
    assert.deepEqual(summary(both, 's1'), expected);
    assert.deepEqual(summary(both, 's2'), expected);
    assert.equal((await loadSessionGraphs(handle.db, [])).size, 0);
  });

  test("a session's edges are read again only when its tasks change", async () => {
    // A second connection to the same file whose statements are recorded.
    const statements: string[] = [];
    const counted = createDatabase(
      { dataDir: dir, store: { busyTimeoutMs: 1000, synchronous: 'normal' } },
      {
        querySpanLogger: () => (event) => {
          if (event.level === 'query') statements.push(event.query.sql);
        },
      },
    );
    try {
      const read = async () => {
        statements.length = 0;
        const graph = summary(await loadSessionGraphs(counted.db, ['s2']), 's2');
        return { graph, edgeReads: statements.filter((text) => text.includes('task_dependencies')).length };
      };
      const diamond = ['a:succeeded:', 'b:running:a', 'c:ready:a', 'd:pending:b+c'];
      assert.deepEqual(await read(), { graph: diamond, edgeReads: 1 });
      // A step changes states, not tasks: the edges come from memory.
      await handle.db.updateTable('tasks').set({ status: 'succeeded' }).where('id', '=', 's2-b').execute();
      const stepped = ['a:succeeded:', 'b:succeeded:a', 'c:ready:a', 'd:pending:b+c'];
      assert.deepEqual(await read(), { graph: stepped, edgeReads: 0 });

      // A task added with its dependencies (a new phase): read again.
      await handle.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('tasks')
          .values(taskRow('s2', 'e', 4, 'pending'))
          .execute();
        const idByName = new Map(['a', 'b', 'c', 'd'].map((name) => [name, `s2-${name}`]));
        await insertTaskDependencies(trx, { id: 's2', tenantId: TENANT }, 's2-e', ['c', 'd'], idByName);
      });
      assert.deepEqual(await read(), { graph: [...stepped, 'e:pending:c+d'], edgeReads: 1 });
      assert.deepEqual(await read(), { graph: [...stepped, 'e:pending:c+d'], edgeReads: 0 });

      // A pending task replaced (an edited plan): its edges go with it.
      await handle.db.deleteFrom('tasks').where('id', '=', 's2-d').execute();
      assert.deepEqual(await read(), {
        graph: ['a:succeeded:', 'b:succeeded:a', 'c:ready:a', 'e:pending:c'],
        edgeReads: 1,
      });
    } finally {
      await counted.close();
    }
  });
});
