// The hand-off (SQLite): a finish starts the tasks it readies on the slots just freed, in its own
// transaction, instead of leaving them for a claim round. The chain case (one write operation per
// step, the claim path's events) is checked in engine-step-commits.test.ts; here: the worker slot
// limit holds when a finish readies more tasks than there are free slots.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';

describe('hand-off of readied tasks to the finishing process', { timeout: 60_000 }, () => {
  const harnesses: Harness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  test('a finish that readies more tasks than free slots starts only as many; the rest are claimed later', async () => {
    let running = 0;
    let maxRunning = 0;
    const llm: AgentRuntime = {
      kind: 'fake-llm',
      async run(task) {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
        return { output: `done ${task.name}` };
      },
    };
    const h = await createHarness({ llm, concurrency: 2, pollIntervalMs: 600_000, leaseSeconds: 600 });
    harnesses.push(h);
    // root → 6 branches → join: the root's finish readies 6 tasks with 2 slots.
    const branches = Array.from({ length: 6 }, (_, i) => ({
      name: `b${i}`,
      role: 'engineer',
      task: `branch ${i}`,
      depends_on: ['root'],
    }));
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'fan-out',
      strategy: 'pipeline',
      agents: [
        { name: 'root', role: 'architect', task: 'root' },
        ...branches,
        { name: 'join', role: 'reviewer', task: 'join', depends_on: branches.map((branch) => branch.name) },
      ],
    });
    const detail = await h.waitForSession(session.id);
    assert.equal(detail.status, 'completed');
    assert.equal(maxRunning, 2, 'never more runs than worker slots');
    for (const task of detail.tasks) assert.equal(task.status, 'succeeded');
  });
});
