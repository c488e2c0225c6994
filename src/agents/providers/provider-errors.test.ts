// Unit tests for provider error classification, Retry-After parsing and user-facing messages.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { APICallError, generateText, streamText } from 'ai';
import { startLlmServer } from '../../../test/fixtures/llm-server.ts';
import { providersConfigSchema } from '../../config/llm-schema.ts';
import { ProviderTimeoutError } from './call-timer.ts';
import { createLanguageModel } from './create-model.ts';
import { classifyProviderError, parseRetryAfter, toProviderAppError } from './provider-errors.ts';

function httpError(statusCode: number | undefined, message = 'boom'): APICallError {
  return new APICallError({ message, url: 'http://x', requestBodyValues: { secret: 'prompt' }, statusCode });
}

describe('parseRetryAfter', () => {
  test('reads seconds, milliseconds and HTTP dates', () => {
    assert.equal(parseRetryAfter({ 'retry-after': '2' }), 2000);
    assert.equal(parseRetryAfter({ 'Retry-After': '0.5' }), 500);
    assert.equal(parseRetryAfter({ 'retry-after-ms': '250', 'retry-after': '9' }), 250);
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }, now), 5000);
  });

  test('ignores absent and invalid values', () => {
    assert.equal(parseRetryAfter(undefined), undefined);
    assert.equal(parseRetryAfter({}), undefined);
    assert.equal(parseRetryAfter({ 'retry-after': 'soon' }), undefined);
    // Neither seconds nor a date, though Date.parse reads each as a date long past (retry at once).
    for (const value of ['-1', '-30', 'in 5', '1.5.2']) {
      assert.equal(parseRetryAfter({ 'retry-after': value }), undefined, value);
    }
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter({ 'retry-after': 'Thursday, 01-Jan-26 00:00:07 GMT' }, now), 7000);
  });

  test('an asctime date is GMT whatever the time zone, and a day name with a year is no date', (t) => {
    const zone = process.env.TZ;
    // Date.parse reads an asctime date (no zone written) in the local time zone.
    process.env.TZ = 'America/New_York';
    t.after(() => {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    });
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter({ 'retry-after': 'Thu Jan  1 00:00:09 2026' }, now), 9000);
    assert.equal(parseRetryAfter({ 'retry-after': 'Fri 2027' }, now), undefined);
  });

  test('a retry-after-ms that is not a number of milliseconds is ignored, not read as 0 or hex', () => {
    // Number('') is 0 and Number('0x10') 16: such a header would retry at once (or after 16 ms)
    // and hide the Retry-After next to it.
    for (const value of ['', '  ', '0x10', '1e3', '-5', 'soon']) {
      assert.equal(
        parseRetryAfter({ 'retry-after-ms': value, 'retry-after': '3' }),
        3000,
        JSON.stringify(value),
      );
      assert.equal(parseRetryAfter({ 'retry-after-ms': value }), undefined, JSON.stringify(value));
    }
    assert.equal(parseRetryAfter({ 'retry-after-ms': ' 1500 ' }), 1500);
    assert.equal(parseRetryAfter({ 'retry-after-ms': '0' }), 0);
  });
});

describe('classifyProviderError', () => {
  test('a header value the HTTP client refuses is named without quoting it (it holds the API key)', () => {
    let thrown: unknown;
    try {
      new Headers({ authorization: 'Bearer sk-secret-123\nsk-second' });
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof TypeError && thrown.message.includes('sk-secret-123'));
    const failure = classifyProviderError(thrown);
    assert.equal(failure.retryable, false);
    assert.ok(!failure.detail.includes('sk-secret'), failure.detail);
    assert.match(failure.detail, /a request header has an invalid value/);
  });

  test('a base URL with a password the HTTP client refuses is named without quoting it', async () => {
    const thrown = await fetch('http://user:s3cret@127.0.0.1:9/v1/chat/completions').catch(
      (error: unknown) => error,
    );
    assert.ok(thrown instanceof TypeError && thrown.message.includes('s3cret'));
    const failure = classifyProviderError(thrown);
    assert.equal(failure.retryable, false);
    assert.ok(!failure.detail.includes('s3cret'), failure.detail);
    assert.match(failure.detail, /the base URL holds a user name or password/);
  });

  test('a base URL on a port fetch refuses for every request is said as such and not retried', async () => {
    const provider = providersConfigSchema.parse({
      local: { type: 'openai-compatible', baseURL: 'http://127.0.0.1:11434/v1', model: 'm', apiKey: 'k' },
    }).local!;
    // Past the config check (which refuses it), as a stored or redirected URL could be.
    const model = createLanguageModel(
      'local',
      { ...provider, baseURL: 'http://127.0.0.1:6000/v1?key=s3cret' },
      'm',
    );
    const thrown = await generateText({ model, prompt: 'Hi.', maxRetries: 0 }).catch(
      (error: unknown) => error,
    );
    const failure = classifyProviderError(thrown);
    assert.equal(failure.retryable, false);
    assert.equal(
      failure.detail,
      'http://127.0.0.1:6000: port 6000 is one the HTTP client (Node\'s fetch) refuses for every request, as browsers do (a "bad port" of the fetch standard); use another port',
    );
    assert.match(
      toProviderAppError(failure, { provider: 'local', model: 'm', attempts: 1 }).message,
      /^provider 'local' \(model m\) failed: http:\/\/127\.0\.0\.1:6000: port 6000 is one/,
    );
  });

  test('maps statuses to kinds and retryability', () => {
    const cases: Array<[number | undefined, string, boolean]> = [
      [401, 'auth', false],
      [403, 'auth', false],
      [400, 'bad_request', false],
      [404, 'not_found', false],
      [422, 'bad_request', false],
      [408, 'timeout', true],
      [429, 'rate_limited', true],
      [500, 'server', true],
      [529, 'server', true],
      [undefined, 'network', true],
      [200, 'network', true],
    ];
    for (const [status, kind, retryable] of cases) {
      const failure = classifyProviderError(httpError(status));
      assert.equal(failure.kind, kind, `status ${status}`);
      assert.equal(failure.retryable, retryable, `status ${status}`);
    }
  });

  test('an error chunk of the OpenAI wire is judged by its code or type, as its HTTP status would be', () => {
    // What the openai-compatible package hands over: the chunk's `error` object as sent.
    const cases: Array<[Record<string, unknown>, string, boolean, number | undefined]> = [
      // vLLM: the status as a number; LiteLLM: as text.
      [{ type: 'BadRequestError', code: 400 }, 'bad_request', false, 400],
      [{ type: 'None', code: '400' }, 'bad_request', false, 400],
      [{ type: 'None', code: '429' }, 'rate_limited', true, 429],
      [{ type: 'None', code: '503' }, 'server', true, 503],
      // OpenAI's own names.
      [{ type: 'invalid_request_error', code: null }, 'bad_request', false, 400],
      [{ type: 'invalid_request_error', code: 'invalid_api_key' }, 'auth', false, 401],
      [{ type: 'rate_limit_exceeded', code: 'rate_limit_exceeded' }, 'rate_limited', true, 429],
      [{ type: 'server_error', code: null }, 'server', true, 500],
      // No credit left on the account: a 429 that waiting does not cure.
      [{ type: 'insufficient_quota', code: 'insufficient_quota' }, 'rate_limited', false, 429],
      // Nothing that names a status: the answer broke off, retried.
      [{ type: 'something_new', code: 'unheard_of' }, 'server', true, undefined],
      [{ code: '4000' }, 'server', true, undefined],
      [{ type: 'constructor' }, 'server', true, undefined],
    ];
    for (const [fields, kind, retryable, status] of cases) {
      const failure = classifyProviderError({ message: 'stopped', param: null, ...fields });
      assert.deepEqual(
        [failure.kind, failure.retryable, failure.status],
        [kind, retryable, status],
        JSON.stringify(fields),
      );
    }
  });

  test("an OpenAI stream error's code or type outweighs the status the openai package set on it", () => {
    // Reported after some output: the package's report, its status read from the type first.
    const reported = classifyProviderError({
      message: 'Incorrect API key provided',
      type: 'invalid_request_error',
      code: 'invalid_api_key',
      statusCode: 400,
      isRetryable: false,
    });
    assert.deepEqual([reported.kind, reported.retryable, reported.status], ['auth', false, 401]);
    // A report that names no status keeps the one it carries (Anthropic's package maps its types).
    const anthropic = classifyProviderError({ message: 'Overloaded', type: 'unheard_of', statusCode: 529 });
    assert.deepEqual([anthropic.kind, anthropic.retryable, anthropic.status], ['server', true, 529]);
    // Reported before any output: thrown as an HTTP error of the event stream, the frame as `data`.
    const early = (data: unknown, contentType: string) =>
      classifyProviderError(
        new APICallError({
          message: 'Incorrect API key provided',
          url: 'http://127.0.0.1/v1/chat/completions',
          requestBodyValues: {},
          statusCode: 400,
          responseHeaders: { 'content-type': contentType },
          data,
        }),
      );
    const frame = {
      message: 'Incorrect API key provided',
      type: 'invalid_request_error',
      code: 'invalid_api_key',
    };
    const fromStream = early(frame, 'text/event-stream');
    assert.deepEqual([fromStream.kind, fromStream.retryable, fromStream.status], ['auth', false, 401]);
    const failedResponse = early(
      { type: 'response.failed', response: { error: { ...frame } } },
      'text/event-stream',
    );
    assert.equal(failedResponse.status, 401);
    // An HTTP error answer keeps its own status, whatever its body names.
    assert.equal(early({ error: frame }, 'application/json').status, 400);
    // A frame that names no status keeps the package's.
    assert.equal(early({ message: 'x', type: 'unheard_of' }, 'text/event-stream').status, 400);
  });

  test('a 429 answer that says the account has no credit is not retried, as in a stream', () => {
    const answer = (data: unknown) =>
      classifyProviderError(
        new APICallError({
          message: 'You exceeded your current quota',
          url: 'http://127.0.0.1/v1/chat/completions',
          requestBodyValues: {},
          statusCode: 429,
          responseHeaders: { 'content-type': 'application/json' },
          data,
        }),
      );
    const noCredit = answer({ error: { type: 'insufficient_quota', code: 'insufficient_quota' } });
    assert.deepEqual([noCredit.kind, noCredit.retryable, noCredit.status], ['rate_limited', false, 429]);
    const limited = answer({ error: { type: 'requests', code: 'rate_limit_exceeded' } });
    assert.deepEqual([limited.kind, limited.retryable, limited.status], ['rate_limited', true, 429]);
    assert.equal(answer(undefined).retryable, true);
  });

  test('treats our timeout as retryable and unknown errors as not', () => {
    assert.equal(classifyProviderError(new ProviderTimeoutError(1000)).retryable, true);
    assert.equal(classifyProviderError(new TypeError('bug')).retryable, false);
  });
});

describe('toProviderAppError', () => {
  test('names the provider, the status and what to check, without the request body', () => {
    const failure = classifyProviderError(httpError(401, 'invalid x-api-key'));
    const error = toProviderAppError(failure, { provider: 'claude', model: 'm', attempts: 1 });
    assert.equal(error.code, 'PROVIDER_ERROR');
    assert.equal(
      error.message,
      "provider 'claude' (model m) rejected the credentials (HTTP 401): invalid x-api-key. Check providers.claude.apiKey.",
    );
    assert.doesNotMatch(JSON.stringify(error.details), /prompt/);
  });

  test('uses PROVIDER_UNAVAILABLE for exhausted availability failures and TIMEOUT for timeouts', () => {
    const unavailable = toProviderAppError(classifyProviderError(httpError(503)), {
      provider: 'p',
      model: 'm',
      attempts: 4,
    });
    assert.equal(unavailable.code, 'PROVIDER_UNAVAILABLE');
    assert.match(unavailable.message, /after 4 attempt\(s\) \(HTTP 503\)/);
    const timeout = toProviderAppError(classifyProviderError(new ProviderTimeoutError(30_000)), {
      provider: 'p',
      model: 'm',
      attempts: 2,
    });
    assert.equal(timeout.code, 'TIMEOUT');
    assert.match(timeout.message, /no answer within 30 s/);
  });

  test('shortens long provider messages to one line', () => {
    const failure = classifyProviderError(httpError(400, `line one\n${'x'.repeat(2000)}`));
    assert.ok(failure.detail.length <= 401);
    assert.doesNotMatch(failure.detail, /\n/);
  });
});

describe('a stream that ends without a finish', () => {
  test('streamText reports it as no output; judged as a stream cut off (retried), not a failed request', async () => {
    // An Anthropic stream cut after message_start: the provider package reports no finish, and
    // streamText (the orchestrator's synthesis) ends with NoOutputGeneratedError.
    const server = await startLlmServer();
    try {
      const providers = providersConfigSchema.parse({
        main: { type: 'anthropic', model: 'm', apiKey: 'k', baseURL: server.anthropicBaseURL },
      });
      server.enqueue({ text: 'Not this.', endAfterFrames: 1 });
      const stream = streamText({
        model: createLanguageModel('main', providers.main!, 'm'),
        prompt: 'q',
        maxRetries: 0,
      });
      let error: unknown;
      for await (const part of stream.fullStream) if (part.type === 'error') error = part.error;
      assert.ok(error !== undefined, 'the stream reports an error');
      const failure = classifyProviderError(error);
      assert.equal(failure.kind, 'network');
      assert.equal(failure.retryable, true);
    } finally {
      await server.close();
    }
  });
});
