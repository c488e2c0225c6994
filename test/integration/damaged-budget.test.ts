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
import { createLogger } from '../../src/observability/logger.ts';
import { ACTOR, createHarness } from '../fixtures/engine-harness.ts';
import { captureLog } from '../fixtures/log-capture.ts';

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
      const told: string[] = [];
      const report = (sessionId: string, column: string) => told.push(`${column} ${sessionId}`);
      const settings = await loadSessionSettings(h.handle.db, session.id, report);
      assert.equal(settings.budget, null);
      assert.equal(await loadRequestedBudget(h.handle.db, session.id, report), null);
      assert.deepEqual(told, [
        `session_settings.budget ${session.id}`,
        `session_settings.requested_budget ${session.id}`,
      ]);
      assert.equal(await findPassedDeadline(h.handle.db, { id: session.id, createdAt: 0 }, Date.now()), null);
      const detail = await h.engine.service.getSession(ACTOR, session.id);
      assert.equal(detail.id, session.id);
      // Not an object: no budget either.
      await h.handle.db
        .updateTable('session_settings')
        .set({ budget: '"100"' })
        .where('session_id', '=', session.id)
        .execute();
      assert.equal((await loadSessionSettings(h.handle.db, session.id, report)).budget, null);
    } finally {
      await h.close();
    }
  });

  test("is told on the logger of the engine that read it, not on the last engine's made", async () => {
    // Two engines in one process (as `maos mcp` beside a server, or tests): each reads its own store.
    const logA = captureLog<{ message: string; sessionId?: string; column?: string }>();
    const logB = captureLog<{ message: string; sessionId?: string; column?: string }>();
    const a = await createHarness({
      llm: instant,
      start: false,
      logger: createLogger({ level: 'warn', destination: logA.destination }),
    });
    const b = await createHarness({
      llm: instant,
      start: false,
      logger: createLogger({ level: 'warn', destination: logB.destination }),
    });
    try {
      const { session } = await a.engine.service.createSession(ACTOR, {
        objective: 'x',
        agents: [{ name: 'a', role: 'engineer', task: 't' }],
        budget: { maxTokens: 100 },
      });
      await a.handle.db
        .updateTable('session_settings')
        .set({ budget: '{"maxTokens": 100,' })
        .where('session_id', '=', session.id)
        .execute();
      await a.engine.service.getSession(ACTOR, session.id);
      await a.engine.service.getSession(ACTOR, session.id);
      const damaged = (lines: typeof logA.lines) =>
        lines.filter((line) => /stored JSON cannot be read/.test(line.message));
      assert.deepEqual(
        damaged(logA.lines).map((line) => [line.sessionId, line.column]),
        [[session.id, 'session_settings.budget']],
        'once, on the engine that read it',
      );
      assert.deepEqual(damaged(logB.lines), []);
    } finally {
      await b.close();
      await a.close();
    }
  });
});
