// A message sent to an agent while that agent is running reaches its next turn, once. The scripted
// server orders the calls: the sender's tool call is answered only after the recipient's call has
// started (so its inbox was already read), and the recipient's answer only after the message is
// stored. Real engine, adaptive phases with agent reuse, SQLite.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ACTOR, answerByTaskName, type LlmEngine, startLlmEngine } from '../fixtures/llm-engine.ts';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import type { ScriptedReply } from '../fixtures/llm-server.ts';
import { plannedTask } from '../fixtures/planned-task.ts';

const MESSAGE = 'The rate limit is 50 requests per second';

/** A promise with its resolve function. */
function signal(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

let llm: LlmEngine;
before(async () => {
  llm = await startLlmEngine({
    model: 'm',
    continueSessions: true,
    llm: { agentMessaging: true, retry: { maxAttempts: 1 }, planner: { maxPhases: 4 } },
  });
});
after(() => llm.close());

test('a message sent while its recipient runs is delivered into the next turn, and only that one', {
  timeout: 60_000,
}, async () => {
  const sketchCalled = signal();
  const messageSent = signal();
  let gates = 0;
  // What send_message answered survey.
  let surveyToolAnswer = '';
  llm.server.setHandler(async (request): Promise<ScriptedReply> => {
    const kind = llmRequestKind(request);
    if (kind === 'plan') {
      return {
        object: {
          rationale: 'two in parallel',
          phases: [
            {
              name: 'explore',
              tasks: [plannedTask('survey', 'researcher'), plannedTask('sketch', 'architect')],
            },
          ],
        },
      };
    }
    if (kind === 'gate') {
      gates += 1;
      const next = ['refine', 'polish'][gates - 1];
      return next
        ? {
            object: {
              decision: 'continue',
              reason: `Now ${next}.`,
              next_phase: { name: next, tasks: [plannedTask(next, 'architect', { agent: 'sketch' })] },
            },
          }
        : { object: { decision: 'complete', reason: 'Done.', next_phase: null } };
    }
    if (kind === 'synthesis') return { text: 'answer' };
    if (request.promptText.includes('Your task (sketch)')) {
      sketchCalled.resolve();
      await messageSent.promise;
      return { text: 'output of sketch' };
    }
    if (request.promptText.includes('Your task (survey)')) {
      const toolAnswer = (request.body.messages as Array<{ role: string; content: unknown }>).find(
        (message) => message.role === 'tool',
      );
      if (toolAnswer) {
        surveyToolAnswer = JSON.stringify(toolAnswer.content);
        messageSent.resolve();
        return { text: 'output of survey' };
      }
      await sketchCalled.promise;
      return { toolCalls: [{ name: 'send_message', input: { to: 'sketch', message: MESSAGE } }] };
    }
    return answerByTaskName(request);
  });
  try {
    const { session } = await llm.engine.service.createSession(ACTOR, {
      objective: 'Survey, sketch, refine and polish',
      strategy: 'adaptive',
    });
    const done = await llm.waitForSession(session.id);
    assert.equal(done.status, 'completed', done.error ?? '');
    const prompt = (name: string) =>
      llm.server.requests.find((request) => request.promptText.includes(`Your task (${name})`))?.promptText ??
      '';
    assert.doesNotMatch(prompt('sketch'), /Messages from other agents/, 'sent after sketch read its inbox');
    // sketch was running with no task waiting (refine came with the next phase): survey was told.
    assert.match(surveyToolAnswer, /Message stored for sketch, which has no task waiting/);
    assert.match(prompt('refine'), new RegExp(`- from survey: ${MESSAGE}`));
    // Delivered once: the next turn has it only in the replay of the turn that received it.
    const polish = llm.server.requests.find((request) => request.promptText.includes('Your task (polish)'));
    const turns = (polish?.body.messages ?? []) as Array<{ role: string; content: string }>;
    const users = turns.filter((message) => message.role === 'user').map((message) => message.content);
    assert.equal(users.length, 3, 'sketch and refine replayed, then polish');
    assert.match(users[1] ?? '', new RegExp(`Work on refine[\\s\\S]*- from survey: ${MESSAGE}`));
    assert.doesNotMatch(users[2] ?? '', /Messages from other agents/);

    const refine = done.tasks.find((task) => task.name === 'refine');
    const rows = await llm.handle.db
      .selectFrom('messages')
      .select(['body', 'delivered_task_id'])
      .where('session_id', '=', session.id)
      .execute();
    assert.deepEqual(rows, [{ body: MESSAGE, delivered_task_id: refine?.id }]);
  } finally {
    llm.server.setHandler(undefined);
  }
});
