// The hand-off (SQLite): a finish starts the tasks it readies on the slots just freed, in its own
// transaction, instead of leaving them for a claim round. Checked: one write operation per chain
// step (a finish; no claim op next to it), the same task events as a claim would write, and the
// worker slot limit held when a finish readies more tasks than there are free slots.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';

const STEPS = 8;

describe('hand-off of readied tasks to the finishing process', { timeout: 60_000 }, () => {
  const harnesses: Harness[] = [];
  after(async () => {
    for (const h of harnesses) await h.close();
  });

  test('a chain step is one write operation and keeps the claim path events', async () => {
    const llm: AgentRuntime = { kind: 'fake-llm', run: async (task) => ({ output: `done ${task.name}` }) };
    const h = await createHarness({ llm, concurrency: 4, pollIntervalMs: 600_000, leaseSeconds: 600 });
    harnesses.push(h);
    await h.engine.queue.drain(); // the start-up's reaper pass, first claim and deadline sweep
    const before = h.engine.queue.stats();
    const { session } = await h.engine.service.createSession(ACTOR, {
      objective: 'chain',
      strategy: 'sequential',
      agents: Array.from({ length: STEPS }, (_, i) => ({
        name: `s${i}`,
        role: 'engineer',
        task: `step ${i}`,
      })),
    });
    const detail = await h.waitForSession(session.id);
    assert.equal(detail.status, 'completed');
    await h.engine.queue.drain();
    const ops = h.engine.queue.stats().ops - before.ops;
    // The submission, the first claim (and at most one claim round its announcement wakes), then
    // one finish per step. A claim next to every finish (no hand-off) makes it 2 per step.
    assert.ok(ops <= STEPS + 3, `${ops} write operations for ${STEPS} steps`);

    const events = await h.allEvents(session.id);
    for (let i = 1; i < STEPS; i++) {
      const name = `s${i}`;
      const transitions = events
        .filter((event) => event.type === 'task.status' && event.data.name === name)
        .map((event) => `${event.data.from}>${event.data.to}@${event.data.attempt}`);
      assert.deepEqual(transitions.slice(0, 2), ['pending>ready@0', 'leased>running@1'], name);
      const previousResult = events.findIndex(
        (event) => event.type === 'task.result' && event.data.name === `s${i - 1}`,
      );
      const started = events.findIndex(
        (event) => event.type === 'task.status' && event.data.name === name && event.data.to === 'running',
      );
      assert.ok(previousResult >= 0 && started > previousResult, `${name} starts after s${i - 1}'s result`);
    }
    for (const task of detail.tasks) assert.equal(task.attempts, 1, `${task.name} ran once`);
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
