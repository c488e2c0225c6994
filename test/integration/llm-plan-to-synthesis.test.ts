// An objective-only session over HTTP from plan to answer: the orchestrator plans two parallel tasks
// and a task that depends on both, the tasks run (the parallel ones at the same time, the dependant
// after them with their outputs), and the synthesis becomes the session's `result`.
// Scripted LLM server, real app on SQLite.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startLlmAppStack } from '../fixtures/llm-app.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { RecordedLlmRequest, ScriptedReply } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

interface TaskView {
  name: string;
  kind: string;
  role: string;
  status: string;
  dependsOn: string[];
  startedAt: string | null;
  finishedAt: string | null;
}

interface SessionView {
  status: string;
  error: string | null;
  result: string | null;
  tasks: TaskView[];
}

const plan = {
  rationale: 'Research the market and the costs side by side, then write the recommendation.',
  phases: [
    { name: 'research', tasks: [plannedTask('market', 'researcher'), plannedTask('costs', 'analyst')] },
    { name: 'write', tasks: [plannedTask('recommend', 'documenter', { dependsOn: ['market', 'costs'] })] },
  ],
};

/** The agent task a request is for, from "Your task (<name>)" in its prompt. */
function taskNameOf(request: RecordedLlmRequest): string {
  return /Your task \(([^)]+)\)/.exec(request.promptText)?.[1] ?? 'unknown';
}

test('objective → plan with parallel and dependent tasks → synthesis as the result', async (t) => {
  const { llm, server } = await startLlmAppStack(t);
  // Each parallel task answers only once both have asked: the test fails (times out) if they ran one
  // after the other.
  let releaseParallel!: () => void;
  const bothParallelAsked = new Promise<void>((resolve) => {
    releaseParallel = resolve;
  });
  const parallelAsked = new Set<string>();
  llm.setHandler(async (request): Promise<ScriptedReply> => {
    switch (llmRequestKind(request)) {
      case 'plan':
        return { object: plan };
      case 'synthesis':
        return { text: 'Recommendation: go with option B.' };
      case 'gate':
        return { error: 500, message: 'a planned session has no phase gates' };
      default: {
        const name = taskNameOf(request);
        if (name === 'market' || name === 'costs') {
          parallelAsked.add(name);
          if (parallelAsked.size === 2) releaseParallel();
          await bothParallelAsked;
        }
        return { text: `findings of ${name}` };
      }
    }
  });

  const created = await requestJson<{ id: string }>(`${server.url}/v1/sessions`, {
    method: 'POST',
    body: { objective: 'Should we move to option B?' },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));

  const session = await waitForSession<SessionView>(server.url, created.body.id);
  assert.equal(session.status, 'completed', session.error ?? '');
  assert.equal(session.result, 'Recommendation: go with option B.');
  // The plan's tasks with their dependencies, then the synthesis over all of them. (Where the
  // orchestrator's planning runs as a `plan` task, that task is left out: it is not part of the plan.)
  const planned = session.tasks.filter((task) => task.kind !== 'plan');
  const planTaskNames = new Set(session.tasks.filter((task) => task.kind === 'plan').map((t) => t.name));
  assert.deepEqual(
    planned.map((task) => [
      task.kind,
      task.name,
      task.role,
      task.dependsOn.filter((name) => !planTaskNames.has(name)).sort(),
      task.status,
    ]),
    [
      ['agent', 'market', 'researcher', [], 'succeeded'],
      ['agent', 'costs', 'analyst', [], 'succeeded'],
      ['agent', 'recommend', 'documenter', ['costs', 'market'], 'succeeded'],
      ['synthesize', 'orchestrator:synthesis', 'orchestrator', ['costs', 'market', 'recommend'], 'succeeded'],
    ],
  );

  // The dependant started after both parallel tasks had finished, and the synthesis after it.
  const byName = new Map(session.tasks.map((task) => [task.name, task]));
  const at = (name: string, field: 'startedAt' | 'finishedAt') => Date.parse(byName.get(name)?.[field] ?? '');
  for (const parallel of ['market', 'costs']) {
    assert.ok(
      at('recommend', 'startedAt') >= at(parallel, 'finishedAt'),
      `recommend starts after ${parallel}`,
    );
  }
  assert.ok(at('orchestrator:synthesis', 'startedAt') >= at('recommend', 'finishedAt'));

  // The dependant's prompt carries its dependencies' outputs; the parallel tasks' prompts carry none.
  const agentPrompts = new Map(
    llm.requests.filter((r) => llmRequestKind(r) === 'agent').map((r) => [taskNameOf(r), r.promptText]),
  );
  const recommendPrompt = agentPrompts.get('recommend') ?? '';
  assert.match(recommendPrompt, /## Outputs of the tasks you depend on/);
  assert.match(recommendPrompt, /### market \(researcher\)\n```\nfindings of market/);
  assert.match(recommendPrompt, /### costs \(analyst\)\n```\nfindings of costs/);
  assert.doesNotMatch(agentPrompts.get('market') ?? '', /Outputs of the tasks you depend on/);
  // The synthesis is written from the tasks' outputs.
  const synthesisPrompt = llm.requests.find((r) => llmRequestKind(r) === 'synthesis')?.promptText ?? '';
  assert.match(synthesisPrompt, /findings of recommend/);
  assert.equal(llm.requests.filter((r) => llmRequestKind(r) === 'gate').length, 0);
});
