// The LLM client's circuit breaker and bulkhead together, against the scripted LLM server: a
// half-open trial call stopped while it waits for a bulkhead slot frees the trial slot.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { generateText } from 'ai';
import { pino } from 'pino';
import { type ScriptedLlmServer, startLlmServer } from '../../../test/fixtures/llm-server.ts';
import { waitFor } from '../../../test/fixtures/wait-for.ts';
import { llmConfigSchema, providersConfigSchema } from '../../config/llm-schema.ts';
import { createLlmClient } from './llm-client.ts';

(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

describe('LLM client breaker and bulkhead', () => {
  let server: ScriptedLlmServer;
  before(async () => {
    server = await startLlmServer({
      handler: (request) => {
        if (request.promptText.includes('fail')) return { error: 500 };
        if (request.promptText.includes('hang')) return { hang: true };
        return { text: 'ok' };
      },
    });
  });
  after(() => server.close());

  test('a half-open trial stopped while it waits for a bulkhead slot lets the next call be the trial', async () => {
    let time = 0;
    const client = createLlmClient({
      providers: providersConfigSchema.parse({
        main: {
          type: 'openai-compatible',
          model: 'm',
          apiKey: 'k',
          baseURL: server.openaiBaseURL,
          maxConcurrency: 2,
        },
      }),
      llm: llmConfigSchema.parse({
        retry: { maxAttempts: 1 },
        circuitBreaker: { failureThreshold: 1, openSeconds: 30 },
      }),
      logger: pino({ level: 'silent' }),
      now: () => time,
    });
    const ask = (prompt: string, signal: AbortSignal) =>
      client.call('engineer', signal, ({ model, signal: callSignal }) =>
        generateText({ model, prompt, maxRetries: 0, abortSignal: callSignal }),
      );
    const first = new AbortController();
    const third = new AbortController();
    // Two slots: the first call hangs in one, the second fails in the other and opens the circuit,
    // and the third, admitted while the circuit was closed, takes its slot and hangs too.
    const hanging = [ask('hang 1', first.signal), ask('fail', new AbortController().signal)];
    hanging.push(ask('hang 3', third.signal));
    for (const call of hanging) call.catch(() => undefined);
    await assert.rejects(hanging[1] as Promise<unknown>, { code: 'PROVIDER_UNAVAILABLE' });
    await waitFor(() => server.requests.length === 3, 10_000, 'the third call to reach the server');

    time += 30_000;
    // Half-open: the trial call waits for a slot, and is stopped before it gets one.
    const stopped = new AbortController();
    const trial = ask('question', stopped.signal);
    trial.catch(() => undefined);
    await nextTurn();
    stopped.abort(new Error('cancelled'));
    await assert.rejects(trial, /cancelled/);

    // The next call is the trial: it waits for a slot (freed by the first call's end) and answers.
    const next = ask('question', new AbortController().signal);
    await nextTurn();
    first.abort(new Error('done'));
    assert.equal((await next).value.text, 'ok');
    assert.equal(server.requests.length, 4);
    third.abort(new Error('done'));
  });
});

describe('LLM client provider chain', () => {
  /** A client of `main` with the fallback `backup`, both on `server`, waiting at most 5 s for a Retry-After. */
  function chainOn(server: ScriptedLlmServer, fallback = true) {
    const provider = { type: 'openai-compatible', model: 'm', apiKey: 'k', baseURL: server.openaiBaseURL };
    return createLlmClient({
      providers: providersConfigSchema.parse({ main: provider, backup: { ...provider, model: 'b' } }),
      llm: llmConfigSchema.parse({
        defaultProvider: 'main',
        defaultFallback: fallback ? ['backup'] : [],
        retry: { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 0, maxRetryAfterSeconds: 5 },
      }),
      logger: pino({ level: 'silent' }),
    });
  }
  const ask = (client: ReturnType<typeof createLlmClient>) =>
    client
      .call('engineer', new AbortController().signal, ({ model, signal }) =>
        generateText({ model, prompt: 'hi', maxRetries: 0, abortSignal: signal }),
      )
      .then(
        () => assert.fail('the call should fail'),
        (error: Error & { code?: string; details?: { failures?: string[] } }) => error,
      );

  test('a primary whose Retry-After is too long to wait for is named so when the fallback fails too', async (t) => {
    const server = await startLlmServer({
      handler: (request) =>
        request.model === 'm'
          ? { error: 429, message: 'slow down', retryAfter: 120 }
          : { error: 401, message: 'bad key' },
    });
    t.after(() => server.close());
    const error = await ask(chainOn(server));
    assert.equal(error.code, 'PROVIDER_ERROR');
    assert.match(
      error.message,
      /^All providers for role 'engineer' failed: main: slow down; asked to wait 120 s \(Retry-After\), longer than llm\.retry\.maxRetryAfterSeconds \(5 s\): not waited for; then provider 'backup' \(model b\) rejected the credentials \(HTTP 401\): bad key/,
    );
    assert.match(error.details?.failures?.[0] ?? '', /^main: .*not waited for$/);
    assert.equal(server.requests.length, 2, 'the primary was not asked again');
  });

  test('the same when the fallback is unavailable too, and with no fallback at all', async (t) => {
    const server = await startLlmServer({
      handler: (request) =>
        request.model === 'm'
          ? { error: 503, message: 'overloaded', retryAfter: 30 }
          : { error: 503, message: 'down' },
    });
    t.after(() => server.close());
    const error = await ask(chainOn(server));
    assert.equal(error.code, 'PROVIDER_UNAVAILABLE');
    assert.match(
      error.message,
      /failed: main: overloaded; asked to wait 30 s \(Retry-After\), longer than llm\.retry\.maxRetryAfterSeconds \(5 s\): not waited for; backup: down$/,
    );
    const alone = await ask(chainOn(server, false));
    assert.match(
      alone.message,
      /^provider 'main' \(model m\) is unavailable after 1 attempt\(s\) \(HTTP 503\): overloaded; asked to wait 30 s \(Retry-After\), longer than llm\.retry\.maxRetryAfterSeconds \(5 s\): not waited for$/,
    );
  });

  test('a provider named twice among the fallbacks is tried once, in its first place', async () => {
    const server = await startLlmServer({ handler: () => ({ error: 503, message: 'down' }) });
    after(() => server.close());
    const provider = { type: 'openai-compatible', model: 'm', apiKey: 'k', baseURL: server.openaiBaseURL };
    const client = createLlmClient({
      providers: providersConfigSchema.parse({ main: provider, backup: provider, spare: provider }),
      llm: llmConfigSchema.parse({
        defaultProvider: 'main',
        defaultFallback: ['backup', 'main', 'backup'],
        retry: { maxAttempts: 2, baseDelayMs: 0, maxDelayMs: 0 },
        roles: { engineer: { provider: 'main', fallback: ['spare', 'backup', 'spare', 'backup'] } },
      }),
      logger: pino({ level: 'silent' }),
    });
    const names = (role: string) => client.resolveChain(role).map((target) => target.provider);
    assert.deepEqual(names('engineer'), ['main', 'spare', 'backup']);
    assert.deepEqual(names('qa'), ['main', 'backup']);
    // Each provider had its retries once: not twice the backoff against one that is down, nor
    // named twice in the error.
    await assert.rejects(
      client.call('engineer', new AbortController().signal, ({ model, signal }) =>
        generateText({ model, prompt: 'hi', maxRetries: 0, abortSignal: signal }),
      ),
      (error: Error & { details?: { failures?: string[] } }) =>
        JSON.stringify(error.details?.failures?.map((failure) => failure.split(':')[0])) ===
        JSON.stringify(['main', 'spare', 'backup']),
    );
    assert.equal(server.requests.length, 6);
  });
});
