// Orchestrated sessions end to end on the real engine: adaptive phases with two phase gates and agent
// reuse, then synthesis; a planned session's synthesis as its result. Scripted LLM server, SQLite.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ACTOR, answerByTaskName, type LlmEngine, startLlmEngine } from '../fixtures/llm-engine.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

describe('orchestrated sessions on the engine', { timeout: 60_000 }, () => {
  let llm: LlmEngine;
  before(async () => {
    llm = await startLlmEngine({
      model: 'm',
      continueSessions: true,
      llm: { agentMessaging: false, retry: { maxAttempts: 1 }, planner: { maxPhases: 4 } },
    });
  });
  after(() => llm.close());

  test('adaptive: two phase gates, agent reuse with history, synthesis as the result', async () => {
    llm.server.requests.length = 0;
    let gates = 0;
    llm.server.setHandler((request) => {
      switch (llmRequestKind(request)) {
        case 'plan':
          return {
            object: {
              rationale: 'start',
              phases: [
                {
                  name: 'explore',
                  tasks: [plannedTask('survey', 'researcher'), plannedTask('sketch', 'architect')],
                },
              ],
            },
          };
        case 'gate':
          gates += 1;
          if (gates === 1) {
            return {
              object: {
                decision: 'continue',
                reason: 'Refine the sketch and build.',
                next_phase: {
                  name: 'build',
                  tasks: [
                    plannedTask('refine', 'architect', { agent: 'sketch' }),
                    plannedTask('build', 'engineer', { dependsOn: ['refine'] }),
                  ],
                },
              },
            };
          }
          return { object: { decision: 'complete', reason: 'Objective met.', next_phase: null } };
        case 'synthesis':
          return { text: 'Synthesised answer', usage: { inputTokens: 50, outputTokens: 5 } };
        default:
          return answerByTaskName(request);
      }
    });
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, {
        objective: 'Design and build a service',
        strategy: 'adaptive',
      });
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, 'Synthesised answer');
      assert.deepEqual(
        done.tasks.map((t) => [t.kind, t.name, t.status]),
        [
          ['plan', 'orchestrator:plan', 'succeeded'],
          ['agent', 'survey', 'succeeded'],
          ['agent', 'sketch', 'succeeded'],
          ['plan', 'orchestrator:phase-gate-1', 'succeeded'],
          ['agent', 'refine', 'succeeded'],
          ['agent', 'build', 'succeeded'],
          ['plan', 'orchestrator:phase-gate-2', 'succeeded'],
          ['synthesize', 'orchestrator:synthesis', 'succeeded'],
        ],
      );
      const byName = new Map(done.tasks.map((t) => [t.name, t]));
      assert.equal(byName.get('refine')?.agentId, byName.get('sketch')?.agentId);
      // Usage per agent: the reused agent's two tasks are summed.
      assert.deepEqual(
        done.agents.map((agent) => [agent.name, agent.role]),
        [
          ['survey', 'researcher'],
          ['sketch', 'architect'],
          ['build', 'engineer'],
        ],
      );
      const sketchAgent = done.agents.find((agent) => agent.name === 'sketch');
      const tokensOf = (name: string) => byName.get(name)?.usage.inputTokens ?? 0;
      assert.equal(sketchAgent?.id, byName.get('sketch')?.agentId);
      assert.ok(tokensOf('refine') > 0);
      assert.equal(sketchAgent?.usage.inputTokens, tokensOf('sketch') + tokensOf('refine'));
      const refinePrompt = llm.server.requests.find((r) => r.promptText.includes('Your task (refine)'));
      const messages = (refinePrompt?.body.messages ?? []) as Array<{ role: string; content: string }>;
      assert.deepEqual(
        messages.map((m) => m.role),
        ['system', 'user', 'assistant', 'user'],
        'the reused agent sees its earlier turn',
      );
      assert.equal(messages[2]?.content, 'output of sketch');
      const gate2 = llm.server.requests.filter((r) => llmRequestKind(r) === 'gate')[1]?.promptText ?? '';
      assert.match(gate2, /### build \(engineer, agent build\) — succeeded\n```\noutput of build/);
      assert.equal(done.usage.outputTokens > 0, true);
      assert.equal(done.plan?.phases.length, 2);
      assert.equal(done.planVersion, 2);
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('a planned (non-adaptive) session ends with the synthesis as its result', async () => {
    try {
      // The first plan uses an unknown role and is repaired by a second call of the planning task.
      let round = 0;
      llm.server.setHandler((request) => {
        const kind = llmRequestKind(request);
        if (kind === 'plan') {
          round += 1;
          return round === 1
            ? { object: { rationale: 'r', phases: [{ name: 'only', tasks: [plannedTask('a', 'wizard')] }] } }
            : {
                object: {
                  rationale: 'r',
                  phases: [
                    { name: 'only', tasks: [plannedTask('a', 'analyst'), plannedTask('b', 'documenter')] },
                  ],
                },
              };
        }
        if (kind === 'synthesis') return { text: 'One answer' };
        return answerByTaskName(request);
      });
      const { session } = await llm.engine.service.createSession(ACTOR, {
        objective: 'Analyse and document',
      });
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, 'One answer');
      assert.equal(round, 2);
      const synthesis = done.tasks.at(-1);
      assert.equal(synthesis?.kind, 'synthesize');
      assert.deepEqual([...(synthesis?.dependsOn ?? [])].sort(), ['a', 'b', 'orchestrator:plan']);
    } finally {
      llm.server.setHandler(undefined);
    }
  });
});
