// A custom role deleted while a session runs agents of it: the delete is refused with 409 naming the
// session, instead of the session's next task of that role failing with "Role … is neither built in
// nor defined"; once the session has ended the role can be deleted. Real app over HTTP, scripted LLM
// server, SQLite and PostgreSQL.
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
  tasks: Array<{ name: string; status: string }>;
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`deleting a custom role a running session uses (${store})`, { timeout: 60_000 }, () => {
    test('is refused with 409 naming the session; the session completes; then the delete works', async (t) => {
      const stack = await startOrchestratorStack(t, { store });
      const url = stack.server.url;
      await createPoetRole(url);
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      stack.llm.setHandler(async (request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: {
                rationale: 'r',
                phases: [
                  {
                    name: 'one',
                    tasks: [
                      plannedTask('draft', 'poet'),
                      plannedTask('polish', 'poet', { dependsOn: ['draft'] }),
                    ],
                  },
                ],
              },
            };
          case 'synthesis':
            return { text: 'The answer.' };
          default:
            // The first agent answers only once the delete has been tried.
            await held;
            return { text: '## Summary\nA poem.' };
        }
      });
      const id = await stack.submit({ objective: 'Write a poem' });
      await stack.wait<SessionView>(id, (session) =>
        session.tasks.some((task) => task.name === 'draft' && task.status === 'running'),
      );
      const refused = await requestJson<{ code: string; detail: string }>(`${url}/v1/roles/poet`, {
        method: 'DELETE',
      });
      release();
      assert.equal(refused.status, 409, JSON.stringify(refused.body));
      assert.equal(refused.body.code, 'INVALID_STATE');
      assert.match(
        refused.body.detail,
        new RegExp(`Role 'poet' is used by unfinished tasks of running session\\(s\\) ${id}`),
      );
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      const roles = await requestJson<{ items?: Array<{ name: string }> } | Array<{ name: string }>>(
        `${url}/v1/roles`,
      );
      assert.match(JSON.stringify(roles.body), /"poet"/, 'the role is still there');
      assert.equal((await requestJson(`${url}/v1/roles/poet`, { method: 'DELETE' })).status, 204);
    });
  });
}
