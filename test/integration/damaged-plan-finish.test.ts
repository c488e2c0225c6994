// A session whose stored plan cannot be read (a hand edit of `plans.body` gone wrong) no longer
// stops the finishes of other sessions: the plan is read when a session's tasks have all succeeded
// (is it the orchestrator's, to be continued with a phase gate or a synthesis?), inside the batch of
// finishes of every session finishing then. Its JSON.parse failure rolled the whole batch back, again
// and again, and those sessions stayed running. Read as absent now, as the session's document does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { continueOrchestratedSession } from '../../src/engine/planner-continuation.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';

const instant: AgentRuntime = { kind: 'fake', run: async () => ({ output: 'done' }) };

test("a session's unreadable plan does not hold up the finishes of the others", {
  timeout: 60_000,
}, async () => {
  const h = await createHarness({
    llm: instant,
    start: false,
    continueSession: (trx, session, now) =>
      continueOrchestratedSession(trx, session, { maxPhases: 3, maxAttempts: 1 }, now),
  });
  try {
    const submit = async (name: string) =>
      (
        await h.engine.service.createSession(ACTOR, {
          objective: name,
          agents: [{ name, role: 'engineer', task: 't' }],
        })
      ).session.id;
    // Not JSON, and JSON that is no plan (no phases) though it says it is the orchestrator's.
    const damaged = [await submit('not-json'), await submit('no-phases')];
    const others = [await submit('other-1'), await submit('other-2')];
    const bodies = ['{"phases": [', '{"origin": "orchestrator"}'];
    for (const [index, id] of damaged.entries()) {
      await h.handle.db
        .updateTable('plans')
        .set({ body: bodies[index]! })
        .where('session_id', '=', id)
        .execute();
    }
    // All four finish in one batch: the engine starts with them all ready.
    h.engine.start();
    for (const id of others) assert.equal((await h.waitForSession(id)).status, 'completed');
    for (const id of damaged) {
      const ended = await h.waitForSession(id);
      assert.equal(ended.status, 'completed', 'read as a plan of its own agents: it completes as one');
    }
  } finally {
    await h.close();
  }
});
