// Objective-only sessions end to end: the real engine on SQLite, the LLM stack (planner + AI SDK
// runtime) and the scripted LLM server. Planning task → parallel and pipeline execution → result;
// planning usage, a plan that stays invalid, a budget crossed by planning, cancel while planning.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { INITIAL_PLAN_TASK_NAME } from '../../src/engine/planner-continuation.ts';
import {
  createOrchestratorRuntime,
  parsePhaseGateOutput,
  runPhaseGateTask,
  runSynthesisTask,
} from '../../src/engine/planner-tasks.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ACTOR, answerByTaskName, type LlmEngine, startLlmEngine } from '../fixtures/llm-engine.ts';
import type { RecordedLlmRequest } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { SCOUT_WRITER_PLAN } from '../fixtures/scout-writer.ts';
import { waitFor } from '../fixtures/wait-for.ts';

const plan = {
  rationale: 'Design, then API and docs in parallel, then review.',
  phases: [
    { name: 'design', tasks: [plannedTask('design', 'architect')] },
    { name: 'build', tasks: [plannedTask('api', 'backend_engineer'), plannedTask('docs', 'documenter')] },
    { name: 'check', tasks: [plannedTask('review', 'reviewer', { dependsOn: ['api', 'docs'] })] },
  ],
};

function isPlanRequest(request: RecordedLlmRequest): boolean {
  return request.body.response_format !== undefined;
}

describe('objective-only sessions through the LLM stack', { timeout: 60_000 }, () => {
  let llm: LlmEngine;
  const sentMessages: Array<{ toAgentId: string; body: string }> = [];

  before(async () => {
    llm = await startLlmEngine({
      apiKey: 'k',
      llm: {
        retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
        planner: { maxRepairs: 1 },
        prices: { 'local-model': { inputPerMTok: 10, outputPerMTok: 100 } },
      },
      onAgentMessage: (message) => sentMessages.push({ toAgentId: message.toAgentId, body: message.body }),
    });
  });
  after(() => llm.close());

  test('plans the objective, runs the phases in order with outputs passed on, and completes', async () => {
    llm.server.requests.length = 0;
    llm.server.setHandler((request) =>
      isPlanRequest(request) ? { object: plan } : answerByTaskName(request),
    );
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, {
        objective: 'Build a blog API with docs',
      });
      assert.equal(session.status, 'planning');
      assert.equal(session.plan, null);
      assert.deepEqual(
        session.tasks.map((t) => [t.kind, t.name]),
        [['plan', INITIAL_PLAN_TASK_NAME]],
      );
      const planned = await llm.waitWhilePlanning(session.id);
      assert.equal(planned.planVersion, 1);
      assert.deepEqual(
        planned.tasks.map((t) => [t.name, t.role]),
        [
          [INITIAL_PLAN_TASK_NAME, 'orchestrator'],
          ['design', 'architect'],
          ['api', 'backend_engineer'],
          ['docs', 'documenter'],
          ['review', 'reviewer'],
        ],
      );
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, 'output of review', 'the plan is not part of the result');
      const byName = new Map(done.tasks.map((t) => [t.name, t]));
      assert.ok((byName.get('api')?.startedAt ?? 0) >= (byName.get('design')?.finishedAt ?? Infinity));
      assert.ok((byName.get('review')?.startedAt ?? 0) >= (byName.get('docs')?.finishedAt ?? Infinity));
      assert.deepEqual(byName.get('api')?.usage, {
        inputTokens: 100,
        outputTokens: 10,
        cacheReadTokens: 0,
        costUsd: 0.002,
      });
      const reviewPrompt =
        llm.server.requests.find((r) => r.promptText.includes('Your task (review)'))?.promptText ?? '';
      assert.match(reviewPrompt, /### api \(backend_engineer\)\n```\noutput of api/);
      assert.match(reviewPrompt, /### docs \(documenter\)\n```\noutput of docs/);
      assert.doesNotMatch(
        llm.server.requests.find((r) => r.promptText.includes('Your task (design)'))?.promptText ?? '',
        /orchestrator:plan/,
        'the plan is no dependency output of the first tasks',
      );
      const apiPrompt = llm.server.requests.find((r) => r.promptText.includes('Your task (api)'));
      assert.match(
        String((apiPrompt?.body.messages as Array<{ content: string }> | undefined)?.[0]?.content),
        /backend engineer/,
      );
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('planning usage, a repair round included, counts on the planning task and the session', async () => {
    let planCalls = 0;
    llm.server.setHandler((request) => {
      if (!isPlanRequest(request)) return answerByTaskName(request);
      planCalls += 1;
      const usage = { inputTokens: 1000, outputTokens: 200 };
      return planCalls === 1
        ? { object: { rationale: 'x', phases: [{ name: 'p', tasks: [plannedTask('a', 'wizard')] }] }, usage }
        : {
            object: { rationale: 'r', phases: [{ name: 'p', tasks: [plannedTask('solo', 'analyst')] }] },
            usage,
          };
    });
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, { objective: 'Count me' });
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(planCalls, 2);
      const planning = done.tasks.find((t) => t.name === INITIAL_PLAN_TASK_NAME);
      // 2 × (1000 in at $10/MTok + 200 out at $100/MTok).
      assert.deepEqual(planning?.usage, {
        inputTokens: 2000,
        outputTokens: 400,
        cacheReadTokens: 0,
        costUsd: 0.06,
      });
      const solo = done.tasks.find((t) => t.name === 'solo');
      assert.equal(done.usage.inputTokens, 2000 + (solo?.usage.inputTokens ?? 0));
      assert.equal(done.usage.outputTokens, 400 + (solo?.usage.outputTokens ?? 0));
      assert.ok(Math.abs(done.usage.costUsd - (0.06 + (solo?.usage.costUsd ?? 0))) < 1e-9);
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('a plan that stays invalid ends the session failed with INVALID_PLAN and the reasons', async () => {
    llm.server.requests.length = 0;
    llm.server.setHandler(() => ({
      object: { rationale: 'x', phases: [{ name: 'p', tasks: [plannedTask('a', 'wizard')] }] },
      usage: { inputTokens: 1000, outputTokens: 100 },
    }));
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, { objective: 'Anything' });
      assert.equal(session.status, 'planning');
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'failed');
      // The session's error leads with the code, as documented (not "task orchestrator:plan failed: …").
      assert.match(
        done.error ?? '',
        /^INVALID_PLAN: .*after 2 attempt\(s\): task "a": unknown role "wizard"/,
      );
      const planning = done.tasks.find((t) => t.name === INITIAL_PLAN_TASK_NAME);
      assert.equal(planning?.status, 'failed');
      assert.match(planning?.error ?? '', /^INVALID_PLAN: /);
      assert.equal(done.plan, null);
      assert.equal(done.tasks.length, 1, 'no agent task was created');
      assert.equal(llm.server.requests.length, 2);
      // Both rounds are charged to the failed plan task and the session ($10 / $100 per MTok).
      const spent = { inputTokens: 2000, outputTokens: 200, cacheReadTokens: 0, costUsd: 0.04 };
      assert.deepEqual(planning?.usage, spent);
      assert.deepEqual(done.usage, spent);
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('a token budget below the planning call ends the session BUDGET_EXCEEDED before any agent', async () => {
    llm.server.requests.length = 0;
    llm.server.setHandler((request) =>
      isPlanRequest(request)
        ? {
            object: { rationale: 'r', phases: [{ name: 'p', tasks: [plannedTask('solo', 'analyst')] }] },
            usage: { inputTokens: 1000, outputTokens: 200 },
          }
        : answerByTaskName(request),
    );
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, {
        objective: 'Too dear',
        budget: { maxTokens: 500 },
      });
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'failed');
      assert.match(done.error ?? '', /^BUDGET_EXCEEDED: token budget exceeded: 1200 of 500 tokens/);
      assert.deepEqual(
        done.tasks.map((t) => [t.name, t.status]),
        [[INITIAL_PLAN_TASK_NAME, 'succeeded']],
      );
      assert.equal(done.usage.inputTokens + done.usage.outputTokens, 1200);
      assert.equal(llm.server.requests.filter((r) => !isPlanRequest(r)).length, 0, 'no agent ran');
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('cancelling a session while it plans aborts the orchestrator call', async () => {
    llm.server.requests.length = 0;
    llm.server.setHandler(() => ({ hang: true }));
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, { objective: 'Never mind' });
      for (let i = 0; i < 400 && llm.server.requests.length === 0; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(llm.server.requests.length, 1, 'the planning call is under way');
      const cancelled = await llm.engine.service.cancelSession(ACTOR, session.id);
      assert.equal(cancelled.status, 'cancelled');
      assert.deepEqual(
        cancelled.tasks.map((t) => [t.name, t.status]),
        [[INITIAL_PLAN_TASK_NAME, 'cancelled']],
      );
      // The orchestrator's call is aborted: the client closes the hanging response.
      for (let i = 0; i < 400 && llm.server.openResponses() > 0; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(llm.server.openResponses(), 0, 'the planning call was aborted');
      const after = await llm.engine.service.getSession(ACTOR, session.id);
      assert.equal(after.status, 'cancelled');
      assert.equal(llm.server.requests.length, 1, 'no retry after the cancel');
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('planning cancelled in its repair round is charged the round it finished, recorded while it ran', async () => {
    let planCalls = 0;
    llm.server.setHandler(() => {
      planCalls += 1;
      return planCalls === 1
        ? {
            object: { rationale: 'x', phases: [{ name: 'p', tasks: [plannedTask('a', 'wizard')] }] },
            usage: { inputTokens: 1000, outputTokens: 200 },
          }
        : { hang: true };
    });
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, { objective: 'Cancel me' });
      // The first round's spend is on the task while the repair round hangs (a killed server's
      // reaper would charge it from there). Both are awaited: the record is written at the next
      // output flush, which on a busy machine can come before the repair round's request arrives.
      await waitFor(
        async () => {
          if (planCalls < 2) return undefined;
          const row = await llm.handle.db
            .selectFrom('tasks')
            .select('unsettled_usage')
            .where('session_id', '=', session.id)
            .executeTakeFirst();
          return row?.unsettled_usage ? true : undefined;
        },
        10_000,
        "the repair round, with the first round's spend on record",
      );
      assert.equal(planCalls, 2, 'the repair round is under way');
      await llm.engine.service.cancelSession(ACTOR, session.id);
      let planning: { usage: { inputTokens: number; outputTokens: number; costUsd: number } } | undefined;
      for (let i = 0; i < 400; i += 1) {
        const detail = await llm.engine.service.getSession(ACTOR, session.id);
        planning = detail.tasks.find((t) => t.name === INITIAL_PLAN_TASK_NAME);
        if ((planning?.usage.costUsd ?? 0) > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // The aborted round reports nothing; the finished one is charged: 1000 in, 200 out.
      assert.equal(planning?.usage.inputTokens, 1000);
      assert.equal(planning?.usage.outputTokens, 200);
      assert.ok(Math.abs((planning?.usage.costUsd ?? 0) - 0.03) < 1e-9);
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('a rejected API key fails the task and the session with a clear reason', async () => {
    llm.server.setHandler((request) => {
      if (!isPlanRequest(request)) return answerByTaskName(request);
      // Rotated once the plan is asked for: the agent's call is the first one refused.
      llm.server.setApiKey('rotated');
      return { object: { rationale: 'r', phases: [{ name: 'p', tasks: [plannedTask('solo', 'analyst')] }] } };
    });
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, { objective: 'Analyse' });
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'failed');
      assert.match(
        done.error ?? '',
        /task solo failed: provider 'local' \(model local-model\) rejected the credentials \(HTTP 401\)/,
      );
      assert.doesNotMatch(done.error ?? '', /\n\s+at /);
    } finally {
      llm.server.setApiKey('k');
      llm.server.setHandler(undefined);
    }
  });

  test('the planner offers and accepts custom roles of the tenant', async () => {
    await llm.stack.roles.createRole(ACTOR.tenantId, 'test', {
      name: 'legal_reviewer',
      description: 'Reviews contracts and terms for legal risk.',
      instructions: 'You are a legal reviewer. Goal: find legal risks in the material and propose fixes.',
    });
    llm.server.requests.length = 0;
    llm.server.setHandler((request) =>
      isPlanRequest(request)
        ? {
            object: {
              rationale: 'r',
              phases: [{ name: 'p', tasks: [plannedTask('terms', 'legal_reviewer')] }],
            },
          }
        : answerByTaskName(request),
    );
    try {
      const planned = await llm.stack.planner.createPlan({
        tenantId: ACTOR.tenantId,
        sessionId: 'x',
        objective: 'Review our terms',
        adaptive: false,
      });
      assert.equal(planned.plan.phases[0]?.tasks[0]?.role, 'legal_reviewer');
      assert.match(llm.server.requests[0]?.promptText ?? '', /- legal_reviewer: Reviews contracts/);
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('an agent messages another agent; the message reaches the recipient in its turn', async () => {
    llm.server.requests.length = 0;
    llm.server.setHandler((request) => {
      if (isPlanRequest(request)) return { object: SCOUT_WRITER_PLAN };
      if (
        request.promptText.includes('Your task (scout)') &&
        !request.promptText.includes('Message delivered')
      ) {
        assert.ok(request.toolNames.includes('send_message'));
        return {
          toolCalls: [{ name: 'send_message', input: { to: 'writer', message: 'Mention the rate limits' } }],
        };
      }
      return answerByTaskName(request);
    });
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, { objective: 'Research and write' });
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
      const writer = done.tasks.find((t) => t.name === 'writer');
      assert.deepEqual(sentMessages, [{ toAgentId: writer?.agentId, body: 'Mention the rate limits' }]);
      const writerPrompt =
        llm.server.requests.find((r) => r.promptText.includes('Your task (writer)'))?.promptText ?? '';
      assert.match(writerPrompt, /## Messages from other agents\n\n- from scout: Mention the rate limits/);
    } finally {
      llm.server.setHandler(undefined);
    }
  });

  test('phase gate and synthesis tasks see the session outputs, agents and steering messages', async () => {
    const onePhase = {
      rationale: 'r',
      phases: [
        { name: 'first', tasks: [plannedTask('survey', 'researcher'), plannedTask('sketch', 'architect')] },
      ],
    };
    llm.server.setHandler((request) =>
      isPlanRequest(request) ? { object: onePhase } : answerByTaskName(request),
    );
    let sessionId = '';
    try {
      const { session } = await llm.engine.service.createSession(ACTOR, { objective: 'Adaptive objective' });
      sessionId = session.id;
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
    } finally {
      llm.server.setHandler(undefined);
    }
    await llm.handle.db
      .insertInto('messages')
      .values({
        id: 'm-user-1',
        tenant_id: ACTOR.tenantId,
        session_id: sessionId,
        from_agent_id: null,
        to_agent_id: null,
        body: 'Prefer SQLite',
        created_at: Date.now(),
      })
      .execute();
    const ref = { tenantId: ACTOR.tenantId, sessionId, taskId: 'gate-1' };
    llm.server.requests.length = 0;
    llm.server.enqueue({
      object: {
        decision: 'continue',
        reason: 'Build next',
        next_phase: {
          name: 'second',
          tasks: [
            {
              name: 'refine',
              role: 'architect',
              instructions: 'Refine',
              depends_on: [],
              deliverables: [],
              agent: 'sketch',
            },
          ],
        },
      },
    });
    const gate = await runPhaseGateTask(llm.stack.planner, llm.handle.db, ref, {
      signal: new AbortController().signal,
    });
    const decision = parsePhaseGateOutput(gate.output);
    assert.equal(decision.decision, 'continue');
    assert.ok(decision.decision === 'continue');
    assert.deepEqual(decision.phase.tasks[0]?.dependsOn, ['survey', 'sketch']);
    const gatePrompt = llm.server.requests[0]?.promptText ?? '';
    assert.match(gatePrompt, /Phase 1 of at most 5 has finished/);
    assert.match(gatePrompt, /### survey \(researcher, agent survey\) — succeeded\n```\noutput of survey/);
    assert.match(gatePrompt, /- sketch \(architect\)/);
    assert.match(gatePrompt, /Prefer SQLite/);

    llm.server.enqueue({ text: 'Final answer for the user', chunkSize: 5 });
    const chunks: string[] = [];
    const spent: number[] = [];
    const synthesis = await runSynthesisTask(llm.stack.planner, llm.handle.db, ref, {
      signal: new AbortController().signal,
      emitOutput: (_stream, chunk) => chunks.push(chunk),
      reportSpend: (usage) => spent.push(usage.outputTokens),
    });
    assert.equal(synthesis.output, 'Final answer for the user');
    assert.equal(chunks.join(''), 'Final answer for the user');
    // What it streamed is reported as it goes (kept on the task for a killed server's reaper).
    assert.equal(spent.length, chunks.length);
    assert.deepEqual(
      spent,
      [...spent].sort((a, b) => a - b),
      'the estimate only grows',
    );
    assert.equal(spent.at(-1), Math.ceil('Final answer for the user'.length / 4));
    assert.match(
      llm.server.requests[1]?.promptText ?? '',
      /### sketch \(architect, agent sketch\) — succeeded\n```\noutput of sketch/,
    );
  });

  test('the orchestrator runtime dispatches plan and synthesize tasks by kind', async () => {
    const { session } = await llm.engine.service.createSession(ACTOR, {
      objective: 'Explicit',
      agents: [{ name: 'only', role: 'analyst', task: 'Analyse' }],
    });
    llm.server.setHandler(answerByTaskName);
    try {
      const done = await llm.waitForSession(session.id);
      assert.equal(done.status, 'completed', done.error ?? '');
    } finally {
      llm.server.setHandler(undefined);
    }
    const runtime = createOrchestratorRuntime(llm.stack.planner, llm.handle.db);
    const base = {
      sessionId: session.id,
      tenantId: ACTOR.tenantId,
      objective: 'Explicit',
      taskId: 'orchestrator-task',
      name: 'synthesis',
      role: 'orchestrator',
      instructions: '',
      runner: null,
      agentId: null,
      attempt: 1,
      dependencies: [],
    };
    const ctx = {
      signal: new AbortController().signal,
      logger: createLogger({ level: 'silent' }),
      emitOutput: () => {},
    };
    llm.server.enqueue(
      { text: 'synthesised' },
      { object: { decision: 'complete', reason: 'done', next_phase: null } },
    );
    const synthesis = await runtime.run(
      { ...base, kind: 'synthesize' } as Parameters<typeof runtime.run>[0],
      ctx,
    );
    assert.equal(synthesis.output, 'synthesised');
    const gate = await runtime.run({ ...base, kind: 'plan' } as Parameters<typeof runtime.run>[0], ctx);
    assert.deepEqual(parsePhaseGateOutput(gate.output), { decision: 'complete', reason: 'done' });
    await assert.rejects(
      runtime.run({ ...base, kind: 'agent' } as Parameters<typeof runtime.run>[0], ctx),
      /cannot run tasks of kind 'agent'/,
    );
  });
});
