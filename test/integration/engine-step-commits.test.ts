// Write transactions per agent step: in a sequential chain, a step's finish (with its last output
// lines) and the start of the next step share one commit, and on SQLite one write operation: the
// finish hands the next step to the slot it freed (engine/advance-sessions.ts, HandOff), with the
// events a claim would write. The first step is claimed in the submission's own commit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { ACTOR, createHarness, type Harness } from '../fixtures/engine-harness.ts';

const STEPS = 8;

describe('write transactions per step', { timeout: 60_000 }, () => {
  let h: Harness;
  // Output without a trailing newline: it is still buffered when the run ends.
  const llm: AgentRuntime = {
    kind: 'fake-llm',
    async run(task, ctx) {
      ctx.emitOutput('text', `answer of ${task.name}`);
      return { output: `done ${task.name}` };
    },
  };
  before(async () => {
    // No poll ticks and no lease timers during the test: every batch comes from the steps.
    h = await createHarness({ llm, concurrency: 4, pollIntervalMs: 600_000, leaseSeconds: 600 });
  });
  after(() => h.close());

  test('a sequential chain commits once per step; last output lines precede each result', async () => {
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
    const batches = h.engine.queue.stats().batches - before.batches;
    // One for the submission with the first claim, one per step (finish + next claim), and at most
    // one read-only claim round woken by the submission's announcement (no fsync: nothing written).
    assert.ok(batches <= STEPS + 2, `${batches} write transactions for ${STEPS} steps`);
    // The submission, the first claim (and at most one claim round its announcement wakes), then
    // one finish per step. A claim next to every finish (no hand-off) makes it 2 per step.
    const ops = h.engine.queue.stats().ops - before.ops;
    assert.ok(ops <= STEPS + 3, `${ops} write operations for ${STEPS} steps`);

    const events = await h.allEvents(session.id);
    for (let i = 0; i < STEPS; i++) {
      const name = `s${i}`;
      const output = events.findIndex(
        (event) =>
          event.type === 'task.output' && event.data.name === name && event.data.line === `answer of ${name}`,
      );
      const result = events.findIndex((event) => event.type === 'task.result' && event.data.name === name);
      const running = events.findIndex(
        (event) => event.type === 'task.status' && event.data.name === name && event.data.to === 'running',
      );
      assert.ok(running >= 0 && output > running && result > output, `${name}: running < output < result`);
      if (i === 0) continue;
      const transitions = events
        .filter((event) => event.type === 'task.status' && event.data.name === name)
        .map((event) => `${event.data.from}>${event.data.to}@${event.data.attempt}`);
      assert.deepEqual(transitions.slice(0, 2), ['pending>ready@0', 'leased>running@1'], name);
      const previousResult = events.findIndex(
        (event) => event.type === 'task.result' && event.data.name === `s${i - 1}`,
      );
      assert.ok(running > previousResult, `${name} starts after s${i - 1}'s result`);
    }
  });
});
