// The orchestrator planner against the scripted LLM server through the real AI SDK providers:
// structured plans, repair of invalid plans, clean failure, phase gates, synthesis.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { createLlmClient } from '../../src/agents/providers/llm-client.ts';
import { BUILT_IN_ROLES } from '../../src/agents/roles/catalogue.ts';
import { llmConfigSchema, providersConfigSchema } from '../../src/config/llm-schema.ts';
import { createLlmPlanner, type LlmPlanner } from '../../src/engine/planner.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

function task(name: string, role: string, dependsOn: string[] = [], agent: string | null = null) {
  return {
    name,
    role,
    instructions: `Do ${name}`,
    depends_on: dependsOn,
    deliverables: [`${name} notes`],
    agent,
  };
}

const goodPlan = {
  rationale: 'Design first, then build and test in parallel.',
  phases: [
    { name: 'design', tasks: [task('design-api', 'architect')] },
    {
      name: 'build',
      tasks: [task('build-api', 'backend_engineer'), task('write-tests', 'tester', ['build-api'])],
    },
  ],
};

function makePlanner(
  server: ScriptedLlmServer,
  type: 'openai-compatible' | 'anthropic',
  maxRepairs = 2,
  structuredOutputs = true,
): LlmPlanner {
  const providers = providersConfigSchema.parse({
    orch: {
      type,
      model: 'orchestrator-model',
      apiKey: 'k',
      baseURL: type === 'anthropic' ? server.anthropicBaseURL : server.openaiBaseURL,
      structuredOutputs,
    },
  });
  const llm = llmConfigSchema.parse({
    retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    planner: { maxRepairs, maxPhases: 3, maxTasksPerPhase: 5, maxAgentsPerRole: 2 },
    prices: { 'orchestrator-model': { inputPerMTok: 1, outputPerMTok: 2 } },
  });
  const client = createLlmClient({ providers, llm, logger: pino({ level: 'silent' }) });
  return createLlmPlanner({ client, listRoles: () => BUILT_IN_ROLES, limits: llm.planner });
}

describe('LLM planner against the scripted LLM server', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer();
  });
  after(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.requests.length = 0;
  });

  for (const type of ['openai-compatible', 'anthropic'] as const) {
    test(`turns an objective into a validated plan (${type})`, async () => {
      server.enqueue({ object: goodPlan, usage: { inputTokens: 1000, outputTokens: 200 } });
      const result = await makePlanner(server, type).createPlan({
        tenantId: 't',
        sessionId: 's',
        objective: 'Build a blog API',
        adaptive: false,
      });
      assert.equal(result.rounds, 1);
      assert.equal(result.rationale, goodPlan.rationale);
      assert.deepEqual(
        result.plan.phases.map((phase) => phase.tasks.map((t) => [t.name, t.role, t.dependsOn])),
        [
          [['design-api', 'architect', []]],
          [
            ['build-api', 'backend_engineer', ['design-api']],
            ['write-tests', 'tester', ['design-api', 'build-api']],
          ],
        ],
      );
      assert.equal(result.usage.inputTokens, 1000);
      assert.equal(result.usage.costUsd, 0.0014);
      const prompt = server.requests[0]?.promptText ?? '';
      assert.match(prompt, /Build a blog API/);
      assert.match(prompt, /- data_scientist: /);
    });
  }

  test('a planning round whose server reports no usage is charged the estimate, as a streamed call is', async () => {
    server.enqueue({ object: goodPlan, withoutUsage: true });
    const result = await makePlanner(server, 'openai-compatible').createPlan({
      tenantId: 't',
      sessionId: 's',
      objective: 'Build a blog API',
      adaptive: false,
    });
    // 4 characters per token of the prompt (system prompt and messages) and of the answer.
    const request = server.requests[0]!;
    const messages = request.body.messages as Array<{ content: string }>;
    const promptChars = messages.reduce((sum, message) => sum + message.content.length, 0);
    assert.equal(result.usage.inputTokens, Math.ceil(promptChars / 4));
    assert.equal(result.usage.outputTokens, Math.ceil(JSON.stringify(goodPlan).length / 4));
    assert.ok(result.usage.costUsd > 0, 'priced like a reported usage');
  });

  test('an invalid plan is repaired by re-asking with the errors', async () => {
    const invalid = {
      rationale: 'x',
      phases: [
        {
          name: 'p',
          tasks: [task('a', 'wizard'), task('b', 'engineer', ['c']), task('c', 'engineer', ['b'])],
        },
      ],
    };
    server.enqueue({ object: invalid }, { object: goodPlan });
    const result = await makePlanner(server, 'openai-compatible').createPlan({
      tenantId: 't',
      sessionId: 's',
      objective: 'o',
      adaptive: false,
    });
    assert.equal(result.rounds, 2);
    assert.equal(result.plan.phases.length, 2);
    const repair = server.requests[1]?.promptText ?? '';
    assert.match(repair, /not a valid plan/);
    assert.match(repair, /unknown role "wizard"/);
    assert.match(repair, /dependency cycle between tasks: b, c/);
  });

  test('an answer that does not match the schema is repaired too', async () => {
    server.enqueue({ text: '{"phases": "soon"}' }, { object: goodPlan });
    const result = await makePlanner(server, 'openai-compatible').createPlan({
      tenantId: 't',
      sessionId: 's',
      objective: 'o',
      adaptive: false,
    });
    assert.equal(result.rounds, 2);
    assert.match(server.requests[1]?.promptText ?? '', /phases: /);
  });

  test('a plan that stays invalid fails cleanly with the reasons', async () => {
    const overCap = {
      rationale: 'x',
      phases: [{ name: 'p', tasks: [task('a', 'qa'), task('b', 'qa'), task('c', 'qa')] }],
    };
    server.enqueue({ object: overCap }, { object: overCap });
    const error = await makePlanner(server, 'openai-compatible', 1)
      .createPlan({ tenantId: 't', sessionId: 's', objective: 'o', adaptive: false })
      .catch((e: unknown) => e);
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'INVALID_PLAN');
    assert.match(
      error.message,
      /did not produce a valid plan after 2 attempt\(s\): role "qa" would have 3 agents; at most 2/,
    );
    assert.equal(server.requests.length, 2);
  });

  test('adaptive planning asks for exactly one phase', async () => {
    server.enqueue({ object: goodPlan }, { object: { rationale: 'r', phases: [goodPlan.phases[0]] } });
    const result = await makePlanner(server, 'openai-compatible').createPlan({
      tenantId: 't',
      sessionId: 's',
      objective: 'o',
      adaptive: true,
    });
    assert.equal(result.rounds, 2);
    assert.equal(result.plan.phases.length, 1);
    assert.match(server.requests[0]?.promptText ?? '', /Plan ONLY the first phase/);
    assert.match(server.requests[1]?.promptText ?? '', /plan exactly one phase \(got 2\)/);
  });

  test('a phase gate continues with a phase that reuses an agent, then completes', async () => {
    const planner = makePlanner(server, 'openai-compatible');
    const outputs = [
      {
        name: 'design-api',
        role: 'architect',
        agent: 'design-api',
        status: 'succeeded',
        output: 'REST with JWT',
      },
    ];
    server.enqueue({
      object: {
        decision: 'continue',
        reason: 'Design done; build next.',
        next_phase: {
          name: 'refine',
          tasks: [task('refine-design', 'architect', [], 'design-api'), task('build', 'engineer')],
        },
      },
    });
    const gate = await planner.decidePhaseGate({
      tenantId: 't',
      sessionId: 's',
      objective: 'o',
      phasesDone: 1,
      outputs,
      agents: [{ name: 'design-api', role: 'architect' }],
      previousPhaseSinks: ['design-api'],
      userMessages: ['Use PostgreSQL'],
    });
    assert.equal(gate.decision, 'continue');
    assert.ok(gate.decision === 'continue');
    assert.deepEqual(
      gate.phase.tasks.map((t) => [t.name, t.dependsOn, (t as { agent?: string }).agent]),
      [
        ['refine-design', ['design-api'], 'design-api'],
        ['build', ['design-api'], undefined],
      ],
    );
    const prompt = server.requests[0]?.promptText ?? '';
    assert.match(prompt, /REST with JWT/);
    assert.match(prompt, /- design-api \(architect\)/);
    assert.match(prompt, /Use PostgreSQL/);

    server.enqueue({ object: { decision: 'complete', reason: 'All done.', next_phase: null } });
    const done = await planner.decidePhaseGate({
      tenantId: 't',
      sessionId: 's',
      objective: 'o',
      phasesDone: 2,
      outputs,
      agents: [],
      previousPhaseSinks: [],
    });
    assert.deepEqual([done.decision, done.reason], ['complete', 'All done.']);
  });

  test('the phase limit ends the session without asking', async () => {
    const result = await makePlanner(server, 'openai-compatible').decidePhaseGate({
      tenantId: 't',
      sessionId: 's',
      objective: 'o',
      phasesDone: 3,
      outputs: [],
      agents: [],
      previousPhaseSinks: [],
    });
    assert.equal(result.decision, 'complete');
    assert.equal(server.requests.length, 0);
  });

  test('synthesis streams one answer from the outputs', async () => {
    server.enqueue({
      text: '# Result\nThe API is designed and built.',
      chunkSize: 6,
      usage: { inputTokens: 50, outputTokens: 10 },
    });
    const chunks: string[] = [];
    const result = await makePlanner(server, 'anthropic').synthesize({
      tenantId: 't',
      objective: 'Build a blog API',
      outputs: [
        { name: 'design', role: 'architect', status: 'succeeded', output: 'Design text' },
        { name: 'build', role: 'engineer', status: 'succeeded', output: 'Code text' },
      ],
      emitOutput: (chunk) => chunks.push(chunk),
    });
    assert.equal(result.result, '# Result\nThe API is designed and built.');
    assert.equal(chunks.join(''), result.result);
    assert.ok(chunks.length > 1);
    assert.equal(result.usage.outputTokens, 10);
    const prompt = server.requests[0]?.promptText ?? '';
    assert.match(prompt, /### design \(architect\) — succeeded\n```\nDesign text\n```/);
    assert.match(prompt, /Write ONE answer for the user/);
  });

  test('planInitial (what the planning task runs) returns the marked plan and the usage of every round', async () => {
    server.enqueue({ object: { ...goodPlan, phases: [] }, usage: { inputTokens: 300, outputTokens: 20 } });
    server.enqueue({ object: goodPlan, usage: { inputTokens: 500, outputTokens: 90 } });
    const { plan, usage, rounds } = await makePlanner(server, 'openai-compatible').planInitial({
      tenantId: 't',
      sessionId: 's',
      objective: 'o',
      adaptive: false,
      userMessages: ['keep it small'],
    });
    assert.equal(plan.phases.length, 2);
    assert.equal((plan as { origin?: string }).origin, 'orchestrator');
    assert.equal(rounds, 2);
    const first = server.requests[0]!;
    assert.match(first.promptText, /keep it small/);
    assert.equal(server.requests.length, 2);
    // Both rounds, the refused one included.
    assert.equal(usage.inputTokens, 300 + 500);
    assert.equal(usage.outputTokens, 20 + 90);
  });

  test('servers without JSON-schema support get JSON mode with the schema in the prompt', async () => {
    server.enqueue({ object: goodPlan });
    const result = await makePlanner(server, 'openai-compatible', 2, false).createPlan({
      tenantId: 't',
      sessionId: 's',
      objective: 'o',
      adaptive: false,
    });
    assert.equal(result.plan.phases.length, 2);
    assert.deepEqual(server.requests[0]?.body.response_format, { type: 'json_object' });
  });
});
