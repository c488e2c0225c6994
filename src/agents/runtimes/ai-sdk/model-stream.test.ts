// The agent's tool loop against the scripted LLM server (both wire formats): the text of a model
// call that follows a tool round trip starts a paragraph of its own in the answer, as it does in
// the streamed output, instead of running on from the text written before the tool call; each
// model call of the loop has the provider's whole per-call timeout, not a share of it; and an answer
// that streams steadily is not cut by that timeout, while one that stalls or never ends is.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { tool } from 'ai';
import { z } from 'zod';
import { type ScriptedLlmServer, startLlmServer } from '../../../../test/fixtures/llm-server.ts';
import { llmConfigSchema, providersConfigSchema } from '../../../config/llm-schema.ts';
import { AppError } from '../../../errors/app-error.ts';
import { createLanguageModel } from '../../providers/create-model.ts';
import { createLlmClient } from '../../providers/llm-client.ts';
import { streamModelCall } from './model-stream.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

describe('agent tool loop', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer();
  });
  after(() => server.close());

  for (const type of ['openai', 'anthropic'] as const) {
    test(`text after a tool round trip starts a new paragraph (${type})`, async () => {
      const providers = providersConfigSchema.parse({
        main: { type, model: 'm', apiKey: 'k', baseURL: server.openaiBaseURL },
      });
      server.enqueue(
        { text: 'I will tell the reviewer.', toolCalls: [{ name: 'note', input: { text: 'hi' } }] },
        { text: '## Summary\nDone.' },
      );
      const pushed: string[] = [];
      const text = await streamModelCall({
        model: createLanguageModel('main', providers.main!, 'm'),
        system: 'You are an engineer.',
        messages: [{ role: 'user', content: 'Work.' }],
        tools: {
          note: tool({
            description: 'Leave a note.',
            inputSchema: z.object({ text: z.string() }),
            execute: async () => 'noted',
          }),
        },
        maxSteps: 8,
        maxOutputTokens: 100,
        temperature: undefined,
        signal: new AbortController().signal,
        push: (chunk) => pushed.push(chunk),
        onStepUsage: () => undefined,
      });
      assert.equal(text, 'I will tell the reviewer.\n\n## Summary\nDone.');
      assert.equal(pushed.join(''), text, 'the streamed output is the answer');
    });
  }

  test('only the first call refusing the tools is a refusal of tools; a later 400 naming a tool is a failure', async () => {
    const providers = providersConfigSchema.parse({
      main: { type: 'openai', model: 'm', apiKey: 'k', baseURL: server.openaiBaseURL },
    });
    const run = async () => {
      const seen: string[] = [];
      const error = await streamModelCall({
        model: createLanguageModel('main', providers.main!, 'm'),
        system: 'You keep notes.',
        messages: [{ role: 'user', content: 'Work.' }],
        tools: {
          note: tool({
            description: 'Leave a note.',
            inputSchema: z.object({ text: z.string() }),
            execute: async () => 'noted',
          }),
        },
        maxSteps: 8,
        maxOutputTokens: 100,
        temperature: undefined,
        signal: new AbortController().signal,
        push: () => undefined,
        onStepUsage: () => undefined,
        onToolsRefused: () => seen.push('onToolsRefused'),
        observer: {
          callStarted: (step) => seen.push(`started ${step}`),
          callFinished: () => seen.push('finished'),
          callFailed: () => seen.push('failed'),
          callRefusedTools: () => seen.push('refused tools'),
        },
      }).catch((e: unknown) => e);
      assert.ok(error instanceof Error);
      return seen;
    };
    server.enqueue({ error: 400, message: 'this model does not support tools' });
    assert.deepEqual(await run(), ['started 1', 'refused tools', 'onToolsRefused']);
    server.enqueue(
      { toolCalls: [{ id: 'c1', name: 'note', input: { text: 'a' } }] },
      { error: 400, message: "invalid tool_call_id 'c1'" },
    );
    assert.deepEqual(await run(), ['started 1', 'finished', 'started 2', 'failed']);
  });

  test('each model call of the tool loop has the whole per-call timeout', async () => {
    // Three calls of ~0.7 s each: together longer than the 1.5 s timeout, each well within it.
    const client = createLlmClient({
      providers: providersConfigSchema.parse({
        main: { type: 'openai', model: 'm', apiKey: 'k', baseURL: server.openaiBaseURL, timeoutSeconds: 1.5 },
      }),
      llm: llmConfigSchema.parse({ retry: { maxAttempts: 1 } }),
    });
    server.enqueue(
      { delayMs: 700, toolCalls: [{ name: 'note', input: { text: 'a' } }] },
      { delayMs: 700, toolCalls: [{ name: 'note', input: { text: 'b' } }] },
      { delayMs: 700, text: 'Done.' },
    );
    const notes: string[] = [];
    const { value, attempts } = await client.call(
      'engineer',
      new AbortController().signal,
      ({ model, signal, nextCall }) =>
        streamModelCall({
          model,
          system: 'You keep notes.',
          messages: [{ role: 'user', content: 'Work.' }],
          tools: {
            note: tool({
              description: 'Leave a note.',
              inputSchema: z.object({ text: z.string() }),
              execute: async ({ text }) => {
                notes.push(text);
                return 'noted';
              },
            }),
          },
          maxSteps: 8,
          maxOutputTokens: 100,
          temperature: undefined,
          signal,
          push: () => undefined,
          nextCall,
          onStepUsage: () => undefined,
        }),
    );
    assert.equal(value, 'Done.');
    assert.equal(attempts, 1);
    assert.deepEqual(notes, ['a', 'b']);
  });

  /** A client of one openai provider with `limits`, trying each call `maxAttempts` times. */
  function clientWith(limits: Record<string, number>, maxAttempts = 1) {
    return createLlmClient({
      providers: providersConfigSchema.parse({
        main: { type: 'openai', model: 'm', apiKey: 'k', baseURL: server.openaiBaseURL, ...limits },
      }),
      llm: llmConfigSchema.parse({ retry: { maxAttempts, baseDelayMs: 10 } }),
    });
  }

  /** One answer without tools through `client`: its text and the attempts it took. */
  function answer(client: ReturnType<typeof createLlmClient>) {
    return client.call('engineer', new AbortController().signal, ({ model, signal, nextCall }) =>
      streamModelCall({
        model,
        system: 'You write.',
        messages: [{ role: 'user', content: 'Write.' }],
        tools: undefined,
        maxSteps: 1,
        maxOutputTokens: 1000,
        temperature: undefined,
        signal,
        push: () => undefined,
        nextCall,
        onStepUsage: () => undefined,
      }),
    );
  }

  test('an Anthropic stream that ends before its first text, without its end, is retried, not an empty answer', async () => {
    // Cut after 0, 1 and 2 frames (nothing; message_start; content_block_start): the provider package
    // then reports no finish at all, unlike a stream cut after some text (`interrupted`).
    const client = createLlmClient({
      providers: providersConfigSchema.parse({
        main: { type: 'anthropic', model: 'm', apiKey: 'k', baseURL: server.anthropicBaseURL },
      }),
      llm: llmConfigSchema.parse({ retry: { maxAttempts: 2, baseDelayMs: 10 } }),
    });
    for (const frames of [0, 1, 2]) {
      server.enqueue({ text: 'Not this.', endAfterFrames: frames }, { text: 'Whole answer.' });
      const { value, attempts } = await answer(client);
      assert.equal(value, 'Whole answer.', `cut after ${frames} frames`);
      assert.equal(attempts, 2, `cut after ${frames} frames`);
    }
  });

  test('a tool that runs longer than the time limits does not time the attempt out', async () => {
    // The limits bound the provider's answers; the tool run between two model calls is none of them.
    const client = clientWith({ timeoutSeconds: 0.4, idleTimeoutSeconds: 0.4 }, 2);
    server.enqueue({ toolCalls: [{ name: 'note', input: { text: 'a' } }] }, { text: 'Done.' });
    const notes: string[] = [];
    const { value, attempts } = await client.call(
      'engineer',
      new AbortController().signal,
      ({ model, signal, nextCall, betweenCalls }) =>
        streamModelCall({
          model,
          system: 'You keep notes.',
          messages: [{ role: 'user', content: 'Work.' }],
          tools: {
            note: tool({
              description: 'Leave a note.',
              inputSchema: z.object({ text: z.string() }),
              execute: async ({ text }) => {
                await sleep(1000);
                notes.push(text);
                return 'noted';
              },
            }),
          },
          maxSteps: 8,
          maxOutputTokens: 100,
          temperature: undefined,
          signal,
          push: () => undefined,
          nextCall,
          betweenCalls,
          onStepUsage: () => undefined,
        }),
    );
    assert.equal(value, 'Done.');
    assert.equal(attempts, 1);
    assert.deepEqual(notes, ['a'], 'the tool ran once, not again in a retry');
  });

  // ~2.5 s in all, a chunk every 80 ms: longer than a 1 s limit, no pause near it.
  const steady = { text: 'word '.repeat(30), chunkSize: 5, chunkDelayMs: 80 };

  test('an answer that streams steadily for longer than timeoutSeconds is not cut', async () => {
    server.enqueue(steady);
    const { value, attempts } = await answer(clientWith({ timeoutSeconds: 1 }));
    assert.equal(value, steady.text);
    assert.equal(attempts, 1);
  });

  test('an answer that stalls mid-stream is cut after idleTimeoutSeconds and retried', async () => {
    server.enqueue({ text: 'word '.repeat(30), chunkSize: 5, stallAfterFrames: 3 }, { text: 'Done.' });
    const { value, attempts } = await answer(clientWith({ timeoutSeconds: 60, idleTimeoutSeconds: 0.5 }, 2));
    assert.equal(value, 'Done.');
    assert.equal(attempts, 2);
    server.enqueue({ text: 'word '.repeat(30), chunkSize: 5, stallAfterFrames: 3 });
    const error = await answer(clientWith({ timeoutSeconds: 60, idleTimeoutSeconds: 0.5 })).catch(
      (e: unknown) => e,
    );
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'TIMEOUT');
    assert.match(error.message, /the answer stalled: nothing came for 0\.5 s while it streamed/);
  });

  test('maxCallSeconds bounds an answer however steadily it streams', async () => {
    server.enqueue(steady);
    const error = await answer(clientWith({ timeoutSeconds: 60, maxCallSeconds: 1 })).catch(
      (e: unknown) => e,
    );
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'TIMEOUT');
    assert.match(error.message, /the answer took longer than 1 s/);
  });
});
