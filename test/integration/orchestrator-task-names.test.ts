// Task names the orchestrator writes another way ("Design-API", "design api", "DESIGN_DB") read as
// the documented name form, with the references to them, instead of costing repair rounds; names
// that collide once read so are repaired with a clear message; a person's edited plan may write names
// with spaces. Real app over HTTP, scripted LLM server (both wire formats), SQLite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type LlmRequestKind, llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; status: string; dependsOn: string[] }>;
}

const AGENT_ANSWER = '## Summary\nDone.\n## Deliverable\nIt.\n## Open points\nNone.';

function handlerFor(
  replies: Partial<Record<LlmRequestKind, (request: RecordedLlmRequest) => ScriptedReply>>,
) {
  return (request: RecordedLlmRequest): ScriptedReply => {
    const kind = llmRequestKind(request);
    const reply = replies[kind];
    if (reply) return reply(request);
    if (kind === 'synthesis') return { text: 'The answer.' };
    if (kind === 'gate') return { object: { decision: 'complete', reason: 'met', next_phase: null } };
    return { text: AGENT_ANSWER };
  };
}

const count = (requests: readonly RecordedLlmRequest[], kind: LlmRequestKind) =>
  requests.filter((request) => llmRequestKind(request) === kind).length;

const agentTasks = (session: SessionView) =>
  session.tasks
    .filter((task) => !task.name.startsWith('orchestrator:'))
    .map((task) => [task.name, [...task.dependsOn].sort()]);

for (const api of ['openai', 'anthropic'] as const) {
  describe(`generated task names written another way (${api})`, { timeout: 90_000 }, () => {
    test('"Design-API", "DESIGN_DB" and "write tests" depending on "design api": no repair round', async (t) => {
      const stack = await startOrchestratorStack(t, { api, llm: { planner: { maxRepairs: 0 } } });
      stack.llm.setHandler(
        handlerFor({
          plan: () => ({
            object: {
              rationale: 'r',
              phases: [
                {
                  name: 'all',
                  tasks: [
                    plannedTask('Design-API', 'architect'),
                    plannedTask('DESIGN_DB', 'architect'),
                    plannedTask('write tests', 'qa', { dependsOn: ['design api', 'DESIGN_DB'] }),
                  ],
                },
              ],
            },
          }),
        }),
      );
      const id = await stack.submit({ objective: 'Design and test' });
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(count(stack.llm.requests, 'plan'), 1, 'no repair round');
      assert.deepEqual(agentTasks(done), [
        ['design-api', []],
        ['design_db', []],
        ['write-tests', ['design-api', 'design_db']],
      ]);
    });
  });
}

describe('task names at a phase gate and collisions', { timeout: 90_000 }, () => {
  test('a gate names earlier tasks and agents another way: read as the stored names', async (t) => {
    const stack = await startOrchestratorStack(t, { llm: { planner: { maxRepairs: 0 } } });
    stack.llm.setHandler(
      handlerFor({
        plan: () => ({
          object: {
            rationale: 'r',
            phases: [{ name: 'one', tasks: [plannedTask('Design API', 'architect')] }],
          },
        }),
        gate: (request) =>
          // Only the first gate continues: the second one sees "review-api" among the outputs.
          /review-api/.test(request.promptText)
            ? { object: { decision: 'complete', reason: 'met', next_phase: null } }
            : {
                object: {
                  decision: 'continue',
                  reason: 'review it',
                  next_phase: {
                    name: 'two',
                    tasks: [
                      plannedTask('Review API', 'architect', {
                        dependsOn: ['DESIGN-API'],
                        agent: 'Design API',
                      }),
                    ],
                  },
                },
              },
      }),
    );
    const id = await stack.submit({ objective: 'Design in phases', strategy: 'adaptive' });
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.equal(count(stack.llm.requests, 'gate'), 2, 'no repair round at the gate');
    assert.deepEqual(agentTasks(done), [
      ['design-api', []],
      ['review-api', ['design-api']],
    ]);
    const detail = await requestJson<{ tasks: Array<{ name: string; agentId: string | null }> }>(
      `${stack.server.url}/v1/sessions/${id}`,
    );
    const agentOf = (name: string) => detail.body.tasks.find((task) => task.name === name)?.agentId;
    assert.ok(agentOf('design-api'));
    assert.equal(agentOf('review-api'), agentOf('design-api'), 'the review reused the design agent');
  });

  test('two names that read as one, and a name no rewrite makes valid, are repaired and named', async (t) => {
    const stack = await startOrchestratorStack(t, { llm: { planner: { maxRepairs: 1 } } });
    stack.llm.setHandler(
      handlerFor({
        plan: () => ({
          object: {
            rationale: 'r',
            phases: [
              {
                name: 'p',
                tasks: [
                  plannedTask('Design API', 'architect'),
                  plannedTask('design-api', 'engineer'),
                  plannedTask('api/v2', 'engineer'),
                ],
              },
            ],
          },
        }),
      }),
    );
    const id = await stack.submit({ objective: 'Collide' });
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /^INVALID_PLAN: /);
    assert.match(done.error ?? '', /task names "Design API", "design-api" all read as "design-api"/);
    assert.match(done.error ?? '', /task name "api\/v2" is not a valid name: use 1-48 lowercase letters/);
    const repair = stack.llm.requests.filter((request) => llmRequestKind(request) === 'plan')[1];
    assert.match(repair?.promptText ?? '', /all read as "design-api": give each task its own name/);
  });
});

describe('an edited plan with names written with spaces', { timeout: 90_000 }, () => {
  test('"Design API" is used as "Design-API", its references too; the stored plan shows the names', async (t) => {
    const stack = await startOrchestratorStack(t);
    stack.llm.setHandler(
      handlerFor({
        plan: () => ({
          object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
        }),
      }),
    );
    const id = await stack.submit({ objective: 'Edit me', approval: 'required' });
    await stack.wait(id, (session) => session.status === 'awaiting_approval');
    const approved = await requestJson<{ planVersion: number; renamedTasks: Record<string, string> }>(
      `${stack.server.url}/v1/sessions/${id}/approve`,
      {
        method: 'POST',
        body: {
          plan: {
            phases: [
              {
                name: 'one',
                tasks: [
                  { name: ' Design API ', role: 'architect', instructions: 'Design it' },
                  {
                    name: 'Build It',
                    role: 'engineer',
                    instructions: 'Build it',
                    depends_on: ['Design API'],
                  },
                ],
              },
            ],
          },
        },
      },
    );
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    // The answer says which names were used for the names as written.
    assert.deepEqual(approved.body.renamedTasks, { ' Design API ': 'Design-API', 'Build It': 'Build-It' });
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.deepEqual(agentTasks(done), [
      ['Design-API', []],
      ['Build-It', ['Design-API']],
    ]);
    const plans = await requestJson<{ items: Array<{ version: number; plan: SessionPlan }> }>(
      `${stack.server.url}/v1/sessions/${id}/plans`,
    );
    const latest = plans.body.items.at(-1)?.plan;
    assert.deepEqual(
      latest?.phases[0]?.tasks.map((task) => task.name),
      ['Design-API', 'Build-It'],
    );
  });

  test('two edited names that read as one are refused with both spellings', async (t) => {
    const stack = await startOrchestratorStack(t);
    stack.llm.setHandler(
      handlerFor({
        plan: () => ({
          object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
        }),
      }),
    );
    const id = await stack.submit({ objective: 'Edit me', approval: 'required' });
    await stack.wait(id, (session) => session.status === 'awaiting_approval');
    const refused = await requestJson<{ code: string; detail: string }>(
      `${stack.server.url}/v1/sessions/${id}/approve`,
      {
        method: 'POST',
        body: {
          plan: {
            phases: [
              {
                name: 'one',
                tasks: [
                  { name: 'Design API', role: 'architect', instructions: 'x' },
                  { name: 'Design-API', role: 'architect', instructions: 'y' },
                ],
              },
            ],
          },
        },
      },
    );
    assert.equal(refused.status, 400);
    assert.equal(refused.body.code, 'INVALID_PLAN');
    assert.match(
      JSON.stringify(refused.body),
      /task names \\"Design API\\", \\"Design-API\\" all read as \\"Design-API\\"/,
    );
  });
});

interface SessionPlan {
  phases: Array<{ tasks: Array<{ name: string }> }>;
}
