// Identical cacheable calls in flight at once through the LLM client, against the scripted LLM
// server: the call that waits for another's answer is held to the time limits of that answer, which
// streams for both, not to the start limit of an answer of its own that it never asked for; and
// when it asks the provider itself after all, its limits count from its own request.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { type ScriptedLlmServer, startLlmServer } from '../../../test/fixtures/llm-server.ts';
import { waitFor } from '../../../test/fixtures/wait-for.ts';
import { llmConfigSchema, providersConfigSchema } from '../../config/llm-schema.ts';
import { streamModelCall } from '../runtimes/ai-sdk/model-stream.ts';
import { createMemoryResponseCache } from '../runtimes/ai-sdk/response-cache.ts';
import { createModelCache } from './create-model.ts';
import { createLlmClient } from './llm-client.ts';
import { withResponseCache } from './response-cache-model.ts';
import { runAsTenant } from './tenant-models.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const ANSWER = 'a steady answer that streams in many small pieces';

describe('a call that waits for an identical one in flight, through the LLM client', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer();
  });
  after(() => server.close());

  /** A client (one attempt per call) whose provider's answers are behind the response cache. */
  function setup(limits: { timeoutSeconds: number; idleTimeoutSeconds: number; maxCallSeconds?: number }) {
    server.requests.length = 0;
    const providers = providersConfigSchema.parse({
      main: { type: 'openai-compatible', model: 'm', baseURL: server.openaiBaseURL, cache: true, ...limits },
    });
    const lookups: boolean[] = [];
    const client = createLlmClient({
      providers,
      llm: llmConfigSchema.parse({ retry: { maxAttempts: 1 } }),
      logger: pino({ level: 'silent' }),
      getModel: withResponseCache(createModelCache(providers), {
        providers,
        cache: createMemoryResponseCache(),
        onLookup: (_provider, hit) => lookups.push(hit),
      }),
    });
    /** An agent's model call of tenant t1: its answer, or the message of its failure. */
    const ask = () =>
      runAsTenant('t1', () =>
        client.call('engineer', new AbortController().signal, ({ model, signal }) =>
          streamModelCall({
            model,
            system: 'You answer.',
            messages: [{ role: 'user', content: 'hi' }],
            tools: undefined,
            maxSteps: 1,
            maxOutputTokens: 100,
            temperature: 0,
            signal,
            push: () => {},
            onStepUsage: () => {},
          }),
        ),
      ).then(
        (result) => result.value,
        (error: unknown) => `failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    return { ask, lookups };
  }

  test("it waits as long as the first one's answer streams, past its own start limit", async () => {
    // The answer starts at once and streams steadily for several times the start limit.
    server.enqueue({ text: ANSWER, chunkSize: 4, chunkDelayMs: 150 });
    const { ask, lookups } = setup({ timeoutSeconds: 0.5, idleTimeoutSeconds: 1 });
    const first = ask();
    await waitFor(() => server.requests.length === 1, 10_000, 'the first call to reach the server');
    const second = ask();
    assert.deepEqual(await Promise.all([first, second]), [ANSWER, ANSWER]);
    assert.equal(server.requests.length, 1, 'the provider was asked once');
    assert.deepEqual(lookups, [false, true], 'the second one is a hit');
  });

  // The second one asks the provider itself once the first is cut, its own request under limits
  // of its own: none of the wait's time counts against them, and they do apply to it.
  const cut = [
    {
      how: 'for a stall mid-answer',
      first: { text: ANSWER, chunkSize: 4, chunkDelayMs: 100, stallAfterFrames: 6 },
      limits: { timeoutSeconds: 1.5, idleTimeoutSeconds: 0.5 },
      failure: /the answer stalled/,
      // It takes a while to start, well within the start limit.
      second: { text: ANSWER, delayMs: 300 },
      secondResult: ANSWER,
    },
    {
      how: 'for an answer that never starts',
      first: { hang: true as const },
      limits: { timeoutSeconds: 0.8, idleTimeoutSeconds: 0.8 },
      failure: /no answer within/,
      second: { text: ANSWER, delayMs: 300 },
      secondResult: ANSWER,
    },
    {
      how: 'and its own answer never starts either',
      first: { hang: true as const },
      limits: { timeoutSeconds: 0.8, idleTimeoutSeconds: 0.8, maxCallSeconds: 8 },
      failure: /no answer within/,
      second: { hang: true as const },
      secondResult: "failed: provider 'main' (model m) timed out after 1 attempt(s): no answer within 0.8 s",
    },
  ];
  for (const { how, first: reply, limits, failure, second: secondReply, secondResult: expected } of cut) {
    test(`when the first one is cut ${how}, it asks the provider itself with limits of its own`, async () => {
      server.enqueue(reply, secondReply);
      const { ask, lookups } = setup(limits);
      const first = ask();
      await waitFor(() => server.requests.length === 1, 10_000, 'the first call to reach the server');
      const second = ask();
      const [firstResult, secondResult] = await Promise.all([first, second]);
      assert.match(firstResult, failure);
      assert.equal(secondResult, expected);
      assert.equal(server.requests.length, 2);
      assert.deepEqual(lookups, [false, false], 'a miss each');
    });
  }
});
