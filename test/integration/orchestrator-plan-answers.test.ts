// How the orchestrator copes with what models really answer, over both wire formats: a plan in a
// Markdown fence or after a sentence is taken as is (no repair call), a fenced answer that breaks the
// schema is repaired with the schema's problems. Real app over HTTP, scripted LLM server, SQLite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type LlmRequestKind, llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { startOrchestratorStack, type WireFormat } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { createPoetRole } from '../fixtures/poet-role.ts';

interface SessionView {
  status: string;
  error: string | null;
  result: string | null;
  tasks: Array<{ name: string; role: string; status: string }>;
}

const AGENT_ANSWER = '## Summary\nDone.\n## Deliverable\nIt.\n## Open points\nNone.';
const PLAN = {
  rationale: 'one task',
  phases: [{ name: 'build', tasks: [plannedTask('build', 'engineer')] }],
};
const fenced = (value: unknown) => `\`\`\`json\n${JSON.stringify(value, null, 2)}\n\`\`\``;

/** Answers by kind; `plan` and `gate` replies come from the scenario. */
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

function count(requests: readonly RecordedLlmRequest[], kind: LlmRequestKind): number {
  return requests.filter((request) => llmRequestKind(request) === kind).length;
}

for (const api of ['openai', 'anthropic'] as const satisfies readonly WireFormat[]) {
  describe(`orchestrator answers over the ${api} wire format`, { timeout: 90_000 }, () => {
    test('a plan in a Markdown fence is the plan: one planning call', async (t) => {
      const stack = await startOrchestratorStack(t, { api });
      stack.llm.setHandler(handlerFor({ plan: () => ({ text: fenced(PLAN) }) }));
      const id = await stack.submit({ objective: 'Build the thing' });
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, 'The answer.');
      assert.equal(count(stack.llm.requests, 'plan'), 1, 'no repair round');
      assert.deepEqual(
        done.tasks.map((task) => [task.name, task.status]),
        [
          ['orchestrator:plan', 'succeeded'],
          ['build', 'succeeded'],
          ['orchestrator:synthesis', 'succeeded'],
        ],
      );
    });

    test('a plan after a sentence, and a phase gate in a fence, are taken too', async (t) => {
      const stack = await startOrchestratorStack(t, { api });
      stack.llm.setHandler(
        handlerFor({
          plan: () => ({ text: `Here is the plan you asked for:\n\n${JSON.stringify(PLAN)}\n\nGood luck!` }),
          gate: () => ({ text: fenced({ decision: 'complete', reason: 'met', next_phase: null }) }),
        }),
      );
      const id = await stack.submit({ objective: 'Build the thing in phases', strategy: 'adaptive' });
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(count(stack.llm.requests, 'plan'), 1);
      assert.equal(count(stack.llm.requests, 'gate'), 1);
    });

    test('a fenced plan that breaks the schema is repaired with its problems', async (t) => {
      const stack = await startOrchestratorStack(t, { api });
      let round = 0;
      stack.llm.setHandler(
        handlerFor({
          plan: () => {
            round += 1;
            return round === 1 ? { text: fenced({ rationale: 'r', phases: [] }) } : { object: PLAN };
          },
        }),
      );
      const id = await stack.submit({ objective: 'Build the thing' });
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      const repair = stack.llm.requests.filter((request) => llmRequestKind(request) === 'plan')[1];
      assert.ok(repair);
      assert.match(repair.promptText, /without Markdown fences/);
      assert.match(repair.promptText, /phases: Too small/);
      assert.doesNotMatch(repair.promptText, /not valid JSON/);
    });
  });
}

describe('role names written another way', { timeout: 60_000 }, () => {
  test('"Engineer", "Backend Engineer", "QA" and a custom "Poet" are the catalogue roles: no repair', async (t) => {
    const stack = await startOrchestratorStack(t);
    await createPoetRole(stack.server.url);
    stack.llm.setHandler(
      handlerFor({
        plan: () => ({
          object: {
            rationale: 'r',
            phases: [
              {
                name: 'all',
                tasks: [
                  plannedTask('a', 'Engineer'),
                  plannedTask('b', 'Backend Engineer'),
                  plannedTask('c', 'QA'),
                  plannedTask('d', ' Poet '),
                ],
              },
            ],
          },
        }),
      }),
    );
    const id = await stack.submit({ objective: 'Build and celebrate' });
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.equal(count(stack.llm.requests, 'plan'), 1, 'no repair round');
    assert.deepEqual(
      done.tasks
        .filter((task) => !task.name.startsWith('orchestrator:'))
        .map((task) => [task.name, task.role]),
      [
        ['a', 'engineer'],
        ['b', 'backend_engineer'],
        ['c', 'qa'],
        ['d', 'poet'],
      ],
    );
  });

  test('a role that matches nothing is still repaired and named in the error', async (t) => {
    const stack = await startOrchestratorStack(t, { llm: { planner: { maxRepairs: 0 } } });
    stack.llm.setHandler(
      handlerFor({
        plan: () => ({
          object: { rationale: 'r', phases: [{ name: 'p', tasks: [plannedTask('a', 'Wizard')] }] },
        }),
      }),
    );
    const id = await stack.submit({ objective: 'Do magic' });
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'failed');
    assert.match(done.error ?? '', /^INVALID_PLAN: .*task "a": unknown role "Wizard"/);
  });
});

describe('an agent written as an empty string', { timeout: 60_000 }, () => {
  // Models that fill every field write "" for "no agent to reuse" as often as null: that is a new
  // agent, in the first plan and at a phase gate, without a repair round. Each repair said "no
  // agents exist yet" or "reuses unknown agent", and a model that kept writing it failed the session.
  test('is a new agent, in the first plan and in a phase gate: no repair', async (t) => {
    const stack = await startOrchestratorStack(t, { llm: { planner: { maxRepairs: 0 } } });
    let gates = 0;
    stack.llm.setHandler(
      handlerFor({
        plan: () => ({
          object: {
            rationale: 'r',
            phases: [{ name: 'one', tasks: [{ ...plannedTask('a', 'engineer'), agent: '' }] }],
          },
        }),
        gate: () => {
          gates += 1;
          return gates > 1
            ? { object: { decision: 'complete', reason: 'met', next_phase: null } }
            : {
                object: {
                  decision: 'continue',
                  reason: 'check it',
                  next_phase: { name: 'two', tasks: [{ ...plannedTask('b', 'qa'), agent: ' ' }] },
                },
              };
        },
      }),
    );
    const id = await stack.submit({ objective: 'Build and check', strategy: 'adaptive' });
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.equal(count(stack.llm.requests, 'plan'), 1, 'no repair of the plan');
    assert.equal(count(stack.llm.requests, 'gate'), 2, 'no repair of the gate');
    assert.deepEqual(
      done.tasks
        .filter((task) => !task.name.startsWith('orchestrator:'))
        .map((task) => [task.name, task.status]),
      [
        ['a', 'succeeded'],
        ['b', 'succeeded'],
      ],
    );
  });
});

describe('a plan cut off at the output token limit', { timeout: 60_000 }, () => {
  test('the repair and the session error say so and name the limit to raise', async (t) => {
    const stack = await startOrchestratorStack(t, { llm: { planner: { maxRepairs: 1 } } });
    const cut = JSON.stringify(PLAN).slice(0, 40);
    stack.llm.setHandler(handlerFor({ plan: () => ({ text: cut, truncated: true }) }));
    const id = await stack.submit({ objective: 'Plan something huge' });
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'failed');
    assert.match(
      done.error ?? '',
      /^INVALID_PLAN: .*cut off at the output token limit \(8192 tokens, providers\.local\.maxOutputTokens\)/,
    );
    const repair = stack.llm.requests.filter((request) => llmRequestKind(request) === 'plan')[1];
    assert.match(repair?.promptText ?? '', /cut off at the output token limit[^\n]*fewer tasks/);
  });
});

interface ChargedSessionView extends SessionView {
  usage: { inputTokens: number; outputTokens: number };
}

for (const api of ['openai', 'anthropic'] as const satisfies readonly WireFormat[]) {
  describe(`a planning answer without any text, over the ${api} wire format`, { timeout: 60_000 }, () => {
    // Each failed the plan task with "provider 'local' (model m) failed: No output generated."
    // (PROVIDER_ERROR), without a repair, and charged nothing for a call the provider bills.
    test('refused: PROVIDER_REFUSED naming the finish reason, not repaired, the call charged', async (t) => {
      const stack = await startOrchestratorStack(t, { api });
      stack.llm.setHandler(
        handlerFor({
          plan: () => ({ text: '', refused: true, usage: { inputTokens: 700, outputTokens: 3 } }),
        }),
      );
      const id = await stack.submit({ objective: 'Plan something it will not' });
      const done = await stack.wait<ChargedSessionView>(id);
      assert.equal(done.status, 'failed');
      const reason = api === 'openai' ? 'content_filter' : 'refusal';
      assert.equal(
        done.error,
        `task orchestrator:plan failed: provider 'local' (model m) failed: the model refused to answer or its content filter stopped the answer (finish reason: ${reason})`,
      );
      assert.equal(count(stack.llm.requests, 'plan'), 1, 'no repair round');
      assert.deepEqual([done.usage.inputTokens, done.usage.outputTokens], [700, 3]);
    });

    test('cut off at the token limit before any text: repaired, naming the limit', async (t) => {
      const stack = await startOrchestratorStack(t, { api });
      let round = 0;
      stack.llm.setHandler(
        handlerFor({
          plan: () => {
            round += 1;
            return round === 1
              ? { text: '', truncated: true, usage: { inputTokens: 700, outputTokens: 8192 } }
              : { object: PLAN };
          },
        }),
      );
      const id = await stack.submit({ objective: 'Plan something long-winded' });
      const done = await stack.wait<ChargedSessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      const repair = stack.llm.requests.filter((request) => llmRequestKind(request) === 'plan')[1];
      assert.match(repair?.promptText ?? '', /cut off at the output token limit \(8192 tokens/);
      assert.ok(done.usage.outputTokens >= 8192, JSON.stringify(done.usage));
    });

    test('ended for another reason before any text: repaired, naming the finish reason', async (t) => {
      const stack = await startOrchestratorStack(t, { api, llm: { planner: { maxRepairs: 1 } } });
      stack.llm.setHandler(handlerFor({ plan: () => ({ text: '', finishReason: 'abort' }) }));
      const id = await stack.submit({ objective: 'Plan something that stops' });
      const done = await stack.wait<ChargedSessionView>(id);
      assert.equal(done.status, 'failed');
      assert.match(done.error ?? '', /^INVALID_PLAN: .*the answer was empty \(finish reason: abort\)/);
      assert.equal(count(stack.llm.requests, 'plan'), 2);
    });
  });
}
