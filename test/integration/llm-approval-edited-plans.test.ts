// A plan edited at approval is checked and built like a generated one: the per-phase task limit and
// the phase order of dependencies are enforced (400 problem+json), a later phase waits for the
// earlier one, and at an adaptive phase gate an edit keeps the agent a task reuses (its history).
// The real app over HTTP with the scripted LLM server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { readAllEvents, requestJson, waitForSession } from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; status: string; agentId: string | null; dependsOn: string[] }>;
  agents: Array<{ id: string; name: string; role: string }>;
}

interface TaskStatusEvent {
  seq: number;
  type: string;
  data: { name?: string; to?: string };
}

/** Agent tasks answer "output of <name>"; the synthesis answers "Final". */
function answerAgent(request: RecordedLlmRequest): ScriptedReply {
  if (llmRequestKind(request) === 'synthesis') return { text: 'Final' };
  const name = /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown';
  return { text: `output of ${name}` };
}

/** Creates a session that needs approval and waits until its first plan waits for it. */
async function createAwaiting(url: string, body: Record<string, unknown> = {}): Promise<string> {
  const created = await requestJson<{ id: string }>(`${url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Document the API', approval: 'required', ...body },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const waiting = await waitForSession<SessionView>(url, created.body.id, (s) => s.status !== 'planning');
  assert.equal(waiting.status, 'awaiting_approval', waiting.error ?? '');
  return created.body.id;
}

/** A refused edit changes nothing: the session still waits on the generated plan (version 1). */
async function assertStillWaiting(url: string, id: string): Promise<void> {
  const after = await requestJson<SessionView & { planVersion: number }>(`${url}/v1/sessions/${id}`);
  assert.equal(after.body.status, 'awaiting_approval');
  assert.equal(after.body.planVersion, 1);
}

const onePhasePlan: ScriptedReply = {
  object: { rationale: 'r', phases: [{ name: 'main', tasks: [plannedTask('research', 'researcher')] }] },
};

test('an edited plan over the per-phase task limit is a 400 INVALID_PLAN', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  llm.setHandler((request) => (llmRequestKind(request) === 'plan' ? onePhasePlan : answerAgent(request)));
  const id = await createAwaiting(server.url);
  // Runner tasks, so the per-role agent cap does not get in the way; 12 is llm.planner.maxTasksPerPhase's default.
  const wide = Array.from({ length: 13 }, (_, i) => ({
    name: `step-${i}`,
    role: 'qa',
    instructions: 'Run it',
    runner: 'ok',
  }));
  const tooWide = await requestJson<{ code: string; detail: string }>(
    `${server.url}/v1/sessions/${id}/approve`,
    { method: 'POST', body: { plan: { phases: [{ name: 'wide', tasks: wide }] } } },
  );
  assert.equal(tooWide.status, 400, JSON.stringify(tooWide.body));
  assert.match(tooWide.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(tooWide.body.code, 'INVALID_PLAN');
  assert.match(tooWide.body.detail, /phase "wide" has 13 tasks; at most 12 are allowed/);
  await assertStillWaiting(server.url, id);
});

test('a submitted plan over the orchestrator limits, sent back unchanged, is approved as it is', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  llm.setHandler(answerAgent);
  // Four engineers: a submit takes them, llm.planner.maxAgentsPerRole (3) binds the orchestrator.
  const agents = [1, 2, 3, 4].map((n) => ({ name: `part-${n}`, role: 'engineer', task: `Build part ${n}` }));
  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Build four parts', approval: 'required', agents },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  const waiting = await requestJson<SessionView & { plan: unknown }>(`${server.url}/v1/sessions/${id}`);
  assert.equal(waiting.body.status, 'awaiting_approval');
  const approved = await requestJson<{ planVersion: number; readied: number }>(
    `${server.url}/v1/sessions/${id}/approve`,
    { method: 'POST', body: { plan: waiting.body.plan } },
  );
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  assert.deepEqual(approved.body, { planVersion: 1, readied: 4, renamedTasks: {} });
  const done = await waitForSession<SessionView>(server.url, id);
  assert.equal(done.status, 'completed', done.error ?? '');
});

test('an edited plan whose task depends on a task of a later phase is a 400 INVALID_PLAN', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  llm.setHandler((request) => (llmRequestKind(request) === 'plan' ? onePhasePlan : answerAgent(request)));
  const id = await createAwaiting(server.url);
  const backwards = await requestJson<{ code: string; detail: string }>(
    `${server.url}/v1/sessions/${id}/approve`,
    {
      method: 'POST',
      body: {
        plan: {
          phases: [
            {
              name: 'write',
              tasks: [{ name: 'write', role: 'documenter', instructions: 'Write', depends_on: ['research'] }],
            },
            { name: 'research', tasks: [{ name: 'research', role: 'researcher', instructions: 'Research' }] },
          ],
        },
      },
    },
  );
  assert.equal(backwards.status, 400, JSON.stringify(backwards.body));
  assert.match(backwards.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(backwards.body.code, 'INVALID_PLAN');
  assert.match(backwards.body.detail, /task "write" depends on "research" of a later phase/);
  await assertStillWaiting(server.url, id);
});

test('an approved edited two-phase plan runs its second phase only after the first finished', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  llm.setHandler((request) => {
    if (llmRequestKind(request) === 'plan') return onePhasePlan;
    // The first phase's agents are slow: a second phase not held back would start meanwhile.
    const slow = /Your task \((survey|draft)\)/.test(request.promptText);
    return slow ? { ...answerAgent(request), delayMs: 300 } : answerAgent(request);
  });
  const id = await createAwaiting(server.url);
  const plan = {
    phases: [
      {
        name: 'gather',
        tasks: [
          { name: 'survey', role: 'researcher', instructions: 'Survey the API' },
          { name: 'draft', role: 'documenter', instructions: 'Draft the outline' },
        ],
      },
      // No depends_on: the phase order alone must hold `review` back.
      { name: 'check', tasks: [{ name: 'review', role: 'reviewer', instructions: 'Review it all' }] },
    ],
  };
  const approved = await requestJson<{ planVersion: number; readied: number }>(
    `${server.url}/v1/sessions/${id}/approve`,
    { method: 'POST', body: { plan } },
  );
  assert.equal(approved.status, 200, JSON.stringify(approved.body));

  const done = await waitForSession<SessionView>(server.url, id);
  assert.equal(done.status, 'completed', done.error ?? '');
  const events = await readAllEvents<TaskStatusEvent>(server.url, id);
  const seqOf = (name: string, to: string) =>
    events.find((e) => e.type === 'task.status' && e.data.name === name && e.data.to === to)?.seq ?? -1;
  const reviewStarted = seqOf('review', 'running');
  assert.ok(reviewStarted > 0, 'review ran');
  assert.ok(seqOf('survey', 'succeeded') > 0 && seqOf('draft', 'succeeded') > 0, 'both first tasks ran');
  assert.ok(reviewStarted > seqOf('survey', 'succeeded'), 'review started after survey finished');
  assert.ok(reviewStarted > seqOf('draft', 'succeeded'), 'review started after draft finished');
  assert.deepEqual(
    approved.body,
    { planVersion: 2, readied: 2, renamedTasks: {} },
    'only the first phase was made ready',
  );
  const review = done.tasks.find((task) => task.name === 'review');
  assert.deepEqual([...(review?.dependsOn ?? [])].sort(), ['draft', 'survey']);
  // It was given the first phase's outputs as its dependencies'.
  const reviewPrompt = llm.requests.find((r) => r.promptText.includes('Your task (review)'))?.promptText;
  assert.match(reviewPrompt ?? '', /output of survey/);
  assert.match(reviewPrompt ?? '', /output of draft/);
  const plans = await requestJson<{ items: Array<{ plan: { phases: Array<{ tasks: unknown[] }> } }> }>(
    `${server.url}/v1/sessions/${id}/plans`,
  );
  assert.deepEqual(plans.body.items[1]?.plan.phases[1]?.tasks, [
    { name: 'review', role: 'reviewer', instructions: 'Review it all', dependsOn: ['survey', 'draft'] },
  ]);
});

test('an edit at a phase gate keeps the agent a task reuses: same agent, history replayed', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  let gates = 0;
  llm.setHandler((request) => {
    switch (llmRequestKind(request)) {
      case 'plan':
        return {
          object: {
            rationale: 'r',
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
        return gates === 1
          ? {
              object: {
                decision: 'continue',
                reason: 'Refine the sketch, then build.',
                next_phase: {
                  name: 'build',
                  tasks: [
                    plannedTask('refine', 'architect', { agent: 'sketch' }),
                    plannedTask('build', 'engineer', { dependsOn: ['refine'] }),
                  ],
                },
              },
            }
          : { object: { decision: 'complete', reason: 'Done.', next_phase: null } };
      default:
        return answerAgent(request);
    }
  });
  const id = await createAwaiting(server.url, {
    objective: 'Design and build a service',
    strategy: 'adaptive',
  });
  const first = await requestJson(`${server.url}/v1/sessions/${id}/approve`, { method: 'POST', body: {} });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const atGate = await waitForSession<SessionView>(server.url, id, (s) => s.status !== 'running');
  assert.equal(atGate.status, 'awaiting_approval', atGate.error ?? '');

  // The person resends the plan with `build` reworded; `refine` is unchanged (no `agent` field:
  // the edit format need not repeat it) and so keeps the agent it reuses.
  const plan = {
    phases: [
      {
        name: 'explore',
        tasks: [
          { name: 'survey', role: 'researcher', instructions: 'Work on survey' },
          { name: 'sketch', role: 'architect', instructions: 'Work on sketch' },
        ],
      },
      {
        name: 'build',
        tasks: [
          { name: 'refine', role: 'architect', instructions: 'Work on refine' },
          { name: 'build', role: 'engineer', instructions: 'Build it with tests', depends_on: ['refine'] },
        ],
      },
    ],
  };
  const second = await requestJson<{ planVersion: number; readied: number }>(
    `${server.url}/v1/sessions/${id}/approve`,
    { method: 'POST', body: { plan } },
  );
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.equal(second.body.readied, 1);

  const done = await waitForSession<SessionView>(server.url, id);
  assert.equal(done.status, 'completed', done.error ?? '');
  const byName = new Map(done.tasks.map((task) => [task.name, task]));
  const sketchAgent = done.agents.find((agent) => agent.name === 'sketch');
  assert.ok(sketchAgent);
  assert.equal(byName.get('refine')?.agentId, sketchAgent.id);
  assert.equal(byName.get('sketch')?.agentId, sketchAgent.id);
  assert.deepEqual(
    done.agents.map((agent) => agent.name).sort(),
    ['build', 'sketch', 'survey'],
    'no agent of its own for refine',
  );
  const refinePrompt = llm.requests.find((r) => r.promptText.includes('Your task (refine)'));
  const messages = (refinePrompt?.body.messages ?? []) as Array<{ role: string; content: string }>;
  assert.deepEqual(
    messages.map((m) => m.role),
    ['system', 'user', 'assistant', 'user'],
    'the reused agent sees its earlier turn',
  );
  assert.equal(messages[2]?.content, 'output of sketch');
  assert.ok(llm.requests.some((r) => r.promptText.includes('Build it with tests')));

  // The same edit naming the agent explicitly is accepted too; naming another role's agent is not.
  const wrongRole = structuredClone(plan);
  const refine = wrongRole.phases[1]?.tasks[0] as Record<string, unknown>;
  refine.agent = 'survey';
  const id2 = await createAwaiting(server.url, { objective: 'Design and build again', strategy: 'adaptive' });
  gates = 0;
  await requestJson(`${server.url}/v1/sessions/${id2}/approve`, { method: 'POST', body: {} });
  await waitForSession<SessionView>(server.url, id2, (s) => s.status !== 'running');
  const refused = await requestJson<{ code: string; detail: string }>(
    `${server.url}/v1/sessions/${id2}/approve`,
    {
      method: 'POST',
      body: { plan: wrongRole },
    },
  );
  assert.equal(refused.status, 400, JSON.stringify(refused.body));
  assert.match(
    refused.body.detail,
    /task "refine" has role "architect" but reuses agent "survey" of role "researcher"/,
  );
  refine.agent = 'sketch';
  const accepted = await requestJson(`${server.url}/v1/sessions/${id2}/approve`, {
    method: 'POST',
    body: { plan: wrongRole },
  });
  assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  const done2 = await waitForSession<SessionView>(server.url, id2);
  assert.equal(done2.status, 'completed', done2.error ?? '');
  const tasks2 = new Map(done2.tasks.map((task) => [task.name, task]));
  const sketchAgentId = tasks2.get('sketch')?.agentId;
  assert.ok(sketchAgentId, 'sketch has an agent');
  assert.equal(tasks2.get('refine')?.agentId, sketchAgentId);
});

test('at a phase gate, a plan whose task waits for more than 100 tasks is approved as read', async (t) => {
  // llm.planner.maxTasksPerPhase at its most: the first approval fans out to 100 runner tasks and
  // fans in after them; the fan-in's second task then shows 101 dependencies (its own phase's first
  // task and the phase barrier). At the next gate the earlier phases are resent as they ran: the
  // plan as GET /v1/sessions/:id shows it was refused as a list of more than 100 dependencies.
  const { llm, server } = await startLlmAppStack(t, {
    llm: { planner: { maxTasksPerPhase: 100 } },
    config: { workers: { concurrency: 8, pollIntervalMs: 200 } },
  });
  let gates = 0;
  llm.setHandler((request) => {
    if (llmRequestKind(request) === 'plan') return onePhasePlan;
    if (llmRequestKind(request) !== 'gate') return answerAgent(request);
    gates += 1;
    return gates === 1
      ? {
          object: {
            decision: 'continue',
            reason: 'Write it up.',
            next_phase: { name: 'write-up', tasks: [plannedTask('summary', 'documenter')] },
          },
        }
      : { object: { decision: 'complete', reason: 'Done.', next_phase: null } };
  });
  const id = await createAwaiting(server.url, { objective: 'Check every part', strategy: 'adaptive' });
  const fanOut = Array.from({ length: 100 }, (_, i) => ({
    name: `part-${i}`,
    role: 'qa',
    instructions: 'Check a part',
    runner: 'ok',
  }));
  const first = await requestJson(`${server.url}/v1/sessions/${id}/approve`, {
    method: 'POST',
    body: {
      plan: {
        phases: [
          { name: 'fan-out', tasks: fanOut },
          {
            name: 'fan-in',
            tasks: [
              { name: 'collect', role: 'qa', instructions: 'Collect', runner: 'ok' },
              { name: 'report', role: 'qa', instructions: 'Report', runner: 'ok', dependsOn: ['collect'] },
            ],
          },
        ],
      },
    },
  });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const atGate = await waitForSession<SessionView & { plan: { phases: unknown[] } }>(
    server.url,
    id,
    (s) => s.status !== 'running',
    60_000,
  );
  assert.equal(atGate.status, 'awaiting_approval', atGate.error ?? '');
  assert.equal(atGate.tasks.find((task) => task.name === 'report')?.dependsOn.length, 101);
  const asRead = await requestJson<{ planVersion: number; readied: number }>(
    `${server.url}/v1/sessions/${id}/approve`,
    { method: 'POST', body: { plan: atGate.plan } },
  );
  assert.equal(asRead.status, 200, JSON.stringify(asRead.body));
  assert.deepEqual(asRead.body, { planVersion: 3, readied: 1, renamedTasks: {} });
  const done = await waitForSession<SessionView>(server.url, id, undefined, 30_000);
  assert.equal(done.status, 'completed', done.error ?? '');
});

test("the orchestrator's plan of more than 20 phases can be sent back as read, and edited", async (t) => {
  // A non-adaptive session's first plan has no phase limit (llm.planner.maxPhases bounds the phase
  // gates of an adaptive one); an edit had at most 20, so this plan, read and sent back unchanged or
  // with one instruction reworded, was refused.
  const { llm, server } = await startLlmAppStack(t, { llm: { planner: { maxAgentsPerRole: 25 } } });
  const steps = Array.from({ length: 25 }, (_, i) => ({
    name: `step-${i}`,
    tasks: [plannedTask(`step-${i}`, 'researcher')],
  }));
  llm.setHandler((request) =>
    llmRequestKind(request) === 'plan' ? { object: { rationale: 'r', phases: steps } } : answerAgent(request),
  );
  const id = await createAwaiting(server.url);
  const waiting = await requestJson<{ plan: { phases: Array<{ tasks: Array<{ instructions: string }> }> } }>(
    `${server.url}/v1/sessions/${id}`,
  );
  assert.equal(waiting.body.plan.phases.length, 25);
  const edited = structuredClone(waiting.body.plan);
  edited.phases[24]!.tasks[0]!.instructions = 'Sum it all up';
  // As many phases as the waiting plan has, not more.
  const grown = {
    phases: [
      ...edited.phases,
      { name: 'extra', tasks: [{ name: 'extra', role: 'qa', instructions: 'One more' }] },
    ],
  };
  const tooMany = await requestJson<{ code: string; detail: string }>(
    `${server.url}/v1/sessions/${id}/approve`,
    {
      method: 'POST',
      body: { plan: grown },
    },
  );
  assert.equal(tooMany.status, 400, JSON.stringify(tooMany.body));
  assert.equal(tooMany.body.code, 'INVALID_PLAN');
  assert.match(
    tooMany.body.detail,
    /the plan has 26 phases; at most 25 are allowed \(as many as the waiting plan has\)$/,
  );
  await assertStillWaiting(server.url, id);
  const approved = await requestJson<{ planVersion: number; readied: number }>(
    `${server.url}/v1/sessions/${id}/approve`,
    { method: 'POST', body: { plan: edited } },
  );
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  assert.deepEqual(approved.body, { planVersion: 2, readied: 1, renamedTasks: {} });
  const plans = await requestJson<{ items: Array<{ diff: unknown }> }>(
    `${server.url}/v1/sessions/${id}/plans`,
  );
  assert.deepEqual(plans.body.items[1]?.diff, {
    added: [],
    removed: [],
    changed: [
      {
        name: 'step-24',
        changes: [{ field: 'instructions', before: 'Work on step-24', after: 'Sum it all up' }],
      },
    ],
  });
  const cancelled = await requestJson(`${server.url}/v1/sessions/${id}/cancel`, { method: 'POST' });
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
});
