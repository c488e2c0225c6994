// What a task's error says when a provider refuses a call with a body other than OpenAI's
// `{"error": {"message": …}}`: the provider's own text, read by the real provider packages from a
// server on 127.0.0.1 (vLLM's flat error, Ollama's and LM Studio's `{"error": "…"}`, FastAPI's
// `{"detail": …}`, plain text), shortened and without the key it may echo.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { LanguageModelV4 } from '@ai-sdk/provider';
import { generateText } from 'ai';
import { pino } from 'pino';
import { llmConfigSchema, providersConfigSchema } from '../../config/llm-schema.ts';
import { createLlmClient } from './llm-client.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const KEY = 'sk-test-error-bodies-0123456789';

/** The answer the server gives every request: status, content type and body as they are. */
interface RawAnswer {
  status: number;
  contentType: string;
  body: string;
}

describe('a provider error whose body is not OpenAI-shaped', () => {
  let server: Server;
  let baseURL: string;
  let answer: RawAnswer = { status: 400, contentType: 'application/json', body: '{}' };
  before(async () => {
    server = createServer((request, response) => {
      request.resume();
      request.once('end', () => {
        response.writeHead(answer.status, { 'content-type': answer.contentType });
        response.end(answer.body);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  after(() => server.close());

  function clientFor(type: 'openai' | 'openai-compatible' | 'anthropic') {
    return createLlmClient({
      providers: providersConfigSchema.parse({ main: { type, model: 'm', apiKey: KEY, baseURL } }),
      llm: llmConfigSchema.parse({ retry: { maxAttempts: 1 } }),
      logger: pino({ level: 'silent' }),
    });
  }

  /** The task-facing error of one call answered with `raw`, not streamed or streamed (as agents call). */
  async function errorOf(
    type: 'openai' | 'openai-compatible' | 'anthropic',
    raw: RawAnswer,
    streamed: boolean,
  ): Promise<Error & { code?: string }> {
    answer = raw;
    return clientFor(type)
      .call(
        'engineer',
        new AbortController().signal,
        async ({ model, signal }): Promise<unknown> =>
          streamed
            ? await (model as LanguageModelV4).doStream({
                prompt: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
                abortSignal: signal,
              })
            : await generateText({ model, prompt: 'hi', maxRetries: 0, abortSignal: signal }),
      )
      .then(
        () => assert.fail('the call should fail'),
        (error: Error & { code?: string }) => error,
      );
  }

  const json = (status: number, body: unknown): RawAnswer => ({
    status,
    contentType: 'application/json',
    body: JSON.stringify(body),
  });

  const shapes: Array<[string, RawAnswer, string]> = [
    [
      "vLLM's flat error",
      json(400, {
        object: 'error',
        message: "This model's maximum context length is 4096 tokens. However, you requested 9000 tokens.",
        type: 'BadRequestError',
        param: null,
        code: 400,
      }),
      "This model's maximum context length is 4096 tokens. However, you requested 9000 tokens.",
    ],
    [
      "Ollama's and LM Studio's error text",
      json(400, { error: 'invalid options: num_ctx must be positive' }),
      'invalid options: num_ctx must be positive',
    ],
    [
      "a FastAPI server's detail",
      json(400, { detail: 'Model gpt-x does not support tools' }),
      'Model gpt-x does not support tools',
    ],
    [
      "a FastAPI server's validation errors",
      json(422, {
        detail: [
          { loc: ['body', 'messages', 0, 'role'], msg: 'Input should be user or assistant', type: 'enum' },
          { loc: ['body', 'max_tokens'], msg: 'Input should be greater than 0', type: 'greater_than' },
        ],
      }),
      'body.messages.0.role: Input should be user or assistant; body.max_tokens: Input should be greater than 0',
    ],
    [
      'a plain-text body',
      { status: 400, contentType: 'text/plain', body: 'temperature must be at most 2\n' },
      'temperature must be at most 2',
    ],
    [
      'an OpenAI-shaped error the package refuses (its code an object)',
      json(400, { error: { message: 'context window exceeded', code: { nested: true } } }),
      'context window exceeded',
    ],
  ];

  for (const type of ['openai-compatible', 'openai'] as const) {
    for (const streamed of [false, true]) {
      for (const [name, raw, said] of shapes) {
        test(`${type}${streamed ? ', streamed' : ''}: ${name} is in the task's error`, async () => {
          const error = await errorOf(type, raw, streamed);
          assert.equal(error.code, 'PROVIDER_ERROR');
          assert.equal(
            error.message,
            `provider 'main' (model m) rejected the request (HTTP ${raw.status}): ${said}`,
          );
        });
      }
    }

    test(`${type}: the key a body echoes is redacted and a long text is cut`, async () => {
      const echoed = await errorOf(type, json(400, { error: `invalid api key ${KEY}` }), false);
      assert.match(echoed.message, /\(HTTP 400\): invalid api key \[REDACTED\]$/);
      assert.doesNotMatch(echoed.message, /0123456789/);

      const long = await errorOf(type, json(400, { message: `too long ${'x'.repeat(20_000)}` }), false);
      assert.match(long.message, /\(HTTP 400\): too long x+…$/);
      assert.ok(long.message.length < 600, `${long.message.length} characters`);

      const text = await errorOf(
        type,
        { status: 400, contentType: 'text/plain', body: `bad key ${KEY} ${'y'.repeat(20_000)}` },
        true,
      );
      assert.match(text.message, /\(HTTP 400\): bad key \[REDACTED\] y+…$/);
      assert.ok(text.message.length < 600, `${text.message.length} characters`);
    });

    test(`${type}: an HTML page or JSON naming no message still says the status text`, async () => {
      const html = await errorOf(
        type,
        {
          status: 400,
          contentType: 'text/html',
          body: '<html><head><title>400 Bad Request</title></head><body><center>nginx</center></body></html>',
        },
        false,
      );
      assert.equal(html.message, "provider 'main' (model m) rejected the request (HTTP 400): Bad Request");
      const unnamed = await errorOf(type, json(400, { status: 'failed', id: 7 }), false);
      assert.equal(unnamed.message, "provider 'main' (model m) rejected the request (HTTP 400): Bad Request");
    });
  }

  test("openai-compatible: OpenAI's own shape says its message, as before", async () => {
    const error = await errorOf(
      'openai-compatible',
      json(400, { error: { message: 'Unsupported parameter: top_k', type: 'invalid_request_error' } }),
      false,
    );
    assert.equal(
      error.message,
      "provider 'main' (model m) rejected the request (HTTP 400): Unsupported parameter: top_k",
    );
  });

  test('anthropic: its own shape says its message, as before', async () => {
    const error = await errorOf(
      'anthropic',
      json(400, {
        type: 'error',
        error: {
          type: 'invalid_request_error',
          message: 'prompt is too long: 250000 tokens > 200000 maximum',
        },
      }),
      true,
    );
    assert.equal(
      error.message,
      "provider 'main' (model m) rejected the request (HTTP 400): prompt is too long: 250000 tokens > 200000 maximum",
    );
  });
});
