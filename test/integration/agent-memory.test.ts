// An agent's memory (its earlier turns in the session and the messages sent to it that no finished
// turn received yet), read the same on both stores and always within the task's tenant.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Kysely } from 'kysely';
import { createAgentMemory, MAX_HISTORY_TURNS } from '../../src/agents/runtimes/ai-sdk/agent-memory.ts';
import type { RuntimeTask } from '../../src/agents/runtimes/runtime.ts';
import { markMessagesDelivered } from '../../src/store/message-store.ts';
import { newSessionRow, newTaskRow } from '../../src/store/rows.ts';
import type { Database } from '../../src/store/schema.ts';
import { STORE_BACKENDS } from '../fixtures/store-backends.ts';

const TENANT = 'default';

/**
 * A session whose agent `writer` finished 12 tasks (finished_at 100…1200) and failed one, whose
 * agent `critic` finished one, and the task of `writer` that now runs; messages to `writer`: one
 * its task w11 received, one sent while w11 ran (after it had read its inbox), two since.
 */
async function seed(db: Kysely<Database>, sessionId: string): Promise<RuntimeTask> {
  const now = 1;
  await db
    .insertInto('sessions')
    .values(
      newSessionRow(
        {
          id: sessionId,
          tenant_id: TENANT,
          objective: 'memory',
          strategy: 'sequential',
          status: 'running',
          metadata: '{}',
          started_at: now,
        },
        now,
      ),
    )
    .execute();
  const agent = (name: string) => ({
    id: `${sessionId}-${name}`,
    tenant_id: TENANT,
    session_id: sessionId,
    name,
    role: 'engineer',
    runtime: 'llm',
    created_at: now,
  });
  await db
    .insertInto('agents')
    .values([agent('writer'), agent('critic')])
    .execute();
  const owner = { tenantId: TENANT, sessionId, maxAttempts: 1, now };
  const task = (
    name: string,
    agentName: string,
    position: number,
    status: 'succeeded' | 'failed' | 'running',
  ) => ({
    ...newTaskRow(owner, {
      id: `${sessionId}-${name}`,
      kind: 'agent',
      name,
      role: 'engineer',
      agent_id: `${sessionId}-${agentName}`,
      instructions: `do ${name}`,
      runner: null,
      phase: position,
      position,
      status,
    }),
    result: status === 'succeeded' ? `output of ${name}` : null,
    finished_at: status === 'running' ? null : (position + 1) * 100,
  });
  // Inserted out of order: the history is ordered by finish time, not by insertion.
  const finished = Array.from({ length: 12 }, (_, i) => task(`w${i}`, 'writer', i, 'succeeded')).reverse();
  await db
    .insertInto('tasks')
    .values([
      ...finished,
      task('w-failed', 'writer', 12, 'failed'),
      task('c0', 'critic', 13, 'succeeded'),
      task('now', 'writer', 14, 'running'),
    ])
    .execute();
  const message = (
    id: string,
    from: string | null,
    body: string,
    createdAt: number,
    deliveredIn: string | null = null,
  ) => ({
    id: `${sessionId}-${id}`,
    tenant_id: TENANT,
    session_id: sessionId,
    from_agent_id: from === null ? null : `${sessionId}-${from}`,
    to_agent_id: `${sessionId}-writer`,
    body,
    created_at: createdAt,
    delivered_task_id: deliveredIn === null ? null : `${sessionId}-${deliveredIn}`,
  });
  await db
    .insertInto('messages')
    .values([
      message('m-old', 'critic', 'seen in an earlier turn', 1110, 'w11'),
      message('m-during', 'critic', 'sent while w11 ran', 1190),
      message('m-new', 'critic', 'look at the tests', 1250),
      message('m-user', null, 'keep it short', 1300),
    ])
    .execute();
  return {
    sessionId,
    tenantId: TENANT,
    objective: 'memory',
    taskId: `${sessionId}-now`,
    name: 'now',
    role: 'engineer',
    instructions: 'do now',
    runner: null,
    agentId: `${sessionId}-writer`,
    attempt: 1,
    dependencies: [],
    kind: 'agent',
  };
}

describe('agent memory', () => {
  for (const backend of STORE_BACKENDS) {
    test(`${backend.name}: the latest turns of the agent, oldest first, and the messages no turn received`, async () => {
      const { handles, dispose } = await backend.open(1);
      try {
        const db = handles[0]!.db;
        const task = await seed(db, `${backend.name}-s1`);
        const memory = createAgentMemory(db);
        const history = await memory.loadHistory(task);
        assert.equal(history.length, MAX_HISTORY_TURNS);
        assert.deepEqual(
          history.map((turn) => turn.output),
          Array.from({ length: MAX_HISTORY_TURNS }, (_, i) => `output of w${i + 2}`),
        );
        assert.equal(history[0]!.instructions, 'do w2');
        // A replayed turn carries the messages it received.
        assert.deepEqual(history.at(-1)?.inbox, [{ from: 'critic', body: 'seen in an earlier turn' }]);
        assert.equal(history[0]!.inbox, undefined);
        const id = (name: string) => `${task.sessionId}-${name}`;
        assert.deepEqual(await memory.loadInbox(task), [
          { id: id('m-during'), from: 'critic', body: 'sent while w11 ran' },
          { id: id('m-new'), from: 'critic', body: 'look at the tests' },
          { id: id('m-user'), from: 'user', body: 'keep it short' },
        ]);
        // The turn that received two of them succeeded: they are not delivered again.
        const scope = { tenantId: TENANT, sessionId: task.sessionId, taskId: task.taskId };
        await markMessagesDelivered(db, scope, [id('m-during'), id('m-new')]);
        assert.deepEqual(await memory.loadInbox(task), [
          { id: id('m-user'), from: 'user', body: 'keep it short' },
        ]);
        // A message keeps the first turn that received it; another tenant marks nothing.
        await markMessagesDelivered(db, { ...scope, taskId: id('c0') }, [id('m-new')]);
        await markMessagesDelivered(db, { ...scope, tenantId: 'other' }, [id('m-user')]);
        const marks = await db
          .selectFrom('messages')
          .select(['id', 'delivered_task_id'])
          .where('session_id', '=', task.sessionId)
          .orderBy('created_at')
          .execute();
        assert.deepEqual(marks, [
          { id: id('m-old'), delivered_task_id: id('w11') },
          { id: id('m-during'), delivered_task_id: task.taskId },
          { id: id('m-new'), delivered_task_id: task.taskId },
          { id: id('m-user'), delivered_task_id: null },
        ]);
        // Another tenant's view of the same ids finds nothing.
        const foreign = { ...task, tenantId: 'other' };
        assert.deepEqual(await createAgentMemory(db).loadHistory(foreign), []);
        assert.deepEqual(await createAgentMemory(db).loadInbox(foreign), []);
      } finally {
        await dispose();
      }
    });
  }
});
