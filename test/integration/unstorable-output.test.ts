// Model, command and orchestrator output holding U+0000 (NUL), which PostgreSQL's text cannot hold,
// or an unpaired surrogate ends its run as usual, stored with U+FFFD in their place, the same on
// SQLite and PostgreSQL: on PostgreSQL the task's finish failed until its lease expired.
// PostgreSQL needs --test-global-setup=test/fixtures/postgres-global-setup.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { type ScriptedLlmServer, type ScriptedReply, startLlmServer } from '../fixtures/llm-server.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { createTestDatabase, type TestDatabase } from '../fixtures/postgres.ts';
import {
  readAllEvents,
  requestJson,
  startTestServer,
  TEST_RUNNERS,
  type TestServer,
  waitForSession,
} from '../fixtures/server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const NUL = '\u0000';
const LONE_SURROGATE = '\uD800';
const FFFD = '\uFFFD';

interface SessionView {
  id: string;
  status: string;
  error: string | null;
  result: string | null;
  tasks: Array<{
    name: string;
    status: string;
    attempts: number;
    result: string | null;
    error: string | null;
    instructions: string;
  }>;
}

interface EventView {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

/** Runners whose output and error hold NUL (octal escapes: the shell's printf writes the byte). */
const RUNNERS = {
  ...TEST_RUNNERS,
  nul: { command: ['sh', '-c', "printf 'a\\000b\\n'; printf 'warn\\000ing\\n' >&2"] },
  nulfail: { command: ['sh', '-c', "printf 'bro\\000ken' >&2; exit 3"] },
};

/** The text a session's `task.output` events rebuild for one stream. */
function outputText(events: EventView[], stream: string): string {
  return events
    .filter((event) => event.type === 'task.output' && event.data.stream === stream)
    .map((event) => `${event.data.line as string}${event.data.partial ? '' : '\n'}`)
    .join('');
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`output the store cannot keep as written (${store})`, { timeout: 120_000 }, () => {
    let database: TestDatabase | undefined;
    let llm: ScriptedLlmServer;
    let server: TestServer;

    before(async () => {
      if (store === 'postgres') database = await createTestDatabase();
      llm = await startLlmServer({ apiKey: 'k' });
      server = await startTestServer({
        config: {
          store: database
            ? { url: database.url, synchronous: 'normal', poolSize: 4 }
            : { synchronous: 'normal' },
          providers: {
            local: { type: 'openai-compatible', baseURL: llm.openaiBaseURL, model: 'm', apiKey: 'k' },
          },
          llm: { retry: { maxAttempts: 1 }, agentMessaging: false },
          runners: RUNNERS,
        },
      });
    });
    after(async () => {
      await server?.close();
      await llm?.close();
      await database?.drop();
    });

    test('model output holding NUL and an unpaired surrogate ends the run, stored with U+FFFD', async () => {
      llm.setHandler(() => ({ text: `hello${NUL}world ${LONE_SURROGATE} end`, chunkSize: 4 }));
      const created = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: 'Answer with NUL', agents: [{ name: 'writer', role: 'qa', task: 'write' }] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const done = await waitForSession<SessionView>(server.url, created.body.id);
      const expected = `hello${FFFD}world ${FFFD} end`;
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.tasks[0]?.attempts, 1);
      assert.equal(done.tasks[0]?.result, expected);
      assert.equal(done.result, expected);
      const events = await readAllEvents<EventView>(server.url, created.body.id);
      assert.equal(outputText(events, 'text'), expected, 'the streamed lines read as the result');
      const finished = events.find((event) => event.type === 'session.finished');
      assert.equal(finished?.data.result, expected);
    });

    test('a provider error message holding NUL fails the task once, with U+FFFD', async () => {
      llm.setHandler(() => ({ error: 400, message: `bad${NUL}request` }));
      const created = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: { objective: 'Provider refuses', agents: [{ name: 'writer', role: 'qa', task: 'write' }] },
      });
      const done = await waitForSession<SessionView>(server.url, created.body.id);
      assert.equal(done.status, 'failed');
      const error = done.tasks[0]?.error ?? '';
      assert.match(error, new RegExp(`bad${FFFD}request`));
      assert.ok(!(done.error ?? '').includes(NUL));
      // Failed by the provider's answer, not by a lease that ran out after a finish that could not be written.
      assert.doesNotMatch(error, /lease expired/);
    });

    test('command output and error holding NUL', async () => {
      const created = await requestJson<SessionView>(`${server.url}/v1/sessions`, {
        method: 'POST',
        body: {
          objective: 'Binary output',
          agents: [
            { name: 'prints', role: 'qa', task: 'print', runner: 'nul' },
            { name: 'fails', role: 'qa', task: 'fail', runner: 'nulfail' },
          ],
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const done = await waitForSession<SessionView>(server.url, created.body.id);
      const prints = done.tasks.find((task) => task.name === 'prints');
      const fails = done.tasks.find((task) => task.name === 'fails');
      assert.equal(prints?.status, 'succeeded', prints?.error ?? '');
      assert.equal(prints?.result, `a${FFFD}b`);
      assert.equal(fails?.status, 'failed');
      assert.equal(fails?.attempts, 1, 'failed by its exit code, not by a finish that could not be written');
      assert.equal(fails?.error, `Runner nulfail exited with code 3: bro${FFFD}ken`);
      const events = await readAllEvents<EventView>(server.url, created.body.id);
      assert.equal(outputText(events, 'stdout'), `a${FFFD}b\n`);
      assert.match(outputText(events, 'stderr'), new RegExp(`warn${FFFD}ing\\n`));
    });
  });

  describe(`orchestrator output holding NUL (${store})`, { timeout: 120_000 }, () => {
    test('plan, agent message and synthesis are stored with U+FFFD and the session completes', async (t) => {
      const stack = await startOrchestratorStack(t, { store, llm: { agentMessaging: true } });
      let sent = false;
      stack.llm.setHandler((request): ScriptedReply => {
        switch (llmRequestKind(request)) {
          case 'plan': {
            const writer = { ...plannedTask('writer', 'engineer'), instructions: `Write${NUL} it` };
            return {
              object: {
                rationale: `why${NUL}`,
                phases: [{ name: 'one', tasks: [writer, plannedTask('peer', 'qa')] }],
              },
            };
          }
          case 'synthesis':
            return { text: `Done${NUL}${LONE_SURROGATE}.` };
          default:
            if (request.promptText.includes('Your task (writer)') && !sent) {
              sent = true;
              return { toolCalls: [{ name: 'send_message', input: { to: 'peer', message: `psst${NUL}` } }] };
            }
            return { text: `## Summary\nok${NUL}` };
        }
      });
      const id = await stack.submit({ objective: 'Plan with NUL' });
      const done = await stack.wait<SessionView>(id);
      assert.equal(done.status, 'completed', done.error ?? '');
      assert.equal(done.result, `Done${FFFD}${FFFD}.`);
      const writer = done.tasks.find((task) => task.name === 'writer');
      assert.equal(writer?.instructions, `Write${FFFD} it`);
      assert.equal(writer?.result, `## Summary\nok${FFFD}`);

      const plans = await requestJson<{ items: Array<{ plan: unknown }> }>(
        `${stack.server.url}/v1/sessions/${id}/plans`,
      );
      assert.equal(plans.status, 200);
      const planText = JSON.stringify(plans.body);
      assert.ok(planText.includes(`Write${FFFD} it`), planText);
      assert.ok(!planText.includes('\\u0000'), planText);
      const events = await readAllEvents<EventView>(stack.server.url, id);
      const message = events.find((event) => event.type === 'agent.message');
      assert.ok(message, 'the agent message was stored');
      assert.ok(JSON.stringify(message.data).includes(`psst${FFFD}`), JSON.stringify(message.data));
      assert.deepEqual(
        events.filter((e) => JSON.stringify(e).includes('\\u0000')),
        [],
      );
      assert.ok(!JSON.stringify(events).includes('\\ud800'));
    });
  });
}
