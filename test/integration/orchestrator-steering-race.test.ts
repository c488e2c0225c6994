// Steering messages racing the start of the final synthesis, on PostgreSQL with two replicas (two
// connection pools, READ COMMITTED) and on SQLite: every message the API accepts (202) reaches the
// synthesis prompt the LLM server receives; the others are refused with 409 INVALID_STATE. None is
// accepted and then never read.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { llmRequestKind } from '../fixtures/llm-request-kind.ts';
import { startOrchestratorStack } from '../fixtures/orchestrator-stack.ts';
import { plannedTask } from '../fixtures/planned-task.ts';
import { requestJson, waitForSession } from '../fixtures/server.ts';

interface SessionView {
  status: string;
  error: string | null;
}

const ROUNDS = 8;
const POSTERS = 6;
/** Per round; their text stays far below the prompt's steering bound (12,000 characters, 200 messages). */
const MAX_MESSAGES = 180;
/**
 * Once the agent may answer, each poster waits this long between posts, so that the posts still run
 * when the synthesis starts on a loaded machine (unpaced, all of them could be spent before it).
 */
const PACE_AFTER_RELEASE_MS = 20;

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`steering racing the synthesis start (${store})`, { timeout: 240_000 }, () => {
    test('every accepted message is in the synthesis prompt', async (t) => {
      const { llm, at } = await startOrchestratorStack(t, { store, replicas: store === 'postgres' ? 2 : 1 });
      // The agent answers once the round's posters are under way, so the synthesis starts while they
      // still post, however slow the machine (a fixed delay let them all finish first under load).
      let postersUnderWay: Promise<void> = Promise.resolve();
      llm.setHandler(async (request) => {
        switch (llmRequestKind(request)) {
          case 'plan':
            return {
              object: { rationale: 'r', phases: [{ name: 'one', tasks: [plannedTask('a', 'engineer')] }] },
            };
          case 'synthesis':
            return { text: 'The answer.' };
          default:
            await postersUnderWay;
            return { text: '## Summary\nDone.', delayMs: 20 };
        }
      });

      let refusedInRace = 0;
      for (let round = 0; round < ROUNDS; round += 1) {
        const objective = `Race ${round}`;
        let release = () => {};
        postersUnderWay = new Promise((resolve) => {
          release = resolve;
        });
        const created = await requestJson<{ id: string }>(`${at(round)}/v1/sessions`, {
          method: 'POST',
          body: { objective },
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const id = created.body.id;
        const accepted: string[] = [];
        let sent = 0;
        let stop = false;
        const post = async (poster: number) => {
          while (!stop && sent < MAX_MESSAGES) {
            const text = `steer r${round} n${sent++} p${poster}`;
            const reply = await requestJson<{ code?: string }>(`${at(sent)}/v1/sessions/${id}/messages`, {
              method: 'POST',
              body: { message: text },
            });
            if (reply.status === 202) {
              accepted.push(text);
              if (accepted.length === POSTERS * 2) release();
              if (accepted.length >= POSTERS * 2) await delay(PACE_AFTER_RELEASE_MS);
              continue;
            }
            assert.equal(reply.status, 409, JSON.stringify(reply.body));
            assert.equal(reply.body.code, 'INVALID_STATE');
            stop = true;
          }
        };
        await Promise.all(Array.from({ length: POSTERS }, (_, poster) => post(poster)));
        release();
        const done = await waitForSession<SessionView>(at(0), id, undefined, 60_000);
        assert.equal(done.status, 'completed', done.error ?? '');
        const synthesis = llm.requests.filter(
          (request) => llmRequestKind(request) === 'synthesis' && request.promptText.includes(objective),
        );
        assert.equal(synthesis.length, 1);
        const prompt = synthesis[0]!.promptText;
        const lost = accepted.filter(
          (text) => !prompt.includes(`- ${text}\n`) && !prompt.endsWith(`- ${text}`),
        );
        assert.deepEqual(lost, [], `round ${round}: accepted (202) but never shown to the orchestrator`);
        if (stop) refusedInRace += 1;
      }
      // The posts ran into the synthesis start (a 409) in most rounds, so the race was exercised.
      assert.ok(refusedInRace > 0, 'no round reached the synthesis start');
    });
  });
}
