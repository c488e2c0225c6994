// An answer the provider stops itself, in both wire formats: a refusal or content filter with no
// text fails the task (agent or synthesis) with PROVIDER_REFUSED, not retried and not sent to the
// fallback; an answer cut at the output token limit, or ended with a finish reason outside the
// provider's API, completes, but its output and result end with a notice saying so (none for a
// known name of a normal end), and the model call's span keeps the provider's finish reason.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { createLanguageModel } from '../../src/agents/providers/create-model.ts';
import { createLlmClient } from '../../src/agents/providers/llm-client.ts';
import { findBuiltInRole } from '../../src/agents/roles/catalogue.ts';
import { createAiSdkRuntime } from '../../src/agents/runtimes/ai-sdk/ai-sdk-runtime.ts';
import { streamModelCall } from '../../src/agents/runtimes/ai-sdk/model-stream.ts';
import type { RuntimeContext, RuntimeTask } from '../../src/agents/runtimes/runtime.ts';
import { llmConfigSchema, providersConfigSchema } from '../../src/config/llm-schema.ts';
import { ORCHESTRATOR_ROUTE } from '../../src/engine/planner.ts';
import { streamSynthesis } from '../../src/engine/planner-synthesis.ts';
import { AppError } from '../../src/errors/app-error.ts';
import { type ScriptedLlmServer, startLlmServer } from '../fixtures/llm-server.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
const logger = pino({ level: 'silent' });

const task: RuntimeTask = {
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
};

const synthesisRequest = {
  tenantId: 'default',
  objective: 'Ship it',
  outputs: [{ name: 'impl', role: 'engineer', status: 'succeeded' as const, output: 'done' }],
};

describe('answers the provider stops (refusal, content filter, token limit)', () => {
  let primary: ScriptedLlmServer;
  let backup: ScriptedLlmServer;
  before(async () => {
    primary = await startLlmServer();
    backup = await startLlmServer();
  });
  after(async () => {
    await primary.close();
    await backup.close();
  });
  beforeEach(() => {
    primary.requests.length = 0;
    backup.requests.length = 0;
  });

  function makeClient(type: 'openai' | 'anthropic') {
    const providers = providersConfigSchema.parse({
      main: { type, model: 'm', apiKey: 'k', baseURL: primary.openaiBaseURL, maxOutputTokens: 50 },
      backup: { type: 'openai-compatible', model: 'b', apiKey: 'k', baseURL: backup.openaiBaseURL },
    });
    const llm = llmConfigSchema.parse({
      defaultProvider: 'main',
      defaultFallback: ['backup'],
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    });
    return createLlmClient({ providers, llm, logger });
  }

  function runAgent(type: 'openai' | 'anthropic') {
    const chunks: string[] = [];
    const ctx: RuntimeContext = {
      signal: new AbortController().signal,
      logger,
      emitOutput: (_stream, chunk) => chunks.push(chunk),
    };
    const runtime = createAiSdkRuntime({
      client: makeClient(type),
      resolveRole: (_tenant, name) => findBuiltInRole(name),
      dependencyOutputChars: 2000,
    });
    return { result: runtime.run(task, ctx), chunks };
  }

  const CUT_NOTICE = '[maos: answer cut off at the output token limit (maxOutputTokens 50)]';

  for (const type of ['openai', 'anthropic'] as const) {
    test(`an agent answer refused with no text fails with PROVIDER_REFUSED, not retried (${type})`, async () => {
      primary.enqueue({ text: '', refused: true });
      const { result } = runAgent(type);
      await assert.rejects(result, (error: unknown) => {
        assert.ok(error instanceof AppError);
        assert.equal(error.code, 'PROVIDER_REFUSED');
        assert.match(error.message, /^provider 'main' \(model m\) failed: the model refused to answer/);
        return true;
      });
      assert.equal(primary.requests.length, 1, 'not retried');
      assert.equal(backup.requests.length, 0, 'not sent to the fallback');
    });

    test(`an agent answer cut at the token limit completes with a notice at its end (${type})`, async () => {
      primary.enqueue({
        text: 'The API has three endpo',
        truncated: true,
        usage: { inputTokens: 40, outputTokens: 50 },
      });
      const { result, chunks } = runAgent(type);
      const { output, usage } = await result;
      assert.equal(output, `The API has three endpo\n\n${CUT_NOTICE}`);
      assert.equal(chunks.join(''), output, 'the streamed output ends with the notice too');
      // The notice is not the model's text: the call is charged what the provider reported.
      assert.equal(usage?.inputTokens, 40);
      assert.equal(usage?.outputTokens, 50);
      assert.equal(primary.requests.length, 1);
    });

    test(`an agent answer ended with an unrecognised finish reason completes with a notice (${type})`, async () => {
      primary.enqueue({ text: 'Step one is', finishReason: 'abort' });
      const { result, chunks } = runAgent(type);
      const { output } = await result;
      assert.equal(
        output,
        'Step one is\n\n[maos: the answer may be incomplete: the provider ended it with an unrecognised finish reason (abort)]',
      );
      assert.equal(chunks.join(''), output, 'the streamed output ends with the notice too');
      assert.equal(primary.requests.length, 1, 'not retried');
      assert.equal(backup.requests.length, 0, 'not sent to the fallback');
    });

    test(`a finish reason outside the API that names a normal end adds no notice (${type})`, async () => {
      primary.enqueue(
        { text: 'All done.', finishReason: 'eos_token' },
        { text: 'Done too.', finishReason: 'STOP' },
      );
      assert.equal((await runAgent(type).result).output, 'All done.');
      assert.equal((await runAgent(type).result).output, 'Done too.');
    });

    test(`the synthesis ended with an unrecognised finish reason ends with the notice (${type})`, async () => {
      primary.enqueue({ text: 'Shipped: the', finishReason: 'insufficient_system_resource' });
      const { result } = await streamSynthesis(makeClient(type), ORCHESTRATOR_ROUTE, 2000, synthesisRequest);
      assert.equal(
        result,
        'Shipped: the\n\n[maos: the answer may be incomplete: the provider ended it with an unrecognised finish reason (insufficient_system_resource)]',
      );
    });

    test(`an agent answer filtered after some text completes with a notice (${type})`, async () => {
      primary.enqueue({ text: 'Part one.', refused: true });
      const { result, chunks } = runAgent(type);
      const { output } = await result;
      assert.match(output, /^Part one\.\n\n\[maos: the provider stopped the answer \(content filter/);
      assert.equal(chunks.join(''), output);
    });

    test(`the synthesis refused with no text fails with PROVIDER_REFUSED (${type})`, async () => {
      primary.enqueue({ text: '', refused: true });
      await assert.rejects(
        streamSynthesis(makeClient(type), ORCHESTRATOR_ROUTE, 2000, synthesisRequest),
        (error: unknown) => error instanceof AppError && error.code === 'PROVIDER_REFUSED',
      );
      assert.equal(primary.requests.length, 1);
      assert.equal(backup.requests.length, 0);
    });

    test(`the synthesis cut at the token limit ends with the notice (${type})`, async () => {
      primary.enqueue({ text: 'Shipped: the', truncated: true });
      const emitted: string[] = [];
      const { result } = await streamSynthesis(makeClient(type), ORCHESTRATOR_ROUTE, 2000, {
        ...synthesisRequest,
        emitOutput: (text: string) => emitted.push(text),
      });
      assert.equal(result, `Shipped: the\n\n${CUT_NOTICE}`);
      assert.equal(emitted.join(''), result);
    });

    test(`the model call records the provider's finish reason of a refusal (${type})`, async () => {
      primary.enqueue({ text: '', refused: true });
      const providers = providersConfigSchema.parse({
        main: { type, model: 'm', apiKey: 'k', baseURL: primary.openaiBaseURL },
      });
      const reasons: (string | undefined)[] = [];
      await assert.rejects(
        streamModelCall({
          model: createLanguageModel('main', providers.main!, 'm'),
          system: 'You are an engineer.',
          messages: [{ role: 'user', content: 'Work.' }],
          tools: undefined,
          maxSteps: 1,
          maxOutputTokens: 50,
          temperature: undefined,
          signal: new AbortController().signal,
          push: () => undefined,
          onStepUsage: () => undefined,
          observer: {
            callStarted: () => undefined,
            callFinished: (_usage, finishReason) => reasons.push(finishReason),
            callFailed: () => undefined,
            callRefusedTools: () => undefined,
          },
        }),
        (error: unknown) => error instanceof AppError && error.code === 'PROVIDER_REFUSED',
      );
      assert.deepEqual(reasons, [type === 'openai' ? 'content_filter' : 'refusal']);
    });
  }
});
