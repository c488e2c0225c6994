// The LLM runtime against the scripted LLM server through the real AI SDK providers: streaming into
// session output, usage and cost, retries with Retry-After, 401, circuit breaker + fallback, timeout, cache.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { tool } from 'ai';
import { pino } from 'pino';
import { z } from 'zod';
import { createModelCache } from '../../src/agents/providers/create-model.ts';
import { createLlmClient, type LlmClient } from '../../src/agents/providers/llm-client.ts';
import { withResponseCache } from '../../src/agents/providers/response-cache-model.ts';
import { runAsTenant } from '../../src/agents/providers/tenant-models.ts';
import { findBuiltInRole } from '../../src/agents/roles/catalogue.ts';
import { createAiSdkRuntime } from '../../src/agents/runtimes/ai-sdk/ai-sdk-runtime.ts';
import {
  createMemoryResponseCache,
  type ResponseCache,
} from '../../src/agents/runtimes/ai-sdk/response-cache.ts';
import type { RuntimeContext, RuntimeTask } from '../../src/agents/runtimes/runtime.ts';
import { llmConfigSchema, providersConfigSchema } from '../../src/config/llm-schema.ts';
import { MAX_TIMER_SECONDS } from '../../src/config/timer-limits.ts';
import type { Usage } from '../../src/domain/types.ts';
import { ORCHESTRATOR_ROUTE } from '../../src/engine/planner.ts';
import { streamSynthesis } from '../../src/engine/planner-synthesis.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';
import { waitFor } from '../fixtures/wait-for.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
const logger = pino({ level: 'silent' });

function makeTask(overrides: Partial<RuntimeTask> = {}): RuntimeTask {
  return {
    sessionId: 's1',
    tenantId: 't1',
    objective: 'Build a blog API',
    taskId: 'task-1',
    name: 'design',
    role: 'architect',
    instructions: 'Design the API',
    runner: null,
    agentId: 'a1',
    attempt: 1,
    dependencies: [],
    kind: 'agent',
    ...overrides,
  };
}

function makeContext(signal = new AbortController().signal) {
  const chunks: string[] = [];
  const ctx: RuntimeContext = { signal, logger, emitOutput: (_stream, chunk) => chunks.push(chunk) };
  return { ctx, chunks };
}

interface Setup {
  primary: ScriptedLlmServer;
  backup: ScriptedLlmServer;
}

function makeClient(
  setup: Setup,
  overrides: {
    llm?: Record<string, unknown>;
    primaryType?: string;
    timeoutSeconds?: number;
    /** Turns on `cache` for the primary provider, answering from this cache. */
    cache?: ResponseCache;
  } = {},
): LlmClient {
  const type = overrides.primaryType ?? 'openai-compatible';
  const providers = providersConfigSchema.parse({
    main: {
      type,
      model: type === 'anthropic' ? 'claude-test' : 'main-model',
      apiKey: 'key-main',
      baseURL: type === 'anthropic' ? setup.primary.anthropicBaseURL : setup.primary.openaiBaseURL,
      timeoutSeconds: overrides.timeoutSeconds ?? 30,
      cache: overrides.cache !== undefined,
    },
    backup: {
      type: 'openai-compatible',
      model: 'backup-model',
      baseURL: setup.backup.openaiBaseURL,
      apiKey: 'key-backup',
    },
  });
  const llm = llmConfigSchema.parse({
    defaultProvider: 'main',
    defaultFallback: ['backup'],
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterSeconds: 5 },
    circuitBreaker: { failureThreshold: 3, openSeconds: 60 },
    prices: { 'main-model': { inputPerMTok: 3, outputPerMTok: 15, cacheReadPerMTok: 0.3 } },
    ...overrides.llm,
  });
  const getModel = overrides.cache
    ? withResponseCache(createModelCache(providers), { providers, cache: overrides.cache })
    : undefined;
  return createLlmClient({ providers, llm, logger, ...(getModel ? { getModel } : {}) });
}

function makeRuntime(client: LlmClient) {
  return createAiSdkRuntime({
    client,
    resolveRole: (_tenant, name) => findBuiltInRole(name),
    dependencyOutputChars: 2000,
  });
}

describe('ai-sdk runtime against the scripted LLM server', () => {
  const setup = {} as Setup;
  before(async () => {
    setup.primary = await startLlmServer({ apiKey: 'key-main' });
    setup.backup = await startLlmServer({ apiKey: 'key-backup' });
  });
  after(async () => {
    await setup.primary.close();
    await setup.backup.close();
  });
  beforeEach(() => {
    setup.primary.requests.length = 0;
    setup.backup.requests.length = 0;
  });

  test('streams output through emitOutput, coalesced, and reports usage with cost', async () => {
    const text = 'x'.repeat(3000);
    setup.primary.enqueue({
      text,
      chunkSize: 10,
      usage: { inputTokens: 1_000_000, outputTokens: 100_000, cacheReadTokens: 500_000 },
    });
    const { ctx, chunks } = makeContext();
    const result = await makeRuntime(makeClient(setup)).run(makeTask(), ctx);
    assert.equal(result.output, text);
    assert.equal(chunks.join(''), text);
    assert.ok(chunks.length < 300 / 2, `expected coalescing, got ${chunks.length} chunks for 300 deltas`);
    assert.ok(chunks.length >= 3, 'a 3000-byte answer is flushed in ~1 KiB pieces');
    assert.deepEqual(result.usage, {
      inputTokens: 1_000_000,
      outputTokens: 100_000,
      cacheReadTokens: 500_000,
      // 0.5M uncached × $3 + 0.5M cached × $0.3 + 0.1M out × $15
      costUsd: 1.5 + 0.15 + 1.5,
    });
    const request = setup.primary.requests[0];
    assert.match(
      String((request?.body.messages as Array<{ content: string }> | undefined)?.[0]?.content),
      /software architect/,
    );
    assert.match(request?.promptText ?? '', /Design the API/);
    assert.match(request?.promptText ?? '', /Build a blog API/);
  });

  test('passes dependency outputs, shortening long ones', async () => {
    setup.primary.enqueue({ text: 'ok' });
    const { ctx } = makeContext();
    const long = `START${'y'.repeat(10_000)}END`;
    await makeRuntime(makeClient(setup)).run(
      makeTask({ dependencies: [{ taskId: 'd', name: 'research', role: 'researcher', output: long }] }),
      ctx,
    );
    const prompt = setup.primary.requests[0]?.promptText ?? '';
    assert.match(prompt, /### research \(researcher\)/);
    assert.match(prompt, /START/);
    assert.match(prompt, /END/);
    assert.match(prompt, /characters omitted/);
    assert.ok(prompt.length < 5000);
  });

  test('a 429 with Retry-After is retried after the asked delay and succeeds', async () => {
    setup.primary.enqueue({ error: 429, retryAfter: 1, message: 'rate limited' }, { text: 'after wait' });
    const { ctx } = makeContext();
    const started = Date.now();
    const result = await makeRuntime(makeClient(setup)).run(makeTask(), ctx);
    assert.equal(result.output, 'after wait');
    assert.equal(setup.primary.requests.length, 2);
    assert.ok(Date.now() - started >= 900, 'the Retry-After of 1 s was honoured');
    assert.equal(setup.backup.requests.length, 0);
  });

  test('a 401 fails at once with a clear message and no retry or fallback', async () => {
    setup.primary.setApiKey('another-key');
    try {
      const { ctx } = makeContext();
      const error = await makeRuntime(makeClient(setup))
        .run(makeTask(), ctx)
        .catch((e: unknown) => e);
      assert.ok(error instanceof AppError);
      assert.equal(error.code, 'PROVIDER_ERROR');
      assert.match(
        error.message,
        /provider 'main' \(model main-model\) rejected the credentials \(HTTP 401\)/,
      );
      assert.match(error.message, /providers\.main\.apiKey/);
      assert.doesNotMatch(error.message, /\n\s+at /);
      assert.equal(setup.primary.requests.length, 1);
      assert.equal(setup.backup.requests.length, 0);
    } finally {
      setup.primary.setApiKey('key-main');
    }
  });

  test('a 400 is not retried', async () => {
    setup.primary.enqueue({ error: 400, message: 'context too long' });
    const { ctx } = makeContext();
    const error = await makeRuntime(makeClient(setup))
      .run(makeTask(), ctx)
      .catch((e: unknown) => e);
    assert.ok(error instanceof AppError);
    assert.match(error.message, /rejected the request \(HTTP 400\): context too long/);
    assert.equal(setup.primary.requests.length, 1);
  });

  test('5xx exhausts retries, the fallback answers, and the open circuit skips the primary', async () => {
    const client = makeClient(setup);
    const runtime = makeRuntime(client);
    setup.primary.enqueue({ error: 500 }, { error: 503 }, { error: 529 });
    setup.backup.enqueue({ text: 'from backup' }, { text: 'backup again' });
    const first = await runtime.run(makeTask(), makeContext().ctx);
    assert.equal(first.output, 'from backup');
    assert.equal(setup.primary.requests.length, 3);
    // Three consecutive failures reached the threshold: the next call goes straight to the backup.
    const second = await runtime.run(makeTask(), makeContext().ctx);
    assert.equal(second.output, 'backup again');
    assert.equal(setup.primary.requests.length, 3);
    assert.equal(setup.backup.requests.length, 2);
    assert.equal(setup.backup.requests[0]?.model, 'backup-model');
  });

  test('all providers failing ends with one message naming each', async () => {
    setup.primary.enqueue({ error: 500 }, { error: 500 }, { error: 500 });
    setup.backup.enqueue({ error: 502 }, { error: 502 }, { error: 502 });
    const error = await makeRuntime(makeClient(setup))
      .run(makeTask(), makeContext().ctx)
      .catch((e: unknown) => e);
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'PROVIDER_UNAVAILABLE');
    assert.match(error.message, /All providers for role 'architect' failed: main: .*; backup: /);
  });

  test('a slow answer hits the per-call timeout and is retried', async () => {
    setup.primary.enqueue({ hang: true }, { text: 'second try' });
    // Why 2 s: the timeout bounds the whole call, the second one too; on a busy machine even a
    // scripted answer on localhost can take longer than a few hundred milliseconds.
    const client = makeClient(setup, { timeoutSeconds: 2 });
    const result = await makeRuntime(client).run(makeTask(), makeContext().ctx);
    assert.equal(result.output, 'second try');
    assert.equal(setup.primary.requests.length, 2);
  });

  test('the longest per-call timeout a timer can hold (~24.8 days) does not end every call at once', async () => {
    setup.primary.enqueue({ text: 'in time' });
    const client = makeClient(setup, { timeoutSeconds: MAX_TIMER_SECONDS });
    const result = await makeRuntime(client).run(makeTask(), makeContext().ctx);
    assert.equal(result.output, 'in time');
    assert.equal(setup.primary.requests.length, 1);
  });

  test('cancellation aborts the call at once and is not retried', async () => {
    setup.primary.enqueue({ text: 'z'.repeat(400), chunkSize: 4, chunkDelayMs: 20 });
    const controller = new AbortController();
    const { ctx, chunks } = makeContext(controller.signal);
    const pending = makeRuntime(makeClient(setup)).run(makeTask(), ctx);
    pending.catch(() => undefined);
    // Cancelled while the answer streams (a fixed delay could also come before the call was sent).
    await waitFor(() => chunks.length > 0, 10_000, 'the answer to stream');
    controller.abort(new Error('cancelled by user'));
    await assert.rejects(pending);
    assert.equal(setup.primary.requests.length, 1);
    assert.ok(chunks.join('').length < 400);
  });

  test('a mid-stream failure restarts the answer and says so in the output', async () => {
    setup.primary.enqueue(
      { text: 'partial answer that breaks', chunkSize: 4, dropAfterFrames: 4 },
      { text: 'complete answer' },
    );
    const { ctx, chunks } = makeContext();
    const result = await makeRuntime(makeClient(setup)).run(makeTask(), ctx);
    assert.equal(result.output, 'complete answer');
    const streamed = chunks.join('');
    assert.match(streamed, /^part/);
    assert.match(streamed, /\[attempt 2 via main: the answer starts over\]/);
    assert.match(streamed, /complete answer$/);
    assert.equal(setup.primary.requests.length, 2);
  });

  for (const [type, status] of [
    ['anthropic', 529],
    ['openai', 500],
    ['openai-compatible', 503],
  ] as const) {
    test(`an error the ${type} provider reports mid-stream (${status}) is retried like its HTTP status`, async () => {
      setup.primary.enqueue(
        {
          text: 'partial answer that breaks',
          chunkSize: 4,
          streamError: { afterFrames: 4, status, message: 'Overloaded' },
        },
        { text: 'complete answer' },
      );
      const { ctx, chunks } = makeContext();
      const result = await makeRuntime(makeClient(setup, { primaryType: type })).run(makeTask(), ctx);
      assert.equal(result.output, 'complete answer');
      assert.match(chunks.join(''), /\[attempt 2 via main: the answer starts over\]/);
      assert.equal(setup.primary.requests.length, 2);
    });
  }

  for (const type of ['anthropic', 'openai', 'openai-compatible']) {
    test(`an answer the ${type} provider ends early, without finishing it, is retried, not taken as the result`, async () => {
      setup.primary.enqueue(
        { text: 'partial answer that stops', chunkSize: 4, endAfterFrames: 4 },
        { text: 'complete answer' },
      );
      const { ctx, chunks } = makeContext();
      const result = await makeRuntime(makeClient(setup, { primaryType: type })).run(makeTask(), ctx);
      assert.equal(result.output, 'complete answer');
      assert.match(chunks.join(''), /\[attempt 2 via main: the answer starts over\]/);
      assert.equal(setup.primary.requests.length, 2);
    });
  }

  test('a call whose provider reports no token usage is charged its estimate, not 0 tokens', async () => {
    setup.primary.enqueue({ text: 'x'.repeat(400), withoutUsage: true });
    const result = await makeRuntime(makeClient(setup)).run(makeTask(), makeContext().ctx);
    assert.equal(result.output, 'x'.repeat(400));
    assert.equal(result.usage?.outputTokens, 100);
    assert.ok((result.usage?.inputTokens ?? 0) > 0);
    // The orchestrator's synthesis too.
    setup.primary.enqueue({ text: 'y'.repeat(200), withoutUsage: true });
    const { usage } = await streamSynthesis(makeClient(setup), ORCHESTRATOR_ROUTE, 2000, {
      tenantId: 'default',
      objective: 'Ship it',
      outputs: [{ name: 'impl', role: 'engineer', status: 'succeeded', output: 'done' }],
    });
    assert.equal(usage.outputTokens, 50);
    assert.ok(usage.inputTokens > 0);
  });

  test('a call cut off while the model streamed its reasoning is charged the reasoning it streamed', async () => {
    // 2,000 characters of reasoning (about 500 tokens) in two frames after the first, then the
    // connection drops: no text came, and the attempt was charged nothing, not even its prompt.
    const cut = { reasoning: 'r'.repeat(4000), text: 'answer', chunkSize: 1000, dropAfterFrames: 3 };
    const answer = { text: 'complete answer', usage: { inputTokens: 20, outputTokens: 5 } };
    setup.primary.enqueue(cut, answer);
    const result = await makeRuntime(makeClient(setup)).run(makeTask(), makeContext().ctx);
    assert.equal(result.output, 'complete answer');
    assert.ok((result.usage?.outputTokens ?? 0) >= 5 + 500, JSON.stringify(result.usage));
    assert.ok((result.usage?.inputTokens ?? 0) > 20, JSON.stringify(result.usage));
    // The orchestrator's synthesis too.
    setup.primary.enqueue(cut, answer);
    const { result: synthesis, usage } = await streamSynthesis(makeClient(setup), ORCHESTRATOR_ROUTE, 2000, {
      tenantId: 'default',
      objective: 'Ship it',
      outputs: [{ name: 'impl', role: 'engineer', status: 'succeeded', output: 'done' }],
    });
    assert.equal(synthesis, 'complete answer');
    assert.ok(usage.outputTokens >= 5 + 500, JSON.stringify(usage));
    assert.ok(usage.inputTokens > 20, JSON.stringify(usage));
  });

  test("the orchestrator's synthesis restarted after a mid-stream failure says so in the output", async () => {
    setup.primary.enqueue(
      { text: 'partial synthesis that breaks', chunkSize: 4, dropAfterFrames: 4 },
      { text: 'complete synthesis' },
    );
    const chunks: string[] = [];
    const { result } = await streamSynthesis(makeClient(setup), ORCHESTRATOR_ROUTE, 2000, {
      tenantId: 'default',
      objective: 'Ship it',
      outputs: [{ name: 'impl', role: 'engineer', status: 'succeeded', output: 'done' }],
      emitOutput: (text) => chunks.push(text),
    });
    assert.equal(result, 'complete synthesis');
    // What a reader of the output rebuilds: the first attempt's beginning, the notice, the answer.
    assert.match(
      chunks.join(''),
      /^part.*\n\n\[attempt 2 via main: the answer starts over\]\n\ncomplete synthesis$/s,
    );
    assert.equal(setup.primary.requests.length, 2);
  });

  // streamText (the synthesis reads the answer through it) hands an error the provider reports in
  // its stream on as an AI_StreamProviderError, not as the provider package's report: judged by
  // its status all the same, as an agent's call judges it.
  for (const [type, status] of [
    ['anthropic', 529],
    ['openai', 500],
    ['openai-compatible', 503],
  ] as const) {
    test(`an error the ${type} provider reports in the synthesis's stream (${status}) is retried like its HTTP status`, async () => {
      setup.primary.enqueue(
        {
          text: 'partial synthesis that breaks',
          chunkSize: 4,
          streamError: { afterFrames: 4, status, message: 'Overloaded' },
        },
        { text: 'complete synthesis' },
      );
      const chunks: string[] = [];
      const { result } = await streamSynthesis(
        makeClient(setup, { primaryType: type }),
        ORCHESTRATOR_ROUTE,
        2000,
        {
          tenantId: 'default',
          objective: 'Ship it',
          outputs: [{ name: 'impl', role: 'engineer', status: 'succeeded', output: 'done' }],
          emitOutput: (text) => chunks.push(text),
        },
      );
      assert.equal(result, 'complete synthesis');
      assert.match(chunks.join(''), /\[attempt 2 via main: the answer starts over\]\n\ncomplete synthesis$/);
      assert.equal(setup.primary.requests.length, 2);
    });
  }

  for (const type of ['anthropic', 'openai', 'openai-compatible'] as const) {
    test(`an error the ${type} provider reports in the synthesis's stream that will not pass on retry fails at once, with its message`, async () => {
      setup.primary.enqueue({
        text: 'partial synthesis that breaks',
        chunkSize: 4,
        streamError: { afterFrames: 4, status: 400, message: 'prompt is too long' },
      });
      const client = makeClient(setup, { primaryType: type });
      const error = await streamSynthesis(client, ORCHESTRATOR_ROUTE, 2000, {
        tenantId: 'default',
        objective: 'Ship it',
        outputs: [{ name: 'impl', role: 'engineer', status: 'succeeded', output: 'done' }],
      }).catch((e: unknown) => e);
      assert.ok(error instanceof AppError);
      assert.equal(error.code, 'PROVIDER_ERROR');
      const [target] = client.resolveChain(ORCHESTRATOR_ROUTE);
      assert.equal(
        error.message,
        `provider 'main' (model ${target?.model}) rejected the request (HTTP 400): prompt is too long`,
      );
      assert.equal(setup.primary.requests.length, 1);
    });
  }

  for (const type of ['anthropic', 'openai']) {
    test(`the orchestrator's synthesis that the ${type} provider ends early is retried, not taken as the answer`, async () => {
      setup.primary.enqueue(
        { text: 'partial synthesis that stops', chunkSize: 4, endAfterFrames: 4 },
        { text: 'complete synthesis' },
      );
      const { result } = await streamSynthesis(
        makeClient(setup, { primaryType: type }),
        ORCHESTRATOR_ROUTE,
        2000,
        {
          tenantId: 'default',
          objective: 'Ship it',
          outputs: [{ name: 'impl', role: 'engineer', status: 'succeeded', output: 'done' }],
        },
      );
      assert.equal(result, 'complete synthesis');
      assert.equal(setup.primary.requests.length, 2);
    });
  }

  // On the OpenAI wire the error chunk's `type` (invalid_request_error) tells it; it was retried
  // there as a broken-off answer, the same refused request sent again.
  for (const type of ['anthropic', 'openai', 'openai-compatible'] as const) {
    test(`an error the ${type} provider reports mid-stream that will not pass on retry fails at once, with its message`, async () => {
      setup.primary.enqueue({
        text: 'partial answer that breaks',
        chunkSize: 4,
        streamError: { afterFrames: 4, status: 400, message: 'prompt is too long' },
      });
      const client = makeClient(setup, { primaryType: type });
      const error = await makeRuntime(client)
        .run(makeTask(), makeContext().ctx)
        .catch((e: unknown) => e);
      assert.ok(error instanceof AppError);
      assert.equal(error.code, 'PROVIDER_ERROR');
      const [target] = client.resolveChain('architect');
      assert.equal(
        error.message,
        `provider 'main' (model ${target?.model}) rejected the request (HTTP 400): prompt is too long`,
      );
      assert.equal(setup.primary.requests.length, 1);
    });
  }

  // An OpenAI error reported in the stream is judged by its code before its type: before any text
  // the openai package throws it as an HTTP error with a status of its own, read from the type
  // first, and it sets one on an error reported later too; the invalid_api_key of type
  // invalid_request_error below came as "rejected the request (HTTP 400)".
  for (const type of ['openai', 'openai-compatible'] as const) {
    for (const [afterFrames, when] of [
      [0, 'as its first event'],
      [4, 'after some text'],
    ] as const) {
      test(`a key the ${type} provider refuses in its stream ${when} is a 401, not retried`, async () => {
        setup.primary.enqueue({
          text: 'answer that is refused',
          chunkSize: 4,
          streamError: { afterFrames, status: 401, message: 'Incorrect API key provided' },
        });
        const client = makeClient(setup, { primaryType: type });
        const error = await makeRuntime(client)
          .run(makeTask(), makeContext().ctx)
          .catch((e: unknown) => e);
        assert.ok(error instanceof AppError);
        assert.equal(error.code, 'PROVIDER_ERROR');
        const [target] = client.resolveChain('architect');
        assert.equal(
          error.message,
          `provider 'main' (model ${target?.model}) rejected the credentials (HTTP 401): Incorrect API key provided. Check providers.main.apiKey.`,
        );
        assert.equal(setup.primary.requests.length, 1);
        assert.equal(setup.backup.requests.length, 0);
      });
    }
  }

  // OpenAI's insufficient_quota: the account has no credit. It named no status and was retried as a
  // broken-off answer; a 429 that another attempt would meet the same way.
  // Also before any output, which the `openai` type's package reports as an HTTP error.
  for (const [type, afterFrames] of [
    ['openai', 4],
    ['openai-compatible', 4],
    ['openai', 0],
    ['openai-compatible', 0],
  ] as const) {
    test(`an insufficient_quota the ${type} provider reports after ${afterFrames} frames fails at once, as a 429`, async () => {
      setup.primary.enqueue({
        text: 'partial answer that breaks',
        chunkSize: 4,
        streamError: {
          afterFrames,
          status: 429,
          name: 'insufficient_quota',
          message: 'You exceeded your current quota, please check your plan and billing details.',
        },
      });
      const client = makeClient(setup, { primaryType: type });
      const error = await makeRuntime(client)
        .run(makeTask(), makeContext().ctx)
        .catch((e: unknown) => e);
      assert.ok(error instanceof AppError);
      // Not retried on this provider; the role's next provider is tried (it has no reply scripted).
      assert.match(
        error.message,
        /main: You exceeded your current quota, please check your plan and billing details\.; backup:/,
      );
      assert.equal(setup.primary.requests.length, 1);
    });
  }

  for (const type of ['anthropic', 'openai']) {
    test(`works with the ${type} provider type`, async () => {
      setup.primary.enqueue({
        text: `hello via ${type}`,
        usage: { inputTokens: 20, outputTokens: 5, cacheReadTokens: 10 },
      });
      const { ctx, chunks } = makeContext();
      const result = await makeRuntime(makeClient(setup, { primaryType: type })).run(makeTask(), ctx);
      assert.equal(result.output, `hello via ${type}`);
      assert.equal(chunks.join(''), `hello via ${type}`);
      assert.equal(result.usage?.inputTokens, 20);
      assert.equal(result.usage?.cacheReadTokens, 10);
      assert.equal(setup.primary.requests[0]?.api, type === 'anthropic' ? 'anthropic' : 'openai');
    });
  }

  test('a cache hit answers without calling the server (temperature 0, cache on)', async () => {
    const cache = createMemoryResponseCache();
    const client = makeClient(setup, {
      cache,
      llm: { roles: { architect: { provider: 'main', temperature: 0 } } },
    });
    const runtime = makeRuntime(client);
    setup.primary.enqueue({ text: 'cached answer' });
    // The app runs every task as its tenant (bindTenantScope); cache entries are per tenant.
    const first = await runAsTenant('t1', () => runtime.run(makeTask(), makeContext().ctx));
    const { ctx, chunks } = makeContext();
    const second = await runAsTenant('t1', () => runtime.run(makeTask(), ctx));
    assert.equal(first.output, 'cached answer');
    assert.equal(second.output, 'cached answer');
    assert.equal(chunks.join(''), 'cached answer');
    assert.equal(setup.primary.requests.length, 1);
    assert.deepEqual(cache.stats(), { hits: 1, misses: 1 });
    assert.equal(second.usage?.costUsd, 0);
  });

  test('a cached answer with a tool call replays the call: the tool runs again on a hit', async () => {
    const cache = createMemoryResponseCache();
    const client = makeClient(setup, {
      cache,
      llm: { roles: { architect: { provider: 'main', temperature: 0 } } },
    });
    const notes: string[] = [];
    const runtime = createAiSdkRuntime({
      client,
      resolveRole: (_tenant, name) => findBuiltInRole(name),
      dependencyOutputChars: 2000,
      createTools: () => ({
        note: tool({
          description: 'Notes a text',
          inputSchema: z.object({ text: z.string() }),
          execute: async ({ text }) => {
            notes.push(text);
            return `noted ${text}`;
          },
        }),
      }),
    });
    setup.primary.enqueue(
      { toolCalls: [{ id: 'c1', name: 'note', input: { text: 'remember' } }] },
      { text: 'Done.' },
    );
    const first = await runAsTenant('t1', () => runtime.run(makeTask(), makeContext().ctx));
    const second = await runAsTenant('t1', () => runtime.run(makeTask(), makeContext().ctx));
    assert.equal(first.output, 'Done.');
    assert.equal(second.output, 'Done.');
    assert.equal(setup.primary.requests.length, 2, 'both steps of the second run came from the cache');
    assert.deepEqual(notes, ['remember', 'remember'], 'the cached tool call was executed again');
    assert.deepEqual(cache.stats(), { hits: 2, misses: 2 });
    // A different tool set is a different request: no hit.
    const other = createAiSdkRuntime({
      client,
      resolveRole: (_tenant, name) => findBuiltInRole(name),
      dependencyOutputChars: 2000,
      createTools: () => ({
        note: tool({ description: 'Notes a text, briefly', inputSchema: z.object({ text: z.string() }) }),
      }),
    });
    setup.primary.enqueue({ text: 'fresh' });
    const third = await runAsTenant('t1', () => other.run(makeTask(), makeContext().ctx));
    assert.equal(third.output, 'fresh');
    assert.equal(setup.primary.requests.length, 3);
  });

  test('a cached answer is not counted in flight: a budget at its cap sees nothing spent', async () => {
    const cache = createMemoryResponseCache();
    const client = makeClient(setup, {
      cache,
      llm: { roles: { architect: { provider: 'main', temperature: 0 } } },
    });
    setup.primary.enqueue({ text: 'c'.repeat(8_000) });
    await runAsTenant('t1', () => makeRuntime(client).run(makeTask(), makeContext().ctx));
    const seen: Usage[] = [];
    // A session (or tenant) with nothing left: any spend at all is over.
    const atCap = createAiSdkRuntime({
      client,
      resolveRole: (_tenant, name) => findBuiltInRole(name),
      dependencyOutputChars: 2000,
      flushBytes: 1024,
      checkBudget: (_task, partial) => {
        seen.push(partial);
        return partial.inputTokens + partial.outputTokens > 0 ? 'token budget exceeded' : null;
      },
    });
    const { ctx, chunks } = makeContext();
    const replayed = await runAsTenant('t1', () => atCap.run(makeTask(), ctx));
    assert.equal(replayed.output, 'c'.repeat(8_000));
    assert.equal(chunks.join(''), 'c'.repeat(8_000));
    assert.equal(setup.primary.requests.length, 1, 'the second run came from the cache');
    assert.ok(seen.length > 0, 'the budget was checked');
    // What the guard counts in flight for the task (its session's and tenant's other agents see it).
    for (const partial of seen) assert.equal(partial.inputTokens + partial.outputTokens, 0);
    assert.deepEqual(replayed.usage, { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, costUsd: 0 });
  });

  test('an unknown role fails with INVALID_ROLE before any call', async () => {
    const error = await makeRuntime(makeClient(setup))
      .run(makeTask({ role: 'wizard' }), makeContext().ctx)
      .catch((e: unknown) => e);
    assert.ok(error instanceof AppError);
    assert.equal(error.code, 'INVALID_ROLE');
    assert.equal(setup.primary.requests.length, 0);
  });
});

describe('ai-sdk runtime budget guard', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer({ apiKey: 'key-main' });
  });
  after(async () => {
    await server.close();
  });

  test('crossing the budget mid-stream stops the agent with BUDGET_EXCEEDED and no retry', async () => {
    server.enqueue({ text: 'w'.repeat(20_000), chunkSize: 200, chunkDelayMs: 5 });
    const client = makeClient({ primary: server, backup: server });
    const seen: number[] = [];
    const runtime = createAiSdkRuntime({
      client,
      resolveRole: (_tenant, name) => findBuiltInRole(name),
      dependencyOutputChars: 2000,
      flushBytes: 1024,
      checkBudget: (_task, partial) => {
        seen.push(partial.outputTokens);
        return partial.outputTokens > 1000 ? `token budget exceeded: ${partial.outputTokens} of 1000` : null;
      },
    });
    const { ctx, chunks } = makeContext();
    const error = await runtime.run(makeTask(), ctx).catch((e: unknown) => e);
    assert.ok(error instanceof AppError, String(error));
    assert.equal(error.code, 'BUDGET_EXCEEDED');
    assert.match(error.message, /^Budget exceeded: token budget exceeded/);
    assert.equal(server.requests.length, 1);
    const streamed = chunks.join('').length;
    assert.ok(streamed < 20_000, `the stream was cut short (${streamed} chars)`);
    assert.ok(seen.length >= 2);
  });

  test('a later round of a tool loop cut off is estimated on the prompt it sent, tool results included', async (t) => {
    server.requests.length = 0;
    let round = 0;
    server.setHandler(() => {
      round += 1;
      if (round === 1) {
        return {
          toolCalls: [{ id: 'c1', name: 'fetch', input: {} }],
          usage: { inputTokens: 100, outputTokens: 10 },
        };
      }
      return { text: 'w'.repeat(20_000), chunkSize: 200, chunkDelayMs: 5 };
    });
    t.after(() => server.setHandler(undefined));
    const seen: Usage[] = [];
    let charged: Usage | undefined;
    const runtime = createAiSdkRuntime({
      client: makeClient({ primary: server, backup: server }),
      resolveRole: (_tenant, name) => findBuiltInRole(name),
      dependencyOutputChars: 2000,
      flushBytes: 1024,
      // The tool's answer makes the second round's prompt 40,000 characters longer than the first.
      createTools: () => ({
        fetch: tool({
          description: 'Fetches the page',
          inputSchema: z.object({}),
          execute: async () => 'r'.repeat(40_000),
        }),
      }),
      checkBudget: (_task, partial) => {
        seen.push(partial);
        return partial.outputTokens > 1000 ? `token budget exceeded: ${partial.outputTokens} of 1000` : null;
      },
    });
    const { ctx } = makeContext();
    ctx.reportFailedRunUsage = (usage) => {
      charged = usage;
    };
    const error = await runtime.run(makeTask(), ctx).catch((e: unknown) => e);
    assert.ok(error instanceof AppError && error.code === 'BUDGET_EXCEEDED', String(error));
    assert.equal(server.requests.length, 2);
    // Round 1 as reported (100) plus round 2's prompt at 4 characters per token (over 10,000).
    assert.ok((charged?.inputTokens ?? 0) > 100 + 10_000, JSON.stringify(charged));
    assert.ok((seen.at(-1)?.inputTokens ?? 0) > 100 + 10_000, 'the budget saw the same estimate');
  });
});

describe('ai-sdk runtime telemetry hooks', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer({ apiKey: 'key-main' });
  });
  after(async () => {
    await server.close();
  });

  test('each attempt is observed with its target and usage; breaker changes are reported', async () => {
    const observed: Array<{
      provider: string;
      model: string;
      serverAddress?: string;
      ok: boolean;
      outputTokens?: number;
    }> = [];
    const circuit: string[] = [];
    const providers = providersConfigSchema.parse({
      main: {
        type: 'openai-compatible',
        model: 'main-model',
        apiKey: 'key-main',
        baseURL: server.openaiBaseURL,
      },
    });
    const llm = llmConfigSchema.parse({
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
      circuitBreaker: { failureThreshold: 1, openSeconds: 60 },
    });
    const client = createLlmClient({
      providers,
      llm,
      logger,
      telemetry: {
        async observeCall({ signal, ...target }, run, usageOf) {
          // The caller's signal (cancel, budget stop) comes along; it is not part of the target.
          assert.ok(signal instanceof AbortSignal);
          try {
            const value = await run();
            observed.push({ ...target, ok: true, outputTokens: usageOf(value).outputTokens });
            return value;
          } catch (error) {
            observed.push({ ...target, ok: false });
            throw error;
          }
        },
        circuitStateChanged: (provider, state) => circuit.push(`${provider}:${state}`),
      },
    });
    const runtime = createAiSdkRuntime({
      client,
      resolveRole: (_t, name) => findBuiltInRole(name),
      dependencyOutputChars: 1000,
    });
    server.enqueue({ text: 'fine', usage: { inputTokens: 5, outputTokens: 3 } }, { error: 503 });
    await runtime.run(makeTask(), makeContext().ctx);
    await runtime.run(makeTask(), makeContext().ctx).catch(() => undefined);
    assert.deepEqual(observed, [
      {
        provider: 'main',
        model: 'main-model',
        serverAddress: '127.0.0.1',
        serverPort: Number(new URL(server.url).port),
        maxTokens: 8192,
        temperature: undefined,
        ok: true,
        outputTokens: 3,
      },
      {
        provider: 'main',
        model: 'main-model',
        serverAddress: '127.0.0.1',
        serverPort: Number(new URL(server.url).port),
        maxTokens: 8192,
        temperature: undefined,
        ok: false,
      },
    ]);
    assert.deepEqual(circuit, ['main:closed', 'main:open']);
    assert.equal(server.requests.length, 2, 'the open circuit stopped the retry');
  });
});

describe('ai-sdk runtime with models that reject tools', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer({ apiKey: 'key-main' });
  });
  after(async () => {
    await server.close();
  });
  /** A runtime on the scripted server (as primary and backup) whose agents have one tool, `noop`. */
  const runtimeWithATool = () =>
    createAiSdkRuntime({
      client: makeClient({ primary: server, backup: server }),
      resolveRole: (_t, name) => findBuiltInRole(name),
      dependencyOutputChars: 1000,
      createTools: () => ({
        noop: tool({ description: 'x', inputSchema: z.object({}), execute: async () => 'ok' }),
      }),
    });
  /**
   * A runtime on the scripted server (as primary and backup, the primary of `type`) whose agents
   * have one tool, `note`, that adds its text to `noted` and answers `noted <text>`.
   */
  const runtimeWithANoteTool = (type: 'openai-compatible' | 'anthropic', noted: string[]) =>
    createAiSdkRuntime({
      client: makeClient({ primary: server, backup: server }, { primaryType: type }),
      resolveRole: (_t, name) => findBuiltInRole(name),
      dependencyOutputChars: 1000,
      createTools: () => ({
        note: tool({
          description: 'Notes a text',
          inputSchema: z.object({ text: z.string() }),
          execute: async ({ text }) => {
            noted.push(text);
            return `noted ${text}`;
          },
        }),
      }),
    });

  test('a "does not support tools" 400 is answered by retrying the call without tools', async () => {
    server.setHandler((request) =>
      request.toolNames.length > 0
        ? { error: 400, message: 'registry/library/tiny does not support tools' }
        : { text: 'answer without tools' },
    );
    const runtime = runtimeWithATool();
    const result = await runtime.run(makeTask(), makeContext().ctx);
    assert.equal(result.output, 'answer without tools');
    assert.deepEqual(
      server.requests.map((r) => r.toolNames.length > 0),
      [true, false],
    );
  });

  test('other 400s still fail at once', async () => {
    server.requests.length = 0;
    server.setHandler(() => ({ error: 400, message: 'prompt is too long' }));
    const runtime = runtimeWithATool();
    const error = await runtime.run(makeTask(), makeContext().ctx).catch((e: unknown) => e);
    assert.ok(error instanceof AppError);
    assert.match(error.message, /prompt is too long/);
    assert.equal(server.requests.length, 1);
  });

  for (const type of ['openai-compatible', 'anthropic'] as const) {
    test(`a 400 naming a tool on a later step of the tool loop (${type}) fails the task: no restart without tools`, async () => {
      server.requests.length = 0;
      const ran: string[] = [];
      server.setHandler((request) =>
        // The second step holds the first one's tool call and result.
        /noted first/.test(JSON.stringify(request.body))
          ? { error: 400, message: "invalid tool_call_id 'c1': no tool call with this id" }
          : request.toolNames.length === 0
            ? { text: 'answer without tools' }
            : {
                text: 'Let me note that.',
                toolCalls: [{ id: 'c1', name: 'note', input: { text: 'first' } }],
              },
      );
      const runtime = runtimeWithANoteTool(type, ran);
      const { ctx, chunks } = makeContext();
      const error = await runtime.run(makeTask(), ctx).catch((e: unknown) => e);
      assert.ok(error instanceof AppError, `the task fails, not ${JSON.stringify(error)}`);
      assert.equal(error.code, 'PROVIDER_ERROR');
      assert.match(error.message, /rejected the request \(HTTP 400\): .*invalid tool_call_id/);
      assert.deepEqual(ran, ['first'], 'the tool ran once');
      assert.deepEqual(
        server.requests.map((request) => request.toolNames.length > 0),
        [true, true],
        'no third call without tools, and no retry of the 400',
      );
      assert.equal(chunks.join(''), 'Let me note that.');
    });
  }

  test('a 400 naming tools after the first step streamed text fails the task: no restart without tools', async () => {
    server.requests.length = 0;
    server.setHandler((request) =>
      request.toolNames.length === 0
        ? { text: 'answer without tools' }
        : {
            text: 'Thinking about the tool to call',
            chunkSize: 4,
            streamError: { afterFrames: 4, status: 400, message: 'the tool call could not be parsed' },
          },
    );
    const runtime = runtimeWithATool();
    const { ctx, chunks } = makeContext();
    const error = await runtime.run(makeTask(), ctx).catch((e: unknown) => e);
    assert.ok(error instanceof AppError, `the task fails, not ${JSON.stringify(error)}`);
    assert.match(error.message, /rejected the request \(HTTP 400\): the tool call could not be parsed/);
    assert.equal(server.requests.length, 1);
    assert.doesNotMatch(chunks.join(''), /answer without tools/);
  });

  test('a "does not support tools" error reported as the first frame of the stream still falls back', async () => {
    server.requests.length = 0;
    server.setHandler((request) =>
      request.toolNames.length === 0
        ? { text: 'answer without tools' }
        : {
            text: 'never sent',
            streamError: { afterFrames: 0, status: 400, message: 'this model does not support tools' },
          },
    );
    const runtime = runtimeWithATool();
    const { ctx, chunks } = makeContext();
    const result = await runtime.run(makeTask(), ctx);
    assert.equal(result.output, 'answer without tools');
    assert.equal(chunks.join(''), 'answer without tools');
  });

  for (const type of ['openai-compatible', 'anthropic'] as const) {
    test(`tool calls (${type}): executed and answered, bad input answered with the error, usage summed over the steps`, async () => {
      server.requests.length = 0;
      const received: string[] = [];
      let round = 0;
      server.setHandler(() => {
        round += 1;
        if (round === 1) {
          return {
            text: 'Let me note that.',
            toolCalls: [
              { id: 'c1', name: 'note', input: { text: 'first' } },
              { id: 'c2', name: 'note', input: { wrong: 1 } },
            ],
            usage: { inputTokens: 100, outputTokens: 10 },
          };
        }
        return { text: 'Noted.', usage: { inputTokens: 150, outputTokens: 5, cacheReadTokens: 20 } };
      });
      const runtime = runtimeWithANoteTool(type, received);
      const result = await runtime.run(makeTask(), makeContext().ctx);
      assert.equal(result.output, 'Let me note that.\n\nNoted.');
      assert.deepEqual(received, ['first'], 'only the valid call ran');
      assert.deepEqual(
        { inputTokens: result.usage?.inputTokens, outputTokens: result.usage?.outputTokens },
        { inputTokens: 250, outputTokens: 15 },
      );
      assert.equal(result.usage?.cacheReadTokens, 20);
      // The second request carries both tool results: the output, and the validation error.
      const second = JSON.stringify(server.requests[1]?.body);
      assert.match(second, /noted first/);
      assert.match(second, /Invalid input for note/);
    });
  }
});
