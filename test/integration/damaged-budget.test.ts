// A session whose stored budget cannot be read (a hand edit of session_settings gone wrong) is one
// without a budget wherever its settings are read: its document, its deadline, a retry of it, as for
// the lease reaper and the finishes (session-budget.ts). A JSON.parse failure there failed the
// reading request with a 500, and, read within a batch of finishes (an orchestrated session's next
// phase, its approval), every finish of that batch, of any session.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentRuntime } from '../../src/agents/runtimes/runtime.ts';
import { findPassedDeadline } from '../../src/engine/session-deadlines.ts';
import { loadRequestedBudget, loadSessionSettings } from '../../src/engine/session-settings.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';

const instant: AgentRuntime = { kind: 'fake', run: async () => ({ output: 'done' }) };

describe('a damaged stored budget', { timeout: 60_000 }, () => {
  test('is read as none: the settings, the requested budget, the deadline and the session document', async () => {
    const h = await createHarness({ llm: instant, start: false });
    try {
      const { session } = await h.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [{ name: 'a', role: 'engineer', task: 't' }],
        budget: { maxTokens: 100, deadlineSeconds: 60 },
      });
      await h.handle.db
        .updateTable('session_settings')
        .set({ budget: '{"maxTokens": 100,', requested_budget: '[1' })
        .where('session_id', '=', session.id)
        .execute();
      const settings = await loadSessionSettings(h.handle.db, session.id);
      assert.equal(settings.budget, null);
      assert.equal(await loadRequestedBudget(h.handle.db, session.id), null);
      assert.equal(await findPassedDeadline(h.handle.db, { id: session.id, createdAt: 0 }, Date.now()), null);
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      assert.equal(detail.id, session.id);
      // Not an object: no budget either.
      await h.handle.db
        .updateTable('session_settings')
        .set({ budget: '"100"' })
        .where('session_id', '=', session.id)
        .execute();
      assert.equal((await loadSessionSettings(h.handle.db, session.id)).budget, null);
    } finally {
      await h.close();
    }
  });
});
