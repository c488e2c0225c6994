// A line of a streamed answer that cannot be read (not JSON: cut, mangled by a proxy) is a fault of
// the provider's answer, not of the request: the LLM runtime asks again, as after a 5xx or a reset.
// Before any text, the answer simply comes from the retry; after some text, the output says that
// the answer starts over (no silent retry). And the line, which a gateway may fill with the key it
// was sent, leaves no key in what is recorded of the failure. Against a server on 127.0.0.1 that
// speaks both wire formats' SSE and garbles the line it is told to.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { streamText } from 'ai';
import { pino } from 'pino';
import { llmConfigSchema, providersConfigSchema } from '../../../config/llm-schema.ts';
import { AppError } from '../../../errors/app-error.ts';
import { createLlmClient, type LlmCallObserver } from '../../providers/llm-client.ts';
import { findBuiltInRole } from '../../roles/catalogue.ts';
import type { RuntimeContext, RuntimeTask } from '../runtime.ts';
import { createAiSdkRuntime } from './ai-sdk-runtime.ts';
import { type ModelCallObserver, streamModelCall } from './model-stream.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
const logger = pino({ level: 'silent' });
const KEY = 'sk-test-0123456789abcdefghijklmnop';

type Wire = 'openai' | 'anthropic';

/** What the next answer is: its text, and after how many of its text pieces a garbled line comes. */
interface Script {
  text: string;
  garbleAfter?: number;
}

function openAiFrames(script: Script, garbled: string): string {
  const chunk = (delta: object, finish: string | null = null, usage?: object) =>
    `data: ${JSON.stringify({
      id: 'chatcmpl-1',
      object: 'chat.completion.chunk',
      created: 1,
      model: 'm',
      choices: [{ index: 0, delta, finish_reason: finish }],
      ...(usage ? { usage } : {}),
    })}\n\n`;
  const pieces = script.text.match(/.{1,6}/gs) ?? [];
  const frames = pieces.map((piece, index) =>
    chunk(index === 0 ? { role: 'assistant', content: piece } : { content: piece }),
  );
  if (script.garbleAfter !== undefined) frames.splice(script.garbleAfter, 0, `data: ${garbled}\n\n`);
  frames.push(
    chunk({}, 'stop', { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }),
    'data: [DONE]\n\n',
  );
  return frames.join('');
}

function anthropicFrames(script: Script, garbled: string): string {
  const event = (type: string, data: object) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const pieces = script.text.match(/.{1,6}/gs) ?? [];
  const deltas = pieces.map((piece) =>
    event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } }),
  );
  if (script.garbleAfter !== undefined) {
    deltas.splice(script.garbleAfter, 0, `event: content_block_delta\ndata: ${garbled}\n\n`);
  }
  return [
    event('message_start', {
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'm',
        content: [],
        stop_reason: null,
        usage: { input_tokens: 10, output_tokens: 0 },
      },
    }),
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ...deltas,
    event('content_block_stop', { index: 0 }),
    event('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 5 } }),
    event('message_stop', {}),
  ].join('');
}

/** Answers each request with the next script; a garbled line echoes the key the request carried. */
function startServer(): { server: Server; scripts: Script[]; requests: number[] } {
  const scripts: Script[] = [];
  const requests: number[] = [];
  const server = createServer((request, response) => {
    requests.push(Date.now());
    const key = String(request.headers.authorization ?? request.headers['x-api-key'] ?? '').replace(
      /^Bearer /,
      '',
    );
    const garbled = `{"choices": [ invalid key ${key}`;
    const script = scripts.shift() ?? { text: 'no script left' };
    request.resume();
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    response.end(
      request.url?.endsWith('/messages') ? anthropicFrames(script, garbled) : openAiFrames(script, garbled),
    );
  });
  return { server, scripts, requests };
}

function makeClient(wire: Wire, baseURL: string, maxAttempts: number, telemetry?: LlmCallObserver) {
  return createLlmClient({
    providers: providersConfigSchema.parse({
      main: { type: wire, model: 'm', apiKey: KEY, baseURL, timeoutSeconds: 30 },
    }),
    llm: llmConfigSchema.parse({ retry: { maxAttempts, baseDelayMs: 1, maxDelayMs: 5 } }),
    logger,
    ...(telemetry ? { telemetry } : {}),
  });
}

const task: RuntimeTask = {
  sessionId: 's1',
  tenantId: 't1',
  objective: 'Write a note',
  taskId: 'task-1',
  name: 'note',
  role: 'architect',
  instructions: 'Write it',
  runner: null,
  agentId: 'a1',
  attempt: 1,
  dependencies: [],
  kind: 'agent',
};

/** Every text an error holds along its cause chain: message, stack, fields; a plain report as JSON. */
function textsOf(error: unknown): string {
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current !== undefined && current !== null; depth += 1) {
    if (current instanceof Error) {
      texts.push(current.message, current.stack ?? '');
      for (const value of Object.values(current)) if (typeof value === 'string') texts.push(value);
      current = current.cause;
    } else {
      texts.push(typeof current === 'object' ? JSON.stringify(current) : String(current));
      break;
    }
  }
  return texts.join('\n');
}

describe('a garbled line in a streamed answer', () => {
  let server: Server;
  let scripts: Script[];
  let requests: number[];
  let port: number;
  before(async () => {
    ({ server, scripts, requests } = startServer());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  const baseURL = () => `http://127.0.0.1:${port}/v1`;

  /** Runs the task on the LLM runtime (3 attempts): its result and the output it streamed. */
  async function runAgent(wire: Wire) {
    const chunks: string[] = [];
    const ctx: RuntimeContext = {
      signal: new AbortController().signal,
      logger,
      emitOutput: (_stream, chunk) => chunks.push(chunk),
    };
    const runtime = createAiSdkRuntime({
      client: makeClient(wire, baseURL(), 3),
      resolveRole: (_tenant, name) => findBuiltInRole(name),
      dependencyOutputChars: 2000,
    });
    return { result: await runtime.run(task, ctx), chunks };
  }

  for (const wire of ['openai', 'anthropic'] as const) {
    test(`before any text, it is retried like a 5xx and the answer comes from the retry (${wire})`, async () => {
      requests.length = 0;
      scripts.push({ text: 'broken answer', garbleAfter: 0 }, { text: 'The whole answer.' });
      const { result, chunks } = await runAgent(wire);
      assert.equal(result.output, 'The whole answer.');
      assert.equal(requests.length, 2);
      assert.equal(chunks.join(''), 'The whole answer.', 'nothing of the broken answer, no restart notice');
    });

    test(`after some text, it is retried and the output says the answer starts over (${wire})`, async () => {
      requests.length = 0;
      scripts.push({ text: 'The first part of it', garbleAfter: 2 }, { text: 'The whole answer.' });
      const { result, chunks } = await runAgent(wire);
      assert.equal(result.output, 'The whole answer.');
      assert.equal(requests.length, 2);
      const streamed = chunks.join('');
      assert.match(streamed, /^The first p/);
      assert.match(streamed, /\[attempt 2 via main: the answer starts over\]\n\nThe whole answer\.$/);
    });

    test(`one that echoes the key leaves no key in the error, the model call's or the attempt's record (${wire})`, async () => {
      scripts.push({ text: 'Some text first', garbleAfter: 1 });
      const attemptErrors: string[] = [];
      const callErrors: string[] = [];
      const telemetry: LlmCallObserver = {
        observeCall: (_target, run) =>
          run().catch((error: unknown) => {
            // What it holds when recorded: an error changed later is not what was recorded.
            attemptErrors.push(textsOf(error));
            throw error;
          }),
      };
      const observer: ModelCallObserver = {
        callStarted: () => {},
        callFinished: () => {},
        callFailed: (error) => callErrors.push(textsOf(error)),
        callRefusedTools: () => {},
      };
      const error = await makeClient(wire, baseURL(), 1, telemetry)
        .call('architect', new AbortController().signal, ({ model, signal }) =>
          streamModelCall({
            model,
            system: 'You write.',
            messages: [{ role: 'user', content: 'Write.' }],
            tools: undefined,
            maxSteps: 1,
            maxOutputTokens: 100,
            temperature: undefined,
            signal,
            push: () => {},
            onStepUsage: () => {},
            observer,
          }),
        )
        .catch((e: unknown) => e);
      assert.ok(error instanceof AppError, String(error));
      assert.equal(callErrors.length, 1);
      assert.equal(attemptErrors.length, 1);
      for (const [where, text] of [
        ['the error', textsOf(error)],
        ["the model call's record", callErrors[0] ?? ''],
        ["the attempt's record", attemptErrors[0] ?? ''],
      ] as const) {
        assert.match(text, /invalid key/, `${where} tells what came`);
        assert.ok(!text.includes(KEY.slice(0, 12)), `${where} holds the key: ${text}`);
      }
    });

    test(`through streamText (the synthesis), the key is out of the error before the attempt's record (${wire})`, async () => {
      scripts.push({ text: 'Some text first', garbleAfter: 1 });
      const attemptErrors: string[] = [];
      const telemetry: LlmCallObserver = {
        observeCall: (_target, run) =>
          run().catch((error: unknown) => {
            attemptErrors.push(textsOf(error));
            throw error;
          }),
      };
      const error = await makeClient(wire, baseURL(), 1, telemetry)
        .call('orchestrator', new AbortController().signal, async ({ model, signal }) => {
          const stream = streamText({
            model,
            prompt: 'Sum up.',
            maxRetries: 0,
            abortSignal: signal,
            onError: () => {},
          });
          for await (const part of stream.fullStream) if (part.type === 'error') throw part.error;
          return 'done';
        })
        .catch((e: unknown) => e);
      assert.ok(error instanceof AppError, String(error));
      assert.equal(attemptErrors.length, 1);
      for (const text of [textsOf(error), attemptErrors[0] ?? '']) {
        assert.match(text, /invalid key/);
        assert.ok(!text.includes(KEY.slice(0, 12)), `holds the key: ${text}`);
      }
    });
  }
});
