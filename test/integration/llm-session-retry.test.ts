// Retrying orchestrated sessions on the real engine (scripted LLM server, SQLite): an adaptive
// session whose second phase failed goes on from that phase — the plan, the first phase and the
// phase gate are carried over (no model call repeats them), the failed task and its dependant run
// again, the reused agent still sees its earlier turn, a later gate and the synthesis follow; a
// session whose planning failed is planned again; and a retry in a thread reads the thread's
// earlier sessions as its original did.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ACTOR, answerByTaskName, type LlmEngine, startLlmEngine } from '../fixtures/llm-engine.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

describe('retrying orchestrated sessions', { timeout: 60_000 }, () => {
  let llm: LlmEngine;
  before(async () => {
    llm = await startLlmEngine({
      model: 'm',
      continueSessions: true,
      llm: { agentMessaging: false, retry: { maxAttempts: 1 }, planner: { maxPhases: 4 } },
    });
  });
  after(() => llm.close());

  const kinds = () => llm.server.requests.map((request) => `${llmRequestKind(request)}:${taskOf(request)}`);

  test('an adaptive session goes on from its failed phase', async () => {
    let buildFails = true;
    let gates = 0;
    llm.server.setHandler((request) => {
      switch (llmRequestKind(request)) {
        case 'plan':
          return {
            object: {
              rationale: 'start',
              phases: [{ name: 'explore', tasks: [plannedTask('sketch', 'architect')] }],
            },
          };
        case 'gate':
          gates += 1;
          if (gates === 1) {
            return {
              object: {
                decision: 'continue',
                reason: 'Refine and build.',
                next_phase: {
                  name: 'build',
                  tasks: [
                    plannedTask('refine', 'architect', { agent: 'sketch' }),
                    plannedTask('build', 'engineer', { dependsOn: ['refine'] }),
                    plannedTask('test', 'qa', { dependsOn: ['build'] }),
                  ],
                },
              },
            };
          }
          return { object: { decision: 'complete', reason: 'Objective met.', next_phase: null } };
        case 'synthesis':
          return { text: 'Synthesised answer' };
        default:
          if (taskOf(request) === 'build' && buildFails) return { error: 400, message: 'bad request' };
          return answerByTaskName(request);
      }
    });
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, {
        objective: 'Design and build a service',
        strategy: 'adaptive',
      });
      const failed = await llm.waitForSession(session.id);
      assert.equal(failed.status, 'failed');
      assert.deepEqual(
        failed.tasks.map((t) => [t.name, t.status]),
        [
          ['orchestrator:plan', 'succeeded'],
          ['sketch', 'succeeded'],
          ['orchestrator:phase-gate-1', 'succeeded'],
          ['refine', 'succeeded'],
          ['build', 'failed'],
          ['test', 'cancelled'],
        ],
      );
      buildFails = false;
      llm.server.requests.length = 0;

      const retried = await llm.engine.service.retrySession(ACTOR, session.id, {});
      assert.equal(retried.created, true);
      assert.equal(retried.session.retryOf, session.id);
      const done = await llm.waitForSession(retried.session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, 'Synthesised answer');
      assert.deepEqual(
        kinds(),
        ['agent:build', 'agent:test', 'gate:', 'synthesis:'],
        'only the failed phase, the next gate and the synthesis call the model',
      );
      assert.deepEqual(
        done.tasks.map((t) => [t.name, t.status]),
        [
          ['orchestrator:plan', 'succeeded'],
          ['sketch', 'succeeded'],
          ['orchestrator:phase-gate-1', 'succeeded'],
          ['refine', 'succeeded'],
          ['build', 'succeeded'],
          ['test', 'succeeded'],
          ['orchestrator:phase-gate-2', 'succeeded'],
          ['orchestrator:synthesis', 'succeeded'],
        ],
      );
      assert.equal(done.planVersion, failed.planVersion);
      assert.deepEqual(done.plan, failed.plan);
      const byName = new Map(done.tasks.map((t) => [t.name, t]));
      assert.equal(byName.get('refine')?.agentId, byName.get('sketch')?.agentId, 'agents are carried over');
      assert.equal(byName.get('sketch')?.usage.inputTokens, 0, 'carried tasks are not charged again');
      assert.ok((byName.get('build')?.usage.inputTokens ?? 0) > 0);
      const gate = llm.server.requests.find((r) => llmRequestKind(r) === 'gate')?.promptText ?? '';
      assert.match(gate, /### refine \(architect, agent sketch\) — succeeded\n```\noutput of refine/);
      const original = await llm.engine.service.getSession(ACTOR, session.id);
      assert.equal(original.status, 'failed');
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('a completed session writes its answer again; its plan and phase gates cannot be named', async () => {
    let answers = 0;
    llm.server.setHandler((request) => {
      switch (llmRequestKind(request)) {
        case 'plan':
          return {
            object: {
              rationale: 'one',
              phases: [{ name: 'only', tasks: [plannedTask('write', 'engineer')] }],
            },
          };
        case 'synthesis':
          answers += 1;
          return { text: `Answer ${answers}` };
        default:
          return answerByTaskName(request);
      }
    });
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, { objective: 'Answer twice' });
      const first = await llm.waitForSession(session.id);
      assert.equal(first.result, 'Answer 1');
      llm.server.requests.length = 0;
      const again = await llm.engine.service.retrySession(ACTOR, session.id, {
        rerun: ['orchestrator:synthesis'],
      });
      const done = await llm.waitForSession(again.session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, 'Answer 2');
      assert.deepEqual(kinds(), ['synthesis:'], 'only the synthesis called the model');
      await assert.rejects(
        llm.engine.service.retrySession(ACTOR, session.id, { rerun: ['orchestrator:plan'] }),
        (error: unknown) => {
          assert.equal((error as { code?: string }).code, 'VALIDATION_FAILED');
          assert.match(String((error as Error).message), /orchestrator:plan cannot run again/);
          return true;
        },
      );
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('a session whose planning failed is planned again', async () => {
    let planFails = true;
    llm.server.setHandler((request) => {
      switch (llmRequestKind(request)) {
        case 'plan':
          if (planFails) return { error: 400, message: 'bad request' };
          return {
            object: {
              rationale: 'one',
              phases: [{ name: 'only', tasks: [plannedTask('write', 'engineer')] }],
            },
          };
        case 'synthesis':
          return { text: 'Done' };
        default:
          return answerByTaskName(request);
      }
    });
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, { objective: 'Write it' });
      const failed = await llm.waitForSession(session.id);
      assert.equal(failed.status, 'failed');
      assert.equal(failed.planVersion, 0);
      planFails = false;
      const retried = await llm.engine.service.retrySession(ACTOR, session.id, {});
      assert.equal(retried.session.status, 'planning');
      const done = await llm.waitForSession(retried.session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, 'Done');
      assert.equal(done.planVersion, 1);
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('a phase gate that failed decides after the tasks of its phase that run again, on their new outputs', async () => {
    let gateFails = true;
    let sketches = 0;
    llm.server.setHandler((request) => {
      switch (llmRequestKind(request)) {
        case 'plan':
          return {
            object: {
              rationale: 'start',
              phases: [{ name: 'explore', tasks: [plannedTask('sketch', 'architect')] }],
            },
          };
        case 'gate':
          if (gateFails) return { error: 400, message: 'bad request' };
          return { object: { decision: 'complete', reason: 'Objective met.', next_phase: null } };
        case 'synthesis':
          return { text: 'Synthesised answer' };
        default:
          sketches += 1;
          // The retry's sketch answers late: a gate that does not wait for it is called first.
          return { text: `sketch ${sketches}`, ...(sketches > 1 ? { delayMs: 300 } : {}) };
      }
    });
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, {
        objective: 'Sketch and decide',
        strategy: 'adaptive',
      });
      const failed = await llm.waitForSession(session.id);
      assert.equal(failed.status, 'failed');
      assert.deepEqual(
        failed.tasks.map((t) => [t.name, t.status]),
        [
          ['orchestrator:plan', 'succeeded'],
          ['sketch', 'succeeded'],
          ['orchestrator:phase-gate-1', 'failed'],
        ],
      );
      gateFails = false;
      llm.server.requests.length = 0;
      const retried = await llm.engine.service.retrySession(ACTOR, session.id, { rerun: ['sketch'] });
      const done = await llm.waitForSession(retried.session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.deepEqual(kinds(), ['agent:sketch', 'gate:', 'synthesis:'], 'the gate waits for the sketch');
      const gate = llm.server.requests.find((r) => llmRequestKind(r) === 'gate')?.promptText ?? '';
      assert.match(gate, /### sketch \(architect, agent sketch\) — succeeded\n```\nsketch 2/);
      assert.deepEqual(
        done.tasks.map((t) => [t.name, t.status]),
        [
          ['orchestrator:plan', 'succeeded'],
          ['sketch', 'succeeded'],
          ['orchestrator:phase-gate-1', 'succeeded'],
          ['orchestrator:synthesis', 'succeeded'],
        ],
      );
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('a retry in a thread is planned with what its original read: not the original, nor later follow-ups', async () => {
    const failing = new Set(['Retry me']);
    llm.server.setHandler((request) => {
      switch (llmRequestKind(request)) {
        case 'plan':
          if (failing.has(objectiveOf(request.promptText))) return { error: 400, message: 'bad request' };
          return {
            object: {
              rationale: 'one',
              phases: [{ name: 'only', tasks: [plannedTask('write', 'engineer')] }],
            },
          };
        case 'synthesis':
          return { text: 'Done' };
        default:
          return answerByTaskName(request);
      }
    });
    try {
      const submit = async (objective: string) => {
        const { session } = await llm.engine.service.createSession(ACTOR, {
          objective,
          thread_id: 'retry-thread',
        });
        return llm.waitForSession(session.id);
      };
      assert.equal((await submit('Earlier work')).status, 'completed');
      const failed = await submit('Retry me');
      assert.equal(failed.status, 'failed');
      assert.equal((await submit('Later follow-up')).status, 'completed');
      // Retried while its planning still fails, then the retry retried: each plans as the original did.
      llm.server.requests.length = 0;
      const first = await llm.engine.service.retrySession(ACTOR, failed.id, {});
      assert.equal((await llm.waitForSession(first.session.id)).status, 'failed');
      failing.clear();
      const second = await llm.engine.service.retrySession(ACTOR, first.session.id, {});
      assert.equal((await llm.waitForSession(second.session.id)).status, 'completed');
      const plans = llm.server.requests.filter((r) => llmRequestKind(r) === 'plan');
      assert.equal(plans.length, 2);
      for (const { promptText } of plans) {
        assert.equal(objectiveOf(promptText), 'Retry me');
        assert.match(
          promptText,
          /Earlier sessions in this conversation, [^\n]*\n```\n- Earlier objective \(completed\): Earlier work\n/,
        );
        assert.doesNotMatch(promptText, /Earlier objective \(failed\): Retry me/);
        assert.doesNotMatch(promptText, /Later follow-up/);
      }
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('a session that ended waiting for plan approval is not retried (its plan was never approved)', async () => {
    llm.server.setHandler((request) =>
      llmRequestKind(request) === 'plan'
        ? {
            object: {
              rationale: 'one',
              phases: [{ name: 'only', tasks: [plannedTask('write', 'engineer')] }],
            },
          }
        : answerByTaskName(request),
    );
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, {
        objective: 'Needs a look first',
        approval: 'required',
      });
      const waiting = await llm.waitWhilePlanning(session.id);
      assert.equal(waiting.status, 'awaiting_approval');
      await llm.engine.service.cancelSession(ACTOR, session.id);
      await assert.rejects(llm.engine.service.retrySession(ACTOR, session.id, {}), (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'INVALID_STATE');
        assert.match(String((error as Error).message), /ended while its plan waited for approval/);
        return true;
      });
      // Nor when its last status change cannot be read (a hand edit gone wrong): refused, saying so.
      await llm.handle.db
        .updateTable('events')
        .set({ data: '{"from": "awaiting_appr' })
        .where('session_id', '=', session.id)
        .where('type', '=', 'session.status')
        .execute();
      await assert.rejects(llm.engine.service.retrySession(ACTOR, session.id, {}), (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'INVALID_STATE');
        assert.match(String((error as Error).message), /its last status change cannot be read/);
        return true;
      });
      // Once retention (eventsDays) has removed its events, how it ended cannot be told: refused too.
      await llm.handle.db.deleteFrom('events').where('session_id', '=', session.id).execute();
      await assert.rejects(llm.engine.service.retrySession(ACTOR, session.id, {}), (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'INVALID_STATE');
        assert.match(String((error as Error).message), /its events were removed by retention/);
        return true;
      });
      const listed = await llm.engine.service.listSessions(ACTOR, { limit: 100 });
      assert.equal(listed.items.filter((s) => s.retryOf === session.id).length, 0);
    } finally {
      llm.server.setHandler(undefined);
    }
  });
});

/** The task an agent request is for (empty for the orchestrator's own calls). */
function taskOf(request: RecordedLlmRequest): string {
  if (llmRequestKind(request) !== 'agent') return '';
  return /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? '';
}

/** The objective a planning prompt is for. */
function objectiveOf(promptText: string): string {
  return /^Objective:\n(.*)$/m.exec(promptText)?.[1] ?? '';
}
