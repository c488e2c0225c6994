// A task whose custom role vanished outside the API (a raw edit of the database, a version before
// deletes were checked) after the task was stored: when it starts it fails with a clear task error
// (INVALID_ROLE, naming the role), the session fails saying which task and why, and the server
// goes on serving. Real app over HTTP, scripted LLM server, SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { createPoetRole } from '../fixtures/poet-role.ts';
import { requestJson } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
  tasks: Array<{ name: string; status: string; error: string | null }>;
}

interface EventView {
  type: string;
  data: { name?: string; status?: string; code?: string; error?: string };
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`a task whose custom role was deleted outside the API (${store})`, { timeout: 60_000 }, () => {
    test('fails with INVALID_ROLE naming the role; the session fails; the server goes on', async (t) => {
      const stack = await startOrchestratorStack(t, { store });
      const url = stack.server.url;
      await createPoetRole(url);
      let release: () => void = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      stack.llm.setHandler(async (request) => {
        if (llmRequestKind(request) !== 'agent') throw new Error('only agents are called');
        // The first agent answers once the role is gone.
        await held;
        return { text: '## Summary\nA draft.' };
      });
      const id = await stack.submit({
        objective: 'Write a poem',
        agents: [
          { name: 'draft', role: 'documenter', task: 'Draft a poem' },
          { name: 'verse', role: 'poet', task: 'Turn the draft into verse', depends_on: ['draft'] },
        ],
      });
      await stack.wait<SessionView>(id, (session) =>
        session.tasks.some((task) => task.name === 'draft' && task.status === 'running'),
      );
      // Not through DELETE /v1/roles (which refuses while the session runs): straight in the table.
      await stack.server.app.database.db
        .deleteFrom('custom_roles' as never)
        .where('name' as never, '=', 'poet' as never)
        .execute();
      release();
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'failed');
      const verse = done.tasks.find((task) => task.name === 'verse');
      assert.equal(verse?.status, 'failed');
      assert.equal(verse?.error, "Role 'poet' is neither built in nor defined for this tenant");
      assert.match(done.error ?? '', /^task verse failed: Role 'poet' is neither built in nor defined/);
      const events = await requestJson<{ items: EventView[] }>(`${url}/v1/sessions/${id}/events`);
      const result = events.body.items.find(
        (event) => event.type === 'task.result' && event.data.name === 'verse',
      );
      assert.equal(result?.data.code, 'INVALID_ROLE', JSON.stringify(result));
      assert.equal(
        stack.llm.requests.filter((request) => request.promptText.includes('Your task (verse)')).length,
        0,
        'no model call for the task of the deleted role',
      );
      const health = await requestJson(`${url}/v1/sessions/${id}`);
      assert.equal(health.status, 200, 'the server goes on serving');
    });
  });
}
