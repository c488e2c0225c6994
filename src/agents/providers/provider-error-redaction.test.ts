// How much of a provider's error is scanned for secrets: redactErrorResponses on a real HTTP answer
// from a server on 127.0.0.1, and an error reported inside a streamed answer (redactModelErrors).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import type { LanguageModelV4, LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { JSONParseError } from 'ai';
import { createSecretRedactor } from '../../security/secret-redaction.ts';
import {
  MAX_ERROR_BODY_CHARS,
  redactErrorResponses,
  redactModelErrors,
  redactStreamError,
  runRedactingStreamErrors,
} from './provider-error-redaction.ts';

test('an error body is scanned for secrets up to a bound, not whole (a huge one would hold the event loop)', async () => {
  const key = 'sk-test-0123456789abcdefghij';
  const huge = `invalid key ${key} ${'x'.repeat(4 * 1024 * 1024)}`;
  const server = createServer((_request, response) => {
    response.writeHead(400, { 'content-type': 'text/plain' });
    response.end(huge);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const redactor = createSecretRedactor([key]);
    const scanned: number[] = [];
    const redact = (text: string): string => {
      scanned.push(text.length);
      return redactor(text);
    };
    const { port } = server.address() as AddressInfo;
    const response = await redactErrorResponses(redact, fetch)(`http://127.0.0.1:${port}/v1/chat`);
    assert.equal(response.status, 400);
    const body = await response.text();
    assert.ok(body.startsWith('invalid key [REDACTED] xxx'), body.slice(0, 40));
    assert.ok(body.length <= MAX_ERROR_BODY_CHARS, `${body.length}`);
    assert.ok(Math.max(...scanned) <= MAX_ERROR_BODY_CHARS, `${Math.max(...scanned)}`);
  } finally {
    server.close();
  }
});

describe('an error a provider reports inside a streamed answer', () => {
  const key = 'sk-test-0123456789abcdefghij';
  // A line of the answer that cannot be read, as long as a server may send one (up to
  // maxResponseBytes): the JSONParseError holds it whole, in its text, message and stack.
  const hugeLine = `invalid key ${key} ${'x'.repeat(4 * 1024 * 1024)}`;
  const unreadable = () => new JSONParseError({ text: hugeLine, cause: new SyntaxError('Unexpected token') });

  /** A redactor of `key` that notes the length of every text it scans. */
  function spy() {
    const redactor = createSecretRedactor([key]);
    const scanned: number[] = [];
    return {
      scanned,
      redact: (text: string): string => {
        scanned.push(text.length);
        return redactor(text);
      },
    };
  }

  /** A model whose stream fails with `error` at once (an error part), or whose call throws it. */
  function failingModel(error: unknown, how: 'part' | 'throw'): LanguageModelV4 {
    return {
      specificationVersion: 'v4',
      provider: 'fake',
      modelId: 'm',
      supportedUrls: {},
      doGenerate: async () => {
        throw error;
      },
      doStream: async () => {
        if (how === 'throw') throw error;
        return {
          stream: new ReadableStream<LanguageModelV4StreamPart>({
            start(controller) {
              controller.enqueue({ type: 'error', error });
              controller.close();
            },
          }),
        };
      },
    };
  }

  /** The error of the model's stream, as the agent's model call reads it. */
  async function streamedError(model: LanguageModelV4): Promise<unknown> {
    try {
      const { stream } = await model.doStream({ prompt: [] });
      for await (const part of stream) if (part.type === 'error') throw redactStreamError(part.error);
    } catch (error) {
      return error;
    }
    return undefined;
  }

  /** Every text an error holds along its cause chain, and its report's message. */
  function textsOf(error: unknown): string[] {
    const texts: string[] = [];
    let current: unknown = error;
    for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
      for (const field of ['message', 'stack', 'text', 'responseBody']) {
        const value = (current as unknown as Record<string, unknown>)[field];
        if (typeof value === 'string') texts.push(value);
      }
      current = current.cause;
    }
    if (!(error instanceof Error)) texts.push((error as { message: string }).message);
    return texts;
  }

  const cases = [
    ['an unreadable line thrown by the call', () => failingModel(unreadable(), 'throw'), false],
    [
      'an unreadable line in the stream, inside an LLM client attempt',
      () => failingModel(unreadable(), 'part'),
      true,
    ],
    [
      'an unreadable line in the stream, outside any attempt',
      () => failingModel(unreadable(), 'part'),
      false,
    ],
    ['a report with a huge message in the stream', () => failingModel({ message: hugeLine }, 'part'), false],
  ] as const;
  for (const [what, make, inAttempt] of cases) {
    test(`${what} is cut before it is scanned for secrets, as an error body is`, async () => {
      const { redact, scanned } = spy();
      const model = redactModelErrors(make(), redact);
      const error = inAttempt
        ? await runRedactingStreamErrors(() => streamedError(model).then((e) => Promise.reject(e))).catch(
            (e: unknown) => e,
          )
        : await streamedError(model);
      const texts = textsOf(error);
      assert.ok(texts.length > 0);
      for (const text of texts) {
        assert.ok(!text.includes(key), 'the key is out');
        assert.ok(text.length <= MAX_ERROR_BODY_CHARS, `a text of ${text.length} characters is kept`);
      }
      assert.ok(scanned.length > 0);
      assert.ok(Math.max(...scanned) <= MAX_ERROR_BODY_CHARS, `${Math.max(...scanned)} characters scanned`);
    });
  }
});
