// The scripted LLM server, exercised through the real AI SDK provider code (OpenAI chat,
// OpenAI-compatible and Anthropic): streaming, tool calls, usage, structured output and errors.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { APICallError, generateText, type LanguageModel, Output, streamText, tool } from 'ai';
import { z } from 'zod';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';

const API_KEY = 'test-key';
// The SDK warns about unknown test model ids on stderr; that noise hides real failures.
(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

function models(server: ScriptedLlmServer, fetch?: typeof globalThis.fetch): Record<string, LanguageModel> {
  return {
    'openai-compatible': createOpenAICompatible({
      name: 'local',
      baseURL: server.openaiBaseURL,
      apiKey: API_KEY,
      includeUsage: true,
      supportsStructuredOutputs: true,
      fetch,
    }).chatModel('local-model'),
    openai: createOpenAI({ baseURL: server.openaiBaseURL, apiKey: API_KEY, fetch }).chat('gpt-test'),
    anthropic: createAnthropic({ baseURL: server.anthropicBaseURL, apiKey: API_KEY, fetch })('claude-test'),
  };
}

describe('scripted LLM server', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer({ apiKey: API_KEY });
  });
  after(async () => {
    await server.close();
  });

  for (const kind of ['openai-compatible', 'openai', 'anthropic']) {
    describe(kind, () => {
      test('streams text in several deltas and reports usage', async () => {
        const model = models(server)[kind] as LanguageModel;
        server.enqueue({
          text: 'Hello from the scripted model.',
          chunkSize: 5,
          usage: { inputTokens: 11, outputTokens: 7, cacheReadTokens: 3 },
        });
        const result = streamText({ model, prompt: 'Say hello', maxRetries: 0 });
        const deltas: string[] = [];
        for await (const delta of result.textStream) deltas.push(delta);
        assert.equal(deltas.join(''), 'Hello from the scripted model.');
        assert.ok(deltas.length >= 5, `expected several deltas, got ${deltas.length}`);
        const usage = await result.usage;
        assert.equal(usage.inputTokens, 11);
        assert.equal(usage.outputTokens, 7);
        assert.equal(usage.inputTokenDetails.cacheReadTokens, 3);
        const request = server.requests.at(-1);
        assert.equal(request?.stream, true);
        assert.match(request?.promptText ?? '', /Say hello/);
      });

      test('returns a tool call and continues after the tool result', async () => {
        const model = models(server)[kind] as LanguageModel;
        server.enqueue({ toolCalls: [{ name: 'add', input: { a: 2, b: 3 } }] }, { text: 'The sum is 5.' });
        const seen: number[] = [];
        const result = await generateText({
          model,
          prompt: 'Add 2 and 3',
          maxRetries: 0,
          tools: {
            add: tool({
              description: 'Adds two numbers',
              inputSchema: z.object({ a: z.number(), b: z.number() }),
              execute: async ({ a, b }) => {
                seen.push(a + b);
                return a + b;
              },
            }),
          },
          stopWhen: ({ steps }) => steps.length >= 3,
        });
        assert.deepEqual(seen, [5]);
        assert.equal(result.text, 'The sum is 5.');
        assert.deepEqual(server.requests.at(-2)?.toolNames, ['add']);
        assert.match(server.requests.at(-1)?.promptText ?? '', /5/);
      });

      test('produces structured output', async () => {
        const model = models(server)[kind] as LanguageModel;
        server.enqueue({ object: { title: 'Plan', steps: ['a', 'b'] } });
        const result = await generateText({
          model,
          prompt: 'Make a plan',
          maxRetries: 0,
          output: Output.object({ schema: z.object({ title: z.string(), steps: z.array(z.string()) }) }),
        });
        assert.deepEqual(result.output, { title: 'Plan', steps: ['a', 'b'] });
      });

      test('trickles a JSON answer a byte at a time', async () => {
        const chunks: number[] = [];
        // Counts the body's chunks as they arrive: many small ones, not the body in one piece.
        const counting: typeof fetch = async (input, init) => {
          const response = await fetch(input, init);
          const counted = response.body?.pipeThrough(
            new TransformStream<Uint8Array, Uint8Array>({
              transform(chunk, controller) {
                chunks.push(chunk.byteLength);
                controller.enqueue(chunk);
              },
            }),
          );
          return new Response(counted, { status: response.status, headers: response.headers });
        };
        const model = models(server, counting)[kind] as LanguageModel;
        server.enqueue({ text: 'Slowly.', byteDelayMs: 1 });
        const result = await generateText({ model, prompt: 'Answer slowly', maxRetries: 0 });
        assert.equal(result.text, 'Slowly.');
        assert.ok(chunks.length > 20, `expected the body in many chunks, got ${chunks.length}`);
      });

      test('answers 429 with Retry-After in the provider format', async () => {
        const model = models(server)[kind] as LanguageModel;
        server.enqueue({ error: 429, retryAfter: 7, message: 'slow down' });
        const error = await generateText({ model, prompt: 'x', maxRetries: 0 }).then(
          () => assert.fail('expected an error'),
          (e: unknown) => e,
        );
        assert.ok(APICallError.isInstance(error), String(error));
        assert.equal(error.statusCode, 429);
        assert.equal(error.responseHeaders?.['retry-after'], '7');
        assert.match(error.message, /slow down/);
      });
    });
  }

  test('rejects a wrong key with 401 in the provider format', async () => {
    const model = createAnthropic({ baseURL: server.anthropicBaseURL, apiKey: 'wrong' })('claude-test');
    const error = await generateText({ model, prompt: 'x', maxRetries: 0 }).catch((e: unknown) => e);
    assert.ok(APICallError.isInstance(error));
    assert.equal(error.statusCode, 401);
    assert.match(error.responseBody ?? '', /authentication_error/);
  });

  test('answers 500 when nothing is scripted, then uses the handler', async () => {
    const model = models(server)['openai-compatible'] as LanguageModel;
    const error = await generateText({ model, prompt: 'x', maxRetries: 0 }).catch((e: unknown) => e);
    assert.ok(APICallError.isInstance(error));
    assert.equal(error.statusCode, 500);
    server.setHandler((request) => ({ text: `echo ${request.model}` }));
    try {
      const result = await generateText({ model, prompt: 'x', maxRetries: 0 });
      assert.equal(result.text, 'echo local-model');
    } finally {
      server.setHandler(undefined);
    }
  });

  test('a hanging reply is ended by the client abort', async () => {
    const model = models(server).anthropic as LanguageModel;
    server.enqueue({ hang: true });
    const controller = new AbortController();
    const pending = generateText({ model, prompt: 'x', maxRetries: 0, abortSignal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(pending);
  });

  test('a reset connection surfaces as a retryable error', async () => {
    const model = models(server).openai as LanguageModel;
    server.enqueue({ reset: true });
    const error = await generateText({ model, prompt: 'x', maxRetries: 0 }).catch((e: unknown) => e);
    assert.ok(error instanceof Error);
    assert.equal(server.pendingReplies(), 0);
  });
});
