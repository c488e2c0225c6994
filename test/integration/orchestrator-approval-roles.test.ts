// Roles of a plan waiting for approval. A custom role deleted while the plan waits: approving it as
// it is is refused with INVALID_PLAN naming the tasks (the plan still waits, and an edited plan with
// another role is accepted), instead of starting a session whose tasks then fail. An edited plan
// may write a known role another way ("Engineer"), as a generated one may; an unknown role is
// listed with every other problem of the edit. SQLite.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { createPoetRole } from '../fixtures/poet-role.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; role: string; status: string }>;
}

describe('approval of a plan whose custom role was deleted', { timeout: 60_000 }, () => {
  test('is refused with INVALID_PLAN; an edit with another role runs', async (t) => {
    const stack = await startOrchestratorStack(t);
    const url = stack.server.url;
    await createPoetRole(url);
    stack.llm.setHandler((request) => {
      switch (llmRequestKind(request)) {
        case 'plan':
          return {
            object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('verse', 'poet')] }] },
          };
        case 'synthesis':
          return { text: 'The answer.' };
        default:
          return { text: '## Summary\nDone.' };
      }
    });
    const id = await stack.submit({ objective: 'Write a verse', approval: 'required' });
    await stack.wait(id, (session) => session.status === 'awaiting_approval');
    assert.equal((await requestJson(`${url}/v1/roles/poet`, { method: 'DELETE' })).status, 204);

    const refused = await requestJson<{ code: string; details: string[] }>(
      `${url}/v1/sessions/${id}/approve`,
      {
        method: 'POST',
        body: {},
      },
    );
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'INVALID_PLAN');
    assert.match(refused.body.details.join('\n'), /task "verse": unknown role "poet"/);
    assert.equal((await stack.wait<SessionView>(id, () => true)).status, 'awaiting_approval');

    const edited = await requestJson(`${url}/v1/sessions/${id}/approve`, {
      method: 'POST',
      body: {
        plan: {
          phases: [{ name: 'one', tasks: [{ name: 'verse', role: 'documenter', instructions: 'A verse' }] }],
        },
      },
    });
    assert.equal(edited.status, 200, JSON.stringify(edited.body));
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.equal(done.tasks.find((task) => task.name === 'verse')?.role, 'documenter');
  });
});

describe('an edited plan that writes roles another way', { timeout: 60_000 }, () => {
  test('"Engineer" is the catalogue role; an unknown role is listed with every other problem', async (t) => {
    const stack = await startOrchestratorStack(t);
    const url = stack.server.url;
    stack.llm.setHandler((request) => {
      switch (llmRequestKind(request)) {
        case 'plan':
          return {
            object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
          };
        case 'synthesis':
          return { text: 'The answer.' };
        default:
          return { text: '## Summary\nDone.' };
      }
    });
    const id = await stack.submit({ objective: 'Build it', approval: 'required' });
    await stack.wait(id, (session) => session.status === 'awaiting_approval');
    const approve = (tasks: unknown[]) =>
      requestJson<{ code: string; details: string[] }>(`${url}/v1/sessions/${id}/approve`, {
        method: 'POST',
        body: { plan: { phases: [{ name: 'one', tasks }] } },
      });
    const refused = await approve([
      { name: 'a', role: 'Wizard', instructions: 'x', depends_on: ['nope'] },
      { name: 'a', role: 'qa', instructions: 'y' },
    ]);
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.code, 'INVALID_PLAN');
    const details = refused.body.details.join('\n');
    assert.match(details, /unknown role "Wizard"/);
    assert.match(details, /task name "a" is used more than once/);
    assert.match(details, /depends on unknown task "nope"/);

    const accepted = await approve([
      { name: 'a', role: 'Engineer', instructions: 'x' },
      { name: 'b', role: 'Backend Engineer', instructions: 'y', depends_on: ['a'] },
    ]);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    const done = await stack.wait<SessionView>(id);
    assert.equal(done.status, 'completed', done.error ?? '');
    assert.deepEqual(
      done.tasks
        .filter((task) => !task.name.startsWith('orchestrator:'))
        .map((task) => [task.name, task.role]),
      [
        ['a', 'engineer'],
        ['b', 'backend_engineer'],
      ],
    );
  });
});
