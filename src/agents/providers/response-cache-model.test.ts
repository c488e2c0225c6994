// The response cache at the model call: what is cacheable, what the key covers, what is kept and
// how a hit is replayed. A fake provider model counts the calls that reach it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type {
  LanguageModelV4,
  LanguageModelV4CallOptions,
  LanguageModelV4FinishReason,
  LanguageModelV4StreamPart,
} from '@ai-sdk/provider';
import { tool } from 'ai';
import { z } from 'zod';
import { providersConfigSchema } from '../../config/llm-schema.ts';
import { streamModelCall } from '../runtimes/ai-sdk/model-stream.ts';
import { createMemoryResponseCache, type ResponseCache } from '../runtimes/ai-sdk/response-cache.ts';
import { createCacheModel, withResponseCache } from './response-cache-model.ts';
import { runAsTenant } from './tenant-models.ts';

const USAGE = {
  inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 5, text: 5, reasoning: 0 },
};
const STOP: LanguageModelV4FinishReason = { unified: 'stop', raw: 'stop' };

/**
 * A provider model answering `answer` (for the nth call when given `(call, n)`). With `gate`, its
 * answers wait for it, and, like a provider's, a stream then fails with the call's abort reason.
 */
function fakeModel(
  answer: (call: LanguageModelV4CallOptions, n: number) => LanguageModelV4StreamPart[],
  gate?: Promise<void>,
) {
  const calls: LanguageModelV4CallOptions[] = [];
  const model: LanguageModelV4 = {
    specificationVersion: 'v4',
    provider: 'fake',
    modelId: 'm',
    supportedUrls: {},
    async doGenerate(options) {
      calls.push(options);
      await gate;
      return {
        content: [{ type: 'text', text: 'generated' }],
        finishReason: STOP,
        usage: USAGE,
        warnings: [],
      };
    },
    async doStream(options) {
      calls.push(options);
      const parts = answer(options, calls.length);
      return {
        stream: new ReadableStream({
          async start(controller) {
            if (gate !== undefined) {
              const stopped = new Promise<boolean>((resolve) => {
                options.abortSignal?.addEventListener('abort', () => resolve(true), { once: true });
              });
              if (await Promise.race([gate.then(() => false), stopped])) {
                controller.error(options.abortSignal?.reason);
                return;
              }
            }
            try {
              for (const part of parts) controller.enqueue(part);
              controller.close();
            } catch {
              // The reader stopped the stream meanwhile.
            }
          },
        }),
      };
    },
  };
  return { model, calls };
}

const textAnswer = (text: string): LanguageModelV4StreamPart[] => [
  { type: 'stream-start', warnings: [] },
  { type: 'text-start', id: 't' },
  { type: 'text-delta', id: 't', delta: text.slice(0, 2) },
  { type: 'text-delta', id: 't', delta: text.slice(2) },
  { type: 'text-end', id: 't' },
  { type: 'finish', usage: USAGE, finishReason: STOP },
];

function setup(
  answer: (call: LanguageModelV4CallOptions) => LanguageModelV4StreamPart[] = () => textAnswer('hello'),
  cache: ResponseCache = createMemoryResponseCache(),
  cacheOn = true,
) {
  const providers = providersConfigSchema.parse({
    p: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'm', cache: cacheOn },
  });
  const fake = fakeModel(answer);
  const lookups: boolean[] = [];
  const errors: unknown[] = [];
  const unreadable: boolean[] = [];
  const getModel = withResponseCache(() => fake.model, {
    providers,
    cache,
    onLookup: (_provider, hit) => lookups.push(hit),
    onError: (error) => errors.push(error),
    onUnreadable: (_provider, first) => unreadable.push(first),
  });
  const model = getModel('p', 'm') as LanguageModelV4;
  return { model, calls: fake.calls, lookups, errors, unreadable };
}

/** A cache over a map the test can read and damage, keeping the first answer of a key as the store does. */
function mapCache(): { cache: ResponseCache; entries: Map<string, string> } {
  const entries = new Map<string, string>();
  return {
    entries,
    cache: {
      get: async (tenantId, key) => entries.get(`${tenantId}:${key}`),
      put: async (tenantId, key, entry, options) => {
        if (options?.replace || !entries.has(`${tenantId}:${key}`)) {
          entries.set(`${tenantId}:${key}`, entry.response);
        }
      },
      stats: () => ({ hits: 0, misses: 0 }),
    },
  };
}

/** An agent's model call through the runtime (model-stream.ts), as the cached answer is replayed to it. */
function agentCall(model: LanguageModelV4): Promise<string> {
  return runAsTenant('t1', () =>
    streamModelCall({
      model,
      system: 'You answer.',
      tools: undefined,
      messages: [{ role: 'user', content: 'hi' }],
      maxSteps: 1,
      maxOutputTokens: 100,
      temperature: 0,
      signal: new AbortController().signal,
      push: () => {},
      onStepUsage: () => {},
    }),
  );
}

const request = (overrides: Partial<LanguageModelV4CallOptions> = {}): LanguageModelV4CallOptions => ({
  prompt: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
  temperature: 0,
  maxOutputTokens: 100,
  ...overrides,
});

async function readAll(model: LanguageModelV4, options: LanguageModelV4CallOptions) {
  const { stream } = await model.doStream(options);
  const parts: LanguageModelV4StreamPart[] = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

const textOf = (parts: LanguageModelV4StreamPart[]) =>
  parts.map((part) => (part.type === 'text-delta' ? part.delta : '')).join('');

describe('response cache at the model call', () => {
  test('a repeated temperature-0 stream is answered from the cache, with zero usage', async () => {
    const { model, calls, lookups } = setup();
    const first = await runAsTenant('t1', () => readAll(model, request()));
    const second = await runAsTenant('t1', () => readAll(model, request()));
    assert.equal(calls.length, 1);
    assert.deepEqual(lookups, [false, true]);
    assert.equal(textOf(first), 'hello');
    assert.equal(textOf(second), 'hello');
    const finish = second.find((part) => part.type === 'finish');
    assert.equal(finish?.type === 'finish' && finish.usage.inputTokens.total, 0);
  });

  test("a tenant's own base URL is part of the key", async () => {
    const providers = providersConfigSchema.parse({
      p: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'm', cache: true },
    });
    const cacheModel = createCacheModel({ providers, cache: createMemoryResponseCache() });
    // One model object per endpoint, as tenant-models.ts builds them.
    const server = fakeModel(() => textAnswer('server'));
    const tenantA = fakeModel(() => textAnswer('from a'));
    const tenantB = fakeModel(() => textAnswer('from b'));
    const read = (fake: ReturnType<typeof fakeModel>, endpoint?: string) =>
      runAsTenant('t1', () =>
        readAll(cacheModel(fake.model, 'p', 'm', endpoint) as LanguageModelV4, request()),
      );
    assert.equal(textOf(await read(tenantA, 'http://a.example/v1')), 'from a');
    assert.equal(textOf(await read(tenantA, 'http://a.example/v1')), 'from a');
    assert.equal(tenantA.calls.length, 1, 'same endpoint: served from the cache');
    assert.equal(textOf(await read(tenantB, 'http://b.example/v1')), 'from b');
    assert.equal(tenantB.calls.length, 1, 'another endpoint: asked');
    assert.equal(textOf(await read(server)), 'server');
    assert.equal(server.calls.length, 1, "the server's endpoint: its own entry");
  });

  test("the operator's base URL, protocol, headers and structured-output mode are part of the key, its credentials are not", async () => {
    const cache = createMemoryResponseCache();
    const base = { type: 'openai-compatible', baseURL: 'http://a.example/v1', model: 'm', cache: true };
    // One process's configuration after another's, sharing the store's entries.
    const ask = async (config: Record<string, unknown>) => {
      const fake = fakeModel(() => textAnswer('answer'));
      const providers = providersConfigSchema.parse({ p: { ...base, ...config } });
      const model = createCacheModel({ providers, cache })(fake.model, 'p', 'm') as LanguageModelV4;
      await runAsTenant('t1', () => readAll(model, request()));
      return fake.calls.length;
    };
    assert.equal(await ask({}), 1, 'first: asked');
    assert.equal(await ask({}), 0, 'same configuration: served from the cache');
    assert.equal(
      await ask({ headers: { Authorization: 'Bearer rotated' } }),
      0,
      'a credential header: still served',
    );
    assert.equal(await ask({ baseURL: 'http://b.example/v1' }), 1, 'another server: asked');
    assert.equal(
      await ask({ baseURL: 'http://a.example/v1?api-version=2' }),
      1,
      'another API version: asked',
    );
    assert.equal(await ask({ headers: { 'anthropic-beta': 'x' } }), 1, 'another header: asked');
    assert.equal(await ask({ structuredOutputs: false }), 1, 'JSON mode instead of a schema: asked');
    assert.equal(await ask({ type: 'openai', apiKey: 'k' }), 1, 'another protocol: asked');
  });

  test('doGenerate (structured output) is cached too', async () => {
    const { model, calls } = setup();
    const options = request({ responseFormat: { type: 'json', schema: { type: 'object' } } });
    await runAsTenant('t1', () => model.doGenerate(options));
    const hit = await runAsTenant('t1', () => model.doGenerate(options));
    assert.equal(calls.length, 1);
    assert.deepEqual(hit.content, [{ type: 'text', text: 'generated' }]);
    assert.equal(hit.usage.outputTokens.total, 0);
  });

  test('the key covers tools (name, description, schema), tool choice and the response format', async () => {
    const { model, calls } = setup();
    const tool = {
      type: 'function' as const,
      name: 'send_message',
      description: 'Send a message',
      inputSchema: { type: 'object', properties: { to: { type: 'string' } } },
    };
    const variants: LanguageModelV4CallOptions[] = [
      request(),
      request({ tools: [tool] }),
      request({ tools: [{ ...tool, name: 'other' }] }),
      request({ tools: [{ ...tool, description: 'Send a note' }] }),
      request({ tools: [{ ...tool, inputSchema: { type: 'object' } }] }),
      request({ tools: [tool], toolChoice: { type: 'required' } }),
      request({ responseFormat: { type: 'json' } }),
      request({ maxOutputTokens: 99 }),
    ];
    for (const options of variants) await runAsTenant('t1', () => readAll(model, options));
    assert.equal(calls.length, variants.length, 'every variant is its own entry');
    for (const options of variants) await runAsTenant('t1', () => readAll(model, options));
    assert.equal(calls.length, variants.length, 'and each is found again');
    // Another tenant never sees them.
    await runAsTenant('t2', () => readAll(model, request()));
    assert.equal(calls.length, variants.length + 1);
  });

  test('not cached: temperature other than 0, no tenant, provider without `cache`', async () => {
    const warm = setup();
    await runAsTenant('t1', () => readAll(warm.model, request({ temperature: 0.2 })));
    await runAsTenant('t1', () => readAll(warm.model, request({ temperature: 0.2 })));
    await readAll(warm.model, request());
    await readAll(warm.model, request());
    assert.equal(warm.calls.length, 4);
    assert.deepEqual(warm.lookups, []);
    const off = setup(undefined, undefined, false);
    await runAsTenant('t1', () => readAll(off.model, request()));
    await runAsTenant('t1', () => readAll(off.model, request()));
    assert.equal(off.calls.length, 2);
  });

  test('tool calls are kept and replayed as tool calls, so the caller runs the tool again', async () => {
    const { model, calls } = setup(() => [
      { type: 'stream-start', warnings: [] },
      { type: 'tool-input-start', id: 'c1', toolName: 'send_message' },
      { type: 'tool-input-delta', id: 'c1', delta: '{"to":"w"}' },
      { type: 'tool-input-end', id: 'c1' },
      { type: 'tool-call', toolCallId: 'c1', toolName: 'send_message', input: '{"to":"w"}' },
      { type: 'finish', usage: USAGE, finishReason: { unified: 'tool-calls', raw: 'tool_calls' } },
    ]);
    await runAsTenant('t1', () => readAll(model, request()));
    const replay = await runAsTenant('t1', () => readAll(model, request()));
    assert.equal(calls.length, 1);
    assert.deepEqual(
      replay.filter((part) => part.type === 'tool-call'),
      [{ type: 'tool-call', toolCallId: 'c1', toolName: 'send_message', input: '{"to":"w"}' }],
    );
  });

  test('answers that failed, stopped oddly or hold provider-executed parts are not kept', async () => {
    const answers: LanguageModelV4StreamPart[][] = [
      [...textAnswer('x').slice(0, 3), { type: 'error', error: new Error('broke') }],
      textAnswer('x').slice(0, 3), // no finish: the stream ended early
      [
        ...textAnswer('x').slice(0, -1),
        { type: 'finish', usage: USAGE, finishReason: { unified: 'other', raw: undefined } },
      ],
      [
        { type: 'tool-call', toolCallId: 's', toolName: 'web_search', input: '{}', providerExecuted: true },
        { type: 'finish', usage: USAGE, finishReason: STOP },
      ],
    ];
    for (const parts of answers) {
      const { model, calls } = setup(() => parts);
      await runAsTenant('t1', () => readAll(model, request()));
      await runAsTenant('t1', () => readAll(model, request()));
      assert.equal(calls.length, 2, JSON.stringify(parts.at(-1)));
    }
  });

  test("a server's own name for a normal end (TGI's eos_token) is kept, an unknown one is not", async () => {
    const endingWith = (raw: string) => () => [
      ...textAnswer('done').slice(0, -1),
      { type: 'finish' as const, usage: USAGE, finishReason: { unified: 'other' as const, raw } },
    ];
    for (const [raw, asked] of [
      ['eos_token', 1],
      ['END_TURN', 1],
      ['abort', 2],
    ] as const) {
      const { model, calls } = setup(endingWith(raw));
      await runAsTenant('t1', () => readAll(model, request()));
      const second = await runAsTenant('t1', () => readAll(model, request()));
      assert.equal(calls.length, asked, raw);
      assert.equal(textOf(second), 'done');
    }
  });

  test('a failing cache is reported and the call goes to the provider', async () => {
    const broken: ResponseCache = {
      get: async () => {
        throw new Error('store down');
      },
      put: async () => {
        throw new Error('store down');
      },
      stats: () => ({ hits: 0, misses: 0 }),
    };
    const { model, calls, errors, lookups } = setup(undefined, broken);
    const parts = await runAsTenant('t1', () => readAll(model, request()));
    assert.equal(textOf(parts), 'hello');
    assert.equal(calls.length, 1);
    assert.equal(errors.length, 2, 'the read and the write');
    assert.deepEqual(lookups, []);
  });

  test('an entry that is no answer (a damaged row) is a miss: the provider answers, and replaces it', async () => {
    const damaged = [
      '{"content":[{"type":"text","te',
      'null',
      '{"content":[null],"finishReason":{"unified":"stop","raw":"stop"}}',
      '{"content":[{"type":"text"}],"finishReason":{"unified":"stop","raw":"stop"}}',
      '{"content":[{"type":"text","text":"x"}],"finishReason":{}}',
      '{"content":[{"type":"tool-call","toolName":"send_message"}],"finishReason":{"unified":"tool-calls","raw":"tool_calls"}}',
    ];
    for (const row of damaged) {
      const { cache, entries } = mapCache();
      const { model, calls, lookups, unreadable } = setup(undefined, cache);
      assert.equal(await agentCall(model), 'hello');
      const [key] = [...entries.keys()];
      assert.ok(key, 'the answer was kept');
      const kept = entries.get(key);
      entries.set(key, row);
      // It failed the call (a part that is null), or replayed "undefined" as the text.
      assert.equal(await agentCall(model), 'hello', row);
      assert.equal(calls.length, 2, `${row}: asked the provider again`);
      assert.equal(entries.get(key), kept, `${row}: the fresh answer replaced the entry`);
      assert.equal(await agentCall(model), 'hello', row);
      assert.equal(calls.length, 2, `${row}: answered from the cache again`);
      assert.deepEqual(lookups, [false, true], `${row}: neither a hit nor a plain miss`);
      assert.deepEqual(unreadable, [true], row);
    }
  });

  test('a damaged entry that no answer replaces is counted at every call, reported as first once', async () => {
    const { cache, entries } = mapCache();
    assert.equal(await agentCall(setup(undefined, cache).model), 'hello');
    const [key] = [...entries.keys()];
    assert.ok(key, 'the answer was kept');
    entries.set(key, '{"content":[null]}');
    // Answers that end in an unknown way are not kept: nothing replaces the damaged entry.
    const odd = setup(
      () => [
        ...textAnswer('hello').slice(0, -1),
        { type: 'finish', usage: USAGE, finishReason: { unified: 'other', raw: undefined } },
      ],
      cache,
    );
    await agentCall(odd.model);
    await agentCall(odd.model);
    assert.equal(odd.calls.length, 2, 'both calls went to the provider');
    assert.deepEqual(odd.unreadable, [true, false], 'logged once, counted each time');
    assert.equal(entries.get(key), '{"content":[null]}');
  });

  test("a replay stops at the call's abort: the next read fails with its reason, nothing after it comes", async () => {
    const { model, calls } = setup(() => [
      ...textAnswer('hello').slice(0, -1),
      { type: 'tool-call', toolCallId: 'c1', toolName: 'send_message', input: '{"to":"w"}' },
      { type: 'finish', usage: USAGE, finishReason: { unified: 'tool-calls', raw: 'tool_calls' } },
    ]);
    await runAsTenant('t1', () => readAll(model, request()));
    // With a reason (the runtime's budget stop) and without one (the signal's own AbortError).
    for (const reason of [new Error('budget stop'), undefined]) {
      const stop = new AbortController();
      const { stream } = await runAsTenant('t1', () => model.doStream(request({ abortSignal: stop.signal })));
      const reader = stream.getReader();
      const first = await reader.read();
      assert.equal(first.value?.type, 'stream-start');
      stop.abort(reason);
      await assert.rejects(reader.read(), (error) => error === stop.signal.reason);
      await assert.rejects(reader.read(), (error) => error === stop.signal.reason, 'and stays failed');
    }
    assert.equal(calls.length, 1, 'the provider was asked only to fill the cache');
  });

  test('a call stopped before the cache answers is not replayed: it throws the reason, as a fetch does', async () => {
    const { model, calls, lookups } = setup();
    await runAsTenant('t1', () => readAll(model, request()));
    await runAsTenant('t1', () => model.doGenerate(request({ maxOutputTokens: 7 })));
    const stop = new AbortController();
    stop.abort(new Error('cancelled'));
    await assert.rejects(
      runAsTenant('t1', async () => model.doStream(request({ abortSignal: stop.signal }))),
      (error) => error === stop.signal.reason,
    );
    await assert.rejects(
      runAsTenant('t1', async () =>
        model.doGenerate(request({ maxOutputTokens: 7, abortSignal: stop.signal })),
      ),
      (error) => error === stop.signal.reason,
    );
    assert.deepEqual(lookups, [false, false, true, true], 'found, and not replayed');
    assert.equal(calls.length, 2);
  });

  test('a budget stop at a replayed text holds back the tool call after it: the tool does not run', async () => {
    // Step 1 says something and calls the tool; step 2 (with the tool's result) answers.
    const { model } = setup((call) =>
      call.prompt.some((message) => message.role === 'tool')
        ? textAnswer('done')
        : [
            ...textAnswer('sending').slice(0, -1),
            { type: 'tool-call', toolCallId: 'c1', toolName: 'note', input: '{"text":"hi"}' },
            { type: 'finish', usage: USAGE, finishReason: { unified: 'tool-calls', raw: 'tool_calls' } },
          ],
    );
    const notes: string[] = [];
    const tools = {
      note: tool({
        description: 'Keep a note.',
        inputSchema: z.object({ text: z.string() }),
        execute: async ({ text }) => {
          notes.push(text);
          return 'noted';
        },
      }),
    };
    const run = (signal: AbortSignal, push: (text: string) => void) =>
      runAsTenant('t1', () =>
        streamModelCall({
          model,
          system: 'You keep notes.',
          messages: [{ role: 'user', content: 'note hi' }],
          tools,
          maxSteps: 4,
          maxOutputTokens: 100,
          temperature: 0,
          signal,
          push,
          onStepUsage: () => {},
        }),
      );
    assert.equal(await run(new AbortController().signal, () => {}), 'sending\n\ndone');
    assert.deepEqual(notes, ['hi'], 'both steps are cached now');
    // The runtime's budget check runs as the text is pushed, and stops the run there.
    const budgetStop = new AbortController();
    const stopped = run(budgetStop.signal, () => budgetStop.abort(new Error('budget exceeded')));
    await assert.rejects(stopped, (error) => error === budgetStop.signal.reason);
    assert.deepEqual(notes, ['hi'], 'the replayed tool call was not run again');
  });
});

describe('identical cacheable calls in flight at once', () => {
  /** A provider model whose answers wait for `release`; counts the calls that reach it. */
  function gatedSetup(answers: LanguageModelV4StreamPart[][] = [textAnswer('hello')]) {
    const providers = providersConfigSchema.parse({
      p: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'm', cache: true },
    });
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const fake = fakeModel((_call, n) => answers[Math.min(n, answers.length) - 1] ?? [], gate);
    const lookups: boolean[] = [];
    const cacheModel = createCacheModel({
      providers,
      cache: createMemoryResponseCache(),
      onLookup: (_provider, hit) => lookups.push(hit),
    });
    return {
      model: cacheModel(fake.model, 'p', 'm') as LanguageModelV4,
      calls: fake.calls,
      lookups,
      release: () => release(),
    };
  }

  /** Lets every call started so far get as far as it can without the provider's answer. */
  const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

  test('the provider is asked once: the second waits for the answer of the first, a hit', async () => {
    const { model, calls, lookups, release } = gatedSetup();
    const first = runAsTenant('t1', () => readAll(model, request()));
    const second = runAsTenant('t1', () => readAll(model, request()));
    await settle();
    release();
    assert.equal(textOf(await first), 'hello');
    const replayed = await second;
    assert.equal(textOf(replayed), 'hello');
    assert.equal(calls.length, 1, 'one provider call');
    assert.deepEqual(lookups, [false, true]);
    const finish = replayed.find((part) => part.type === 'finish');
    assert.equal(finish?.type === 'finish' && finish.usage.inputTokens.total, 0, 'the wait cost nothing');
  });

  test('a non-streamed call (structured output) waits for one in flight as well', async () => {
    const { model, calls, lookups, release } = gatedSetup();
    const first = runAsTenant('t1', () => model.doGenerate(request()));
    const second = runAsTenant('t1', () => model.doGenerate(request()));
    await settle();
    release();
    assert.deepEqual((await first).content, [{ type: 'text', text: 'generated' }]);
    assert.deepEqual((await second).content, [{ type: 'text', text: 'generated' }]);
    assert.equal(calls.length, 1);
    assert.deepEqual(lookups, [false, true]);
  });

  test("another tenant's identical call does not wait for it: entries stay per tenant", async () => {
    const { model, calls, lookups, release } = gatedSetup();
    const first = runAsTenant('t1', () => readAll(model, request()));
    const second = runAsTenant('t2', () => readAll(model, request()));
    await settle();
    release();
    await Promise.all([first, second]);
    assert.equal(calls.length, 2);
    assert.deepEqual(lookups, [false, false]);
  });

  test('when the first fails, the one that waited asks the provider itself', async () => {
    const { model, calls, lookups, release } = gatedSetup([
      [...textAnswer('x').slice(0, 3), { type: 'error', error: new Error('broke') }],
      textAnswer('hello'),
    ]);
    const first = runAsTenant('t1', () => readAll(model, request()));
    const second = runAsTenant('t1', () => readAll(model, request()));
    await settle();
    release();
    const failed = await first;
    assert.equal(failed.at(-1)?.type, 'error');
    assert.equal(textOf(await second), 'hello');
    assert.equal(calls.length, 2);
    assert.deepEqual(lookups, [false, false], 'a miss each: the second found nothing to wait for');
  });

  test('when the first is stopped by its reader, the one that waited asks the provider itself', async () => {
    const { model, calls, release } = gatedSetup();
    const { stream } = await runAsTenant('t1', () => model.doStream(request()));
    const second = runAsTenant('t1', () => readAll(model, request()));
    await settle();
    await stream.cancel(new Error('stopped'));
    release();
    assert.equal(textOf(await second), 'hello');
    assert.equal(calls.length, 2);
  });

  test('a call made while the answer of the first is being stored is served with it, not asked again', async () => {
    const providers = providersConfigSchema.parse({
      p: { type: 'openai-compatible', baseURL: 'http://llm.invalid/v1', model: 'm', cache: true },
    });
    // A store whose writes wait for the test: the first answer is complete, its entry not yet kept.
    const { cache, entries } = mapCache();
    let writeNow = () => {};
    let writes = 0;
    let held = 0;
    const slowCache: ResponseCache = {
      ...cache,
      put: async (...args) => {
        writes += 1;
        // Only the write of each first call waits.
        if (writes === held) {
          await new Promise<void>((resolve) => {
            writeNow = resolve;
          });
        }
        await cache.put(...args);
      },
    };
    const fake = fakeModel(() => textAnswer('hello'));
    const lookups: boolean[] = [];
    const model = createCacheModel({
      providers,
      cache: slowCache,
      onLookup: (_provider, hit) => lookups.push(hit),
    })(fake.model, 'p', 'm') as LanguageModelV4;
    for (const call of ['stream', 'generate'] as const) {
      const ask = () =>
        runAsTenant('t1', () =>
          call === 'stream' ? readAll(model, request()) : model.doGenerate(request({ seed: 1 })),
        );
      held = writes + 1;
      const first = ask();
      while (writes < held) await settle();
      const second = await ask();
      assert.equal(fake.calls.length, call === 'stream' ? 1 : 2, `${call}: one provider call`);
      assert.deepEqual(lookups.slice(-2), [false, true], `${call}: the second is a hit`);
      if (call === 'stream') assert.equal(textOf(second as LanguageModelV4StreamPart[]), 'hello');
      else assert.deepEqual((second as { content: unknown }).content, [{ type: 'text', text: 'generated' }]);
      writeNow();
      await first;
    }
    assert.equal(entries.size, 2);
  });

  test('a call that waits stops at its own signal with its reason; the first goes on', async () => {
    const { model, calls, release } = gatedSetup();
    const first = runAsTenant('t1', () => readAll(model, request()));
    const stop = new AbortController();
    const second = runAsTenant('t1', () => readAll(model, request({ abortSignal: stop.signal })));
    await settle();
    stop.abort(new Error('cancelled'));
    await assert.rejects(second, (error) => error === stop.signal.reason);
    release();
    assert.equal(textOf(await first), 'hello');
    assert.equal(calls.length, 1);
  });
});
