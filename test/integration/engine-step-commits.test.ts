// Write transactions per agent step: in a sequential chain, a step's finish (with its last output
// lines) and the claim + start of the next step share one commit, so a step costs one fsync; the
// first step is claimed in the submission's own commit.
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
    }
  });
});
