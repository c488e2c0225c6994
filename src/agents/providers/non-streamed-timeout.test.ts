// The time limit of a model call that is not streamed (the orchestrator's planning rounds): its
// whole answer must come within `timeoutSeconds`, against the scripted LLM server on both wire
// formats. A server that trickles the JSON body a byte at a time does not switch the call to the
// pause limit (`idleTimeoutSeconds`) with its first byte and so run until `maxCallSeconds`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateText, Output } from 'ai';
import { z } from 'zod';
import { type ScriptedLlmServer, startLlmServer } from '../../../test/fixtures/llm-server.ts';
import { llmConfigSchema, providersConfigSchema } from '../../config/llm-schema.ts';
import { AppError } from '../../errors/app-error.ts';
import { createLlmClient } from './llm-client.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const PLAN = { steps: ['design', 'build'] };
// About 250 bytes at a byte every 20 ms: seconds for the whole body, its first byte at once.
const TRICKLED = { object: PLAN, byteDelayMs: 20 };

describe('non-streamed model call time limit', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer();
  });
  after(() => server.close());

  for (const type of ['openai', 'anthropic'] as const) {
    /** A client of one provider of `type` with a 0.5 s timeoutSeconds and no pause limit of its own. */
    function client(maxAttempts: number) {
      return createLlmClient({
        providers: providersConfigSchema.parse({
          main: { type, model: 'm', apiKey: 'k', baseURL: server.openaiBaseURL, timeoutSeconds: 0.5 },
        }),
        llm: llmConfigSchema.parse({ retry: { maxAttempts, baseDelayMs: 10, maxDelayMs: 20 } }),
      });
    }

    /** One structured answer, not streamed, as a planning round asks for it. */
    function plan(llm: ReturnType<typeof client>) {
      return llm.call('orchestrator', new AbortController().signal, async ({ model, signal }) => {
        const response = await generateText({
          model,
          prompt: 'Plan it.',
          output: Output.object({ schema: z.object({ steps: z.array(z.string()) }) }),
          maxRetries: 0,
          abortSignal: signal,
        });
        return response.output;
      });
    }

    test(`a trickled answer is cut at timeoutSeconds and retried, then fails as a timeout (${type})`, async () => {
      server.requests.length = 0;
      server.enqueue(TRICKLED, TRICKLED);
      const error = await plan(client(2)).catch((e: unknown) => e);
      assert.ok(error instanceof AppError, String(error));
      assert.equal(error.code, 'TIMEOUT');
      assert.equal((error.details as { attempts?: number }).attempts, 2);
      assert.match(error.message, /no answer within 0\.5 s/);
      assert.equal(server.requests.length, 2);
      assert.ok(
        server.requests.every((request) => !request.stream),
        'the calls were not streamed',
      );
    });

    test(`after a trickled answer is cut, the retry's prompt answer is used (${type})`, async () => {
      server.enqueue(TRICKLED, { object: PLAN });
      const { value, attempts } = await plan(client(2));
      assert.deepEqual(value, PLAN);
      assert.equal(attempts, 2);
    });
  }
});
